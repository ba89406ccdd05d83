"""Periodic neighbour search and connected components (C++ kernels, GIL released)."""
from __future__ import annotations

import numpy as np

from . import _core
from ._threads import resolve_threads
from ._validate import as_cutoff, as_index_array, as_positions
from .box import Box


def _check_cutoff_fits(cutoff: float, box: Box | None) -> None:
    if box is not None:
        half = 0.5 * float(np.min(box.heights))
        if not cutoff < half:
            raise ValueError(
                f"cutoff {cutoff} A is too large for the box: it must be smaller than half the "
                f"smallest perpendicular box height ({half:.6g} A)"
            )


def neighbor_pairs(positions, cutoff, box=None, num_threads=None):
    """All atom pairs within ``cutoff`` under the minimum-image convention.

    Parameters
    ----------
    positions : array (n, 3), angstrom. Any coordinates; atoms outside the cell are wrapped.
    cutoff : float, angstrom, >= 0; with a box it must be < half the smallest box height.
    box : None (open boundaries), a :class:`Box`, 3 lengths, 6 parameters or a (3, 3) matrix.
    num_threads : int or None (package default, see :func:`set_num_threads`).

    Returns
    -------
    i, j : int64 arrays, i < j, sorted by (i, j).
    d : float64 array, minimum-image distances (angstrom), d <= cutoff.
    The result is identical, bit for bit, for any thread count.
    """
    pos = as_positions(positions)
    cut = as_cutoff(cutoff)
    b = Box.coerce(box)
    _check_cutoff_fits(cut, b)
    return _core.neighbor_pairs(pos, cut, None if b is None else b.matrix, resolve_threads(num_threads))


def neighbor_pairs_typed(positions, types, cutoff_matrix, box=None, num_threads=None):
    """Neighbour pairs with a cutoff per type pair.

    ``types`` is an int array (n,) of type indices (negative: atom takes part in no pair);
    ``cutoff_matrix`` a symmetric (T, T) array in angstrom, where entries <= 0 mean the two
    types are never paired. Returns ``(i, j, d)`` like :func:`neighbor_pairs`.
    """
    pos = as_positions(positions)
    t = np.ascontiguousarray(types, dtype=np.int32)
    if t.shape != (pos.shape[0],):
        raise ValueError(f"types must have shape ({pos.shape[0]},), got {t.shape}")
    cm = np.ascontiguousarray(cutoff_matrix, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 1:
        raise ValueError(f"cutoff_matrix must be square (T, T), got shape {cm.shape}")
    if not np.all(np.isfinite(cm)) or not np.array_equal(cm, cm.T):
        raise ValueError("cutoff_matrix must be finite and symmetric")
    if np.any(t >= cm.shape[0]):
        raise ValueError(f"types must be < {cm.shape[0]} (the size of cutoff_matrix)")
    b = Box.coerce(box)
    _check_cutoff_fits(float(max(cm.max(), 0.0)), b)
    return _core.neighbor_pairs_typed(pos, t, cm, None if b is None else b.matrix, resolve_threads(num_threads))


def connected_components(n_atoms, i, j):
    """Label the connected components of the graph with ``n_atoms`` vertices and edges (i, j).

    Returns an int64 array (n_atoms,): components numbered 0, 1, 2, ... in the order of their
    smallest atom index.
    """
    if isinstance(n_atoms, bool) or not isinstance(n_atoms, (int, np.integer)) or n_atoms < 0:
        raise ValueError(f"n_atoms must be a non-negative integer, got {n_atoms!r}")
    ii = as_index_array(i, "i")
    jj = as_index_array(j, "j")
    if ii.shape != jj.shape:
        raise ValueError(f"i and j must have the same length, got {ii.shape[0]} and {jj.shape[0]}")
    return _core.connected_components(int(n_atoms), ii, jj)
