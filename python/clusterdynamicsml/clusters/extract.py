"""Per-frame cluster extraction and stoichiometry labels (SPEC section 2, ref sections 1.3-1.6, 2.1-2.6).

Definitions (all distances in angstrom)
---------------------------------------
* Every atom gets a *role* from :class:`ClusterRules`: node, linker, shell, or none.
  Roles are given per element, optionally per (element, residue) for PDB input; a
  residue-qualified entry wins over a bare element entry.
* Two atoms are *bonded* when both are node or linker atoms and their minimum-image
  distance ``d <= cutoff(el_a, el_b, level=0)`` with a positive cutoff (node-node,
  node-linker and linker-linker alike).
* A *cluster* is a connected component of that bond graph. Clusters that contain node
  atoms come first, ordered by their smallest node index (this is the order in which the
  reference tool seeds them from node atoms in file order); linker-only clusters follow,
  ordered by their smallest atom index (a free linker is its own cluster). The order
  never depends on the thread count.
* Shell atoms within a positive level-0 cutoff of a cluster atom are attached to that
  cluster but never connect clusters. A level-0 shell atom belongs to exactly one
  cluster: the one of its nearest node/linker atom (ties: smallest atom index). This is
  deterministic where the reference tool says "first cluster to reach it".
* Each level ``L`` in ``shell_levels`` (ascending) then attaches shell atoms within the
  level-``L`` cutoff of a *node* atom of a cluster (ref section 2.3 step 5). Without
  ``shared_shells`` only still-unattached shell atoms are taken, each by the cluster of its
  nearest node; with ``shared_shells`` a shell atom joins every cluster that has a node
  within the cutoff (level-0 shells stay exclusive, as in the reference).
* With ``shell_molecules`` and PDB frames with residues, an attached shell atom brings its
  whole residue (same residue number and name); without ``shared_shells`` a residue
  touched by several clusters goes whole to the one with the nearest contact.
* A cluster is *percolating* when its bonds wrap around the periodic box onto itself:
  some bond cycle has a nonzero net lattice translation. It is an infinite network, not
  a finite cluster; it is flagged, excluded from :func:`count_labels` unless asked for,
  and skipped by the structure library.

Labels: node elements first, then linker elements, then shell elements (shell atoms only
with ``shells_in_label``); each group alphabetical; a count of 1 is omitted
(``Pb2I5``, ``PbI3``, ``Na2Cl``).

Unwrapping: every atom of a cluster carries an integer lattice image ``n`` (3,), so that
the whole cluster is ``positions[atom_indices] + n @ box.matrix``. The images come from a
breadth-first spanning tree of the bonds (each tree edge adds the lattice shift of its
minimum-image bond vector); a non-tree bond whose accumulated shift disagrees with its own
is the proof of percolation. The cluster is then moved by a lattice vector so that the
centroid of its core atoms lies in the primary cell.
"""
from __future__ import annotations

import collections
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .. import chem
from ..chem import SYMBOLS
from ..geometry.box import Box
from ..geometry.neighbors import connected_components, neighbor_pairs_typed
from ..rules import ROLES, AtomSpec, ClusterRules, as_rules  # noqa: F401  (re-exported)

__all__ = [
    "ClusterRules",
    "Cluster",
    "FrameClusterSummary",
    "extract_clusters",
    "count_labels",
    "summarize_frame",
    "format_label",
    "parse_label",
    "cluster_ids",
    "ELEMENTS",
    "ROLES",
]

#: The 118 element symbols in order of atomic number (from :mod:`clusterdynamicsml.chem`).
ELEMENTS: tuple[str, ...] = SYMBOLS

_FACE_EPS = 1e-9
# Below this many typed atoms the neighbour search runs on one thread when the caller left
# num_threads=None. Results are identical for any thread count. The search opens several
# OpenMP regions, and on a shared machine each barrier can wait milliseconds for a
# descheduled thread: measured 0.2 ms (1 thread) vs 97 ms (2 threads) for 48 atoms, and
# 15-30 ms vs 200-240 ms for 4500 atoms, on the 2-core machine with load ~11. Frames are
# also processed in parallel by the dynamics stage, where threads inside a frame only
# oversubscribe the cores.
_SERIAL_BELOW = 20000
_NODE, _LINKER, _SHELL, _NONE = 0, 1, 2, -1

