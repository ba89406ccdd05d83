"""What cluster extraction returns: ``Cluster`` (one cluster of one frame, with its atoms and
lattice images), ``FrameClusterSummary`` (label counts of a frame), ``FrameCompositions`` (the
clusters of a frame as arrays, from the C++ core), labels of count rows and cluster ids."""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

import numpy as np


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
    shell_levels: np.ndarray | None = field(repr=False, default=None)
    image_shifts: np.ndarray | None = field(repr=False, default=None)

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
            got = getattr(frame, "index", None)
            raise ValueError(f"cluster comes from frame {self.frame_index}, got frame {got!r}")
        pos = np.asarray(frame.positions, dtype=np.float64)
        if self.atom_indices.size and int(self.atom_indices.max()) >= pos.shape[0]:
            need = int(self.atom_indices.max())
            raise ValueError(f"frame has {pos.shape[0]} atoms but the cluster needs index {need}")
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


@dataclass
class FrameCompositions:
    """Clusters of one frame as arrays (from :func:`frame_compositions`).

    elements : the role elements in label order (nodes, linkers, shells, each alphabetical).
    counts : int32 (n_clusters, E), element counts per cluster (node and linker atoms, plus
        shell atoms with ``shells_in_label``), clusters in canonical order.
    percolating : bool (n_clusters,), True for a cluster whose bonds wrap the periodic box.
    cluster_of : int64 (n_atoms,), cluster of each node/linker atom, -1 for other atoms.
    group, group_first : the distinct compositions (rows of ``counts``) numbered in order of
        first appearance: group (n_clusters,) and the first cluster of each group (G,); from the
        C++ core (None when computed by the numpy path).
    """

    elements: tuple
    counts: np.ndarray
    percolating: np.ndarray
    cluster_of: np.ndarray
    group: np.ndarray | None = None
    group_first: np.ndarray | None = None

    @property
    def n_clusters(self) -> int:
        return int(self.counts.shape[0])

    def labels(self) -> list[str]:
        """The label of every cluster (each distinct composition is formatted once)."""
        return _labels(self.counts, self.elements)

    def _groups(self):
        if self.group is not None and self.group_first is not None:
            return np.asarray(self.group), np.asarray(self.group_first)
        return _group_rows(self.counts)

    def label_counts(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(labels, finite, percolating): the distinct labels in order of first appearance
        and, per label, the number of finite and of percolating clusters (int64 arrays)."""
        if self.n_clusters == 0:
            z = np.zeros(0, dtype=np.int64)
            return [], z, z
        group, first = self._groups()
        labels = _row_labels(self.counts[first], self.elements)
        perc = np.asarray(self.percolating, dtype=bool)
        n_groups = first.size
        if not perc.any():
            return labels, np.bincount(group, minlength=n_groups).astype(np.int64), np.zeros(n_groups, dtype=np.int64)
        finite = np.bincount(group[~perc], minlength=n_groups).astype(np.int64)
        percolating = np.bincount(group[perc], minlength=n_groups).astype(np.int64)
        return labels, finite, percolating

    def summary(self, frame_index: int = 0, time_fs: float = 0.0) -> FrameClusterSummary:
        """The :class:`FrameClusterSummary` of these clusters (Counters in order of first
        appearance of each label among the finite, and among the percolating clusters)."""
        if self.n_clusters == 0:
            return FrameClusterSummary(frame_index, time_fs, collections.Counter(), collections.Counter(), 0, 0)
        if self.group is not None and not np.any(self.percolating):
            group, first = self._groups()
        else:  # order the finite and the percolating labels each by their own first cluster
            group, first = _group_rows(self.counts, self.percolating)
        names = _row_labels(self.counts[first], self.elements)
        sizes = np.bincount(group, minlength=first.size).tolist()
        flags = np.asarray(self.percolating, dtype=bool)[first].tolist()
        finite = collections.Counter({lab: n for lab, n, p in zip(names, sizes, flags) if not p})
        perc = collections.Counter({lab: n for lab, n, p in zip(names, sizes, flags) if p})
        largest = int(self.counts.sum(axis=1, dtype=np.int64).max())
        return FrameClusterSummary(frame_index, time_fs, finite, perc, self.n_clusters, largest)


def _labels(counts: np.ndarray, elements) -> list[str]:
    """Label of every row of a (n_clusters, E) count matrix (elements in label order); the
    distinct rows are named once."""
    if counts.shape[0] == 0:
        return []
    inverse, first = _group_rows(counts)
    names = np.array(_row_labels(counts[first], elements), dtype=object)
    return names[inverse].tolist()


_LABEL_CACHE: dict = {}


def _row_labels(rows: np.ndarray, elements) -> list[str]:
    """Labels of count rows (E <= 3 elements and counts < 2^20: looked up by a packed key in a
    cache shared by all frames; otherwise formatted)."""
    rows = np.asarray(rows)
    E = rows.shape[1] if rows.ndim == 2 else 0
    if rows.shape[0] == 0:
        return []
    if E > 3 or int(rows.max()) >= 1 << 20:
        return [_format_row(r, elements) for r in rows]
    keys = (rows.astype(np.int64) << (np.arange(E, dtype=np.int64) * 20)).sum(axis=1).tolist()
    cache = _LABEL_CACHE.get(elements)
    if cache is None:
        if len(_LABEL_CACHE) > 64:
            _LABEL_CACHE.clear()
        cache = _LABEL_CACHE[elements] = {}
    out = []
    for k, key in enumerate(keys):
        lab = cache.get(key)
        if lab is None:
            if len(cache) > 100_000:
                cache.clear()
            lab = cache[key] = _format_row(rows[k], elements)
        out.append(lab)
    return out


def _format_row(row, elements) -> str:
    return "".join(el if c == 1 else f"{el}{c}" for el, c in zip(elements, row.tolist()) if c)


def _group_rows(rows: np.ndarray, extra: np.ndarray | None = None):
    """Distinct rows of an integer matrix (plus an optional per-row flag), numbered in order of
    first appearance: returns (group of each row, index of each group's first row)."""
    r = np.asarray(rows, dtype=np.int64)
    n, width = r.shape
    cols = [r[:, k] for k in range(width)] + ([np.asarray(extra, dtype=np.int64)] if extra is not None else [])
    base = int(max((int(c.max()) for c in cols), default=0)) + 1 if n else 1
    if len(cols) * math.log2(max(base, 2)) < 62:  # pack each row into one int64
        key = np.zeros(n, dtype=np.int64)
        for c in cols:
            key = key * base + c
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(np.column_stack(cols), axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(first, kind="stable")  # groups by first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse], first[order]


def cluster_ids(n: int) -> list[str]:
    """Per-frame cluster identifiers AAA, AAB, ..., ZZZ (ref section 1.7) for n clusters."""
    if n > 26 ** 3:
        raise ValueError(f"a frame has {n} clusters; cluster ids AAA..ZZZ allow at most {26 ** 3}")
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [letters[k // 676] + letters[(k // 26) % 26] + letters[k % 26] for k in range(n)]
