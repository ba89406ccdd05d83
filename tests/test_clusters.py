"""Cluster extraction: rules, labels, brute-force comparison, PBC, percolation, real data."""
from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clusterdynamicsml as cdml
from _cluster_reference import reference_clusters
from clusterdynamicsml.clusters.extract import (
    ELEMENTS,
    ClusterRules,
    count_labels,
    extract_clusters,
    format_label,
    parse_label,
    summarize_frame,
)
from clusterdynamicsml.geometry.box import Box
from clusterdynamicsml.io.frames import Frame

#: the home case, spelled out (ClusterRules has no default chemistry)
HOME = dict(node=["Pb"], linker=["I"], shell=["O"], cutoffs={("Pb", "I"): 3.36, ("Pb", "O"): 3.36})
PBIO = ClusterRules(**HOME)


def make_frame(symbols, positions, box=None, index=0, **kw):
    return Frame(index=index, source_index=index, time_fs=0.5 * index, symbols=list(symbols),
                 positions=np.asarray(positions, dtype=np.float64), box=Box.coerce(box), **kw)


# --------------------------------------------------------------------------- rules


def test_rules_have_no_default_chemistry():
    with pytest.raises(ValueError, match="ClusterRules needs node and cutoffs: there is no default chemistry"):
        ClusterRules()
    with pytest.raises(ValueError, match="needs cutoffs"):
        ClusterRules(node=["Pb"], linker=["I"])
    with pytest.raises(ValueError, match="needs node"):
        ClusterRules(cutoffs={("Pb", "I"): 3.36})
    with pytest.raises(ValueError, match="needs node and cutoffs"):
        ClusterRules.from_dict({})
    with pytest.raises(ValueError, match="rules must be a ClusterRules"):
        extract_clusters(make_frame(["Pb"], [[0, 0, 0]], [10, 10, 10]), None)
    assert ClusterRules(node=["Pb"], default_cutoff=3.0).cutoff("Pb", "Pb") == 3.0


def test_home_case_rules():
    r = ClusterRules(**HOME)
    assert r.node == (("Pb", None),) and r.linker == (("I", None),) and r.shell == (("O", None),)
    assert r.cutoffs == {("Pb", "I"): {0: 3.36}, ("Pb", "O"): {0: 3.36}}
    assert r.cutoff("I", "Pb") == 3.36 and r.cutoff("Pb", "I", 0) == 3.36
    assert r.cutoff("Pb", "Pb") is None and r.cutoff("Pb", "I", 1) is None
    assert r.pbc and not r.shared_shells and not r.shells_in_label and r.shell_levels == ()


def test_rules_normalise_and_are_frozen_hashable_picklable():
    import pickle

    r = ClusterRules(node="pb", linker=["I"], shell=[("O", "dmf")],
                     cutoffs={"I-Pb": 3.2, ("O", "Pb"): {"0": 3.0, 1: 5.0}}, shell_levels=[1])
    assert r.node == (("Pb", None),) and r.shell == (("O", "DMF"),)
    assert r.cutoffs == {("Pb", "I"): {0: 3.2}, ("Pb", "O"): {0: 3.0, 1: 5.0}}
    with pytest.raises(Exception):
        r.pbc = False
    assert hash(r) == hash(ClusterRules.from_dict(r.to_dict()))
    assert pickle.loads(pickle.dumps(r)) == r


def test_rules_element_views_for_other_stages():
    r = ClusterRules(node=["Pb"], linker=["I", "Br"], shell=[("O", "DMF"), "N"],
                     cutoffs={("Pb", "I"): 3.36, ("Pb", "O"): {0: 0.0, 1: 5.0}, ("Pb", "N"): {0: 2.9, 1: 4.5}},
                     shell_levels=[1])
    assert r.node_elements == ("Pb",) and r.linker_elements == ("I", "Br") and r.shell_elements == ("O", "N")
    assert r.pair_cutoffs == {("Pb", "I"): 3.36, ("Pb", "N"): 2.9, ("Pb", "O"): 5.0}
    assert r.label_order() == ("Pb", "Br", "I", "N", "O")


def test_rules_dict_round_trip_and_reference_forms():
    r = ClusterRules(node=["Pb"], linker=["I"], shell=["O"], cutoffs={("Pb", "I"): 3.36, ("Pb", "O"): {0: 3.36, 2: 5.5}},
                     default_cutoff=None, shell_levels=(2,), shared_shells=True, shells_in_label=True)
    d = r.to_dict()
    assert d["cutoffs"] == {"Pb-I": 3.36, "Pb-O": {"0": 3.36, "2": 5.5}}
    assert None not in d.values()  # TOML has no null
    assert ClusterRules.from_dict(d) == r
    ref = {
        "node": [{"element": "Pb", "residue": None}], "linker": [["I", None]], "shell": ["O"],
        "pair_cutoffs": [{"atom1": "Pb", "atom2": "I", "shell_cutoffs": {"0": 3.36}},
                         {"atom1": "O", "atom2": "Pb", "shell_cutoffs": {"0": 3.36}}],
        "include_shell_atoms_in_stoichiometry": False,
    }
    assert ClusterRules.from_dict(ref) == PBIO
    li = ClusterRules.from_dict({"node": ["Li"], "linker": ["P"], "cutoffs": {"Li-P": 3.7}})
    assert li.shell == () and li.cutoffs == {("Li", "P"): {0: 3.7}}