# --------------------------------------------------------------------------- labels

def format_label(counts: Mapping[str, int], rules: ClusterRules | None = None) -> str:
    """Stoichiometry label from element counts (:func:`clusterdynamicsml.chem.format_label`).

    With ``rules``: node elements first, then linker, then shell elements, each group
    alphabetical; elements in no role come last, alphabetical. Without rules: all
    alphabetical. Zero counts are dropped; a count of 1 is written without a number:
    ``{"Pb": 2, "I": 5}`` gives ``"Pb2I5"``; an empty composition is a ValueError.
    """
    return chem.format_label(counts, rules)


parse_label = chem.parse_label


# --------------------------------------------------------------------------- clusters


@dataclass(eq=False)
class Cluster:
    """One cluster of one frame.

    label : stoichiometry label (see :func:`format_label`).
    counts : element -> count over node and linker atoms (plus typed shell atoms with
        ``shells_in_label``), in label order. ``size`` is their sum.
    atom_indices : int64 (k,), 0-based frame atom indices, core (node + linker, ascending)
        then shell (ascending).
    core_indices, shell_indices : int64 views of the two parts. With ``shell_molecules``
        ``shell_indices`` also holds the untyped atoms of the attached shell molecules.
    shell_levels : int64 (len(shell_indices),), the shell level each shell atom joined at.
    node_count : number of node atoms.
    percolating : True when the bond network wraps around the periodic box onto itself.
    frame_index : ``Frame.index`` of the frame it came from.
    image_shifts : int64 (k, 3), lattice images making the cluster whole:
        ``positions[atom_indices] + image_shifts @ box.matrix``.
    """

    label: str
    counts: dict
    atom_indices: np.ndarray = field(repr=False)
    core_indices: np.ndarray = field(repr=False)
    shell_indices: np.ndarray = field(repr=False)
    node_count: int
    percolating: bool
    frame_index: int
    shell_levels: np.ndarray = field(repr=False, default=None)
    image_shifts: np.ndarray = field(repr=False, default=None)

    @property
    def size(self) -> int:
        """Sum of the label counts (shell atoms only with ``shells_in_label``)."""
        return int(sum(self.counts.values()))

    @property
    def n_atoms(self) -> int:
        return int(self.atom_indices.shape[0])

    def unwrapped_positions(self, frame) -> np.ndarray:
        """Whole-cluster coordinates, float64 (k, 3) in angstrom, in ``atom_indices`` order.

        Bonded atoms are at their minimum-image separation and the centroid of the core
        atoms lies in the primary cell. For a percolating cluster the result is the
        spanning-tree unwrap (whole along the tree, but not a finite object).
        """
        if getattr(frame, "index", None) != self.frame_index:
            raise ValueError(f"cluster comes from frame {self.frame_index}, got frame {getattr(frame, 'index', None)!r}")
        pos = np.asarray(frame.positions, dtype=np.float64)
        if self.atom_indices.size and int(self.atom_indices.max()) >= pos.shape[0]:
            raise ValueError(f"frame has {pos.shape[0]} atoms but the cluster needs index {int(self.atom_indices.max())}")
        out = pos[self.atom_indices]
        if self.image_shifts is not None and np.any(self.image_shifts):
            if frame.box is None:
                raise ValueError("cluster was unwrapped with a periodic box but the frame has none")
            out = out + self.image_shifts @ frame.box.matrix
        return out


@dataclass
class FrameClusterSummary:
    """Per-frame overview.

    counts : Counter label -> number of finite (non-percolating) clusters.
    percolating : Counter label -> number of percolating clusters (normally 0 or 1).
    n_clusters : all clusters, finite and percolating.
    largest_size : largest cluster size (label counts) in the frame, 0 without clusters.
    """

    frame_index: int
    time_fs: float
    counts: collections.Counter
    percolating: collections.Counter
    n_clusters: int
    largest_size: int

    @property
    def n_percolating(self) -> int:
        return int(sum(self.percolating.values()))


