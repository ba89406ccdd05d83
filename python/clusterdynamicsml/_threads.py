"""The one thread knob of the package.

Every kernel takes ``num_threads``; ``None`` means the package default set here, which
starts as all available OpenMP threads. Results never depend on the thread count.
"""
from __future__ import annotations

import contextlib

from . import _core

_num_threads: int | None = None


def openmp_enabled() -> bool:
    """True when the C++ core was compiled with OpenMP."""
    return bool(_core.openmp_enabled())


def get_num_threads() -> int:
    """Threads the kernels use when ``num_threads=None`` (1 without OpenMP)."""
    if not openmp_enabled():
        return 1
    return _num_threads if _num_threads is not None else int(_core.max_threads())


class _ThreadSetting(contextlib.AbstractContextManager):
    def __init__(self, previous: int | None):
        self._previous = previous

    def __exit__(self, *exc):
        global _num_threads
        _num_threads = self._previous
        return False


def set_num_threads(n: int | None) -> _ThreadSetting:
    """Set the default thread count (``None``: all available).

    Also usable as a context manager that restores the previous value::

        with cdml.set_num_threads(1):
            ...
    """
    global _num_threads
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"num_threads must be a positive integer or None, got {n!r}")
    previous = _num_threads
    _num_threads = n
    return _ThreadSetting(previous)


def resolve_threads(num_threads: int | None) -> int:
    """Validate an explicit thread count or fall back to the package default."""
    if num_threads is None:
        return get_num_threads()
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
    return num_threads