@pytest.mark.parametrize("kwargs, match", [
    ({"node": ["Xq"]}, r"node\[0\].*unknown element 'Xq'"),
    ({"node": [3]}, r"node\[0\]: expected 'EL', 'EL:RESIDUE'"),
    ({"cutoffs": {("Pb", "I"): -1.0}}, r"cutoffs\[Pb-I\].*>= 0"),
    ({"cutoffs": {("Pb", "I"): float("nan")}}, r"finite"),
    ({"cutoffs": {("Pb", "I"): "far"}}, r"distance in angstrom, got 'far'"),
    ({"linker": ["Pb"]}, r"'Pb' is given two roles: node and linker"),
    ({"cutoffs": {("Pb", "Br"): 3.0}}, r"element 'Br' has no role"),
    ({"cutoffs": {("Pb", "I"): {0: 3.3, 1: 5.0}}}, r"level-1 cutoff is only used between a node and a shell"),
    ({"cutoffs": {"PbI": 3.0}}, r"element pair"),
    ({"shell_levels": [1]}, r"shell level 1 has no cutoff"),
    ({"shell_levels": [0]}, r"level 0 is always used"),
    ({"shell_levels": [-1]}, r"non-negative integer"),
    ({"node": [], "linker": []}, r"at least one node element"),
    ({"cutoffs": {}}, r"no positive level-0 cutoff"),
    ({"pbc": "yes"}, r"pbc must be True or False"),
    ({"default_cutoff": -2}, r"default_cutoff"),
    ({"node": ["Pb", "Pb"]}, r"listed twice"),
    ({"cutoffs": {("Pb", "I"): 3.0, ("I", "Pb"): 3.1}}, r"given twice"),
])
def test_rules_reject_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ClusterRules(**{**HOME, **kwargs})


def test_rules_from_dict_rejects_unknown_keys_and_non_mappings():
    with pytest.raises(ValueError, match=r"unknown cluster-rule keys \['nodes'\]"):
        ClusterRules.from_dict({"nodes": ["Pb"]})
    with pytest.raises(ValueError, match="must be a mapping"):
        ClusterRules.from_dict(["Pb"])


def test_same_element_in_two_roles_needs_residues():
    r = ClusterRules(node=["Pb"], linker=["I"], shell=[("O", "DMF")], cutoffs={("Pb", "I"): 3.3, ("Pb", "O"): 3.0})
    assert r.uses_residues
    ClusterRules(node=["Pb"], linker=[("O", "WAT")], shell=[("O", "DMF")], cutoffs={("Pb", "O"): 3.0})
    with pytest.raises(ValueError, match="two roles"):
        ClusterRules(node=["Pb"], linker=[("O", "DMF")], shell=[("O", "DMF")], cutoffs={("Pb", "O"): 3.0})


# --------------------------------------------------------------------------- labels


def test_labels_reproduce_reference_style():
    assert format_label({"I": 5, "Pb": 2}, PBIO) == "Pb2I5"
    assert format_label({"Pb": 1, "I": 3}, PBIO) == "PbI3"
    assert format_label({"I": 1}, PBIO) == "I"
    assert format_label({"Pb": 1, "I": 2, "O": 3}, PBIO) == "PbI2O3"
    nacl = ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6})
    assert format_label({"Cl": 1, "Na": 2}, nacl) == "Na2Cl"
    # linker group alphabetical, then shells, then anything else
    r = ClusterRules(node=["Pb"], linker=["I", "Br"], shell=["O"], cutoffs={("Pb", "I"): 3.3})
    assert format_label({"Pb": 2, "I": 1, "Br": 3, "O": 2, "Cs": 1}, r) == "Pb2Br3IO2Cs"
    assert format_label({"Zn": 1, "Cl": 4}) == "Cl4Zn"  # no rules: alphabetical


def test_parse_label():
    assert parse_label("Pb2I5") == {"Pb": 2, "I": 5}
    assert parse_label("I") == {"I": 1}
    assert parse_label("Li2F6P") == {"Li": 2, "F": 6, "P": 1}
    assert list(parse_label("Na25Cl28")) == ["Na", "Cl"]
    for bad in ["", "pb2", "Pb2-I", "Pb2 I5", "Unassigned", "Xx3", "PbIPb", "Pb0", "2Pb", "Pb2i"]:
        with pytest.raises(ValueError, match="label"):
            parse_label(bad)
    with pytest.raises(ValueError, match="empty composition"):
        format_label({"Pb": 0})
    with pytest.raises(ValueError, match="non-negative integer"):
        format_label({"Pb": 1.5})


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(ELEMENTS), st.integers(1, 300), min_size=1, max_size=6), st.booleans())
def test_label_round_trip(counts, with_rules):
    rules = None
    if with_rules:
        els = sorted(counts)
        rules = ClusterRules(node=els[:1], linker=els[1:2], shell=els[2:3],
                             cutoffs={} if len(els) < 2 else {(els[0], els[1]): 3.0}, default_cutoff=3.0)
    label = format_label(counts, rules)
    assert parse_label(label) == counts
    assert format_label(parse_label(label), rules) == label


