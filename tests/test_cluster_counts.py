"""The C++ per-frame cluster counts (``frame_compositions`` / ``summarize_frame``) against the
numpy path they replaced (``_summarize_frame_python``) and against ``extract_clusters``: the
same labels, counts, percolation flags and order, bit for bit, on every shared data set and on
synthetic frames that exercise shells, shell levels, shared shells and triclinic boxes."""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml import _core
from clusterdynamicsml.clusters.extract import (
    ClusterRules,
    _summarize_frame_python,
    extract_clusters,
    frame_compositions,
    summarize_frame,
)
from clusterdynamicsml.geometry.box import Box
from clusterdynamicsml.io.frames import Frame, read_frames


def _same(frame, rules, num_threads=None):
    new = summarize_frame(frame, rules, num_threads)
    old = _summarize_frame_python(frame, rules, num_threads)
    assert new == old
    assert list(new.counts) == list(old.counts) and list(new.percolating) == list(old.percolating)
    return new


def _check_against_extract(frame, rules):
    comp = frame_compositions(frame, rules)
    clusters = extract_clusters(frame, rules)
    assert comp.labels() == [c.label for c in clusters]
    assert comp.percolating.tolist() == [c.percolating for c in clusters]
    for k, c in enumerate(clusters):
        assert np.array_equal(np.flatnonzero(comp.cluster_of == k), np.sort(c.core_indices))
    return comp


# shared data sets: (path, rules, frames to check)
CASES = [
    ("nacl_molten_1400K_zincware/NaCl_1400K_0.extxyz",
     dict(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6}), slice(0, 500, 7)),
    ("nacl_molten_1400K_zincware/NaCl_1400K_0.extxyz",  # percolating at 3.0 A
     dict(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 3.0}), slice(0, 500, 25)),
    ("nacl_melt_lammps_1450K/nacl_melt_1000_1450K.extxyz",
     dict(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6}), slice(0, 501, 50)),
    ("nacl_melt_lammps_1450K/nacl_melt_1000_1450K.extxyz",
     dict(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 3.4}), slice(0, 501, 100)),
    ("kcl_dlpoly_mdanalysistests/frames_xyz",
     dict(node=["K"], linker=["Cl"], shell=[], cutoffs={("K", "Cl"): 3.6}), slice(None)),
    ("water_spce_lammps_mdanalysistests/frames_xyz",
     dict(node=["O"], linker=["H"], shell=[], cutoffs={("O", "H"): 2.4}), slice(None)),
    ("water_spce_lammps_mdanalysistests/frames_xyz",
     dict(node=["O"], linker=["H"], shell=[], cutoffs={("O", "H"): 1.2}), slice(None)),
    ("lipf6_bn_fec_lammps/frames_xyz_wrap",
     dict(node=["Li"], linker=["P"], shell=["N", "O"], cutoffs={("Li", "P"): 3.7, ("Li", "N"): 2.6, ("Li", "O"): 2.6},
          shells_in_label=True), slice(None)),
    ("lipf6_bn_fec_lammps/frames_xyz_unwrap",
     dict(node=["Li"], linker=["P"], shell=["N", "O"],
          cutoffs={("Li", "P"): 3.7, ("Li", "N"): {0: 2.6, 1: 4.0}, ("Li", "O"): {0: 2.6, 1: 4.5}},
          shell_levels=[1], shells_in_label=True), slice(None)),
    ("lipf6_bn_fec_lammps/frames_xyz_wrap",
     dict(node=["Li"], linker=["P"], shell=["N", "O"],
          cutoffs={("Li", "P"): 3.7, ("Li", "N"): {0: 2.6, 1: 4.0}, ("Li", "O"): {0: 2.6, 1: 4.5}},
          shell_levels=[1], shared_shells=True, shells_in_label=True), slice(None)),
    ("lipf6_bn_fec_lammps/frames_pdb_wrap",
     dict(node=["Li"], linker=["P"], shell=["O:FEC", "N"], cutoffs={("Li", "P"): 3.7, ("Li", "O"): 2.6, ("Li", "N"): 2.6},
          shells_in_label=True), slice(None)),
    ("lipf6_bn_fec_lammps/frames_pdb_wrap",  # whole shell molecules: the numpy path, same result
     dict(node=["Li"], linker=["P"], shell=["O", "N"], cutoffs={("Li", "P"): 3.7, ("Li", "O"): 2.6, ("Li", "N"): 2.6},
          shells_in_label=True, shell_molecules=True), slice(None)),
]


