"""The one place where Python input is coerced and checked before it reaches C++."""
from __future__ import annotations

import numpy as np


def as_positions(positions, name: str = "positions") -> np.ndarray:
    """Return a C-contiguous float64 (n, 3) array of finite values or raise ValueError."""
    try:
        arr = np.ascontiguousarray(positions, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array of shape (n, 3): {exc}") from None
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, 3)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (n, 3), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise ValueError(f"{name} contains NaN or infinity (first at row {bad})")
    return arr


def as_cutoff(cutoff, name: str = "cutoff") -> float:
    """Return a finite, non-negative float or raise ValueError."""
    try:
        value = float(cutoff)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in angstrom, got {cutoff!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0 angstrom, got {cutoff!r}")
    return value


def as_index_array(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array, got dtype {arr.dtype} and shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.int64)
