"""Built structures must be valid clusters of the run (issue 12 item 5): build/validate.py, the
builder's connectivity under the run's rules (build/connect.py) and the structures / SAXS steps."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from clusterdynamicsml.build.geomstats import geometry_statistics
from clusterdynamicsml.build.grow import build_structure
from clusterdynamicsml.build.validate import (
    build_valid_structure,
    rg_interval_of,
    validate_structure,
)
from clusterdynamicsml.clusters import ClusterRules

NACL_RULES = ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={"Na-Cl": 2.6})
PBIO_RULES = ClusterRules(node=["Pb"], linker=["I"], shell=["O"], cutoffs={"Pb-I": 3.36, "Pb-O": 3.36})


def chain(n_atoms: int, start: str, origin=(0.0, 0.0, 0.0), bond: float = 2.5):
    """Zig-zag Na-Cl chain (alternating species, 120 degree angles) of n_atoms, bonds in angstrom."""
    other = {"Na": "Cl", "Cl": "Na"}
    syms, pos = [], []
    for k in range(n_atoms):
        syms.append(start if k % 2 == 0 else other[start])
        pos.append([k * bond * math.sin(math.radians(60)), (k % 2) * bond * 0.5, 0.0])
    return syms, np.asarray(pos) + np.asarray(origin)


def rocksalt_library(n: int = 300, seed: int = 0, spacing: float = 2.45, jitter: float = 0.04):
    """Connected random fragments of a rock-salt lattice (Na at even, Cl at odd i+j+k), 2-14 atoms,
    positions jittered by N(0, jitter) angstrom: a NaCl-like library whose clusters are connected
    under Na-Cl <= 2.6 A."""
    rng = np.random.default_rng(seed)
    steps = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]])
    out = []
    for _ in range(n):
        size = int(rng.integers(2, 15))
        sites = [(0, 0, 0)]
        while len(sites) < size:
            base = np.array(sites[int(rng.integers(len(sites)))])
            new = tuple((base + steps[int(rng.integers(6))]).tolist())
            if new not in sites:
                sites.append(new)
        s = np.array(sites)
        syms = ["Na" if v % 2 == 0 else "Cl" for v in s.sum(axis=1)]
        out.append((syms, s * spacing + rng.normal(0.0, jitter, s.shape)))
    return out


@pytest.fixture(scope="module")
def nacl_stats():
    return geometry_statistics(rocksalt_library(), ["Na"], ["Cl"], [], {("Na", "Cl"): 2.6})


@pytest.fixture(scope="module")
def example_stats():
    """Geometry statistics learned from the bundled example's own clusters (all frames)."""
    from _example_library import example_library

    lib, rules = example_library()
    return geometry_statistics(lib, rules=rules)


# ---- the check itself --------------------------------------------------------------------------

def test_split_structure_is_caught_like_the_readme_na12cl10():
    # Na12Cl10 as the README run built it: Na7Cl6 and Na5Cl4, 6 A apart (no Na-Cl <= 2.6 A between)
    s1, p1 = chain(13, "Na")
    s2, p2 = chain(9, "Na", origin=(0.0, 6.0, 0.0))
    syms, pos = s1 + s2, np.vstack([p1, p2])
    res = validate_structure(syms, pos, NACL_RULES, counts={"Na": 12, "Cl": 10})
    assert not res.passed
    assert res.n_components == 2 and res.component_labels == ("Na7Cl6", "Na5Cl4")
    assert res.counts == {"Cl": 10, "Na": 12} and res.expected_counts == {"Cl": 10, "Na": 12}
    assert len(res.reasons) == 1 and "not one cluster" in res.reasons[0] and "Na7Cl6, Na5Cl4" in res.reasons[0]
    # joined by one more Cl between the chain ends it is one cluster (the same check passes)
    p2b = p2 + (p1[-1] + np.array([0.0, 5.0, 0.0])) - p2[-1]  # chain ends 5 A apart: Na-Cl-Na at 2.5 A
    joint = p1[-1] + np.array([0.0, 2.5, 0.0])
    ok = validate_structure(syms + ["Cl"], np.vstack([p1, p2b, joint]), NACL_RULES, counts={"Na": 12, "Cl": 11})
    assert ok.passed and ok.n_components == 1 and ok.component_labels == ("Na12Cl11",) and ok.reasons == ()