@pytest.mark.shared_data
@pytest.mark.parametrize("case", range(len(CASES)))
def test_cpp_counts_match_numpy_path_on_shared_data(shared_data, case):
    rel, rules_kw, sel = CASES[case]
    rules = ClusterRules(**rules_kw)
    frames = read_frames(shared_data / rel)[sel]
    assert len(frames) > 0
    seen_perc = 0
    for frame in frames:
        s = _same(frame, rules)
        seen_perc += s.n_percolating
        if frame.index % 3 == 0:
            _check_against_extract(frame, rules)
    if "kcl" in rel:  # the known answer: one K108Cl108 network spans the box in every frame
        assert seen_perc == len(frames)
        assert dict(summarize_frame(frames[0], rules).percolating) == {"K108Cl108": 1}


def _random_frame(seed, n=1500, triclinic=False, shells=True):
    rng = np.random.default_rng(seed)
    if triclinic:
        box = Box.from_matrix(np.array([[24.0, 0.0, 0.0], [7.0, 22.0, 0.0], [-5.0, 6.0, 23.0]]))
    else:
        box = Box([23.0, 24.0, 25.0])
    frac = rng.uniform(-0.2, 1.2, size=(n, 3))  # coordinates outside the cell too
    pos = frac @ box.matrix
    els = np.array(["Pb", "I", "O", "Cs", "C"] if shells else ["Pb", "I", "Cs"])
    symbols = els[rng.integers(0, els.size, size=n)].tolist()
    return Frame(index=0, source_index=0, time_fs=0.0, symbols=symbols, positions=pos, box=box)


RULE_VARIANTS = [
    dict(node=["Pb"], linker=["I"], shell=["O"], cutoffs={("Pb", "I"): 3.4, ("Pb", "O"): 3.0}),
    dict(node=["Pb"], linker=["I"], shell=["O"], cutoffs={("Pb", "I"): 3.4, ("Pb", "O"): 3.0}, shells_in_label=True),
    dict(node=["Pb", "Cs"], linker=["I"], shell=["O", "C"],
         cutoffs={("Pb", "I"): 3.4, ("Cs", "I"): 3.9, ("I", "I"): 2.5, ("Pb", "O"): {0: 2.6, 1: 4.2, 2: 5.0},
                  ("Pb", "C"): {0: 2.2, 2: 4.0}, ("I", "O"): 2.1},
         shell_levels=[1, 2], shells_in_label=True),
    dict(node=["Pb", "Cs"], linker=["I"], shell=["O", "C"],
         cutoffs={("Pb", "I"): 3.4, ("Cs", "I"): 3.9, ("Pb", "O"): {0: 2.6, 1: 4.2, 2: 5.0}, ("Pb", "C"): {0: 2.2, 2: 4.0}},
         shell_levels=[1, 2], shared_shells=True, shells_in_label=True),
    dict(node=["Pb"], linker=["I"], shell=[], cutoffs={("Pb", "I"): 4.6}),  # dense: percolates
    dict(node=["Pb"], linker=["I"], shell=[], cutoffs={("I", "I"): 3.0, ("Pb", "I"): 2.0}),  # linker-only clusters
    dict(node=["Pb"], linker=["I"], shell=["O"], cutoffs={("Pb", "I"): 3.4, ("Pb", "O"): 3.0}, pbc=False),
]


