"""Debye-Waller sigma for observed and predicted clusters (ref §5.3 ML estimator).

Table logic is tested against a pure-numpy reference of the rank-aligned spread and with a
known answer through ``saxs.rank_aligned_sigma``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from clusterdynamicsml.library.read import build_training_rows, read_library
from clusterdynamicsml.predict import debye_waller as dw
from clusterdynamicsml.predict.candidates import Candidate

RULES = {"node": ["Pb"], "linker": ["I"], "shell": [], "cutoffs": {("Pb", "I"): 3.36}}


def reference_rank_aligned_sigma(structures, pair, cutoff=None):
    """Obviously-correct reference: sorted pair distances per structure, aligned by rank to the
    smallest count, population std per rank, root-mean-square over ranks."""
    a, b = pair
    per = []
    for symbols, pos in structures:
        pos = np.asarray(pos, dtype=float)
        d = []
        for i in range(len(symbols)):
            for j in range(i + 1, len(symbols)):
                if {symbols[i], symbols[j]} == {a, b} and (a != b or symbols[i] == a):
                    r = float(np.linalg.norm(pos[i] - pos[j]))
                    if cutoff is None or r <= cutoff:
                        d.append(r)
        per.append(sorted(d))
    per = [p for p in per if p]
    if len(per) < 2:
        raise ValueError("at least two structures with the pair are needed")
    k = min(len(p) for p in per)
    D = np.array([p[:k] for p in per])
    return float(np.sqrt(np.mean(D.std(axis=0) ** 2)))


def write_xyz(path, symbols, pos):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{len(symbols)}\n\n" + "\n".join(f"{s} {x:.6f} {y:.6f} {z:.6f}" for s, (x, y, z) in zip(symbols, pos)) + "\n")


def two_file_library(tmp_path):
    lib = tmp_path / "lib"
    write_xyz(lib / "PbI" / "a.xyz", ["Pb", "I"], [[0, 0, 0], [1.0, 0, 0]])
    write_xyz(lib / "PbI" / "b.xyz", ["Pb", "I"], [[0, 0, 0], [1.1, 0, 0]])
    return lib


def test_pair_keys_and_b_factor():
    assert dw.pair_keys({"Pb": 2, "I": 1}) == [("I", "Pb"), ("Pb", "Pb")]
    assert dw.pair_keys({"Pb": 1, "I": 1}) == [("I", "Pb")]
    assert dw.b_factor(0.05) == pytest.approx(8 * math.pi**2 * 0.0025)


def test_sigma_005_for_distances_10_and_11_through_saxs(tmp_path):
    library = read_library(two_file_library(tmp_path), RULES)
    rows, _ = build_training_rows(library, [])
    table = dw.observed_sigma_rows(library, rows, library.types)
    assert len(table) == 1
    t = table[0]
    assert (t["element_a"], t["element_b"]) == ("I", "Pb")
    assert t["sigma"] == pytest.approx(0.05, abs=1e-12)
    assert t["b_factor"] == pytest.approx(8 * math.pi**2 * 0.05**2)
    assert t["support_count"] == 2 and t["aligned_pair_count"] == 1


def test_saxs_rank_aligned_sigma_matches_reference(tmp_path):
    from clusterdynamicsml.saxs import debye as saxs
    rng = np.random.default_rng(5)
    structures = []
    for _ in range(4):
        n = int(rng.integers(3, 7))
        symbols = ["Pb"] * n + ["I"] * (n + 1)
        structures.append((symbols, rng.uniform(0, 6, size=(len(symbols), 3))))
    for pair, cutoff in ((("I", "Pb"), 3.9), (("Pb", "Pb"), None)):
        assert saxs.rank_aligned_sigma(structures, pair, cutoff) == pytest.approx(reference_rank_aligned_sigma(structures, pair, cutoff), rel=1e-10)


@pytest.fixture
def reference_estimator(monkeypatch):
    monkeypatch.setattr(dw, "rank_aligned_sigma", reference_rank_aligned_sigma)


def test_observed_sigma_with_reference_estimator(tmp_path, reference_estimator):
    library = read_library(two_file_library(tmp_path), RULES)
    rows, _ = build_training_rows(library, [])
    (t,) = dw.observed_sigma_rows(library, rows, library.types)
    assert t["sigma"] == pytest.approx(0.05) and t["method"] == "ensemble" and t["source"] == "observed"


def chain_library(tmp_path, rng):
    lib = tmp_path / "chains"
    for n in (1, 2, 3, 4):
        label = "Pb" if n == 1 else f"Pb{n}" + ("I" if n == 2 else f"I{n - 1}")
        files = 3 if n > 1 else 1
        for k in range(files):
            symbols = ["Pb" if i % 2 == 0 else "I" for i in range(2 * n - 1)]
            spread = 0.02 * n
            pos = np.array([[i * 3.0, 0, 0] for i in range(2 * n - 1)]) + rng.normal(scale=spread, size=(2 * n - 1, 3))
            write_xyz(lib / label / f"f{k}.xyz", symbols, pos)
    return lib


def test_debye_waller_table_observed_ridge_and_predicted(tmp_path, reference_estimator):
    rng = np.random.default_rng(11)
    library = read_library(chain_library(tmp_path, rng), RULES)
    rows, _ = build_training_rows(library, [])
    cand = Candidate(5, "Pb5I4", {"Pb": 5, "I": 4}, "trend", rank=1)
    table = dw.debye_waller_table(library, rows, [cand], library.types, n_bootstrap=20, seed=0)
    obs = [t for t in table if t["source"] == "observed" and t["method"] == "ensemble"]
    assert {(t["label"], t["element_a"], t["element_b"]) for t in obs} >= {("Pb2I", "I", "Pb"), ("Pb3I2", "I", "Pb"), ("Pb4I3", "I", "Pb"), ("Pb3I2", "Pb", "Pb")}
    assert all(t["sigma"] > 0 and t["b_factor"] == pytest.approx(8 * math.pi**2 * t["sigma"] ** 2) for t in table)
    pred = [t for t in table if t["source"] == "predicted"]
    assert {(t["element_a"], t["element_b"]) for t in pred} == {("I", "Pb"), ("Pb", "Pb"), ("I", "I")} & {(t["element_a"], t["element_b"]) for t in obs}
    for t in pred:
        assert t["method"] == "ridge" and t["candidate_rank"] == 1 and t["label"] == "Pb5I4"
        assert t["sigma_p05"] <= t["sigma_p95"]
    # ordering: observed before predicted
    sources = [t["source"] for t in table]
    assert sources == sorted(sources, key=lambda s: s != "observed")
    assert dw.sigma_lookup(table, "Pb5I4").keys() == {(t["element_a"], t["element_b"]) for t in pred}


def test_single_file_labels_and_missing_pairs_get_ridge_rows(tmp_path, reference_estimator):
    rng = np.random.default_rng(2)
    lib = chain_library(tmp_path, rng)
    # a label with one file only: no ensemble, a ridge row for its pairs
    write_xyz(lib / "Pb2I2" / "only.xyz", ["Pb", "I", "Pb", "I"], [[0, 0, 0], [3, 0, 0], [6, 0, 0], [9, 0, 0]])
    library = read_library(lib, RULES)
    rows, _ = build_training_rows(library, [])
    table = dw.debye_waller_table(library, rows, [], library.types, n_bootstrap=5)
    ridge = [t for t in table if t["label"] == "Pb2I2"]
    assert ridge and all(t["method"] == "ridge" and t["source"] == "observed" for t in ridge)


def test_predict_clusters_debye_waller_through_saxs(tmp_path):
    from clusterdynamicsml.predict.core import predict_clusters
    from clusterdynamicsml.saxs import debye as saxs

    rng = np.random.default_rng(4)
    library = read_library(chain_library(tmp_path, rng), RULES)
    table = [dict(label=o.label, mean_count_per_frame=1.0 / o.node_count, occupancy_fraction=0.5, mean_lifetime_fs=20.0) for o in library]
    res = predict_clusters(library, table, RULES, [5], timestep_fs=10.0, n_bootstrap=10, validate=False)
    sources = {(t["source"], t["method"]) for t in res.debye_waller}
    assert ("observed", "ensemble") in sources and ("predicted", "ridge") in sources
    # the ensemble rows equal a direct call of the estimator
    ensemble = next(t for t in res.debye_waller if t["label"] == "Pb3I2" and t["element_a"] == "I" and t["element_b"] == "Pb")
    structures = library.structures("Pb3I2")
    assert ensemble["sigma"] == pytest.approx(saxs.rank_aligned_sigma(structures, ("I", "Pb"), 1.15 * 3.36))


def trend_library(tmp_path, spread_of_n, files=4):
    """Pb_n I_(n-1) chains whose every Pb-I bond in file k has length 3 + s_n z_k, with z_k of
    zero mean and unit population std: the rank-aligned I-Pb sigma of label n is exactly s_n."""
    lib = tmp_path / "trend"
    z = np.arange(files) - (files - 1) / 2
    z = z / z.std()
    for n in (2, 3, 4):
        label = f"Pb{n}I" + ("" if n == 2 else str(n - 1))
        symbols = ["Pb" if i % 2 == 0 else "I" for i in range(2 * n - 1)]
        for k in range(files):
            b = 3.0 + spread_of_n(n) * z[k]
            write_xyz(lib / label / f"f{k}.xyz", symbols, [[i * b, 0, 0] for i in range(2 * n - 1)])
    return lib


def _table_for_trend(tmp_path, spread_of_n):
    library = read_library(trend_library(tmp_path, spread_of_n), RULES)
    rows, _ = build_training_rows(library, [])
    cands = [Candidate(n, f"Pb{n}I{n - 1}", {"Pb": n, "I": n - 1}, "trend", rank=1) for n in (5, 6, 7)]
    return dw.debye_waller_table(library, rows, cands, library.types, n_bootstrap=20, seed=0)


def _assert_predictions_within_observed_range(table):
    observed = {}
    for t in table:
        if t["method"] == "ensemble":
            observed.setdefault((t["element_a"], t["element_b"]), []).append(t["sigma"])
    ridge = [t for t in table if t["method"] == "ridge"]
    assert ridge
    for t in ridge:
        vals = observed[(t["element_a"], t["element_b"])]
        assert min(vals) - 1e-15 <= t["sigma"] <= max(vals) + 1e-15, t
        assert (t["sigma_min"], t["sigma_max"]) == (min(vals), max(vals))
        assert t["b_factor"] == pytest.approx(8 * math.pi**2 * t["sigma"] ** 2)
        assert t["clipped"] == (t["sigma"] != t["sigma_model"])
        for key in ("sigma_p05", "sigma_p95"):
            assert min(vals) - 1e-15 <= t[key] <= max(vals) + 1e-15


def test_growing_sigma_follows_trend_within_observed_range(tmp_path, reference_estimator):
    table = _table_for_trend(tmp_path, lambda n: 0.02 * n)
    ens = {t["label"]: t["sigma"] for t in table if t["method"] == "ensemble" and (t["element_a"], t["element_b"]) == ("I", "Pb")}
    assert ens == pytest.approx({"Pb2I": 0.04, "Pb3I2": 0.06, "Pb4I3": 0.08}, rel=1e-4)
    _assert_predictions_within_observed_range(table)
    pred = sorted((t["node_count"], t) for t in table if t["source"] == "predicted" and (t["element_a"], t["element_b"]) == ("I", "Pb"))
    sig = [t["sigma"] for _, t in pred]
    assert sig == sorted(sig)                         # follows the rising trend ...
    assert sig[-1] == pytest.approx(0.08, rel=1e-4)          # ... up to the largest observed value
    assert pred[-1][1]["clipped"] and pred[-1][1]["sigma_model"] > 0.08


def test_falling_sigma_never_extrapolates_to_zero_damping(tmp_path, reference_estimator):
    # 0.12, 0.08, 0.04 A for n = 2, 3, 4: the ridge reaches 0 at n = 5 and below after
    table = _table_for_trend(tmp_path, lambda n: 0.2 - 0.04 * n)
    _assert_predictions_within_observed_range(table)
    pred = [t for t in table if t["source"] == "predicted" and (t["element_a"], t["element_b"]) == ("I", "Pb")]
    assert len(pred) == 3
    for t in pred:
        assert t["sigma"] == pytest.approx(0.04, rel=1e-4) and t["sigma"] > 0
        assert t["clipped"] and t["sigma_model"] < 0.04


def test_chain_table_predictions_within_observed_range(tmp_path, reference_estimator):
    rng = np.random.default_rng(11)
    library = read_library(chain_library(tmp_path, rng), RULES)
    rows, _ = build_training_rows(library, [])
    cands = [Candidate(n, f"Pb{n}I{n - 1}", {"Pb": n, "I": n - 1}, "trend", rank=1) for n in (5, 8, 12)]
    _assert_predictions_within_observed_range(dw.debye_waller_table(library, rows, cands, library.types, n_bootstrap=10, seed=0))
