"""Neighbour search and cluster labelling beside the peer tools, in one run.

Systems: uniform random atoms (already in random order) at 0.1 atoms per cubic angstrom,
cutoff 3.5 A, N = 10k, 100k (and 1M with CDML_BENCH_LARGE=1), in a cubic box and in a
triclinic box of the same volume (alpha, beta, gamma = 70, 80, 65 degrees).

Peers (each only if installed): vesin, freud (AABBQuery), MDAnalysis (lib.nsgrid via
self_capped_distance), scipy cKDTree (orthorhombic only) and scipy csgraph
connected_components. Every benchmark checks its result: pair counts equal the reference
count (vesin, else cKDTree, else our single-threaded result); for the float32 peers (freud,
MDAnalysis) the pair sets are compared and every pair on which they differ from ours must lie
within 1e-4 A of the cutoff; component labels equal scipy's after canonical relabelling.
Peers without a thread knob run in the threads=1 column only.

    python -m pytest bench/bench_neighbors.py --benchmark-group-by=param:case \
        --benchmark-columns=median,iqr,rounds --benchmark-sort=name
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import clusterdynamicsml as cdml
from clusterdynamicsml.geometry.neighbors import connected_components, neighbor_pairs

DENSITY = 0.1
CUTOFF = 3.5
SIZES = [10_000, 100_000, 1_000_000]
KINDS = ["ortho", "tric"]
ROUNDS = {10_000: 15, 100_000: 5, 1_000_000: 3}
FLOAT32_TOL = 1e-4  # A: a float32 peer may disagree on pairs this close to the cutoff


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


_systems: dict = {}
_reference: dict = {}
_pairs: dict = {}


def system(n: int, kind: str):
    key = (n, kind)
    if key not in _systems:
        volume = n / DENSITY
        if kind == "ortho":
            box = cdml.Box([volume ** (1 / 3)] * 3)
        else:
            unit = cdml.Box.from_parameters(1.0, 1.0, 1.0, 70.0, 80.0, 65.0)
            box = cdml.Box.from_matrix(unit.matrix * (volume / unit.volume) ** (1 / 3))
        rng = np.random.default_rng(12345 + n)
        pos = rng.random((n, 3)) @ box.matrix  # uniform, random order
        _systems[key] = (pos, box)
    return _systems[key]


def reference_count(n: int, kind: str) -> int:
    key = (n, kind)
    if key not in _reference:
        pos, box = system(n, kind)
        if have("vesin"):
            import vesin

            i, _ = vesin.NeighborList(cutoff=CUTOFF, full_list=False).compute(pos, box.matrix, True, "ij")
            _reference[key] = len(i)
        elif kind == "ortho" and have("scipy"):
            from scipy.spatial import cKDTree

            L = box.lengths
            _reference[key] = len(cKDTree(np.mod(pos, L), boxsize=L).query_pairs(CUTOFF, output_type="ndarray"))
        else:
            _reference[key] = len(neighbor_pairs(pos, CUTOFF, box, num_threads=1)[0])
    return _reference[key]


def pair_list(n: int, kind: str):
    key = (n, kind)
    if key not in _pairs:
        pos, box = system(n, kind)
        _pairs[key] = neighbor_pairs(pos, CUTOFF, box)
    return _pairs[key]


def assert_pairs_match_up_to_float32(n, kind, pi, pj):
    """A float32 peer's pair set equals ours except for pairs within FLOAT32_TOL of the cutoff."""
    pos, box = system(n, kind)
    i, j, _ = pair_list(n, kind)
    ours = i * n + j
    a, b = np.minimum(pi, pj).astype(np.int64), np.maximum(pi, pj).astype(np.int64)
    theirs = np.unique(a * n + b)
    differ = np.concatenate([np.setdiff1d(ours, theirs, assume_unique=True),
                             np.setdiff1d(theirs, ours, assume_unique=True)])
    da, db = differ // n, differ % n
    dist = np.linalg.norm(box.minimum_image(pos[db] - pos[da]), axis=1)
    bad = np.abs(dist - CUTOFF) > FLOAT32_TOL
    assert not bad.any(), f"{int(bad.sum())} pairs differ by more than float32 rounding, first {differ[bad][:5]}"
    return len(differ)


def run(benchmark, fn, n):
    return benchmark.pedantic(fn, rounds=ROUNDS[n], iterations=1, warmup_rounds=1 if n < 1_000_000 else 0)


CASES = [pytest.param(n, kind, id=f"{kind}-{n}") for n in SIZES for kind in KINDS]
THREADS = [1, 2]


# ---- neighbour pairs ------------------------------------------------------------------

@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n, kind", CASES)
def test_pairs_cdml(benchmark, record, n, kind, threads):
    pos, box = system(n, kind)
    benchmark.group = f"pairs {kind} {n}"
    i, j, d = run(benchmark, lambda: neighbor_pairs(pos, CUTOFF, box, num_threads=threads), n)
    assert len(i) == reference_count(n, kind)
    assert np.all(i < j) and float(d.max()) <= CUTOFF
    record(tool="clusterdynamicsml", case=f"{kind}-{n}", n_atoms=n, threads=threads, pairs=len(i), sorted_output=True)