# --------------------------------------------------------------------------- small cases


def test_pb2i5_across_the_box_face_is_whole():
    # Two Pb sharing a bridging I; one Pb sits just inside x = 0, the rest of the cluster
    # wraps to the far side of the box.
    L = 12.0
    pos = np.array([
        [0.3, 6.0, 6.0],     # Pb 0
        [L - 2.8, 6.0, 6.0],  # Pb 1 (3.1 A from Pb 0 through the face)
        [L - 1.2, 6.0 + 2.7, 6.0],  # I bridging? (distance to Pb0 ~ 3.0, to Pb1 ~ 3.1)
        [0.3, 6.0, 6.0 + 3.0],    # I on Pb 0
        [0.3, 6.0, 6.0 - 3.0],    # I on Pb 0
        [L - 2.8, 6.0, 6.0 + 3.0],  # I on Pb 1
        [L - 2.8, 6.0 - 3.0, 6.0],  # I on Pb 1
        [3.2, 6.0, 6.0],      # O on Pb 0 (shell)
        [6.0, 1.0, 1.0],      # free I
    ])
    sym = ["Pb", "Pb", "I", "I", "I", "I", "I", "O", "I"]
    f = make_frame(sym, pos, [L, L, L])
    cl = extract_clusters(f, PBIO)
    assert [c.label for c in cl] == ["Pb2I5", "I"]
    c = cl[0]
    assert c.core_indices.tolist() == [0, 1, 2, 3, 4, 5, 6] and c.shell_indices.tolist() == [7]
    assert c.atom_indices.dtype == np.int64 and c.node_count == 2 and not c.percolating
    u = c.unwrapped_positions(f)
    # every bond at its minimum-image length and the cluster compact (no box-length jumps)
    assert np.ptp(u[:, 0]) < 7.0
    assert np.linalg.norm(u[1] - u[0]) == pytest.approx(3.1)
    centroid = u[:7].mean(axis=0)
    assert np.all((centroid >= 0) & (centroid < L))
    assert count_labels(f, PBIO) == {"Pb2I5": 1, "I": 1}


def test_free_linkers_and_order_seeded_from_nodes():
    # linker-only clusters come after node clusters, whatever the atom order
    sym = ["I", "I", "Pb", "I", "Pb"]
    pos = [[0, 0, 0], [20, 20, 20], [10, 10, 10], [10, 10, 13], [30, 30, 30]]
    cl = extract_clusters(make_frame(sym, pos), ClusterRules(**HOME, pbc=False))
    assert [(c.label, c.core_indices.tolist()) for c in cl] == [("PbI", [2, 3]), ("Pb", [4]), ("I", [0]), ("I", [1])]


def test_shells_do_not_connect_clusters():
    sym = ["Pb", "O", "Pb"]
    pos = [[0, 0, 0], [3.0, 0, 0], [6.0, 0, 0]]
    cl = extract_clusters(make_frame(sym, pos), ClusterRules(**HOME, pbc=False))
    assert [c.label for c in cl] == ["Pb", "Pb"]
    # equidistant: the shell goes to the smaller atom index
    assert cl[0].shell_indices.tolist() == [1] and cl[1].shell_indices.tolist() == []
    r = ClusterRules(**HOME, pbc=False, shells_in_label=True)
    assert [c.label for c in extract_clusters(make_frame(sym, pos), r)] == ["PbO", "Pb"]
    assert count_labels(make_frame(sym, pos), r) == {"PbO": 1, "Pb": 1}


def test_shell_levels_shared_and_exclusive():
    # Pb0 -- O(lvl0, 3.0 from Pb0) ; O2 at 4.5 from Pb0 and 4.0 from Pb1 (level 1 <= 5)
    sym = ["Pb", "Pb", "O", "O"]
    pos = [[0, 0, 0], [8.5, 0, 0], [-3.0, 0, 0], [4.5, 0, 0]]
    base = dict(node=["Pb"], linker=["I"], shell=["O"], pbc=False, cutoffs={("Pb", "I"): 3.36, ("Pb", "O"): {0: 3.36, 1: 5.0}},
                shell_levels=[1])
    excl = extract_clusters(make_frame(sym, pos), ClusterRules(**base))
    assert [c.shell_indices.tolist() for c in excl] == [[2], [3]]  # O3 nearer to Pb1
    assert [c.shell_levels.tolist() for c in excl] == [[0], [1]]
    shared = extract_clusters(make_frame(sym, pos), ClusterRules(**base, shared_shells=True))
    assert [c.shell_indices.tolist() for c in shared] == [[2, 3], [3]]
    assert [c.shell_levels.tolist() for c in shared] == [[0, 1], [1]]