# ---- internals


def _frame_box(frame, rules: ClusterRules) -> Box | None:
    if not rules.pbc:
        return None
    box = getattr(frame, "box", None)
    if box is None:
        raise ValueError(f"rules.pbc is True but frame {getattr(frame, 'index', '?')} has no periodic box; "
                         "give the box when reading the frames or use ClusterRules(..., pbc=False)")
    return Box.coerce(box)


def _frame_arrays(frame):
    pos = np.ascontiguousarray(frame.positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"frame.positions must have shape (n, 3), got {pos.shape}")
    symbols = frame.symbols
    if len(symbols) != pos.shape[0]:
        raise ValueError(f"frame has {pos.shape[0]} positions but {len(symbols)} symbols")
    return pos, np.asarray(symbols, dtype=str)


def _type_atoms(frame, rules: ClusterRules, symbols: np.ndarray):
    """Role (int8: 0 node, 1 linker, 2 shell, -1 none) and element id per atom.

    Returns (role, elem_id, elements) where elements lists the role elements in label order.
    """
    n = symbols.shape[0]
    role = np.full(n, _NONE, dtype=np.int8)
    elements = rules.label_order()
    elem_id = np.full(n, -1, dtype=np.int32)
    if n == 0:
        return role, elem_id, elements
    residues = None
    if rules.uses_residues:
        if getattr(frame, "residues", None) is None:
            raise ValueError(f"the rules name residues but frame {getattr(frame, 'index', '?')} has no residue names "
                             "(XYZ input): use PDB frames or element-only rules")
        residues = np.char.upper(np.char.strip(np.asarray(frame.residues, dtype=str)))
    specs = [(r, s) for r, name in enumerate(ROLES) for s in getattr(rules, name)]
    # residue-qualified entries first, then bare elements for atoms still untyped
    for qualified in (True, False):
        for r, (el, res) in specs:
            if (res is not None) != qualified:
                continue
            mask = symbols == el
            if res is not None:
                mask &= residues == res
            mask &= role == _NONE
            role[mask] = r
    typed = role != _NONE
    if typed.any():
        lut = {el: k for k, el in enumerate(elements)}
        uniq, inv = np.unique(symbols[typed], return_inverse=True)
        elem_id[typed] = np.array([lut[u] for u in uniq], dtype=np.int32)[inv]
    return role, elem_id, elements


def _cutoff_matrix(rules: ClusterRules, elements, level: int, pairs: str) -> np.ndarray:
    """(T, T) matrix over type = role * E + element id (a fresh copy; cached per rules).

    pairs: 'level0' (every pair but shell-shell) or 'node-shell'.
    """
    cache = rules.__dict__.setdefault("_matrix_cache", {})
    key = (level, pairs)
    if key not in cache:
        E = len(elements)
        m = np.zeros((3 * E, 3 * E), dtype=np.float64)
        for ra in range(3):
            for rb in range(3):
                if pairs == "level0":
                    if ra == _SHELL and rb == _SHELL:
                        continue
                elif {ra, rb} != {_NODE, _SHELL}:
                    continue
                for ea, a in enumerate(elements):
                    for eb, b in enumerate(elements):
                        c = rules.cutoff(a, b, level)
                        if c:
                            m[ra * E + ea, rb * E + eb] = c
        cache[key] = m
    return cache[key].copy()


def _check_fits(cm: np.ndarray, elements, level: int, box: Box | None, frame) -> None:
    """Readable error when a cutoff is not below half the smallest box height."""
    if box is None or not cm.size:
        return
    half = 0.5 * float(np.min(box.heights))
    if cm.max() >= half:
        a, b = np.unravel_index(int(np.argmax(cm)), cm.shape)
        E = len(elements)
        raise ValueError(f"the level-{level} cutoff {elements[a % E]}-{elements[b % E]} = {cm.max():g} A must be "
                         f"smaller than half the smallest box height ({half:.6g} A) of frame "
                         f"{getattr(frame, 'index', '?')}")


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