def test_bond_just_beyond_the_cutoff_splits_and_just_inside_joins():
    for d, n in ((2.6 + 1e-4, 2), (2.6 - 1e-4, 1)):
        res = validate_structure(["Na", "Cl"], [[0, 0, 0], [d, 0, 0]], NACL_RULES)
        assert res.n_components == n and res.passed == (n == 1)


def test_unattached_shell_atom_is_a_component():
    syms = ["Pb", "I", "Pb", "O"]
    pos = [[0, 0, 0], [3.0, 0, 0], [6.0, 0, 0], [0, 5.0, 0]]  # the O is 5 A from every Pb (cutoff 3.36)
    res = validate_structure(syms, pos, PBIO_RULES, counts={"Pb": 2, "I": 1, "O": 1})
    assert not res.passed and res.n_components == 2 and res.component_labels == ("Pb2I",)
    assert "1 atom(s) in no cluster" in res.reasons[0]
    pos[3] = [0, 2.9, 0]
    assert validate_structure(syms, pos, PBIO_RULES, counts={"Pb": 2, "I": 1, "O": 1}).passed


def test_composition_contacts_and_rg_interval():
    syms, pos = ["Na", "Cl"], np.array([[-1.2, 0, 0], [1.2, 0, 0]])  # Rg = 1.2 A exactly
    res = validate_structure(syms, pos, NACL_RULES, counts={"Na": 1, "Cl": 2}, min_distances={"Cl-Na": 2.5},
                             rg_interval=(1.5, 3.0))
    assert not res.passed and res.rg == pytest.approx(1.2)
    text = " | ".join(res.reasons)
    assert "composition {'Cl': 1, 'Na': 1} is not the requested {'Cl': 2, 'Na': 1}" in text
    assert "Cl-Na contact 2.400 A is shorter than the learned minimum 2.500 A" in text
    assert "Rg 1.20 A is outside the predicted interval [1.50, 3.00] A" in text
    assert res.shortest_contact == pytest.approx(2.4) and res.min_distance_ratio == pytest.approx(2.4 / 2.5)
    good = validate_structure(syms, pos, NACL_RULES, counts={"Na": 1, "Cl": 1}, min_distances={("Na", "Cl"): 2.3},
                              rg_interval=(1.0, 1.3))
    assert good.passed and good.rg_interval == (1.0, 1.3)
    # a NaN end means the prediction gives no interval: not checked
    assert validate_structure(syms, pos, NACL_RULES, rg_interval=(float("nan"), 2.0)).rg_interval is None
    with pytest.raises(ValueError, match="lo <= hi"):
        validate_structure(syms, pos, NACL_RULES, rg_interval=(3.0, 1.0))
    with pytest.raises(ValueError, match="2 symbols but 1 positions"):
        validate_structure(syms, pos[:1], NACL_RULES)


def test_open_boundaries_and_residue_roles():
    # the run's rules have pbc on and residue-qualified shells; a built structure has neither box nor residues
    rules = ClusterRules(node=["Pb"], linker=["I"], shell=[("O", "DMF")], cutoffs={"Pb-I": 3.36, "Pb-O": 3.36})
    assert rules.pbc and rules.uses_residues
    res = validate_structure(["Pb", "I", "O"], [[0, 0, 0], [3.0, 0, 0], [0, 2.5, 0]], rules)
    assert res.passed and res.component_labels == ("PbI",)


def test_rg_interval_of_candidates():
    assert rg_interval_of(SimpleNamespace(rg_interval=(4.0, 6.0))) == (4.0, 6.0)
    assert rg_interval_of({"uncertainty": {"mean_radius_of_gyration": {"p05": 3.5, "p95": 7.0}}}) == (3.5, 7.0)
    assert rg_interval_of(SimpleNamespace(uncertainty={})) is None
    assert rg_interval_of(SimpleNamespace(rg_interval=(float("nan"), float("nan")))) is None


# ---- the builder makes valid clusters ------------------------------------------------------------

NACL_COMPOSITIONS = [(12, 10), (13, 12), (8, 6), (6, 4), (10, 9), (15, 15), (20, 19), (7, 5), (9, 12)]