def test_percolating_chain_is_flagged_and_finite_chain_is_not():
    L = 12.0
    xs = np.arange(4) * 3.0 + 0.5  # Pb-I-Pb-I with spacing 3.0, closing across the face
    sym = ["Pb", "I", "Pb", "I"]
    pos = np.column_stack([xs, np.full(4, 5.0), np.full(4, 5.0)])
    f = make_frame(sym, pos, [L, 20.0, 20.0])
    cl = extract_clusters(f, PBIO)
    assert [(c.label, c.percolating) for c in cl] == [("Pb2I2", True)]
    s = summarize_frame(f, PBIO)
    assert s.counts == {} and s.percolating == {"Pb2I2": 1} and s.n_percolating == 1
    assert count_labels(f, PBIO) == {}
    assert count_labels(f, PBIO, include_percolating=True) == {"Pb2I2": 1}
    # open the ring: a longer box leaves a finite chain that crosses the face
    f2 = make_frame(sym, pos - [2.0, 0, 0], [L + 1.0, 20.0, 20.0])
    cl2 = extract_clusters(f2, PBIO)
    assert [(c.label, c.percolating) for c in cl2] == [("Pb2I2", False)]
    u = cl2[0].unwrapped_positions(f2)
    assert np.allclose(np.diff(u[:, 0]), 3.0)


def test_pbc_false_ignores_box_and_pbc_true_needs_one():
    sym = ["Pb", "I"]
    pos = [[0.5, 1, 1], [9.5, 1, 1]]
    assert count_labels(make_frame(sym, pos, [10, 10, 10]), PBIO) == {"PbI": 1}
    assert count_labels(make_frame(sym, pos, [10, 10, 10]), ClusterRules(**HOME, pbc=False)) == {"Pb": 1, "I": 1}
    with pytest.raises(ValueError, match="has no periodic box"):
        extract_clusters(make_frame(sym, pos), PBIO)


def test_bad_frames_and_arguments():
    with pytest.raises(ValueError, match="rules must be a ClusterRules"):
        extract_clusters(make_frame(["Pb"], [[0, 0, 0]]), {"node": ["Pb"]})
    with pytest.raises(ValueError, match="1 positions but 2 symbols"):
        extract_clusters(make_frame(["Pb", "I"], [[0, 0, 0]], [10, 10, 10]), PBIO)
    with pytest.raises(ValueError, match=r"level-0 cutoff Pb-I = 3.36 A must be smaller than half the smallest box height \(3 A\) of frame 0"):
        extract_clusters(make_frame(["Pb", "I"], [[0, 0, 0], [1, 1, 1]], [6, 6, 6]), PBIO)
    r = ClusterRules(**{**HOME, "shell": [("O", "DMF")]})
    with pytest.raises(ValueError, match="no residue names"):
        extract_clusters(make_frame(["Pb", "O"], [[0, 0, 0], [1, 1, 1]], [10, 10, 10]), r)
    f = make_frame(["Pb"], [[0, 0, 0]], [10, 10, 10], index=3)
    c = extract_clusters(f, PBIO)[0]
    with pytest.raises(ValueError, match="cluster comes from frame 3"):
        c.unwrapped_positions(make_frame(["Pb"], [[0, 0, 0]], [10, 10, 10], index=4))


def test_empty_and_untyped_frames():
    assert extract_clusters(make_frame([], np.zeros((0, 3)), [10, 10, 10]), PBIO) == []
    assert extract_clusters(make_frame(["C", "H", "O"], np.eye(3), [10, 10, 10]), PBIO) == []
    assert count_labels(make_frame(["C"], np.zeros((1, 3)), [10, 10, 10]), PBIO) == {}


def test_full_shell_molecules_from_residues():
    # Pb with one DMF-like molecule whose atoms straddle the x face; O is the shell atom.
    L = 15.0
    sym = ["Pb", "O", "C", "N", "H", "O", "C"]
    pos = np.array([
        [0.5, 7.0, 7.0],          # Pb
        [L - 2.0, 7.0, 7.0],      # O of residue 1 (2.5 A from Pb through the face)
        [L - 3.2, 7.0, 7.0],      # C of residue 1
        [L - 4.4, 7.5, 7.0],      # N of residue 1
        [L - 3.2, 8.0, 7.0],      # H of residue 1
        [7.0, 1.0, 1.0],          # O of residue 2 (far, not attached)
        [7.0, 2.2, 1.0],          # C of residue 2
    ])
    res = ["PBX", "DMF", "DMF", "DMF", "DMF", "DMF", "DMF"]
    rid = np.array([1, 2, 2, 2, 2, 3, 3])
    f = make_frame(sym, pos, [L, L, L], residues=res, residue_ids=rid, atom_names=["PB", "O", "C", "N", "H", "O", "C"])
    r = ClusterRules(node=["Pb"], linker=["I"], shell=[("O", "DMF")], cutoffs={("Pb", "I"): 3.3, ("Pb", "O"): 3.0},
                     shell_molecules=True, shells_in_label=True)
    (c,) = extract_clusters(f, r)
    assert c.label == "PbO" and c.core_indices.tolist() == [0] and c.shell_indices.tolist() == [1, 2, 3, 4]
    u = c.unwrapped_positions(f)
    assert np.allclose(u[1:] - u[0], [[-2.5, 0, 0], [-3.7, 0, 0], [-4.9, 0.5, 0], [-3.7, 1.0, 0]])
    # without molecules only the O comes along
    (c2,) = extract_clusters(f, ClusterRules(**{**r.to_dict(), "shell": [("O", "DMF")], "shell_molecules": False}))
    assert c2.shell_indices.tolist() == [1]


