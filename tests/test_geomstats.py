"""Geometry statistics (ref §4.7): C++ pair kernels against numpy references, known answers,
thread-count independence, invariances and input validation."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from clusterdynamicsml import _core
from clusterdynamicsml.build.geomstats import (
    GeometryStatistics,
    element_pair_key,
    geometry_statistics,
    measure_structure,
    type_pair_key,
)

SITES = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
CUTOFFS = {("Pb", "I"): 3.5, ("Pb", "O"): 3.0}


def random_rotation(rng):
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def octahedral_chain(n_pb, rng, d_pbi=3.2, d_pbo=2.5, p_iodide=0.55, jitter=0.03):
    """Corner-sharing chain of PbX6 octahedra along x (Pb-Pb = 2 d_pbi, shared I between
    neighbours), other sites I (Pb-I d_pbi) or O (Pb-O d_pbo); randomly rotated and shifted."""
    syms, pos = [], []
    for k in range(n_pb):
        syms.append("Pb")
        pos.append([2 * d_pbi * k, 0.0, 0.0])
    for k in range(n_pb):
        c = np.array([2 * d_pbi * k, 0.0, 0.0])
        for s, v in enumerate(SITES):
            if s == 1 and k > 0:
                continue
            if (s == 0 and k < n_pb - 1) or rng.random() < p_iodide:
                syms.append("I")
                pos.append(c + d_pbi * v)
            else:
                syms.append("O")
                pos.append(c + d_pbo * v)
    pos = np.asarray(pos) + rng.normal(0.0, jitter, (len(pos), 3))
    return syms, pos @ random_rotation(rng).T + rng.normal(0.0, 5.0, 3)


def pbio_library(n, seed=1, max_pb=4, jitter=0.03):
    rng = np.random.default_rng(seed)
    return [octahedral_chain(int(rng.integers(1, max_pb + 1)), rng, jitter=jitter) for _ in range(n)]


def octahedron(d=3.2):
    return ["Pb"] + ["I"] * 6, np.vstack([[0.0, 0.0, 0.0], d * SITES])


# ---- known answers ----------------------------------------------------------------------

def test_octahedron_known_values():
    syms, pos = octahedron(3.2)
    st = geometry_statistics([(syms, pos, "PbI6")] * 3, ["Pb"], ["I"], ["O"], CUTOFFS)
    assert st.bond_length_medians == {"I-Pb": pytest.approx(3.2)}
    assert st.seed_contact_medians["I-Pb"] == pytest.approx(3.2)
    assert st.seed_contact_medians["I-I"] == pytest.approx(3.2 * math.sqrt(2))
    assert st.min_contact_distances["I-I"] == pytest.approx(3.2 * math.sqrt(2))
    # contact cutoff min(1.25 t + 0.15, 1.40 f + 0.20)
    assert st.contact_cutoffs["I-Pb"] == pytest.approx(min(1.25 * 3.2 + 0.15, 1.4 * 3.5 + 0.2))
    # 12 cis angles of 90 and 3 trans angles of 180 per node
    assert st.node_angle_medians == {"linker-linker": pytest.approx(90.0)}
    assert st.support["node_angle:linker-linker"] == 45
    assert st.node_coordination_medians == {"node": 0.0, "linker": 6.0, "shell": 0.0}
    assert st.non_node_node_coordination_medians == {"I": 1.0}
    # cis I-I (4.53) are contacts, trans I-I (6.4) are not
    assert st.atom_coordination_medians["linker>linker"] == 4.0
    assert st.atom_coordination_medians["node>linker"] == 6.0
    assert st.atom_coordination_medians["linker>node"] == 1.0
    assert st.contact_distance_medians["I-I"] == pytest.approx(3.2 * math.sqrt(2))
    assert st.geometry_contact_distance_medians["node-linker"] == pytest.approx(3.2)
    # no node-node pair anywhere: fallback node bond = median of 2 x node/non-node cutoffs
    assert st.node_bond_length == pytest.approx(np.median([7.0, 6.0]))
    assert st.labels == ("PbI6",) and st.n_structures == 3


def test_chain_scaffold_is_spanning_tree_and_explicit_edges_are_kept():
    # equilateral triangle of nodes (side 4) plus one node far away (8 from the nearest)
    pos = np.array([[0, 0, 0], [4, 0, 0], [2, 2 * math.sqrt(3), 0], [12, 0, 0]], float)
    syms = ["Pb"] * 4
    # no Pb-Pb cutoff: minimum spanning tree, 3 edges (4, 4, 8)
    st = geometry_statistics([(syms, pos)], ["Pb"])
    assert st.support["node_bond_length"] == 3
    assert st.bond_length_medians["Pb-Pb"] == pytest.approx(4.0)
    # with a cutoff every triangle side is an explicit edge (a cycle), plus one joining edge
    st = geometry_statistics([(syms, pos)], ["Pb"], pair_cutoffs={"Pb-Pb": 4.0})
    assert st.support["node_bond_length"] == 4
    assert st.node_bond_length == pytest.approx(4.0)
    # node-node angles: nodes 0 and 2 give 60 each; node 1 (neighbours 0, 2, 3) gives 60, 180
    # and 120: the median of [60, 60, 60, 180, 120] is 60
    assert st.node_angle_medians["node-node"] == pytest.approx(60.0)


def test_association_cutoff_and_nearest_fallback():
    # I bridging two Pb (3.0 from each), O far from every node (nearest node only)
    pos = np.array([[0, 0, 0], [6, 0, 0], [3, 0, 0], [0, 0, 7]], float)
    syms = ["Pb", "Pb", "I", "O"]
    st = geometry_statistics([(syms, pos)], ["Pb"], ["I"], ["O"], CUTOFFS)
    p1 = _core.scaffold_statistics(pos, np.array([0, 4]), np.array([2, 2, 0, 1], np.int32),
                                   np.array([1, 2, 0], np.int32),
                                   1.15 * np.array([[0, 0, 3.5], [0, 0, 3.0], [3.5, 3.0, 0]]), 1)
    assert p1["assoc_atom"].tolist() == [2, 2, 3]
    assert p1["assoc_node"].tolist() == [0, 1, 0]
    assert st.non_node_node_coordination_medians == {"I": 2.0, "O": 1.0}
    assert st.bond_length_medians["I-Pb"] == pytest.approx(3.0)
    assert st.bond_length_medians["O-Pb"] == pytest.approx(7.0)
    # Pb-Pb scaffold edge of 6 (no explicit Pb-Pb cutoff: joined by Kruskal)
    assert st.node_bond_length == pytest.approx(6.0)


def test_synthetic_library_recovers_generating_geometry():
    lib = pbio_library(150, seed=3)
    st = geometry_statistics(lib, ["Pb"], ["I"], ["O"], CUTOFFS)
    assert st.bond_length_medians["I-Pb"] == pytest.approx(3.2, abs=0.02)
    assert st.bond_length_medians["O-Pb"] == pytest.approx(2.5, abs=0.02)
    assert st.node_bond_length == pytest.approx(6.4, abs=0.05)
    assert st.node_angle_medians["linker-linker"] == pytest.approx(90.0, abs=2.0)
    assert st.node_angle_medians["node-node"] == pytest.approx(180.0, abs=3.0)
    assert st.node_coordination_medians["linker"] + st.node_coordination_medians["shell"] == pytest.approx(6, abs=1)
    assert st.min_contact_distances["I-Pb"] < 3.2 < st.contact_cutoffs["I-Pb"]


# ---- kernels against numpy references ----------------------------------------------------

def random_batch(rng, n_struct=25, max_atoms=30, n_el=3):
    sizes = rng.integers(0, max_atoms, n_struct)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = int(offsets[-1])
    pos = rng.uniform(0, 9, (n, 3))
    el = rng.integers(0, n_el, n).astype(np.int32)
    return pos, offsets, el


def reference_nearest(pos, offsets, el, n_el):
    out = np.full((len(pos), n_el), np.inf)
    for s in range(len(offsets) - 1):
        a0, a1 = offsets[s], offsets[s + 1]
        for a in range(a0, a1):
            for b in range(a0, a1):
                if a != b:
                    out[a, el[b]] = min(out[a, el[b]], np.linalg.norm(pos[a] - pos[b]))
    return out


def reference_scaffold_edges(pos, offsets, el, kinds, cut):
    edges = []
    for s in range(len(offsets) - 1):
        nodes = [a for a in range(offsets[s], offsets[s + 1]) if kinds[el[a]] == 0]
        parent = {a: a for a in nodes}

        def find(x):
            while parent[x] != x:
                x = parent[x]
            return x

        chosen, rest = [], []
        for x in range(len(nodes)):
            for y in range(x + 1, len(nodes)):
                a, b = nodes[x], nodes[y]
                d = np.linalg.norm(pos[a] - pos[b])
                c = cut[el[a], el[b]]
                if c > 0 and d <= c:
                    chosen.append((a, b))
                    ra, rb = find(a), find(b)
                    if ra != rb:
                        parent[max(ra, rb)] = min(ra, rb)
                else:
                    rest.append((d, a, b))
        for d, a, b in sorted(rest):
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
                chosen.append((a, b))
        edges.extend(sorted(chosen))
    return edges


@pytest.mark.parametrize("seed", range(6))
def test_kernels_match_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    pos, offsets, el = random_batch(rng)
    kinds = np.array([0, 1, 2], np.int32)
    cut = np.array([[2.5, 2.0, 2.2], [2.0, 0.0, 1.5], [2.2, 1.5, 0.0]])
    p1 = _core.scaffold_statistics(pos, offsets, el, kinds, cut, 2)
    ref = reference_nearest(pos, offsets, el, 3)
    np.testing.assert_allclose(p1["nearest"], ref, rtol=0, atol=1e-12, err_msg=f"seed {seed}")
    edges = list(zip(p1["edge_i"].tolist(), p1["edge_j"].tolist()))
    assert edges == reference_scaffold_edges(pos, offsets, el, kinds, cut), f"seed {seed}"
    # every non-node atom of a structure with nodes is associated at least once
    for s in range(len(offsets) - 1):
        idx = np.arange(offsets[s], offsets[s + 1])
        if np.any(el[idx] == 0):
            nonnode = idx[el[idx] != 0]
            assert set(nonnode.tolist()) <= set(p1["assoc_atom"].tolist())
    # contacts: brute force within each structure
    cc = np.array([[3.0, 2.5, 2.0], [2.5, 3.2, 0.0], [2.0, 0.0, 1.0]])
    p2 = _core.contact_statistics(pos, offsets, el, cc, 2)
    ri, rj, counts = [], [], np.zeros((len(pos), 3), int)
    for s in range(len(offsets) - 1):
        for a in range(offsets[s], offsets[s + 1]):
            for b in range(a + 1, offsets[s + 1]):
                c = cc[el[a], el[b]]
                if c > 0 and np.linalg.norm(pos[a] - pos[b]) <= c:
                    ri.append(a)
                    rj.append(b)
                    counts[a, el[b]] += 1
                    counts[b, el[a]] += 1
    assert p2["i"].tolist() == ri and p2["j"].tolist() == rj, f"seed {seed}"
    np.testing.assert_array_equal(p2["counts"], counts)
    np.testing.assert_allclose(p2["d"], np.linalg.norm(pos[ri] - pos[rj], axis=1) if ri else [], atol=1e-12)


def test_kernels_identical_for_any_thread_count():
    rng = np.random.default_rng(11)
    pos, offsets, el = random_batch(rng, n_struct=120, max_atoms=60)
    kinds = np.array([0, 1, 2], np.int32)
    cut = np.array([[2.5, 2.0, 2.2], [2.0, 0.0, 1.5], [2.2, 1.5, 0.0]])
    base1 = _core.scaffold_statistics(pos, offsets, el, kinds, cut, 1)
    base2 = _core.contact_statistics(pos, offsets, el, cut, 1)
    for nt in (2, 3, 8):
        r1 = _core.scaffold_statistics(pos, offsets, el, kinds, cut, nt)
        r2 = _core.contact_statistics(pos, offsets, el, cut, nt)
        for key in base1:
            assert np.array_equal(base1[key], r1[key]), (nt, key)
        for key in base2:
            assert np.array_equal(base2[key], r2[key]), (nt, key)
    lib = pbio_library(60, seed=5)
    ref = geometry_statistics(lib, ["Pb"], ["I"], ["O"], CUTOFFS, num_threads=1).to_dict()
    for nt in (2, 3, 8):
        assert geometry_statistics(lib, ["Pb"], ["I"], ["O"], CUTOFFS, num_threads=nt).to_dict() == ref


def test_rigid_motion_leaves_statistics_unchanged():
    lib = pbio_library(30, seed=7)
    rng = np.random.default_rng(0)
    moved = [(s, p @ random_rotation(rng).T + rng.normal(0, 20, 3)) for s, p in lib]
    a = geometry_statistics(lib, ["Pb"], ["I"], ["O"], CUTOFFS).to_dict()
    b = geometry_statistics(moved, ["Pb"], ["I"], ["O"], CUTOFFS).to_dict()
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert a[key].keys() == b[key].keys(), key
            for k in a[key]:
                assert a[key][k] == pytest.approx(b[key][k], abs=1e-9), (key, k)


def test_untracked_elements_are_ignored_and_objects_accepted():
    syms, pos = octahedron()

    class S:
        def __init__(self, symbols, positions, label):
            self.symbols, self.positions, self.label = symbols, positions, label

    with_h = (syms + ["H"], np.vstack([pos, [[0.3, 0.3, 0.3]]]))
    a = geometry_statistics([S(syms, pos, "PbI6")], ["Pb"], ["I"], pair_cutoffs=CUTOFFS)
    b = geometry_statistics([with_h], ["Pb"], ["I"], pair_cutoffs=CUTOFFS, labels=["PbI6"])
    assert a.to_dict() == b.to_dict()


def test_rules_object_supplies_types_and_cutoffs():
    from clusterdynamicsml.rules import ClusterRules

    rules = ClusterRules(node=["Pb"], linker=["I"], shell=["O"], cutoffs={("Pb", "I"): 3.5, ("Pb", "O"): 3.0})
    lib = pbio_library(10, seed=2)
    assert geometry_statistics(lib, rules=rules).to_dict() == geometry_statistics(
        lib, ["Pb"], ["I"], ["O"], CUTOFFS).to_dict()


def test_json_round_trip(tmp_path):
    st = geometry_statistics(pbio_library(20, seed=4), ["Pb"], ["I"], ["O"], CUTOFFS)
    text = st.to_json(tmp_path / "geom.json")
    json.loads(text)
    assert GeometryStatistics.from_json(tmp_path / "geom.json") == st
    assert GeometryStatistics.from_json(text) == st
    with pytest.raises(ValueError, match="unknown GeometryStatistics fields"):
        GeometryStatistics.from_dict({**st.to_dict(), "bogus": 1})


def test_lookups_and_keys():
    st = geometry_statistics(pbio_library(20, seed=4), ["Pb"], ["I"], ["O"], CUTOFFS)
    assert element_pair_key("Pb", "I") == "I-Pb" and type_pair_key("shell", "node") == "node-shell"
    assert st.pair_distance("Pb", "I") == st.contact_distance_medians["I-Pb"]
    assert st.min_distance("I", "Pb") == st.min_contact_distances["I-Pb"]
    assert st.atom_type("pb") == "node"
    assert st.node_angle("shell", "shell") == st.node_angle_medians["shell-shell"]
    with pytest.raises(ValueError, match="unknown element 'Cs'"):
        st.atom_type("Cs")


def test_measure_structure_of_library_member_matches_its_geometry():
    syms, pos = octahedron(3.2)
    st = geometry_statistics([(syms, pos)], ["Pb"], ["I"], pair_cutoffs=CUTOFFS)
    m = measure_structure(syms, pos, st)
    assert m["shortest_contact"] == pytest.approx(3.2)
    assert m["min_distance_ratio"] == pytest.approx(1.0)
    assert m["bond_length_medians"] == {"I-Pb": pytest.approx(3.2)}
    assert m["node_coordination_medians"]["linker"] == 6


# ---- real structures ----------------------------------------------------------------------

def read_pdb(path):
    syms, pos = [], []
    for line in open(path):
        if line.startswith(("ATOM", "HETATM")):
            syms.append(line[76:78].strip())
            pos.append([float(line[30:38]), float(line[38:46]), float(line[46:54])])
    return syms, np.asarray(pos)


@pytest.mark.shared_data
def test_real_pbi_fragments(shared_data):
    d = shared_data / "saxshell_reference_structures"
    lib = [read_pdb(d / f"{name}.pdb") + (name,) for name in ("pbi3", "cspbi2", "cspbi3")]
    st = geometry_statistics(lib, ["Pb"], ["I"], ["Cs"], {("Pb", "I"): 3.36, ("Pb", "Cs"): 4.5})
    assert 2.9 < st.bond_length_medians["I-Pb"] < 3.3
    assert st.node_coordination_medians["linker"] == 3.0  # every fragment has 3 I on its Pb
    assert st.non_node_node_coordination_medians["I"] == 1.0
    assert 70 < st.node_angle_medians["linker-linker"] < 120
    assert st.labels == ("cspbi2", "cspbi3", "pbi3")


# ---- validation ---------------------------------------------------------------------------

def test_bad_input_is_rejected():
    syms, pos = octahedron()
    good = [(syms, pos)]
    with pytest.raises(ValueError, match="at least one node element"):
        geometry_statistics(good, [], ["I"])
    with pytest.raises(ValueError, match="both as node and as linker"):
        geometry_statistics(good, ["Pb"], ["Pb"])
    with pytest.raises(ValueError, match="empty"):
        geometry_statistics([], ["Pb"])
    with pytest.raises(ValueError, match="6 symbols but 7 positions"):
        geometry_statistics([(syms[:-1], pos)], ["Pb"])
    with pytest.raises(ValueError, match="shape"):
        geometry_statistics([(syms, pos[:, :2])], ["Pb"])
    bad = pos.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        geometry_statistics([(syms, bad)], ["Pb"])
    with pytest.raises(ValueError, match="must be finite and > 0"):
        geometry_statistics(good, ["Pb"], ["I"], pair_cutoffs={("Pb", "I"): -1})
    with pytest.raises(ValueError, match="element pairs"):
        geometry_statistics(good, ["Pb"], ["I"], pair_cutoffs={("Pb", "I", "O"): 3})
    with pytest.raises(ValueError, match="no structure of the library contains a node atom"):
        geometry_statistics(good, ["Sn"], ["I"])
    with pytest.raises(ValueError, match="unknown element '1'"):
        geometry_statistics([(["Pb", "1"], pos[:2])], ["Pb"])
    with pytest.raises(ValueError, match="2 labels for 1 structures"):
        geometry_statistics(good, ["Pb"], labels=["a", "b"])
    with pytest.raises(ValueError, match="num_threads"):
        geometry_statistics(good, ["Pb"], num_threads=0)


def test_kernel_rejects_malformed_batches():
    pos = np.zeros((3, 3))
    el = np.zeros(3, np.int32)
    kinds = np.zeros(1, np.int32)
    cut = np.ones((1, 1))
    with pytest.raises(ValueError, match="offsets"):
        _core.scaffold_statistics(pos, np.array([0, 2]), el, kinds, cut, 1)
    with pytest.raises(ValueError, match="non-decreasing"):
        _core.contact_statistics(pos, np.array([0, 2, 1, 3]), el, cut, 1)
    with pytest.raises(ValueError, match="element id out of range"):
        _core.contact_statistics(pos, np.array([0, 3]), np.array([0, 1, 0], np.int32), cut, 1)
    with pytest.raises(ValueError, match="element kind"):
        _core.scaffold_statistics(pos, np.array([0, 3]), el, np.array([5], np.int32), cut, 1)
    with pytest.raises(ValueError, match="symmetric"):
        _core.contact_statistics(pos, np.array([0, 3]), np.array([0, 1, 0], np.int32),
                                 np.array([[1.0, 2.0], [3.0, 1.0]]), 1)
    with pytest.raises(ValueError, match="non-finite"):
        _core.contact_statistics(np.full((3, 3), np.inf), np.array([0, 3]), el, cut, 1)


def test_cluster_rules_supply_roles_and_cutoffs():
    from clusterdynamicsml.clusters.extract import ClusterRules

    rules = ClusterRules(node=["Pb"], linker=["I"], shell=["O"], cutoffs={("Pb", "I"): 3.5, ("Pb", "O"): 3.0})
    lib = pbio_library(10, seed=2)
    a = geometry_statistics(lib, rules=rules)
    assert a.pair_cutoffs == {"I-Pb": 3.5, "O-Pb": 3.0}
    assert a.to_dict() == geometry_statistics(lib, ["Pb"], ["I"], ["O"], CUTOFFS).to_dict()


def test_angle_modes():
    from clusterdynamicsml.build.geomstats import angle_modes

    assert angle_modes([90.0] * 12 + [180.0] * 3) == [90.0, 180.0]
    assert angle_modes([109.47] * 6) == [109.47]
    assert angle_modes([]) == []
    rng = np.random.default_rng(0)
    mix = np.concatenate([rng.normal(90, 3, 400), np.clip(rng.normal(178, 2, 100), 0, 180)])
    modes = angle_modes(mix)
    assert len(modes) == 2 and abs(modes[0] - 90) < 1.5 and abs(modes[1] - 178) < 2
    syms, pos = octahedron(3.2)
    st = geometry_statistics([(syms, pos)], ["Pb"], ["I"], pair_cutoffs=CUTOFFS)
    assert st.node_angle_modes == {"linker-linker": [90.0, 180.0]}
    assert st.node_angle_targets("linker", "linker") == [90.0, 180.0]
    assert st.node_angle_targets("node", "node") == [180.0]  # default, nothing observed