@pytest.mark.parametrize("variant", range(len(RULE_VARIANTS)))
@pytest.mark.parametrize("triclinic", [False, True])
def test_cpp_counts_match_numpy_path_synthetic(variant, triclinic):
    rules = ClusterRules(**RULE_VARIANTS[variant])
    perc = 0
    for seed in range(3):
        frame = _random_frame(seed, triclinic=triclinic)
        perc += _same(frame, rules).n_percolating
        _check_against_extract(frame, rules)
    if variant == 4:
        assert perc == 3


def test_same_result_for_any_thread_count():
    rules = ClusterRules(**RULE_VARIANTS[3])
    frame = _random_frame(7, n=30000)  # above the single-thread threshold of the search
    ref = frame_compositions(frame, rules, num_threads=1)
    for t in (2, 3):
        got = frame_compositions(frame, rules, num_threads=t)
        assert np.array_equal(got.counts, ref.counts)
        assert np.array_equal(got.percolating, ref.percolating)
        assert np.array_equal(got.cluster_of, ref.cluster_of)


def test_known_answer_small_frame():
    # a Pb4I4 ring closed through the periodic box along x, a PbI3 with one O shell, a lone I
    box = Box([20.0, 20.0, 20.0])
    ring = [[x, 5.0, 5.0] for x in (1.0, 3.5, 6.0, 8.5, 11.0, 13.5, 16.0, 18.5)]  # 18.5 -> 21 = 1: 2.5 A
    pos = np.array(ring + [[5.0, 15.0, 15.0], [8.0, 15.0, 15.0], [5.0, 18.0, 15.0], [5.0, 15.0, 18.0],
                           [2.5, 15.0, 15.0], [15.0, 15.0, 5.0]])
    symbols = ["Pb", "I"] * 4 + ["Pb", "I", "I", "I", "O", "I"]
    rules = ClusterRules(node=["Pb"], linker=["I"], shell=["O"], cutoffs={("Pb", "I"): 3.1, ("Pb", "O"): 2.6},
                         shells_in_label=True)
    frame = Frame(index=0, source_index=0, time_fs=0.0, symbols=symbols, positions=pos, box=box)
    comp = frame_compositions(frame, rules)
    assert comp.labels() == ["Pb4I4", "PbI3O", "I"]
    assert comp.percolating.tolist() == [True, False, False]
    assert comp.cluster_of.tolist() == [0] * 8 + [1] * 4 + [-1, 2]
    s = summarize_frame(frame, rules)
    assert dict(s.counts) == {"PbI3O": 1, "I": 1} and dict(s.percolating) == {"Pb4I4": 1}
    assert s.largest_size == 8 and s.n_clusters == 3
    # the same ring in an open box is a finite chain
    open_rules = ClusterRules(**{**rules.to_dict(), "pbc": False})
    assert dict(summarize_frame(frame, open_rules).counts) == {"Pb4I4": 1, "PbI3O": 1, "I": 1}


def test_kernel_rejects_bad_input():
    pos = np.zeros((3, 3))
    cm = np.zeros((3, 3))
    with pytest.raises(ValueError, match="type"):
        _core.cluster_counts(pos, np.array([0, 5, -1], dtype=np.int32), 1, cm, [], False, False, False, None, 1)
    with pytest.raises(ValueError, match="shape"):
        _core.cluster_counts(pos, np.array([0, 0, -1], dtype=np.int32), 1, np.zeros((2, 2)), [], False, False,
                             False, None, 1)
    with pytest.raises(ValueError, match="non-finite"):
        bad = pos.copy()
        bad[1, 2] = np.nan
        _core.cluster_counts(bad, np.array([0, 1, 1], dtype=np.int32), 1, np.full((3, 3), 1.0), [], False, False,
                             False, None, 1)
    with pytest.raises(ValueError, match="half the smallest box height"):
        _core.cluster_counts(pos, np.array([0, 1, 1], dtype=np.int32), 1, np.full((3, 3), 6.0), [], False, False,
                             False, np.eye(3) * 10.0, 1)