@pytest.mark.parametrize("n_na,n_cl", NACL_COMPOSITIONS)
def test_nacl_like_builds_are_single_clusters(nacl_stats, n_na, n_cl):
    counts = {"Na": n_na, "Cl": n_cl}
    for seed in (0, 1):
        built = build_structure(counts, nacl_stats, seed=seed)  # the cutoffs of the statistics are the rules'
        res = validate_structure(built.symbols, built.positions, NACL_RULES, counts=counts, stats=nacl_stats)
        assert res.passed, (counts, seed, res.reasons)
        # bonds sit a margin below the cutoff: 1e-3 A of noise cannot split the cluster
        noisy = built.positions + np.random.default_rng(seed).normal(0.0, 1e-3, built.positions.shape)
        assert validate_structure(built.symbols, noisy, NACL_RULES).n_components == 1


EXAMPLE_COMPOSITIONS = [
    {"Pb": 7, "I": 11}, {"Pb": 7, "I": 12}, {"Pb": 6, "I": 10}, {"Pb": 4, "I": 9, "O": 6},
    {"Pb": 10, "I": 20, "O": 10}, {"Pb": 5, "I": 4, "O": 3}, {"Pb": 3, "I": 2}, {"Pb": 16, "I": 32, "O": 16},
]


@pytest.mark.parametrize("counts", EXAMPLE_COMPOSITIONS, ids=lambda c: "".join(f"{k}{v}" for k, v in c.items()))
def test_example_like_builds_are_single_clusters(example_stats, counts):
    for compactness in (0.0, 0.5):
        built = build_structure(counts, example_stats, seed=0, rules=PBIO_RULES, compactness=compactness)
        res = validate_structure(built.symbols, built.positions, PBIO_RULES, counts=counts, stats=example_stats)
        assert res.passed, (counts, compactness, res.reasons)
        assert built.quality.relaxed_atoms == 0


def test_compactness_meets_a_small_rg_interval(nacl_stats):
    counts = {"Na": 8, "Cl": 7}
    open_ = build_structure(counts, nacl_stats, seed=0, rules=NACL_RULES)
    compact = build_structure(counts, nacl_stats, seed=0, rules=NACL_RULES, compactness=1.0)
    rg_open = validate_structure(open_.symbols, open_.positions, NACL_RULES).rg
    rg_compact = validate_structure(compact.symbols, compact.positions, NACL_RULES).rg
    assert rg_compact < 0.7 * rg_open
    # the rebuild loop moves to compact growth when the first build is larger than the interval
    lo, hi = 0.9 * rg_compact, 1.2 * rg_compact
    built, res, attempts = build_valid_structure(counts, nacl_stats, NACL_RULES, rg_interval=(lo, hi))
    assert res.passed and attempts > 1 and res.extra["compactness"] > 0 and lo <= res.rg <= hi
    with pytest.raises(ValueError, match="compactness"):
        build_structure(counts, nacl_stats, compactness=-1.0)


def test_failure_is_reported_not_hidden(example_stats):
    # three Pb and no linker can never be one cluster (no Pb-Pb cutoff): every attempt fails
    built, res, attempts = build_valid_structure({"Pb": 3}, example_stats, PBIO_RULES, max_attempts=3)
    assert built is not None and attempts == 3
    assert not res.passed and res.n_components == 3 and "not one cluster" in res.reasons[0]
    with pytest.raises(ValueError, match="max_attempts"):
        build_valid_structure({"Pb": 3}, example_stats, PBIO_RULES, max_attempts=0)


# ---- the pipeline keeps failures out of SAXS ----------------------------------------------------