def test_molecule_touching_two_clusters_goes_whole_to_the_nearest():
    sym = ["Pb", "O", "O", "Pb"]
    pos = [[0, 0, 0], [2.9, 0, 0], [5.5, 0, 0], [8.0, 0, 0]]  # O1 2.9 from Pb0; O2 2.5 from Pb3
    f = make_frame(sym, pos, residues=["PB", "W", "W", "PB"], residue_ids=np.array([1, 2, 2, 3]))
    base = dict(node=["Pb"], linker=[], shell=["O"], cutoffs={("Pb", "O"): 3.0}, pbc=False)
    plain = extract_clusters(f, ClusterRules(**base))
    assert [c.shell_indices.tolist() for c in plain] == [[1], [2]]
    mol = extract_clusters(f, ClusterRules(**base, shell_molecules=True))
    assert [c.shell_indices.tolist() for c in mol] == [[], [1, 2]]


# --------------------------------------------------------------------------- brute force


def _random_frame(rng, box_kind, n=48):
    if box_kind == "none":
        H = None
        L = 12.0
        frac = rng.uniform(0, 1, (n, 3))
        pos = frac * L
    else:
        L = rng.uniform(11.5, 13.5)
        if box_kind == "ortho":
            H = np.diag(rng.uniform(0.95, 1.05, 3) * L)
        else:
            H = np.array([[L, 0, 0], [rng.uniform(-0.25, 0.25) * L, L, 0],
                          [rng.uniform(-0.25, 0.25) * L, rng.uniform(-0.25, 0.25) * L, L]])
        frac = rng.uniform(-0.02, 1.02, (n, 3))
        # atoms exactly on faces and a few far outside the primary cell
        k = rng.choice(n, 6, replace=False)
        frac[k[:3], rng.integers(0, 3, 3)] = rng.choice([0.0, 1.0], 3)
        frac[k[3:]] += rng.integers(-3, 4, (3, 3))
        pos = frac @ H
    sym = list(rng.choice(["Pb", "I", "I", "O", "C"], n))
    return sym, pos, H


RULES_BF = ClusterRules(node=["Pb"], linker=["I"], shell=["O"],
                        cutoffs={("Pb", "I"): 3.4, ("I", "I"): 2.6, ("Pb", "O"): {0: 2.8, 1: 4.2, 2: 5.0}})


@pytest.mark.parametrize("box_kind", ["none", "ortho", "triclinic"])
def test_extraction_matches_brute_force(box_kind):
    rng = np.random.default_rng({"none": 1, "ortho": 2, "triclinic": 3}[box_kind])
    n_perc = n_clusters = 0
    for seed in range(40):
        sym, pos, H = _random_frame(rng, box_kind)
        variants = [RULES_BF, ClusterRules(**{**RULES_BF.to_dict(), "shell_levels": [1, 2], "shared_shells": bool(seed % 2),
                                             "shells_in_label": bool(seed % 3 == 0)})]
        for rules in variants:
            rules = ClusterRules(**{**rules.to_dict(), "pbc": H is not None})
            f = make_frame(sym, pos, H, index=seed)
            ours = extract_clusters(f, rules)
            ref = reference_clusters(sym, pos, H, rules)
            _compare_rules(ours, ref, f, H, f"{box_kind} seed {seed} rules {rules.to_dict()}", rules)
            n_perc += sum(c.percolating for c in ours)
            n_clusters += len(ours)
    assert n_clusters > 500
    if box_kind != "none":
        assert n_perc == 0 or n_perc < n_clusters


