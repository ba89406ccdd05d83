"""Periodic neighbour search and connected components (C++ kernels, GIL released)."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._threads import resolve_threads
from .._validate import as_count, as_cutoff, as_index_array, as_positions, as_type_array
from ..geometry.box import MAX_BOX_LENGTHS, Box, far_out_atom


def _check_cutoff_fits(cutoff: float, box: Box | None) -> None:
    if box is not None:
        half = 0.5 * float(np.min(box.heights))
        if not cutoff < half:
            raise ValueError(
                f"cutoff {cutoff} A is too large for the box: it must be smaller than half the "
                f"smallest perpendicular box height ({half:.6g} A)"
            )


def _box_scale(box: Box | None) -> str:
    return f"{float(np.min(box.heights)):.6g} A" if box is not None else "no box"


def _check_in_reach(pos: np.ndarray, box: Box | None) -> None:
    k = far_out_atom(pos, box)  # None without a box
    if k is not None and box is not None:
        raise ValueError(f"positions: atom {k} at {pos[k].tolist()} A is more than {MAX_BOX_LENGTHS:g} box lengths "
                         f"({_box_scale(box)}) from the origin; wrapping it into the box would "
                         "lose its position (check the coordinates or the box)")


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
    _check_in_reach(pos, b)
    return _core.neighbor_pairs(pos, cut, None if b is None else b.matrix, resolve_threads(num_threads))


def neighbor_pairs_typed(positions, types, cutoff_matrix, box=None, num_threads=None):
    """Neighbour pairs with a cutoff per type pair.

    Parameters
    ----------
    positions : array (n, 3), angstrom.
    types : integer array (n,) of type indices in [0, T); a negative type means the atom takes
        part in no pair.
    cutoff_matrix : symmetric float array (T, T), angstrom. Atoms of types a and b pair when
        d <= cutoff_matrix[a, b]; entries <= 0 mean the two types never pair. With a box the
        largest entry must be < half the smallest box height.
    box, num_threads : as :func:`neighbor_pairs`.

    Returns ``(i, j, d)`` like :func:`neighbor_pairs` (int64, int64, float64; sorted by (i, j);
    bit-identical for any thread count).
    """
    pos = as_positions(positions)
    try:
        cm = np.ascontiguousarray(cutoff_matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"cutoff_matrix must be a numeric (T, T) array in angstrom, got {cutoff_matrix!r}") from None
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] < 1:
        raise ValueError(f"cutoff_matrix must be square (T, T), got shape {cm.shape}")
    if not np.all(np.isfinite(cm)):
        raise ValueError(f"cutoff_matrix must be finite, got {cm.tolist()}")
    if not np.array_equal(cm, cm.T):
        raise ValueError(f"cutoff_matrix must be symmetric, got {cm.tolist()}")
    t = as_type_array(types, pos.shape[0], cm.shape[0])
    b = Box.coerce(box)
    _check_cutoff_fits(float(max(cm.max(), 0.0)), b)
    _check_in_reach(pos, b)
    return _core.neighbor_pairs_typed(pos, t, cm, None if b is None else b.matrix, resolve_threads(num_threads))


def connected_components(n_atoms, i, j):
    """Label the connected components of the graph with ``n_atoms`` vertices and edges (i, j).

    Parameters
    ----------
    n_atoms : int >= 0, number of vertices.
    i, j : integer arrays (m,), edge end points, each in [0, n_atoms); any order, repeats and
        self loops allowed (for example the output of :func:`neighbor_pairs`).

    Returns an int64 array (n_atoms,): components numbered 0, 1, 2, ... in the order of their
    smallest atom index (so atom 0 always has label 0, and an isolated atom is its own component).
    """
    n = as_count(n_atoms, "n_atoms")
    ii = as_index_array(i, "i", upper=n)
    jj = as_index_array(j, "j", upper=n)
    if ii.shape != jj.shape:
        raise ValueError(f"i and j must have the same length, got {ii.shape[0]} and {jj.shape[0]}")
    return _core.connected_components(n, ii, jj)
