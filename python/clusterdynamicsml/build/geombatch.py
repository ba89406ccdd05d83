"""Structures packed for the C++ pair kernels (``scaffold_statistics``, ``contact_statistics``):
input coercion, one flat batch of positions and element ids, element-pair cutoff matrices
(angstrom). Used by the statistics (:mod:`.geomstats`) and by :mod:`.measure`."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._validate import as_positions
from ..chem import normalize_element
from .geomrecord import _KIND, element_pair_key


def _unpack_structure(item, k: int):
    label = None
    if hasattr(item, "symbols") and hasattr(item, "positions"):
        symbols, positions = item.symbols, item.positions
        label = getattr(item, "label", None)
    elif isinstance(item, (tuple, list)) and len(item) in (2, 3):
        symbols, positions = item[0], item[1]
        if len(item) == 3:
            label = item[2]
    else:
        raise ValueError(
            f"structure {k} must be (symbols, positions), (symbols, positions, label) or have "
            f".symbols/.positions, got {type(item).__name__}"
        )
    pos = as_positions(positions, name=f"positions of structure {k}")
    if isinstance(symbols, str):
        raise ValueError(f"symbols of structure {k} must be a sequence of element symbols, got a string")
    syms = [normalize_element(s) for s in symbols]
    if len(syms) != pos.shape[0]:
        raise ValueError(f"structure {k} has {len(syms)} symbols but {pos.shape[0]} positions")
    return syms, pos, label


@dataclass
class _Batch:
    elements: list[str]            # element id -> symbol (sorted)
    kinds: np.ndarray              # int32 (n_elements,)
    positions: np.ndarray          # (n_atoms, 3)
    offsets: np.ndarray            # int64 (n_structures + 1,)
    element_ids: np.ndarray        # int32 (n_atoms,)
    structure_of_atom: np.ndarray  # int64 (n_atoms,)


def _make_batch(structures: Sequence, atom_types: Mapping[str, str]) -> tuple[_Batch, list]:
    elements = sorted(atom_types)
    eid = {e: k for k, e in enumerate(elements)}
    pos_parts, id_parts, labels = [], [], []
    offsets = [0]
    for k, item in enumerate(structures):
        syms, pos, label = _unpack_structure(item, k)
        ids = np.fromiter((eid.get(s, -1) for s in syms), dtype=np.int32, count=len(syms))
        keep = ids >= 0
        pos_parts.append(pos[keep])
        id_parts.append(ids[keep])
        offsets.append(offsets[-1] + int(keep.sum()))
        labels.append(label)
    n_struct = len(offsets) - 1
    positions = np.ascontiguousarray(np.concatenate(pos_parts) if pos_parts else np.zeros((0, 3)))
    ids = np.ascontiguousarray(np.concatenate(id_parts) if id_parts else np.zeros(0, np.int32), dtype=np.int32)
    off = np.asarray(offsets, dtype=np.int64)
    kinds = np.array([_KIND[atom_types[e]] for e in elements], dtype=np.int32)
    sizes = np.diff(off)
    structure_of_atom = np.repeat(np.arange(n_struct, dtype=np.int64), sizes)
    return _Batch(elements, kinds, positions, off, ids, structure_of_atom), labels


def _cutoff_matrix(elements: list[str], table: Mapping[str, float], scale: float = 1.0) -> np.ndarray:
    ne = len(elements)
    m = np.zeros((ne, ne), dtype=np.float64)
    for a in range(ne):
        for b in range(ne):
            v = table.get(element_pair_key(elements[a], elements[b]))
            if v is not None:
                m[a, b] = scale * float(v)
    return m


def _median(values: np.ndarray) -> float:
    return float(np.median(values))
