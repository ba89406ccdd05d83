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
        raise ValueError(f"{name} must be a number, a distance in angstrom, got {cutoff!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0 angstrom, got {cutoff!r}")
    return value


def as_index_array(values, name: str, upper: int | None = None) -> np.ndarray:
    """Return a C-contiguous int64 1-D array; with ``upper``, every value must be in [0, upper)."""
    arr = np.asarray(values)
    if arr.size == 0 and arr.ndim <= 1:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array, got dtype {arr.dtype} and shape {arr.shape}")
    if upper is not None:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= upper:
            bad = int(np.flatnonzero((arr < 0) | (arr >= upper))[0])
            raise ValueError(f"{name} must hold indices in [0, {upper}), got {arr[bad]} at position {bad}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def as_type_array(types, n: int, n_types: int) -> np.ndarray:
    """Per-atom type indices: int32 (n,), each < n_types (negative: the atom takes part in no pair)."""
    arr = np.asarray(types)
    if arr.shape != (n,):
        raise ValueError(f"types must have shape ({n},), got {arr.shape}")
    if n and not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise ValueError(f"types must be an integer array, got dtype {arr.dtype}")
    if n and int(arr.max()) >= n_types:
        bad = int(np.argmax(arr >= n_types))
        raise ValueError(f"types must be < {n_types} (the size of cutoff_matrix), got {arr[bad]} at atom {bad}")
    return np.ascontiguousarray(np.maximum(arr, -1) if n else arr, dtype=np.int32)


def as_count(value, name: str) -> int:
    """A non-negative Python int (bool rejected)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def as_positive(value, name: str, unit: str) -> float:
    """Return a finite float > 0 or raise ValueError naming ``name`` and ``unit``."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number of {unit}, got {value!r}") from None
    if not np.isfinite(out) or out <= 0:
        raise ValueError(f"{name} must be a positive number of {unit}, got {value!r}")
    return out


def as_timestep_fs(timestep_fs, name: str = "timestep_fs") -> float:
    """Return a finite, positive float (femtoseconds) or raise ValueError."""
    return as_positive(timestep_fs, name, "femtoseconds")