def _compare_rules(ours, ref, frame, H, where, rules):
    got = [(c.label, c.core_indices.tolist(), c.shell_indices.tolist(), c.percolating) for c in ours]
    exp = [(format_label(r["counts"], rules), r["core"], r["shell_sorted"], r["percolating"]) for r in ref]
    if got != exp:
        k = next((k for k, (g, e) in enumerate(zip(got, exp)) if g != e), min(len(got), len(exp)))
        pytest.fail(f"{where}: {len(got)} vs {len(exp)} clusters, first difference at #{k}: "
                    f"got {got[k:k + 1]} expected {exp[k:k + 1]}")
    # the labels-only fast path agrees, percolation included
    summary = summarize_frame(frame, rules)
    assert summary.counts == Counter(c.label for c in ours if not c.percolating), where
    assert summary.percolating == Counter(c.label for c in ours if c.percolating), where
    for c, r in zip(ours, ref):
        assert c.shell_levels.tolist() == [r["shell"][s] for s in r["shell_sorted"]], where
        if c.percolating:
            continue
        u = c.unwrapped_positions(frame)
        uref = np.array([r["u"][k] for k in c.atom_indices.tolist()])
        diff = u - uref
        assert np.allclose(diff, diff[0], atol=1e-8), f"{where}: cluster {c.label} not whole"
        if H is not None:
            nvec = diff[0] @ np.linalg.inv(H)
            assert np.allclose(nvec, np.rint(nvec), atol=1e-8), where
        else:
            assert np.allclose(diff, 0.0), where


def test_dense_frames_with_percolation_match_brute_force():
    # dense Pb/I networks in small boxes: many wrap onto themselves, others cross a face
    rng = np.random.default_rng(7)
    n_perc = n_finite_wrapping = 0
    for seed in range(30):
        L = rng.uniform(8.0, 10.0)
        H = np.array([[L, 0, 0], [rng.uniform(-2, 2), L, 0], [rng.uniform(-2, 2), rng.uniform(-2, 2), L]]) if seed % 2 else np.diag([L] * 3)
        dense = seed % 3 == 0
        n = 40 if dense else 30
        offsets = seed % 4 == 1
        pos = rng.uniform(0, 1, (n, 3)) @ H
        if offsets:
            pos += rng.integers(-2, 3, (n, 3)) @ H
        sym = list(rng.choice(["Pb", "I", "I"], n))
        cut = {("Pb", "I"): 3.6, ("I", "I"): 3.0} if dense else {("Pb", "I"): 3.2}
        rules = ClusterRules(node=["Pb"], linker=["I"], shell=[], cutoffs=cut)
        f = make_frame(sym, pos, H, index=seed)
        ours = extract_clusters(f, rules)
        _compare_rules(ours, reference_clusters(sym, pos, H, rules), f, H, f"dense seed {seed}", rules)
        n_perc += sum(c.percolating for c in ours)
        if not offsets:
            for c in ours:
                if not c.percolating and np.any(c.image_shifts != c.image_shifts[0]):
                    n_finite_wrapping += 1
    assert n_perc >= 10 and n_finite_wrapping >= 3, (n_perc, n_finite_wrapping)


def test_lattice_translations_change_nothing():
    rng = np.random.default_rng(11)
    for seed in range(10):
        sym, pos, H = _random_frame(rng, "triclinic" if seed % 2 else "ortho", n=60)
        rules = ClusterRules(**{**RULES_BF.to_dict(), "shell_levels": [1]})
        f = make_frame(sym, pos, H)
        base = extract_clusters(f, rules)
        # the whole frame by one lattice vector, then every atom by its own lattice vector
        for shift in (np.array([[2, -1, 3]]) @ H, rng.integers(-4, 5, (len(sym), 3)) @ H):
            g = make_frame(sym, pos + shift, H)
            moved = extract_clusters(g, rules)
            assert [(c.label, c.atom_indices.tolist(), c.percolating) for c in moved] == \
                   [(c.label, c.atom_indices.tolist(), c.percolating) for c in base]
            for a, b in zip(base, moved):
                if not a.percolating:
                    assert np.allclose(a.unwrapped_positions(f), b.unwrapped_positions(g), atol=1e-9)


def test_thread_count_independence():
    rng = np.random.default_rng(5)
    L = 40.0
    n = 4000
    pos = rng.uniform(-L, 2 * L, (n, 3))
    sym = list(rng.choice(["Pb", "I", "I", "I", "O", "O", "C"], n))
    f = make_frame(sym, pos, [L, L, L])
    rules = ClusterRules(node=["Pb"], linker=["I"], shell=["O"],
                         cutoffs={("Pb", "I"): 3.3, ("I", "I"): 2.5, ("Pb", "O"): {0: 2.6, 1: 4.0}},
                         shell_levels=[1], shared_shells=True)
    results = []
    for t in (1, 2, 3, 8):
        cl = extract_clusters(f, rules, num_threads=t)
        results.append([(c.label, c.atom_indices.tobytes(), c.image_shifts.tobytes(), c.shell_levels.tobytes(),
                          c.percolating) for c in cl])
    assert len(results[0]) > 100
    assert all(r == results[0] for r in results[1:])


# --------------------------------------------------------------------------- real data


LIPF6 = ClusterRules(node=["Li"], linker=["P"], shell=[], cutoffs={("Li", "P"): 3.7})