@dataclass
class _Extraction:
    """Internal flat result of one frame."""

    n_clusters: int
    core_atoms: np.ndarray         # int64, core atom indices sorted by (cluster, index)
    core_cluster: np.ndarray       # cluster id per entry of core_atoms
    core_shift: np.ndarray         # (., 3)
    shell_atoms: np.ndarray        # int64, by (cluster, index)
    shell_cluster: np.ndarray
    shell_shift: np.ndarray
    shell_level: np.ndarray
    shell_typed: np.ndarray        # bool: a shell-role atom (vs a molecule member)
    percolating: np.ndarray        # bool per cluster
    role: np.ndarray
    elem_id: np.ndarray
    elements: tuple
    box: Box | None


def _nearest_owner(target: np.ndarray, owner: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Index (into the edge arrays) of the nearest owner of each distinct target:
    smallest distance, ties by smallest owner index."""
    order = np.lexsort((owner, dist, target))
    first = np.unique(target[order], return_index=True)[1]
    return order[first]


def _extract(frame, rules: ClusterRules, num_threads, want_shells: bool, need_images: bool = True) -> _Extraction:
    if not isinstance(rules, ClusterRules):
        raise ValueError(f"rules must be a ClusterRules, got {type(rules).__name__}")
    pos, symbols = _frame_arrays(frame)
    box = _frame_box(frame, rules)
    role, elem_id, elements = _type_atoms(frame, rules, symbols)
    E = len(elements)
    n = pos.shape[0]
    core_mask = (role == _NODE) | (role == _LINKER)
    shell_mask = role == _SHELL
    attach_shells = want_shells and bool(shell_mask.any())
    empty_i = np.zeros(0, dtype=np.int64)

    core_atoms = np.flatnonzero(core_mask)
    m = core_atoms.size
    if m == 0:
        z3 = np.zeros((0, 3), dtype=np.int64)
        return _Extraction(0, empty_i, empty_i, z3, empty_i, empty_i, z3, empty_i, np.zeros(0, bool),
                           np.zeros(0, bool), role, elem_id, elements, box)

    if num_threads is None and int(np.count_nonzero(role != _NONE)) < _SERIAL_BELOW:
        num_threads = 1  # tiny searches: thread start-up and barriers cost more than the work
    types = np.where(core_mask | (shell_mask & attach_shells), role.astype(np.int32) * E + elem_id, -1).astype(np.int32)
    cm0 = _cutoff_matrix(rules, elements, 0, "level0")
    if not attach_shells:
        cm0[2 * E:, :] = 0.0
        cm0[:, 2 * E:] = 0.0
    _check_fits(cm0, elements, 0, box, frame)
    i, j, d = neighbor_pairs_typed(pos, types, cm0, box, num_threads)
    core_edge = core_mask[i] & core_mask[j]

    # ---- core components, canonical cluster order
    compress = np.full(n, -1, dtype=np.int64)
    compress[core_atoms] = np.arange(m)
    a, b = compress[i[core_edge]], compress[j[core_edge]]
    comp = connected_components(m, a, b)
    n_comp = int(comp.max()) + 1
    is_node = role[core_atoms] == _NODE
    big = np.iinfo(np.int64).max
    first_node = np.full(n_comp, big, dtype=np.int64)
    np.minimum.at(first_node, comp[is_node], core_atoms[is_node])
    first_any = np.full(n_comp, big, dtype=np.int64)
    np.minimum.at(first_any, comp, core_atoms)
    has_node = first_node != big
    seed = np.where(has_node, first_node, first_any)
    order = np.lexsort((seed, ~has_node))
    rank = np.empty(n_comp, dtype=np.int64)
    rank[order] = np.arange(n_comp)
    cluster_of_core = rank[comp]  # per compressed core atom

    # ---- images and percolation
    percolating = np.zeros(n_comp, dtype=bool)
    if need_images:
        core_shift_edges = _image_shifts(pos, i[core_edge], j[core_edge], box)
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

    # ---- shells
    sh_atoms, sh_cluster, sh_shift, sh_level, sh_dist, sh_via = [], [], [], [], [], []
    if attach_shells:
        sh_edge = (core_mask[i] & shell_mask[j]) | (shell_mask[i] & core_mask[j])
        ei, ej, ed = i[sh_edge], j[sh_edge], d[sh_edge]
        if ei.size:
            fwd = core_mask[ei]
            c = np.where(fwd, ei, ej)
            s = np.where(fwd, ej, ei)
            sh = _image_shifts(pos, c, s, box)
            pick = _nearest_owner(s, c, ed)
            c, s, sh, dd = c[pick], s[pick], sh[pick], ed[pick]
            sh_atoms.append(s)
            sh_cluster.append(cluster_of_core[compress[c]])
            sh_shift.append(s_core[compress[c]] + sh)
            sh_level.append(np.zeros(s.size, dtype=np.int64))
            sh_dist.append(dd)
            sh_via.append(c)
        taken = np.zeros(n, dtype=bool)
        if sh_atoms:
            taken[sh_atoms[0]] = True
        node_mask = role == _NODE
        for level in rules.shell_levels:
            cm = _cutoff_matrix(rules, elements, level, "node-shell")
            _check_fits(cm, elements, level, box, frame)
            cand = shell_mask if rules.shared_shells else (shell_mask & ~taken)
            t = np.where(node_mask | cand, role.astype(np.int32) * E + elem_id, -1).astype(np.int32)
            li, lj, ld = neighbor_pairs_typed(pos, t, cm, box, num_threads)
            if li.size == 0:
                continue
            fwd = node_mask[li]
            c = np.where(fwd, li, lj)
            s = np.where(fwd, lj, li)
            sh = _image_shifts(pos, c, s, box)
            cl = cluster_of_core[compress[c]]
            if rules.shared_shells:
                # one entry per (cluster, shell atom), nearest node; skip pairs already present
                key = cl * n + s
                pick = _nearest_owner(key, c, ld)
                if sh_atoms:
                    present = np.concatenate([c_ * n + s_ for s_, c_ in zip(sh_atoms, sh_cluster)])
                    pick = pick[~np.isin(key[pick], present)]
            else:
                pick = _nearest_owner(s, c, ld)
            if pick.size == 0:
                continue
            sh_atoms.append(s[pick])
            sh_cluster.append(cl[pick])
            sh_shift.append(s_core[compress[c[pick]]] + sh[pick])
            sh_level.append(np.full(pick.size, level, dtype=np.int64))
            sh_dist.append(ld[pick])
            sh_via.append(c[pick])
            taken[s[pick]] = True

    if sh_atoms:
        s_atoms = np.concatenate(sh_atoms)
        s_cluster = np.concatenate(sh_cluster)
        s_shift = np.concatenate(sh_shift)
        s_level = np.concatenate(sh_level)
        s_dist = np.concatenate(sh_dist)
        s_via = np.concatenate(sh_via)
        s_typed = np.ones(s_atoms.size, dtype=bool)
        if rules.shell_molecules and getattr(frame, "residue_ids", None) is not None:
            s_atoms, s_cluster, s_shift, s_level, s_typed = _complete_molecules(
                frame, rules, pos, box, role, s_atoms, s_cluster, s_shift, s_level, s_dist, s_via)
    else:
        s_atoms = s_cluster = s_level = empty_i
        s_shift = np.zeros((0, 3), dtype=np.int64)
        s_typed = np.zeros(0, dtype=bool)

    # ---- recentre each cluster: centroid of its core atoms in the primary cell
    if box is not None:
        inv = np.linalg.inv(box.matrix)
        frac = (pos[core_atoms] + s_core @ box.matrix) @ inv
        sums = np.zeros((n_comp, 3))
        np.add.at(sums, cluster_of_core, frac)
        cnt = np.bincount(cluster_of_core, minlength=n_comp)[:, None]
        # cell of the centroid; the 1e-9 margin keeps centroids on a face (fractional
        # coordinate 0 or 1 up to rounding) in one cell under lattice translations
        cell = np.floor(sums / cnt + _FACE_EPS).astype(np.int64)
        s_core = s_core - cell[cluster_of_core]
        if s_atoms.size:
            s_shift = s_shift - cell[s_cluster]

    corder = np.lexsort((core_atoms, cluster_of_core))
    sorder = np.lexsort((s_atoms, s_cluster)) if s_atoms.size else empty_i
    return _Extraction(
        n_comp, core_atoms[corder], cluster_of_core[corder], s_core[corder],
        s_atoms[sorder], s_cluster[sorder], s_shift[sorder], s_level[sorder], s_typed[sorder],
        percolating, role, elem_id, elements, box,
    )


def _complete_molecules(frame, rules, pos, box, role, s_atoms, s_cluster, s_shift, s_level, s_dist, s_via):
    """Replace attached shell atoms by their whole residues (all non-core atoms of the
    residue, keyed by residue number and name). Each molecule is made whole by minimum
    image from its anchor: the attached shell atom with the lowest level, then the nearest
    contact (ties: smaller core atom, then shell atom index)."""
    n = pos.shape[0]
    rid = np.asarray(frame.residue_ids)
    if rid.shape != (n,) or not np.issubdtype(rid.dtype, np.integer):
        raise ValueError(f"frame.residue_ids must be an integer array of shape ({n},), got {rid.dtype} {rid.shape}")
    names = frame.residues if frame.residues is not None else [""] * n
    _, name_code = np.unique(np.asarray(names, dtype=str), return_inverse=True)
    _, res_of = np.unique(rid.astype(np.int64) * (int(name_code.max()) + 1) + name_code.ravel(), return_inverse=True)
    res_of = res_of.ravel()
    core_mask = (role == _NODE) | (role == _LINKER)
    res = res_of[s_atoms]
    # one anchor per residue (per (cluster, residue) with shared shells)
    key = s_cluster * n + res if rules.shared_shells else res
    order = np.lexsort((s_atoms, s_via, s_dist, s_level, key))
    anchors = order[np.unique(key[order], return_index=True)[1]]
    members_order = np.argsort(res_of, kind="stable")
    starts = np.searchsorted(res_of[members_order], np.arange(int(res_of.max()) + 2))
    out_atoms, out_cluster, out_shift, out_level = [], [], [], []
    for k in anchors.tolist():
        r, at = int(res[k]), int(s_atoms[k])
        mem = members_order[starts[r]:starts[r + 1]]
        mem = mem[~core_mask[mem]]
        out_atoms.append(mem)
        out_cluster.append(np.full(mem.size, s_cluster[k], dtype=np.int64))
        out_shift.append(s_shift[k] + _image_shifts(pos, np.full(mem.size, at), mem, box))
        out_level.append(np.full(mem.size, s_level[k], dtype=np.int64))
    atoms = np.concatenate(out_atoms)
    return (atoms, np.concatenate(out_cluster), np.concatenate(out_shift), np.concatenate(out_level),
            role[atoms] == _SHELL)


def _count_matrix(ex: _Extraction, rules: ClusterRules) -> np.ndarray:
    """(n_clusters, E) element counts used by the labels."""
    E = len(ex.elements)
    counts = np.zeros((ex.n_clusters, E), dtype=np.int64)
    if ex.core_atoms.size:
        np.add.at(counts, (ex.core_cluster, ex.elem_id[ex.core_atoms]), 1)
    if rules.shells_in_label and ex.shell_atoms.size:
        sel = ex.shell_typed & (ex.role[ex.shell_atoms] == _SHELL)
        np.add.at(counts, (ex.shell_cluster[sel], ex.elem_id[ex.shell_atoms[sel]]), 1)
    return counts


def _labels(counts: np.ndarray, elements) -> list[str]:
    cache: dict[bytes, str] = {}
    out = []
    for row in counts:
        k = row.tobytes()
        lab = cache.get(k)
        if lab is None:
            # elements are already in label order
            lab = "".join(el if c == 1 else f"{el}{c}" for el, c in zip(elements, row.tolist()) if c)
            cache[k] = lab
        out.append(lab)
    return out


def extract_clusters(frame, rules: ClusterRules | None = None, num_threads: int | None = None) -> list[Cluster]:
    """All clusters of one frame, in canonical order (see the module docstring).

    Parameters
    ----------
    frame : :class:`~clusterdynamicsml.io.frames.Frame` (symbols, positions (n, 3) angstrom,
        box, residues for residue rules).
    rules : :class:`ClusterRules` (required: there is no default chemistry).
    num_threads : threads of the neighbour search (None: package default, but one thread
        for frames with fewer than 20000 node/linker/shell atoms). The result is identical
        for any thread count.

    Returns a list of :class:`Cluster`. Raises ValueError for a frame without a box when
    ``rules.pbc`` is True, or a cutoff not smaller than half the smallest box height.
    """
    rules = as_rules(rules)
    ex = _extract(frame, rules, num_threads, want_shells=True)
    if ex.n_clusters == 0:
        return []
    counts = _count_matrix(ex, rules)
    labels = _labels(counts, ex.elements)
    cb = np.searchsorted(ex.core_cluster, np.arange(ex.n_clusters + 1))
    sb = np.searchsorted(ex.shell_cluster, np.arange(ex.n_clusters + 1)) if ex.shell_atoms.size else np.zeros(ex.n_clusters + 1, dtype=np.int64)
    node_counts = np.bincount(ex.core_cluster[ex.role[ex.core_atoms] == _NODE], minlength=ex.n_clusters)
    frame_index = int(getattr(frame, "index", 0))
    out = []
    for k in range(ex.n_clusters):
        core = ex.core_atoms[cb[k]:cb[k + 1]]
        shell = ex.shell_atoms[sb[k]:sb[k + 1]]
        atoms = np.concatenate([core, shell])
        shifts = np.concatenate([ex.core_shift[cb[k]:cb[k + 1]], ex.shell_shift[sb[k]:sb[k + 1]]])
        row = counts[k]
        out.append(Cluster(
            label=labels[k],
            counts={el: int(c) for el, c in zip(ex.elements, row.tolist()) if c},
            atom_indices=atoms,
            core_indices=atoms[:core.size],
            shell_indices=atoms[core.size:],
            node_count=int(node_counts[k]),
            percolating=bool(ex.percolating[k]),
            frame_index=frame_index,
            shell_levels=ex.shell_level[sb[k]:sb[k + 1]].copy(),
            image_shifts=shifts,
        ))
    return out


def summarize_frame(frame, rules: ClusterRules | None = None, num_threads: int | None = None) -> FrameClusterSummary:
    """Label counts of one frame, finite and percolating clusters kept apart.

    Shell atoms are only searched when they enter the label (``shells_in_label``), so this
    is the fast path for the dynamics stage.
    """
    rules = as_rules(rules)
    ex = _extract(frame, rules, num_threads, want_shells=rules.shells_in_label, need_images=False)
    counts = _count_matrix(ex, rules)
    labels = _labels(counts, ex.elements)
    finite = collections.Counter(lab for lab, p in zip(labels, ex.percolating.tolist()) if not p)
    perc = collections.Counter(lab for lab, p in zip(labels, ex.percolating.tolist()) if p)
    largest = int(counts.sum(axis=1).max()) if ex.n_clusters else 0
    return FrameClusterSummary(int(getattr(frame, "index", 0)), float(getattr(frame, "time_fs", 0.0)),
                               finite, perc, int(ex.n_clusters), largest)


def count_labels(frame, rules: ClusterRules | None = None, num_threads: int | None = None, *,
                 include_percolating: bool = False) -> collections.Counter:
    """Counter label -> number of clusters with that label in one frame.

    Percolating clusters (infinite networks across the periodic box) are left out unless
    ``include_percolating``; :func:`summarize_frame` reports them separately.
    """
    s = summarize_frame(frame, rules, num_threads)
    if include_percolating:
        return s.counts + s.percolating
    return s.counts


def cluster_ids(n: int) -> list[str]:
    """Per-frame cluster identifiers AAA, AAB, ..., ZZZ (ref section 1.7) for n clusters."""
    if n > 26 ** 3:
        raise ValueError(f"a frame has {n} clusters; cluster ids AAA..ZZZ allow at most {26 ** 3}")
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [letters[k // 676] + letters[(k // 26) % 26] + letters[k % 26] for k in range(n)]