def test_structures_step_flags_invalid_structures_and_saxs_skips_them(tmp_path, monkeypatch):
    import csv

    from clusterdynamicsml.build import stage as build_stage
    from clusterdynamicsml.pipeline import workflow
    from clusterdynamicsml.pipeline.config import RunConfig

    good = SimpleNamespace(counts={"Na": 3, "Cl": 2}, label="Na3Cl2", node_count=3, rank=1, source_label=None,
                           weight=0.5, predicted={"mean_count_per_frame": 0.5})
    bad = SimpleNamespace(counts={"Na": 3}, label="Na3", node_count=3, rank=2, source_label=None, weight=0.5,
                          predicted={"mean_count_per_frame": 0.5})

    class Quality:
        def to_dict(self):
            return {"shortest_contact": 2.5, "relaxed_atoms": 0}

    def fake_build(counts, stats, rules, *, representative=None, label=None, seed=0, rg_interval=None,
                   on_crowding="raise"):
        st = SimpleNamespace(symbols=["Na"], positions=np.zeros((1, 3)), quality=Quality(), n_atoms=5, label=label)
        ok = label == "Na3Cl2"
        return st, SimpleNamespace(passed=ok, n_components=1 if ok else 3, rg=2.0,
                                   reasons=() if ok else ("not one cluster under the run's rules: 3 components",),
                                   summary=lambda: "valid" if ok else "not one cluster under the run's rules"), 4

    def fake_write(path, st, *, target_node_count=None, rank=1, source_label=None, **kw):
        out = tmp_path / f"{target_node_count:02d}_rank{rank:02d}.xyz"
        out.write_text("1\n\nNa 0 0 0\n")
        return out

    monkeypatch.setattr(build_stage, "geometry_statistics", lambda *a, **k: {})
    monkeypatch.setattr(build_stage, "write_built_structure", fake_write)
    monkeypatch.setattr(build_stage, "build_valid_structure", fake_build)
    monkeypatch.setattr(build_stage, "rg_interval_of", lambda c: None)
    monkeypatch.setattr(build_stage, "representative_structure", lambda library, c: None)
    cfg = RunConfig.from_dict({}, base_dir=tmp_path)
    ctx = workflow._Context(cfg, tmp_path / "run", "t", progress=False)
    pred = SimpleNamespace(candidates=[good, bad], debye_waller=[], node_elements=["Na"],
                           histogram_tables=lambda: {"observed": []})
    ctx.data.update(prediction=pred, library=SimpleNamespace(labels=[]), rules=SimpleNamespace(role_elements=lambda r: []))
    assert workflow._step_structures(ctx) == "2 of 2 structures built, 1 valid"
    assert [b["valid"] for b in ctx.data["built_structures"]] == [True, False]
    assert any("Na3 (node count 3) is not a valid cluster after 4 builds" in w and "kept out of the SAXS mixture" in w
               for w in ctx.warnings)
    with open(ctx.dir / ctx.outputs["predicted_structures_csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["valid"] for r in rows] == ["True", "False"] and rows[1]["n_components"] == "3"
    # the SAXS step (saxs/stage.py, issue 13) mixes only the valid structure and says why Na3 is out
    ctx.data["dynamics"] = SimpleNamespace(lifetime_by_label=[], labels=[])
    ctx.data["library"] = None
    assert workflow._step_saxs(ctx).startswith("0 observed (0 node-free) and 1 predicted components")
    assert [c.label for c in ctx.data["saxs"]["components"]] == ["Na3Cl2"]
    rows = {r["label"]: r for r in ctx.data["saxs"]["all_rows"]}
    assert rows["Na3Cl2"]["in_mixture"] and not rows["Na3"]["in_mixture"]
    assert any(w.startswith("saxs: predicted Na3 (node count 3): built structure is not a valid cluster")
               for w in ctx.warnings)


# ---- the Rg check of one structure against the predicted band of the mean ------------------------

def _rg(pos):
    p = np.asarray(pos, dtype=float)
    return float(np.sqrt(((p - p.mean(0)) ** 2).sum(1).mean()))


def _labelled(lib):
    """{(Na count, Cl count): [(symbols, positions), ...]}"""
    out = {}
    for syms, pos in lib:
        out.setdefault((syms.count("Na"), syms.count("Cl")), []).append((syms, pos))
    return out


def test_rg_relative_spread_is_the_pooled_within_label_spread(nacl_stats):
    groups = _labelled(rocksalt_library())
    num = den = 0.0
    for (nodes, _), items in groups.items():
        r = np.array([_rg(p) for _, p in items])
        if nodes >= 2 and r.size >= 5:
            num += (r.size - 1) * r.var(ddof=1) / r.mean() ** 2
            den += r.size - 1
    assert den > 50
    assert nacl_stats.rg_relative_spread == pytest.approx(math.sqrt(num / den), rel=1e-9)
    assert 0.03 < nacl_stats.rg_relative_spread < 0.5


def test_real_clusters_of_a_label_pass_the_structure_rg_check(nacl_stats):
    """The predicted band bounds the mean Rg of a size (a few percent wide); single clusters of
    that size scatter far more. Measured on the 1450 K NaCl melt: only 11-18 % of the observed
    clusters at n = 7..12 lay inside the predicted band, so the builder rejected 5 of 6 structures
    of the README run. The builder's check must accept most real clusters whose mean is in the band."""
    from clusterdynamicsml.build.validate import structure_rg_interval

    groups = _labelled(rocksalt_library())
    label, items = max(((k, v) for k, v in groups.items() if k[0] >= 3), key=lambda kv: len(kv[1]))
    assert len(items) >= 10
    mean = float(np.mean([_rg(p) for _, p in items]))
    band = (0.98 * mean, 1.02 * mean)  # a predicted band of the mean that contains the true mean
    raw = np.mean([validate_structure(s, p, NACL_RULES, rg_interval=band).passed for s, p in items])
    widened = structure_rg_interval(band, nacl_stats)
    ok = np.mean([validate_structure(s, p, NACL_RULES, rg_interval=widened).passed for s, p in items])
    assert raw < 0.5 <= 0.8 <= ok, (label, raw, ok)
    # and the builder, given the band of the mean, returns a structure that passes
    counts = {e: items[0][0].count(e) for e in ("Na", "Cl")}
    built, res, _ = build_valid_structure(counts, nacl_stats, NACL_RULES, seed=0, rg_interval=band)
    assert res.passed, res.reasons
    assert structure_rg_interval(band, None) == band  # nothing learned: the band unchanged


def test_structures_step_flags_a_structure_larger_than_half_the_source_box(tmp_path, monkeypatch):
    """A built structure that reaches farther from its centre than half the source box stays valid
    (it is an isolated cluster) but is flagged in the CSV and warned about: in the source box it
    would touch its own periodic image."""
    import csv

    from clusterdynamicsml.build import stage as build_stage
    from clusterdynamicsml.pipeline import workflow
    from clusterdynamicsml.pipeline.config import RunConfig

    cand = SimpleNamespace(counts={"Na": 2}, label="Na2", node_count=2, rank=1, source_label=None, weight=1.0,
                           predicted={"mean_count_per_frame": 0.5})
    st = SimpleNamespace(symbols=["Na", "Na"], positions=np.array([[0.0, 0, 0], [12.0, 0, 0]]),
                         quality={"relaxed_atoms": 0}, n_atoms=2, label="Na2")
    ok = SimpleNamespace(passed=True, n_components=1, rg=6.0, reasons=(), summary=lambda: "valid")
    monkeypatch.setattr(build_stage, "geometry_statistics", lambda *a, **k: {})
    monkeypatch.setattr(build_stage, "build_valid_structure", lambda *a, **k: (st, ok, 1))
    monkeypatch.setattr(build_stage, "rg_interval_of", lambda c: None)
    monkeypatch.setattr(build_stage, "representative_structure", lambda library, c: None)

    def fake_write(path, s, *, target_node_count=None, rank=1, **kw):
        out = tmp_path / f"{target_node_count:02d}_rank{rank:02d}.xyz"
        out.write_text("2\n\nNa 0 0 0\nNa 12 0 0\n")
        return out

    monkeypatch.setattr(build_stage, "write_built_structure", fake_write)
    for box, flagged in (([10.0, 30.0, 30.0], True), ([13.0] * 3, False), (None, False)):
        ctx = workflow._Context(RunConfig.from_dict({}, base_dir=tmp_path), tmp_path / f"run{box}", "t", progress=False)
        pred = SimpleNamespace(candidates=[cand], settings={"box_lengths": box})
        ctx.data.update(prediction=pred, library=SimpleNamespace(labels=[]), rules=SimpleNamespace(role_elements=lambda r: []))
        build_stage.run_structures_step(ctx)
        with open(ctx.dir / ctx.outputs["predicted_structures_csv"]) as fh:
            row = next(csv.DictReader(fh))
        assert row["valid"] == "True" and float(row["max_radius"]) == pytest.approx(6.0)
        assert row["exceeds_half_box"] == str(flagged)
        assert any("more than half the source box (5 A)" in w for w in ctx.warnings) == flagged
