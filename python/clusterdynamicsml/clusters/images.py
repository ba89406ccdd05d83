"""Lattice images that make clusters whole across a periodic box: the minimum-image shift of
each bond and a breadth-first spanning forest that accumulates them; a bond closing a cycle
with a nonzero net shift proves percolation. Integer shifts n (3,) per atom, positions + n H."""
from __future__ import annotations

import numpy as np

from ..geometry.box import Box


def _image_shifts(pos, i, j, box: Box | None) -> np.ndarray:
    """Integer lattice shift n (m, 3) so that pos[j] - pos[i] + n @ H is the minimum image."""
    if box is None or i.size == 0:
        return np.zeros((i.size, 3), dtype=np.int64)
    raw = pos[j] - pos[i]
    mi = box.minimum_image(raw)
    return np.rint((mi - raw) @ np.linalg.inv(box.matrix)).astype(np.int64)


def _tree_images(m: int, a: np.ndarray, b: np.ndarray, shift: np.ndarray, labels: np.ndarray):
    """Integer images s (m, 3) with s[b] = s[a] + shift on every spanning-tree edge.

    Breadth-first spanning forest from the smallest member of each component, neighbours
    visited in ascending index order (the same forest as ``scipy.sparse.csgraph``
    ``breadth_first_order`` from a virtual root joined to every component root). Returns
    (s, closing_mismatch) where closing_mismatch is a bool per edge: True when the edge
    closes a cycle with a nonzero net lattice translation.

    The search is level-synchronous numpy work (a few array operations per BFS level on the
    edges not yet settled), which avoids building a sparse matrix per frame; deep forests
    (more than ``_BFS_LEVELS`` levels, long chains) fall back to the scipy search.
    """
    if m == 0:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(a.shape[0], dtype=bool)
    if a.size == 0:
        return np.zeros((m, 3), dtype=np.int64), np.zeros(0, dtype=bool)
    # a component none of whose bonds crosses the box has s = 0 and closes nothing: search
    # only the components with a crossing bond (the forest of a component does not depend on
    # the other components, so the images are the same as a search of the whole graph)
    crossing = np.any(shift != 0, axis=1)
    if not crossing.any():
        return np.zeros((m, 3), dtype=np.int64), np.zeros(a.size, dtype=bool)
    hot = np.zeros(int(labels.max()) + 1, dtype=bool)
    hot[labels[a[crossing]]] = True
    s = np.zeros((m, 3), dtype=np.int64)
    if hot.all():
        sub_s = _bfs_images_levels(m, a, b, shift, labels)
        s[:] = _bfs_images_scipy(m, a, b, shift, labels) if sub_s is None else sub_s
    else:
        atoms = np.flatnonzero(hot[labels])
        edges = hot[labels[a]]
        local = np.full(m, -1, dtype=np.int64)
        local[atoms] = np.arange(atoms.size)
        sa, sb, ssh, slab = local[a[edges]], local[b[edges]], shift[edges], labels[atoms]
        sub_s = _bfs_images_levels(atoms.size, sa, sb, ssh, slab)
        s[atoms] = _bfs_images_scipy(atoms.size, sa, sb, ssh, slab) if sub_s is None else sub_s
    closing = np.any(s[b] - s[a] - shift != 0, axis=1)
    return s, closing


_BFS_LEVELS = 64


