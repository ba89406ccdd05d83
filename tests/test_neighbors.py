"""neighbor_pairs / neighbor_pairs_typed against an obviously-correct numpy reference.

The reference computes every pair and searches the periodic images explicitly
(integer shifts -2..2 along each lattice vector around the fractional-rounded
displacement), so it shares no code with the cell list.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import clusterdynamicsml as cdml
from clusterdynamicsml.geometry.neighbors import neighbor_pairs, neighbor_pairs_typed

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SHIFTS = np.array(list(itertools.product(range(-2, 3), repeat=3)), dtype=np.float64)  # (125, 3)
EDGE_TOL = 1e-9  # pairs whose distance is this close to the cutoff may go either way


def brute_min_dist(pos: np.ndarray, box) -> np.ndarray:
    """(n, n) minimum-image distances by explicit image search (float64)."""
    pos = np.asarray(pos, dtype=np.float64)
    d = pos[None, :, :] - pos[:, None, :]  # (n, n, 3): x_j - x_i
    if box is None:
        return np.sqrt((d * d).sum(-1))
    h = box.matrix
    s = d @ np.linalg.inv(h)
    s -= np.round(s)
    base = s @ h
    best = np.full(d.shape[:2], np.inf)
    for shift in _SHIFTS @ h:  # explicit image search over 125 images
        c = base + shift
        best = np.minimum(best, (c * c).sum(-1))
    return np.sqrt(best)


def brute_pairs(pos, cutoff, box, cut_matrix=None, types=None, dist=None):
    """Reference pair list: (i, j, d) sorted by (i, j), plus the ambiguous pairs near the cutoff."""
    n = len(pos)
    if dist is None:
        dist = brute_min_dist(pos, box)
    iu, ju = np.triu_indices(n, k=1)
    dd = dist[iu, ju]
    if cut_matrix is None:
        cut = np.full(dd.shape, float(cutoff))
    else:
        ti, tj = types[iu], types[ju]
        valid = (ti >= 0) & (tj >= 0)
        cut = np.full(dd.shape, -1.0)
        cut[valid] = cut_matrix[ti[valid], tj[valid]]
        cut[cut <= 0] = -np.inf
    keep = dd <= cut
    ambiguous = np.abs(dd - cut) <= EDGE_TOL
    return iu[keep], ju[keep], dd[keep], set(zip(iu[ambiguous].tolist(), ju[ambiguous].tolist()))


def assert_same_pairs(got, ref, context: str):
    gi, gj, gd = got
    ri, rj, rd, ambiguous = ref
    assert gi.dtype == np.int64 and gj.dtype == np.int64 and gd.dtype == np.float64, context
    assert np.all(gi < gj), f"{context}: i < j violated"
    order = np.lexsort((gj, gi))
    assert np.array_equal(order, np.arange(len(gi))), f"{context}: output not sorted by (i, j)"
    gs = set(zip(gi.tolist(), gj.tolist()))
    rs = set(zip(ri.tolist(), rj.tolist()))
    missing = sorted((rs - gs) - ambiguous)
    extra = sorted((gs - rs) - ambiguous)
    assert not missing and not extra, (
        f"{context}: {len(gs)} pairs found, {len(rs)} expected; first missing {missing[:5]}, first extra {extra[:5]}"
    )
    ref_d = dict(zip(zip(ri.tolist(), rj.tolist()), rd.tolist()))
    common = [(k, x) for k, x in zip(zip(gi.tolist(), gj.tolist()), gd.tolist()) if k in ref_d]
    if common:
        keys, vals = zip(*common)
        diff = np.abs(np.array(vals) - np.array([ref_d[k] for k in keys]))
        worst = int(np.argmax(diff))
        assert diff[worst] <= 1e-9, f"{context}: distance of pair {keys[worst]} differs by {diff[worst]:.3g} A"


def triclinic_boxes():
    return [
        cdml.Box.from_parameters(11.0, 12.5, 13.0, 65.0, 70.0, 62.0),
        cdml.Box.from_parameters(12.0, 12.0, 12.0, 60.0, 60.0, 60.0),  # fcc primitive-like, strongly sheared
        cdml.Box.from_parameters(10.0, 14.0, 11.0, 110.0, 75.0, 100.0),
        cdml.Box.from_matrix([[10.0, 0.0, 0.0], [5.5, 11.0, 0.0], [-4.0, 3.5, 12.0]]),  # tilted, negative tilt
        cdml.Box.from_matrix([[9.0, 1.0, -2.0], [2.0, 10.0, 1.5], [-1.0, 2.5, 11.0]]),  # general, not lower triangular
    ]


def all_boxes():
    return [None, cdml.Box([10.0, 12.0, 14.0]), cdml.Box([7.5, 7.5, 30.0])] + triclinic_boxes()


def box_id(box):
    return "none" if box is None else ("ortho" if box.is_orthorhombic else "tric") + f"{box.lengths.round(1).tolist()}"


def random_positions(rng, n, box, spread=1.0):
    """Positions inside the cell, or (spread > 1) scattered several cells away, negative too."""
    if box is None:
        return rng.uniform(-5.0, 15.0, size=(n, 3))
    s = rng.uniform(-spread + 1, spread, size=(n, 3)) if spread > 1 else rng.random((n, 3))
    return s @ box.matrix


@pytest.mark.parametrize("box", all_boxes(), ids=box_id)
@pytest.mark.parametrize("seed", range(12))
def test_pairs_match_brute_force(box, seed):
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(2, 160))
    hmin = 20.0 if box is None else float(box.heights.min())
    cutoff = float(rng.uniform(0.05, 0.499)) * hmin
    spread = 1.0 if seed % 3 else 4.0  # every third seed: coordinates up to 4 cells out, negative too
    pos = random_positions(rng, n, box, spread)
    got = neighbor_pairs(pos, cutoff, box)
    ref = brute_pairs(pos, cutoff, box)
    assert_same_pairs(got, ref, f"seed={seed} n={n} cutoff={cutoff:.6g} box={box_id(box)}")


@pytest.mark.parametrize("box", all_boxes()[1:], ids=box_id)
def test_cutoff_just_under_half_height(box):
    rng = np.random.default_rng(7)
    cutoff = float(np.nextafter(0.5 * box.heights.min(), 0.0)) * (1 - 1e-9)
    for seed in range(3):
        pos = random_positions(rng, 120, box, spread=3.0)
        assert_same_pairs(neighbor_pairs(pos, cutoff, box), brute_pairs(pos, cutoff, box),
                          f"seed={seed} cutoff={cutoff!r} box={box_id(box)}")


@pytest.mark.parametrize("box", all_boxes(), ids=box_id)
def test_atoms_on_faces_edges_and_corners(box):
    """Lattice of atoms at fractional 0, 1/4, 1/2, 3/4 and 1 (= 0 again): exactly on faces and corners."""
    fr = np.array([0.0, 0.25, 0.5, 0.75, 1.0, -1.0, 2.0])
    s = np.array(list(itertools.product(fr, repeat=3)))
    h = np.diag([10.0, 12.0, 14.0]) if box is None else box.matrix
    pos = s @ h
    hmin = 10.0 if box is None else float(box.heights.min())
    dist = brute_min_dist(pos, box)
    for cutoff in (0.0, 0.2 * hmin, 0.3 * hmin, 0.45 * hmin):
        assert_same_pairs(neighbor_pairs(pos, cutoff, box), brute_pairs(pos, cutoff, box, dist=dist),
                          f"face lattice n={len(pos)} cutoff={cutoff} box={box_id(box)}")


def test_face_atoms_pair_across_the_boundary():
    """Regression: an atom at x = 0 and one at x = L - 1 are 1 A apart through the face."""
    box = cdml.Box([10.0, 10.0, 10.0])
    pos = np.array([[0.0, 5.0, 5.0], [9.0, 5.0, 5.0], [10.0, 5.0, 5.0], [-10.0, 5.0, 5.0]])
    i, j, d = neighbor_pairs(pos, 1.5, box)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    np.testing.assert_allclose(d, [1.0, 0.0, 0.0, 1.0, 1.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("box", [None, cdml.Box([10.0, 10.0, 10.0]), triclinic_boxes()[0]], ids=box_id)
def test_zero_cutoff_finds_only_coincident_atoms(box):
    pos = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [4.0, 4.0, 4.0], [1.0, 2.0, 3.0 + 1e-9]])
    i, j, d = neighbor_pairs(pos, 0.0, box)
    assert i.tolist() == [0] and j.tolist() == [1] and d.tolist() == [0.0]


@pytest.mark.parametrize("box", [None, cdml.Box([10.0, 10.0, 10.0])], ids=box_id)
@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_atom(box, n):
    i, j, d = neighbor_pairs(np.zeros((n, 3)), 3.0, box)
    assert i.shape == j.shape == d.shape == (0,)
    assert i.dtype == np.int64 and d.dtype == np.float64


def test_open_system_with_flat_and_far_coordinates():
    """box=None: coordinates all in one plane and spread over a huge range still work."""
    rng = np.random.default_rng(3)
    pos = rng.uniform(-1e4, 1e4, size=(300, 3))
    pos[:, 2] = 0.0
    pos[:50] = rng.uniform(0, 5, size=(50, 3))
    for cutoff in (0.0, 1.5, 800.0):
        assert_same_pairs(neighbor_pairs(pos, cutoff), brute_pairs(pos, cutoff, None), f"open cutoff={cutoff}")


def test_box_argument_forms_agree():
    rng = np.random.default_rng(11)
    lengths = [11.0, 12.0, 13.0]
    pos = rng.random((100, 3)) * lengths
    ref = neighbor_pairs(pos, 3.0, cdml.Box(lengths))
    for form in (lengths, lengths + [90.0, 90.0, 90.0], np.diag(lengths)):
        got = neighbor_pairs(pos, 3.0, form)
        for a, b in zip(got, ref):
            assert np.array_equal(a, b)


def test_large_random_against_cdist_chunks():
    """A 4000-atom orthorhombic case, many cells per axis, checked against scipy cKDTree."""
    spatial = pytest.importorskip("scipy.spatial")
    rng = np.random.default_rng(5)
    L = np.array([34.0, 35.0, 36.0])
    pos = rng.random((4000, 3)) * L + rng.integers(-3, 4, size=(4000, 3)) * L
    i, j, d = neighbor_pairs(pos, 3.5, cdml.Box(L))
    tree = spatial.cKDTree(np.mod(pos, L), boxsize=L)
    ref = tree.query_pairs(3.5, output_type="ndarray")
    ref = ref[np.lexsort((ref[:, 1], ref[:, 0]))]
    assert len(i) == len(ref)
    assert np.array_equal(i, ref[:, 0]) and np.array_equal(j, ref[:, 1])


# ---- per-type cutoffs -------------------------------------------------------------

@pytest.mark.parametrize("box", all_boxes(), ids=box_id)
@pytest.mark.parametrize("seed", range(6))
def test_typed_pairs_match_brute_force(box, seed):
    rng = np.random.default_rng(2000 + seed)
    n = int(rng.integers(2, 150))
    n_types = int(rng.integers(1, 5))
    types = rng.integers(-2, n_types, size=n).astype(np.int32)  # negative: takes part in no pair
    hmin = 20.0 if box is None else float(box.heights.min())
    cm = rng.uniform(-0.1, 0.49, size=(n_types, n_types)) * hmin
    cm = np.triu(cm) + np.triu(cm, 1).T  # symmetric, some entries <= 0 (never paired)
    pos = random_positions(rng, n, box, spread=3.0 if seed % 2 else 1.0)
    got = neighbor_pairs_typed(pos, types, cm, box)
    ref = brute_pairs(pos, None, box, cut_matrix=cm, types=types)
    assert_same_pairs(got, ref, f"seed={seed} n={n} types={n_types} box={box_id(box)}")


def test_typed_all_negative_types_gives_no_pairs():
    pos = np.zeros((5, 3))
    i, j, d = neighbor_pairs_typed(pos, np.full(5, -1), np.ones((1, 1)), None)
    assert len(i) == 0


def test_typed_equals_untyped_with_uniform_cutoff():
    rng = np.random.default_rng(8)
    box = triclinic_boxes()[1]
    pos = random_positions(rng, 300, box, spread=2.0)
    a = neighbor_pairs(pos, 2.5, box)
    b = neighbor_pairs_typed(pos, rng.integers(0, 3, 300), np.full((3, 3), 2.5), box)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)


# ---- determinism --------------------------------------------------------------------

@pytest.mark.skipif(not cdml.openmp_enabled(), reason="built without OpenMP")
@pytest.mark.parametrize("box", [None, cdml.Box([40.0, 41.0, 42.0]), cdml.Box.from_parameters(45, 44, 46, 65, 70, 75)],
                         ids=box_id)
def test_bit_identical_for_any_thread_count(box):
    # more atoms than the kernel's serial threshold (20,000), so the threads really run
    rng = np.random.default_rng(99)
    big = cdml.Box([60.0, 61.0, 62.0]) if box is None else cdml.Box.from_matrix(box.matrix * 1.5)
    pos = random_positions(rng, 24000, big, spread=2.0)
    box = None if box is None else big
    types = rng.integers(-1, 3, size=len(pos))
    cm = np.array([[3.0, 3.4, 0.0], [3.4, 2.5, 3.1], [0.0, 3.1, 3.3]])
    ref = neighbor_pairs(pos, 3.5, box, num_threads=1)
    ref_t = neighbor_pairs_typed(pos, types, cm, box, num_threads=1)
    assert len(ref[0]) > 5000
    for nt in (2, 3, 8):
        got = neighbor_pairs(pos, 3.5, box, num_threads=nt)
        got_t = neighbor_pairs_typed(pos, types, cm, box, num_threads=nt)
        for name, a, b in zip("ijd", got + got_t, ref + ref_t):
            assert a.tobytes() == b.tobytes(), f"threads={nt}: array {name} differs from 1 thread"


# ---- properties (hypothesis) --------------------------------------------------------

@st.composite
def systems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(0, 60))
    kind = draw(st.sampled_from(["none", "ortho", "tric"]))
    rng = np.random.default_rng(seed)
    if kind == "none":
        box = None
    elif kind == "ortho":
        box = cdml.Box(rng.uniform(6.0, 15.0, 3))
    else:
        box = cdml.Box.from_parameters(*rng.uniform(7.0, 14.0, 3), *rng.uniform(65.0, 115.0, 3))
    hmin = 12.0 if box is None else float(box.heights.min())
    cutoff = draw(st.floats(0.0, 0.49)) * hmin
    pos = random_positions(rng, n, box, spread=draw(st.sampled_from([1.0, 3.0])))
    return pos, cutoff, box, rng


def _pair_set(i, j):
    return set(zip(i.tolist(), j.tolist()))


@settings(max_examples=60, deadline=None)
@given(systems())
def test_property_permutation_relabels_pairs(system):
    pos, cutoff, box, rng = system
    perm = rng.permutation(len(pos))  # new atom k is old atom perm[k]
    i, j, d = neighbor_pairs(pos, cutoff, box)
    pi, pj, pd = neighbor_pairs(pos[perm], cutoff, box)
    old = perm[pi], perm[pj]
    mapped = {(min(a, b), max(a, b)): x for a, b, x in zip(*old, pd)}
    assert set(mapped) == _pair_set(i, j)
    for a, b, x in zip(i.tolist(), j.tolist(), d):
        assert abs(mapped[(a, b)] - x) <= 1e-9


@settings(max_examples=60, deadline=None)
@given(systems(), st.integers(-3, 3), st.integers(-3, 3), st.integers(-3, 3))
def test_property_lattice_translation_invariance(system, na, nb, nc):
    pos, cutoff, box, rng = system
    if box is None or len(pos) == 0:
        return
    i, j, d = neighbor_pairs(pos, cutoff, box)
    moved = pos.copy()
    k = int(rng.integers(len(pos)))
    moved[k] += np.array([na, nb, nc], dtype=float) @ box.matrix
    mi, mj, md = neighbor_pairs(moved, cutoff, box)
    ref = dict(zip(zip(i.tolist(), j.tolist()), d.tolist()))
    got = dict(zip(zip(mi.tolist(), mj.tolist()), md.tolist()))
    near = {p for p, x in ref.items() if abs(x - cutoff) <= EDGE_TOL} | {p for p, x in got.items() if abs(x - cutoff) <= EDGE_TOL}
    assert set(ref) - near == set(got) - near
    for p in set(ref) & set(got):
        assert abs(ref[p] - got[p]) <= 1e-9


# ---- bad input ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "positions, cutoff, box, match",
    [
        (np.array([[0.0, 0.0, np.nan]]), 1.0, None, "NaN or infinity"),
        (np.array([[0.0, np.inf, 0.0], [1, 1, 1]]), 1.0, [10, 10, 10], "NaN or infinity"),
        (np.zeros((4, 2)), 1.0, None, r"shape \(n, 3\)"),
        (np.zeros(3), 1.0, None, r"shape \(n, 3\)"),
        (np.zeros((2, 3, 3)), 1.0, None, r"shape \(n, 3\)"),
        ("abc", 1.0, None, "numeric array"),
        (np.zeros((4, 3)), -0.1, None, ">= 0"),
        (np.zeros((4, 3)), float("nan"), None, "finite"),
        (np.zeros((4, 3)), "x", None, "number"),
        (np.zeros((4, 3)), 5.0, [10, 10, 10], "half the smallest"),
        (np.zeros((4, 3)), 4.9, cdml.Box.from_parameters(10, 10, 10, 60, 60, 60), "half the smallest"),
        (np.zeros((4, 3)), 1.0, [[1, 0, 0], [2, 0, 0], [0, 0, 1]], "singular"),
        (np.zeros((4, 3)), 1.0, [10, 10], "box must be"),
        (np.zeros((4, 3)), 1.0, [10, 0, 10], "positive"),
        (np.zeros((4, 3)), 1.0, [10, 10, np.nan], "finite"),
    ],
)
def test_bad_input_raises_value_error(positions, cutoff, box, match):
    with pytest.raises(ValueError, match=match):
        neighbor_pairs(positions, cutoff, box)


@pytest.mark.parametrize(
    "types, cm, match",
    [
        (np.array([0, 1, 2]), np.ones((2, 2)), "types must be <"),
        (np.array([0, 1]), np.ones((2, 2)), r"types must have shape \(3,\)"),
        (np.array([0.5, 1, 0]), np.ones((2, 2)), "integer"),
        (np.array([0, 1, 0]), np.ones((2, 3)), "square"),
        (np.array([0, 1, 0]), np.array([[1.0, 2.0], [1.0, 1.0]]), "symmetric"),
        (np.array([0, 1, 0]), np.array([[1.0, np.nan], [np.nan, 1.0]]), "finite"),
        (np.array([0, 1, 0]), np.full((2, 2), 6.0), "half the smallest"),
        (np.array([0, 2**40, 0]), np.ones((2, 2)), "types must be <"),
    ],
)
def test_typed_bad_input(types, cm, match):
    with pytest.raises(ValueError, match=match):
        neighbor_pairs_typed(np.zeros((3, 3)), types, cm, [10.0, 10.0, 10.0])


def test_bad_thread_count():
    with pytest.raises(ValueError, match="num_threads"):
        neighbor_pairs(np.zeros((3, 3)), 1.0, None, num_threads=0)


def test_core_rejects_bad_input_without_python_checks():
    """The C++ layer checks what would crash it even when the Python checks are bypassed."""
    from clusterdynamicsml import _core

    with pytest.raises(ValueError, match="non-finite"):
        _core.neighbor_pairs(np.array([[np.nan, 0, 0], [0, 0, 0]]), 1.0, None, 1)
    with pytest.raises(ValueError, match="half the smallest"):
        _core.neighbor_pairs(np.zeros((2, 3)), 6.0, np.eye(3) * 10, 1)
    with pytest.raises(ValueError, match="cutoff"):
        _core.neighbor_pairs(np.zeros((2, 3)), -1.0, None, 1)
    with pytest.raises(ValueError, match="singular"):
        _core.neighbor_pairs(np.zeros((2, 3)), 1.0, np.zeros((3, 3)), 1)
    with pytest.raises(ValueError, match="type index"):
        _core.neighbor_pairs_typed(np.zeros((2, 3)), np.array([0, 5], dtype=np.int32), np.ones((2, 2)), None, 1)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        _core.neighbor_pairs(np.zeros((2, 4)), 1.0, None, 1)