@pytest.mark.skipif(not have("vesin"), reason="vesin not installed")
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n, kind", CASES)
def test_pairs_vesin(benchmark, record, n, kind, threads):
    import vesin

    pos, box = system(n, kind)
    benchmark.group = f"pairs {kind} {n}"
    calc = vesin.NeighborList(cutoff=CUTOFF, full_list=False, n_threads=threads)
    i, j, d = run(benchmark, lambda: calc.compute(pos, box.matrix, True, "ijd"), n)
    assert len(i) == reference_count(n, kind)
    record(tool=f"vesin {vesin.__version__}", case=f"{kind}-{n}", n_atoms=n, threads=threads, pairs=len(i),
           sorted_output=False)


@pytest.mark.skipif(not have("freud"), reason="freud-analysis not installed")
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("n, kind", CASES)
def test_pairs_freud(benchmark, record, n, kind, threads):
    import freud

    pos, box = system(n, kind)
    if n >= 1_000_000 and threads == 1:
        pytest.skip("freud at 1M atoms takes ~10 s per round; the 2-thread column is enough")
    benchmark.group = f"pairs {kind} {n}"
    fbox = freud.box.Box.from_matrix(box.matrix.T)  # freud: columns are the lattice vectors
    points = fbox.wrap(pos.astype(np.float32))
    freud.parallel.set_num_threads(threads)

    def go():
        q = freud.locality.AABBQuery(fbox, points)
        return q.query(points, {"r_max": CUTOFF, "exclude_ii": True}).toNeighborList()

    nl = run(benchmark, go, n)
    qi, pi = np.asarray(nl.query_point_indices), np.asarray(nl.point_indices)
    half = qi < pi  # full list: keep each pair once
    count = int(half.sum())
    differ = assert_pairs_match_up_to_float32(n, kind, qi[half], pi[half])
    record(tool=f"freud {freud.__version__}", case=f"{kind}-{n}", n_atoms=n, threads=threads, pairs=count,
           precision="float32", pairs_differing_near_cutoff=differ)


@pytest.mark.skipif(not have("MDAnalysis"), reason="MDAnalysis not installed")
@pytest.mark.parametrize("n, kind", CASES)
def test_pairs_mdanalysis_nsgrid(benchmark, record, n, kind):
    import MDAnalysis
    from MDAnalysis.lib.distances import self_capped_distance

    pos, box = system(n, kind)
    benchmark.group = f"pairs {kind} {n}"
    dims = np.concatenate([box.lengths, box.angles]).astype(np.float32)
    pairs, dist = run(benchmark, lambda: self_capped_distance(pos, CUTOFF, box=dims, method="nsgrid"), n)
    differ = assert_pairs_match_up_to_float32(n, kind, pairs[:, 0], pairs[:, 1])
    record(tool=f"MDAnalysis {MDAnalysis.__version__} nsgrid", case=f"{kind}-{n}", n_atoms=n, threads=1,
           pairs=len(pairs), pairs_differing_near_cutoff=differ)


@pytest.mark.skipif(not have("scipy"), reason="scipy not installed")
@pytest.mark.parametrize("n", [p.values[0] for p in CASES if p.values[1] == "ortho"], ids=lambda n: f"ortho-{n}")
def test_pairs_scipy_ckdtree(benchmark, record, n):
    import scipy
    from scipy.spatial import cKDTree

    pos, box = system(n, "ortho")
    benchmark.group = f"pairs ortho {n}"
    L = box.lengths

    def go():
        return cKDTree(np.mod(pos, L), boxsize=L).query_pairs(CUTOFF, output_type="ndarray")

    pairs = run(benchmark, go, n)
    assert len(pairs) == reference_count(n, "ortho")
    record(tool=f"scipy {scipy.__version__} cKDTree", case=f"ortho-{n}", n_atoms=n, threads=1, pairs=len(pairs))


# ---- cluster labelling (connected components of the pair list) ------------------------

def _canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel components in the order of their smallest member."""
    _, first = np.unique(labels, return_index=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[labels]


@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"ortho-{n}")
def test_components_cdml(benchmark, record, n):
    i, j, _ = pair_list(n, "ortho")
    benchmark.group = f"components ortho {n}"
    labels = run(benchmark, lambda: connected_components(n, i, j), n)
    if have("scipy"):
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components as cc

        _, ref = cc(coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n)), directed=False)
        assert np.array_equal(labels, _canonical(ref))
    record(tool="clusterdynamicsml", case=f"ortho-{n}", n_atoms=n, pairs=len(i), components=int(labels.max()) + 1)


@pytest.mark.skipif(not have("scipy"), reason="scipy not installed")
@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"ortho-{n}")
def test_components_scipy_csgraph(benchmark, record, n):
    import scipy
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as cc

    i, j, _ = pair_list(n, "ortho")
    benchmark.group = f"components ortho {n}"

    def go():  # building the sparse graph from the pair list is part of the job
        return cc(coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n)), directed=False)

    ncomp, labels = run(benchmark, go, n)
    assert ncomp == int(connected_components(n, i, j).max()) + 1
    record(tool=f"scipy {scipy.__version__} csgraph", case=f"ortho-{n}", n_atoms=n, pairs=len(i), components=ncomp)
