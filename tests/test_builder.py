"""Geometry-guided structure builder (ref §4.8) and its writers (ref §4.10)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from clusterdynamicsml.build.geomstats import element_pair_key, geometry_statistics
from clusterdynamicsml.build.grow import (
    BuiltStructure,
    ShellTemplate,
    build_predicted_structures,
    build_structure,
    built_structure_filename,
    place_shell_molecules,
    select_representative,
    write_built_structure,
)
from test_geomstats import CUTOFFS, octahedral_chain, pbio_library, read_pdb


@pytest.fixture(scope="module")
def stats():
    return geometry_statistics(pbio_library(200, seed=1), ["Pb"], ["I"], ["O"], CUTOFFS)


@pytest.fixture(scope="module")
def representative():
    return octahedral_chain(4, np.random.default_rng(9))


def all_pair_distances(pos):
    d = np.sqrt(((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1))
    iu = np.triu_indices(len(pos), 1)
    return iu, d[iu]


def assert_no_short_contacts(b: BuiltStructure, stats):
    """Brute force, independent of the quality report: every pair >= learned minimum."""
    (ii, jj), d = all_pair_distances(b.positions)
    floor = np.array([stats.min_distance(b.symbols[i], b.symbols[j]) for i, j in zip(ii, jj)])
    bad = np.nonzero(d < floor - 1e-9)[0]
    assert bad.size == 0, [(b.symbols[ii[k]], b.symbols[jj[k]], d[k], floor[k]) for k in bad[:5]]


COMPOSITIONS = [
    {"Pb": 1, "I": 4, "O": 2},
    {"Pb": 2, "I": 7, "O": 4},
    {"Pb": 3, "I": 10, "O": 6},
    {"Pb": 4, "I": 8, "O": 8},
    {"Pb": 16, "I": 32, "O": 32},
]


@pytest.mark.parametrize("counts", COMPOSITIONS, ids=lambda c: "".join(f"{k}{v}" for k, v in c.items()))
def test_composition_contacts_and_bond_lengths(stats, counts):
    b = build_structure(counts, stats, seed=0)
    assert b.counts == dict(sorted(counts.items()))
    assert b.positions.shape == (sum(counts.values()), 3) and np.all(np.isfinite(b.positions))
    assert np.allclose(b.positions.mean(axis=0), 0.0, atol=1e-9)
    assert_no_short_contacts(b, stats)
    q = b.quality
    assert q.min_distance_ratio >= 1.0 - 1e-9 and q.relaxed_atoms == 0
    (_, _), d = all_pair_distances(b.positions)
    assert q.shortest_contact == pytest.approx(d.min())
    for key in ("I-Pb", "O-Pb"):
        assert q.bond_length_medians[key] == pytest.approx(stats.bond_length_medians[key], rel=0.03), key
    if counts["Pb"] > 1:
        assert q.bond_length_medians["Pb-Pb"] == pytest.approx(stats.node_bond_length, rel=0.05)
    assert q.max_abs_bond_deviation < 0.1 * stats.node_bond_length
    # every non-node atom is bonded to as many nodes as learned
    assert all(abs(v) <= 0.5 for v in q.non_node_node_coordination_deviations.values())
    assert b.label == "".join(f"{e}{counts[e]}" if counts[e] > 1 else e for e in ("Pb", "I", "O"))
    assert b.atom_types == [stats.atom_type(s) for s in b.symbols]


@pytest.mark.parametrize("counts", COMPOSITIONS[1:3], ids=["Pb2I7O4", "Pb3I10O6"])
def test_coordination_near_learned_medians(stats, counts):
    # compositions like those of the library: node coordination within one of the medians
    b = build_structure(counts, stats, seed=3)
    for t, dev in b.quality.node_coordination_deviations.items():
        assert abs(dev) <= 1.0, (t, dev)
    assert abs(b.quality.atom_coordination_deviations["node>linker"]) <= 1.0
    assert abs(b.quality.atom_coordination_deviations["node>shell"]) <= 1.0


def test_octahedral_sites_are_found(stats):
    # one Pb with six ligands: the learned 90 degree cis angles must be reproduced
    b = build_structure({"Pb": 1, "I": 4, "O": 2}, stats, seed=1)
    pb = b.positions[0]
    v = b.positions[1:] - pb
    v /= np.linalg.norm(v, axis=1)[:, None]
    ang = np.degrees(np.arccos(np.clip(v @ v.T, -1, 1)))[np.triu_indices(6, 1)]
    assert np.sum(np.abs(ang - 90.0) < 5.0) == 12
    assert np.sum(np.abs(ang - 180.0) < 5.0) == 3


def test_deterministic_for_fixed_seed(stats, representative):
    a = build_structure({"Pb": 5, "I": 12, "O": 8}, stats, representative=representative, seed=7)
    b = build_structure({"Pb": 5, "I": 12, "O": 8}, stats, representative=representative, seed=7)
    assert a.symbols == b.symbols
    assert np.array_equal(a.positions, b.positions)
    c = build_structure({"Pb": 5, "I": 12, "O": 8}, stats, representative=representative, seed=8)
    assert c.counts == a.counts
    assert_no_short_contacts(c, stats)


def test_representative_nodes_seed_the_build(stats, representative):
    syms, pos = representative
    rep_nodes = pos[[k for k, s in enumerate(syms) if s == "Pb"]]
    b = build_structure({"Pb": 6, "I": 14, "O": 8}, stats, representative=representative, seed=0)
    built_nodes = b.positions[:4]
    assert b.symbols[:6] == ["Pb"] * 6
    # the first four nodes are the representative's, rigidly translated
    np.testing.assert_allclose(built_nodes - built_nodes.mean(0), rep_nodes - rep_nodes.mean(0), atol=1e-9)
    assert_no_short_contacts(b, stats)


def test_bridging_atoms_sit_between_two_nodes():
    # a library of Pb2 dimers bridged by two I: I is learned as a bridge (2 nodes)
    rng = np.random.default_rng(0)
    lib = []
    for _ in range(20):
        pb = np.array([[0, 0, 0], [4.5, 0, 0]])
        i = np.array([[2.25, 2.25, 0], [2.25, -2.25, 0]])
        pos = np.vstack([pb, i]) + rng.normal(0, 0.02, (4, 3))
        lib.append((["Pb", "Pb", "I", "I"], pos))
    st = geometry_statistics(lib, ["Pb"], ["I"], pair_cutoffs={("Pb", "I"): 3.5})
    assert st.non_node_node_coordination_medians["I"] == 2.0
    b = build_structure({"Pb": 3, "I": 4}, st, seed=0)
    assert_no_short_contacts(b, st)
    pb = b.positions[np.array(b.symbols) == "Pb"]
    for p in b.positions[np.array(b.symbols) == "I"]:
        d = np.sort(np.linalg.norm(pb - p, axis=1))
        assert d[1] < 1.15 * 3.5, "every I bridges two Pb"
    assert abs(b.quality.non_node_node_coordination_deviations["I"]) <= 0.5


def test_big_cluster_is_fast_and_valid(stats):
    t = time.perf_counter()
    b = build_structure({"Pb": 40, "I": 80, "O": 40}, stats, seed=0)
    elapsed = time.perf_counter() - t
    assert b.n_atoms == 160
    assert_no_short_contacts(b, stats)
    assert elapsed < 5.0  # ~0.3 s on one core; loose bound for a loaded CI machine


# ---- input validation ---------------------------------------------------------------------

def test_bad_input(stats):
    with pytest.raises(ValueError, match="unknown element 'Cs'"):
        build_structure({"Pb": 1, "Cs": 1}, stats)
    with pytest.raises(ValueError, match="without node atoms"):
        build_structure({"I": 3, "O": 1}, stats)
    with pytest.raises(ValueError, match="without node atoms"):
        build_structure({"Pb": 0, "I": 3}, stats)
    with pytest.raises(ValueError, match="non-negative integer"):
        build_structure({"Pb": 1, "I": -1}, stats)
    with pytest.raises(ValueError, match="non-negative integer"):
        build_structure({"Pb": 1.5}, stats)
    with pytest.raises(ValueError, match="mapping"):
        build_structure([("Pb", 1)], stats)
    with pytest.raises(ValueError, match="GeometryStatistics"):
        build_structure({"Pb": 1}, {"node_bond_length": 3})
    with pytest.raises(ValueError, match="seed must be an integer"):
        build_structure({"Pb": 1}, stats, seed=1.5)
    with pytest.raises(ValueError, match="representative"):
        build_structure({"Pb": 1}, stats, representative=42)


def test_counts_that_cannot_be_bonded():
    # N is a shell element of the rules but never seen and has no cutoff to the nodes
    lib = pbio_library(10, seed=2)
    st = geometry_statistics(lib, ["Pb"], ["I"], ["O", "N"], CUTOFFS)
    with pytest.raises(ValueError, match="N cannot be bonded to the nodes"):
        build_structure({"Pb": 1, "N": 1}, st)
    # far too many ligands for one node at the learned distances
    with pytest.raises(ValueError, match="cannot place I"):
        build_structure({"Pb": 1, "I": 40}, st)


# ---- writers ----------------------------------------------------------------------------

def test_filename_and_xyz(tmp_path, stats):
    assert built_structure_filename("Pb4I9(O)6", 4, 2) == "04_rank02_Pb4I9_O_6.xyz"
    b = build_structure({"Pb": 4, "I": 9, "O": 6}, stats, seed=0)
    path = write_built_structure(tmp_path, b, target_node_count=4, rank=3, source_label="Pb3I8O6")
    assert path.name == "04_rank03_Pb4I9O6.xyz"
    lines = path.read_text().splitlines()
    assert lines[0] == "19"
    assert lines[1] == "label=Pb4I9O6 target_node_count=4 rank=3 source_label=Pb3I8O6"
    rows = [ln.split() for ln in lines[2:]]
    assert [r[0] for r in rows] == b.symbols
    assert all(len(v.split(".")[1]) == 8 for r in rows for v in r[1:])
    np.testing.assert_allclose(np.array([[float(v) for v in r[1:]] for r in rows]), b.positions, atol=1e-8)
    explicit = write_built_structure(tmp_path / "sub" / "x.xyz", b)
    assert explicit.read_text().splitlines()[1].startswith("label=Pb4I9O6 target_node_count=4 rank=1")
    with pytest.raises(ValueError, match="fmt"):
        write_built_structure(tmp_path, b, fmt="cif")
    with pytest.raises(ValueError, match="rank"):
        write_built_structure(tmp_path, b, rank=-1)


@pytest.mark.shared_data
def test_pdb_with_full_dmf_molecules(tmp_path, stats, shared_data):
    dmf = shared_data / "saxshell_reference_structures" / "dmf.pdb"
    b = build_structure({"Pb": 4, "I": 9, "O": 6}, stats, seed=0)
    path = write_built_structure(tmp_path, b, rank=1, shell_templates={"O": dmf})
    assert path.name == "04_rank01_Pb4I9O6.pdb"
    text = path.read_text().splitlines()
    assert text[0] == "REMARK   label=Pb4I9O6 target_node_count=4 rank=1 source_label=Pb4I9O6"
    atoms = [ln for ln in text if ln.startswith("HETATM")]
    assert len(atoms) == 4 + 9 + 6 * 12
    elements = [ln[76:78].strip().capitalize() for ln in atoms]
    assert elements.count("H") == 6 * 7 and elements.count("Pb") == 4 and elements.count("O") == 6
    xyz = np.array([[float(ln[30:38]), float(ln[38:46]), float(ln[46:54])] for ln in atoms])
    resid = np.array([int(ln[22:26]) for ln in atoms])
    assert len(set(resid.tolist())) == 4 + 9 + 6
    # each DMF is rigid (internal distances of the template) and keeps its O on the built O
    tmpl = ShellTemplate.from_pdb(dmf, "O")
    d_t = np.linalg.norm(tmpl.positions[:, None] - tmpl.positions[None], axis=-1)
    o_built = b.positions[np.array(b.symbols) == "O"]
    for r in sorted(set(resid.tolist())):
        sel = resid == r
        if sel.sum() == 12:
            m = xyz[sel]
            np.testing.assert_allclose(np.linalg.norm(m[:, None] - m[None], axis=-1), d_t, atol=0.01)
            assert np.min(np.linalg.norm(o_built - m[0], axis=1)) < 0.01
    # solvent atoms keep clear of other residues
    other = resid[:, None] != resid[None, :]
    dd = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    assert dd[other].min() > 1.0
    residues = place_shell_molecules(b, {"O": tmpl})
    assert sum(len(r[1]) for r in residues) == len(atoms)


@pytest.mark.shared_data
def test_real_pbi3_fragment_build(shared_data):
    d = shared_data / "saxshell_reference_structures"
    lib = [read_pdb(d / f"{n}.pdb") for n in ("pbi3", "cspbi2", "cspbi3")]
    st = geometry_statistics(lib, ["Pb"], ["I"], ["Cs"], {("Pb", "I"): 3.36, ("Pb", "Cs"): 4.5})
    rep = lib[0]
    b = build_structure({"Pb": 1, "I": 3}, st, representative=rep, seed=0)
    assert b.counts == {"I": 3, "Pb": 1}
    assert_no_short_contacts(b, st)
    assert b.quality.bond_length_medians["I-Pb"] == pytest.approx(st.bond_length_medians["I-Pb"], rel=0.02)
    assert b.quality.node_coordination_deviations["linker"] == 0
    # a larger PbnI(2n+1) chain from the same small library
    big = build_structure({"Pb": 3, "I": 7, "Cs": 1}, st, representative=rep, seed=0)
    assert_no_short_contacts(big, st)
    assert big.quality.bond_length_medians["I-Pb"] == pytest.approx(st.bond_length_medians["I-Pb"], rel=0.05)
    assert element_pair_key("Pb", "Cs") in st.pair_cutoffs


def test_select_representative_and_build_predicted_structures(tmp_path, stats):
    lib = pbio_library(40, seed=6)
    rep = select_representative(lib, {"Pb": 9, "I": 20, "O": 10}, stats)
    n_pb = [s.count("Pb") for s, _ in lib if set(s) == {"Pb", "I", "O"}]
    assert rep is not None and rep[0].count("Pb") == max(n_pb)
    assert select_representative(lib, {"Pb": 2, "Cs": 1}, stats) is None

    class Cand:
        def __init__(self, counts, label, node_count, rank):
            self.counts, self.label, self.node_count, self.rank = counts, label, node_count, rank
            self.source_label = "Pb4I9O6"

    cands = [Cand({"Pb": 6, "I": 13, "O": 9}, "Pb6I13O9", 6, 1),
             {"counts": {"Pb": 6, "I": 12, "O": 10}, "label": "Pb6I12O10", "node_count": 6, "rank": 2}]
    res = build_predicted_structures(cands, stats, tmp_path, library=lib)
    assert [p.name for _, _, p in res] == ["06_rank01_Pb6I13O9.xyz", "06_rank02_Pb6I12O10.xyz"]
    assert res[0][2].read_text().splitlines()[1] == "label=Pb6I13O9 target_node_count=6 rank=1 source_label=Pb4I9O6"
    for _, built, _ in res:
        assert_no_short_contacts(built, stats)
    with pytest.raises(ValueError, match="no counts"):
        build_predicted_structures([{"label": "x"}], stats)


def test_relaxed_mode_builds_crowded_compositions(stats):
    with pytest.raises(ValueError, match="too crowded"):
        build_structure({"Pb": 4, "I": 15, "O": 11}, stats, seed=0)
    b = build_structure({"Pb": 4, "I": 15, "O": 11}, stats, seed=0, on_crowding="relax")
    assert b.counts == {"I": 15, "O": 11, "Pb": 4}
    assert b.quality.relaxed_atoms > 0
    assert b.quality.min_distance_ratio > 0.5  # pushed outwards rather than overlapped
    with pytest.warns(RuntimeWarning, match="too crowded"):
        res = build_predicted_structures(
            [{"counts": {"Pb": 1, "I": 30}, "label": "PbI30", "node_count": 1, "rank": 1}], stats)
    assert res[0][1].n_atoms == 31 and res[0][1].quality.relaxed_atoms > 0
    with pytest.raises(ValueError, match="on_crowding"):
        build_structure({"Pb": 1}, stats, on_crowding="ignore")


@pytest.mark.parametrize("seed", range(8))
def test_random_libraries_and_compositions(seed):
    """Property: for any library and composition the builder either returns the exact composition
    with no contact below the learned minima, or raises the documented ValueError."""
    rng = np.random.default_rng(100 + seed)
    lib = pbio_library(int(rng.integers(3, 30)), seed=seed, max_pb=int(rng.integers(1, 6)),
                       jitter=float(rng.uniform(0, 0.15)))
    st = geometry_statistics(lib, ["Pb"], ["I"], ["O"], CUTOFFS)
    n_pb = int(rng.integers(1, 12))
    counts = {"Pb": n_pb, "I": int(rng.integers(0, 4 * n_pb + 1)), "O": int(rng.integers(0, 3 * n_pb + 1))}
    try:
        b = build_structure(counts, st, seed=seed, representative=lib[0] if seed % 2 else None)
    except ValueError as exc:
        assert "too crowded" in str(exc)
        b = build_structure(counts, st, seed=seed, on_crowding="relax")
        assert b.quality.relaxed_atoms > 0
    else:
        assert_no_short_contacts(b, st)
    assert b.counts == {k: v for k, v in sorted(counts.items()) if v}