def _bfs_images_levels(m: int, a: np.ndarray, b: np.ndarray, shift: np.ndarray, labels: np.ndarray):
    """Images by a level-synchronous BFS; None when the forest is deeper than _BFS_LEVELS.

    Within a level the queue order is (queue position of the parent, atom index) and each new
    atom's parent is its earliest-queued neighbour in the previous level: exactly the order
    of a FIFO breadth-first search that scans neighbours in ascending index order.
    """
    roots = np.unique(labels, return_index=True)[1]
    u = np.concatenate([a, b])
    v = np.concatenate([b, a])
    sh = np.concatenate([shift, -shift])
    qpos = np.full(m, -1, dtype=np.int64)
    qpos[roots] = np.arange(roots.size)
    nxt = roots.size
    big = np.int64(m + 1)
    s = np.zeros((m, 3), dtype=np.int64)
    for _ in range(_BFS_LEVELS):
        qu, qv = qpos[u], qpos[v]
        grow = (qu >= 0) & (qv < 0)
        if not grow.any():
            return s
        ev = v[grow]
        order = np.argsort(ev * big + qu[grow])          # by new atom, then parent queue position
        evo = ev[order]
        head = np.ones(evo.size, dtype=bool)
        np.not_equal(evo[1:], evo[:-1], out=head[1:])
        first = np.flatnonzero(grow)[order[head]]        # the parent edge of each new atom
        new, par = v[first], u[first]
        s[new] = s[par] + sh[first]
        q_order = np.argsort(qpos[par] * big + new)       # queue order of the new level
        qpos[new[q_order]] = np.arange(nxt, nxt + new.size)
        nxt += new.size
        # settled edges (both ends seen) are dropped
        keep = (qpos[u] < 0) | (qpos[v] < 0)
        u, v, sh = u[keep], v[keep], sh[keep]
    return None


def _bfs_images_scipy(m: int, a: np.ndarray, b: np.ndarray, shift: np.ndarray, labels: np.ndarray):
    """Images from scipy's breadth-first order (virtual root joined to every component
    root), then pointer jumping to sum the shifts along tree paths in O(m log depth)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import breadth_first_order

    roots = np.unique(labels, return_index=True)[1]
    V = m
    rows = np.concatenate([a, b, np.full(roots.size, V)])
    cols = np.concatenate([b, a, roots])
    g = csr_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(m + 1, m + 1))
    _, pred = breadth_first_order(g, V, directed=False, return_predecessors=True)
    pred = pred.astype(np.int64)
    pred[V] = V
    # shift of the tree edge pred[x] -> x
    W = np.int64(m + 1)
    keys = np.concatenate([a * W + b, b * W + a])
    vals = np.concatenate([shift, -shift])
    order = np.argsort(keys, kind="stable")
    keys, vals = keys[order], vals[order]
    delta = np.zeros((m + 1, 3), dtype=np.int64)
    child = np.flatnonzero(pred[:m] != V)
    if child.size:
        q = pred[child] * W + child
        pos = np.searchsorted(keys, q)
        delta[child] = vals[pos]
    ptr = pred.copy()
    acc = delta
    while np.any(ptr[:m] != V):
        acc = acc + acc[ptr]
        ptr = ptr[ptr]
    return acc[:m]


def _core_images(pos, box, core_atoms, a, b, comp, n_comp, cluster_of_core, need_images):
    """Image shift (m, 3) of each core atom (spanning-tree unwrap) and the percolating flag per
    cluster. ``a``, ``b`` are the core-core edges in compressed core indices. Without
    ``need_images`` the shifts are zero and only cyclic components are unwrapped to find
    percolation."""
    m = core_atoms.size
    percolating = np.zeros(n_comp, dtype=bool)
    if need_images:
        core_shift_edges = _image_shifts(pos, core_atoms[a], core_atoms[b], box)
        s_core, closing = _tree_images(m, a, b, core_shift_edges, comp)
        if closing.any():
            percolating[cluster_of_core[a[closing]]] = True
    else:
        # labels only: a component can percolate only if it has a cycle (edges >= atoms)
        s_core = np.zeros((m, 3), dtype=np.int64)
        if box is not None and a.size >= m - n_comp + 1:
            n_edges = np.bincount(comp[a], minlength=n_comp)
            n_atoms = np.bincount(comp, minlength=n_comp)
            cyclic = n_edges >= n_atoms
            if cyclic.any():
                keep_atom = cyclic[comp]
                keep_edge = cyclic[comp[a]]
                sub = np.cumsum(keep_atom) - 1
                _, sub_comp = np.unique(comp[keep_atom], return_inverse=True)
                ea, eb = a[keep_edge], b[keep_edge]
                shifts = _image_shifts(pos, core_atoms[ea], core_atoms[eb], box)
                _, closing = _tree_images(int(keep_atom.sum()), sub[ea], sub[eb], shifts, sub_comp.ravel())
                if closing.any():
                    percolating[cluster_of_core[a[keep_edge][closing]]] = True
    return s_core, percolating
