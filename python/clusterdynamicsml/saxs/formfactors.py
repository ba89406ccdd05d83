"""X-ray atomic form factors (Waasmaier-Kirfel 1995, through ``xraydb``).

    f0(s) = c + sum_{i=1..5} a_i exp(-b_i s^2),    s = sin(theta) / lambda = q / (4 pi)

with q in 1/angstrom, f0 in electrons; valid for s <= 6 1/angstrom (q <= 75 1/angstrom).
No anomalous (f', f'') or Compton terms. Values are cached per (element, q grid).
"""
from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np

from .. import chem

_CACHE: OrderedDict[tuple[str, bytes], np.ndarray] = OrderedDict()
_CACHE_MAX = 512


_ION = re.compile(r"([A-Za-z]+)(\d*[+-])")


def normalize_element(symbol) -> str:
    """'PB' / 'pb' / ' Pb ' -> 'Pb' (:func:`clusterdynamicsml.chem.normalize_element`); ion
    names such as 'i1-' keep their charge suffix ('I1-', a Waasmaier-Kirfel ion table)."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise ValueError(f"element symbol must be a non-empty string, got {symbol!r}")
    m = _ION.fullmatch(symbol.strip())
    try:
        if m is not None:
            return chem.normalize_element(m.group(1)) + m.group(2)
        return chem.normalize_element(symbol)
    except ValueError as exc:
        raise ValueError(f"no Waasmaier-Kirfel form factor for element {symbol!r} ({exc})") from None


def _as_q(q) -> np.ndarray:
    try:
        arr = np.ascontiguousarray(q, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"q must be a 1-D numeric array in 1/angstrom, got {q!r}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"q must be 1-D, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("q must be finite and >= 0 (1/angstrom)")
    return arr


def form_factor(element: str, q) -> np.ndarray:
    """f0(q) of one element or ion as float64 (nq,), electrons. Unknown elements raise ValueError."""
    import xraydb

    el = normalize_element(element)
    qa = _as_q(q)
    key = (el, qa.tobytes())
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit
    try:
        values = np.asarray(xraydb.f0(el, qa / (4.0 * np.pi)), dtype=np.float64).reshape(qa.shape)
    except Exception as exc:  # xraydb raises ValueError for unknown names
        raise ValueError(f"no Waasmaier-Kirfel form factor for element {element!r} ({exc})") from None
    values.setflags(write=False)
    _CACHE[key] = values
    if len(_CACHE) > _CACHE_MAX:
        _CACHE.popitem(last=False)
    return values


def form_factors(elements, q) -> dict[str, np.ndarray]:
    """Form factors for several elements on one q grid.

    elements : iterable of element symbols (duplicates allowed; normalised to 'Pb' style).
    q : array (nq,), 1/angstrom, q = 4 pi sin(theta) / lambda.
    Returns {element: float64 array (nq,)} in electrons. Raises ValueError for an element
    xraydb does not know (never a silent f0 = 0, unlike the reference).
    """
    if isinstance(elements, str):
        elements = [elements]
    out: dict[str, np.ndarray] = {}
    for e in elements:
        el = normalize_element(e)
        if el not in out:
            out[el] = form_factor(el, q)
    return out