@pytest.mark.shared_data
def test_lipf6_wrapped_and_unwrapped_frames_give_identical_clusters(shared_data):
    root = shared_data / "lipf6_bn_fec_lammps"
    seen_triple = False
    wrapped = cdml.read_frames(root / "frames_xyz_wrap")
    unwrapped = cdml.read_frames(root / "frames_xyz_unwrap")
    assert len(wrapped) == len(unwrapped) == 10
    for fw, fu in zip(wrapped, unwrapped):
        cw, cu = extract_clusters(fw, LIPF6), extract_clusters(fu, LIPF6)
        assert [(c.label, c.atom_indices.tolist()) for c in cw] == [(c.label, c.atom_indices.tolist()) for c in cu]
        for a, b in zip(cw, cu):
            assert np.allclose(a.unwrapped_positions(fw), b.unwrapped_positions(fu), atol=1e-3)  # file precision
        counts = count_labels(fw, LIPF6)
        # documented: ~45 free Li+, ~45 free PF6-, 2-4 contact ion pairs, sometimes Li2P
        assert 40 <= counts["Li"] <= 49 and 40 <= counts["P"] <= 49, counts
        assert 1 <= counts["LiP"] <= 6, counts
        assert set(counts) <= {"Li", "P", "LiP", "Li2P", "LiP2"}, counts
        assert not any(c.percolating for c in cw)
        seen_triple |= counts.get("Li2P", 0) > 0
    assert seen_triple


@pytest.mark.shared_data
def test_molten_nacl_finite_at_short_cutoff_and_percolating_at_long(shared_data):
    frames = list(cdml.read_frames(shared_data / "nacl_molten_1400K_zincware" / "NaCl_1400K_0.extxyz", stop=25))
    assert frames[0].n_atoms == 64 and np.allclose(frames[0].box.lengths, 13.1)
    short = ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6})
    long = ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 3.8})
    kinds = set()
    for f in frames:
        s = summarize_frame(f, short)
        assert len(s.counts) >= 3, s
        kinds |= set(s.counts)
        assert sum(parse_label(lab).get("Na", 0) * n for lab, n in (s.counts + s.percolating).items()) == 32
        sl = summarize_frame(f, long)
        assert sl.counts == {} and sl.percolating == {"Na32Cl32": 1}, sl
    assert {"NaCl", "Na", "Cl", "Na2Cl2"} <= kinds
    # brute force on a few frames at three cutoffs, including the wrap-around cases
    for f in frames[:4]:
        for cut in (2.6, 2.8, 3.0):
            rules = ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): cut})
            _compare_rules(extract_clusters(f, rules), reference_clusters(f.symbols, f.positions, f.box.matrix, rules),
                           f, f.box.matrix, f"NaCl frame {f.index} cutoff {cut}", rules)


@pytest.mark.shared_data
def test_kcl_crystal_percolates_and_terminates_quickly(shared_data):
    rules = ClusterRules(node=["K"], linker=["Cl"], shell=[], cutoffs={("K", "Cl"): 3.6})
    frames = cdml.read_frames(shared_data / "kcl_dlpoly_mdanalysistests" / "frames_xyz")
    assert len(frames) == 3
    for f in frames:
        t0 = time.perf_counter()
        cl = extract_clusters(f, rules)
        elapsed = time.perf_counter() - t0
        assert [(c.label, c.percolating, c.n_atoms) for c in cl] == [("K108Cl108", True, 216)]
        assert elapsed < 2.0
        assert count_labels(f, rules) == {}
        assert summarize_frame(f, rules).percolating == {"K108Cl108": 1}


@pytest.mark.shared_data
def test_lipf6_pdb_residue_rules_and_whole_shell_molecules(shared_data):
    root = shared_data / "lipf6_bn_fec_lammps"
    f = cdml.read_frames(root / "frames_pdb_wrap")[1]
    fx = cdml.read_frames(root / "frames_xyz_unwrap")[1]
    assert f.index == fx.index == 1 and f.residues is not None
    # Li-F contacts with F of PF6 only (FEC also has F): residue-qualified linkers
    rf = ClusterRules(node=["Li"], linker=[("P", "PF6"), ("F", "PF6")], shell=[],
                      cutoffs={("Li", "F"): 2.5, ("P", "F"): 1.8})
    counts = count_labels(f, rf)
    assert 40 <= counts["Li"] <= 49 and 40 <= counts["F6P"] <= 49, counts
    assert counts["LiF6P"] >= 1 and "F" not in counts, counts
    # a Li-F contact (<= 2.5 A) is a looser criterion than Li-P <= 3.7 A (monodentate pairs)
    pairs_lip = sum(n for lab, n in count_labels(fx, LIPF6).items() if lab not in ("Li", "P"))
    assert pairs_lip <= counts["LiF6P"] + counts.get("Li2F6P", 0) <= pairs_lip + 4
    # Li solvation shells: carbonyl/ether O of FEC and N of BN, brought in as whole molecules
    rs = ClusterRules(node=["Li"], linker=["P"], shell=["O", "N"],
                      cutoffs={("Li", "P"): 3.7, ("Li", "O"): 2.6, ("Li", "N"): 2.6}, shell_molecules=True)
    clusters = extract_clusters(f, rs)
    assert [c.label for c in clusters] == [c.label for c in extract_clusters(fx, LIPF6)]
    n_mol = 0
    for c in clusters:
        if not c.shell_indices.size:
            continue
        u = c.unwrapped_positions(f)
        shell_res = {(f.residue_ids[k], f.residues[k]) for k in c.shell_indices.tolist()}
        for key in shell_res:
            members = [k for k in range(f.n_atoms) if (f.residue_ids[k], f.residues[k]) == key]
            sel = np.isin(c.atom_indices, members)
            assert sel.sum() == len(members)  # whole molecule
            extent = np.ptp(u[sel], axis=0)
            assert np.all(extent < 8.0), (key, extent)  # not split across the box
            n_mol += 1
        assert c.core_indices.size <= 3
    assert n_mol > 100


