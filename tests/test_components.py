"""connected_components against a breadth-first search reference."""
from __future__ import annotations

from collections import deque

import numpy as np
import pytest

import clusterdynamicsml as cdml
from clusterdynamicsml.geometry.neighbors import connected_components, neighbor_pairs

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def bfs_labels(n: int, i, j) -> np.ndarray:
    """Components by BFS, numbered in the order of their smallest vertex."""
    adj = [[] for _ in range(n)]
    for a, b in zip(np.asarray(i).tolist(), np.asarray(j).tolist()):
        adj[a].append(b)
        adj[b].append(a)
    label = np.full(n, -1, dtype=np.int64)
    nxt = 0
    for start in range(n):
        if label[start] >= 0:
            continue
        label[start] = nxt
        queue = deque([start])
        while queue:
            v = queue.popleft()
            for w in adj[v]:
                if label[w] < 0:
                    label[w] = nxt
                    queue.append(w)
        nxt += 1
    return label


def _check(n, i, j, context):
    got = connected_components(n, i, j)
    ref = bfs_labels(n, i, j)
    assert got.dtype == np.int64 and got.shape == (n,)
    bad = np.flatnonzero(got != ref)
    assert bad.size == 0, f"{context}: first differing atoms {bad[:5].tolist()}: got {got[bad[:5]].tolist()}, want {ref[bad[:5]].tolist()}"


@pytest.mark.parametrize("seed", range(20))
def test_random_graphs_match_bfs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    m = int(rng.integers(0, 2 * n))
    i = rng.integers(0, n, m)
    j = rng.integers(0, n, m)  # any order, repeats and self loops
    _check(n, i, j, f"seed={seed} n={n} edges={m}")


@pytest.mark.parametrize("seed", range(5))
def test_components_of_neighbor_pairs(seed):
    rng = np.random.default_rng(seed)
    box = cdml.Box.from_parameters(20, 21, 22, 70, 80, 65)
    pos = rng.random((1500, 3)) @ box.matrix
    i, j, _ = neighbor_pairs(pos, 1.6, box)
    _check(len(pos), i, j, f"seed={seed} pairs={len(i)}")


def test_edge_cases():
    assert connected_components(0, [], []).shape == (0,)
    assert connected_components(3, [], []).tolist() == [0, 1, 2]
    assert connected_components(3, np.array([2]), np.array([2])).tolist() == [0, 1, 2]
    assert connected_components(4, [3, 2], [1, 3]).tolist() == [0, 1, 1, 1]
    assert connected_components(np.int64(2), np.array([1], np.int32), np.array([0], np.uint8)).tolist() == [0, 0]


def test_long_chain_in_reverse_order():
    """A path graph given in worst-case order (deep trees without path compression)."""
    n = 200_000
    i = np.arange(n - 1, 0, -1)
    labels = connected_components(n, i, i - 1)
    assert np.all(labels == 0)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 60).flatmap(
    lambda n: st.tuples(st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3 * n))))
def test_property_labels_equal_bfs(case):
    n, edges = case
    i = np.array([e[0] for e in edges], dtype=np.int64)
    j = np.array([e[1] for e in edges], dtype=np.int64)
    _check(n, i, j, f"n={n} edges={edges[:10]}")
    # relabelling invariance: a permuted graph has the same partition
    perm = np.random.default_rng(n).permutation(n)
    a = connected_components(n, i, j)
    b = connected_components(n, perm[i], perm[j])
    same_a = a[:, None] == a[None, :]
    same_b = b[perm][:, None] == b[perm][None, :]
    assert np.array_equal(same_a, same_b)


@pytest.mark.parametrize(
    "args, match",
    [
        ((3, [0, 3], [1, 1]), r"\[0, 3\), got 3 at position 1"),
        ((3, [0, 1], [-1, 1]), r"\[0, 3\), got -1"),
        ((3, [0, 1], [1]), "same length"),
        ((3, [0.0], [1.0]), "integer"),
        ((3, [[0, 1]], [[1, 2]]), "1-D"),
        ((-1, [], []), "non-negative integer"),
        ((2.5, [], []), "non-negative integer"),
        ((True, [], []), "non-negative integer"),
    ],
)
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        connected_components(*args)


def test_core_checks_indices_itself():
    from clusterdynamicsml import _core

    with pytest.raises(ValueError, match="outside"):
        _core.connected_components(3, np.array([0, 5]), np.array([1, 1]))
    with pytest.raises(ValueError, match="same length"):
        _core.connected_components(3, np.array([0, 1]), np.array([1]))