def test_rules_from_the_toml_example_in_the_docs():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "clusters.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    r = ClusterRules.from_dict(tomllib.loads(block)["clusters"])
    assert r.shell == (("O", "DMF"),) and r.shell_levels == (1,)
    assert r.cutoffs == {("Pb", "I"): {0: 3.36}, ("Pb", "O"): {0: 3.36, 1: 5.0}}


def test_atom_order_does_not_change_the_clusters():
    rng = np.random.default_rng(21)
    rules = ClusterRules(**{**RULES_BF.to_dict(), "shell_levels": [1]})
    for seed in range(8):
        sym, pos, H = _random_frame(rng, "triclinic" if seed % 2 else "ortho", n=70)
        perm = rng.permutation(len(sym))
        f = make_frame(sym, pos, H)
        g = make_frame([sym[k] for k in perm], pos[perm], H)

        def canon(clusters, back):
            return sorted((c.label, tuple(sorted(back[c.core_indices].tolist())), tuple(sorted(back[c.shell_indices].tolist())),
                           c.percolating) for c in clusters)

        assert canon(extract_clusters(f, rules), np.arange(len(sym))) == canon(extract_clusters(g, rules), perm)


def test_results_pickle_for_worker_processes():
    import pickle

    L = 12.0
    f = make_frame(["Pb", "I", "O"], [[0.5, 5, 5], [L - 2.5, 5, 5], [0.5, 7.5, 5]], [L, L, L])
    cl = extract_clusters(f, PBIO)
    back = pickle.loads(pickle.dumps(cl))
    assert [c.label for c in back] == ["PbI"] and np.array_equal(back[0].image_shifts, cl[0].image_shifts)
    assert np.allclose(back[0].unwrapped_positions(f), cl[0].unwrapped_positions(f))
    s = pickle.loads(pickle.dumps(summarize_frame(f, PBIO)))
    assert s.counts == {"PbI": 1}


@pytest.mark.parametrize("crossing_fraction", [1.0, 0.1])
@pytest.mark.parametrize("seed", range(40))
def test_tree_images_level_bfs_matches_scipy_forest(seed, crossing_fraction):
    """The level-synchronous BFS gives the same images (and cycle mismatches) as the scipy
    breadth-first forest, including on cyclic graphs with random lattice shifts, where the
    images depend on which spanning tree is used."""
    from clusterdynamicsml.clusters import extract as C

    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 60))
    n_e = int(rng.integers(0, 2 * m + 1))
    pairs = {tuple(sorted(p)) for p in rng.integers(0, m, size=(n_e, 2)).tolist() if p[0] != p[1]}
    pairs = sorted(pairs)
    a = np.array([p[0] for p in pairs], dtype=np.int64)
    b = np.array([p[1] for p in pairs], dtype=np.int64)
    shift = rng.integers(-1, 2, size=(a.size, 3)).astype(np.int64)
    shift[rng.random(a.size) >= crossing_fraction] = 0   # most bonds inside the box
    labels = cdml.geometry.connected_components(m, a, b)
    s, closing = C._tree_images(m, a, b, shift, labels)
    ref = C._bfs_images_scipy(m, a, b, shift, labels) if a.size else np.zeros((m, 3), np.int64)
    assert np.array_equal(s, ref), f"seed {seed}, m {m}, edges {a.size}, crossing {crossing_fraction}"
    assert np.array_equal(closing, np.any(ref[b] - ref[a] - shift != 0, axis=1))


def test_tree_images_deep_chain_falls_back_to_scipy(monkeypatch):
    """A chain deeper than the level cap (a long polymer) still gets the scipy images."""
    from clusterdynamicsml.clusters import extract as C

    monkeypatch.setattr(C, "_BFS_LEVELS", 4)
    m = 30
    a = np.arange(m - 1, dtype=np.int64)
    b = a + 1
    shift = np.zeros((m - 1, 3), dtype=np.int64)
    shift[::7, 0] = 1
    labels = np.zeros(m, dtype=np.int64)
    assert C._bfs_images_levels(m, a, b, shift, labels) is None
    s, closing = C._tree_images(m, a, b, shift, labels)
    assert np.array_equal(s[:, 0], np.cumsum(np.r_[0, shift[:, 0]]))
    assert not closing.any()
