"""Structures for prediction candidates: the representative that seeds each build and the
build-and-write loop over candidates."""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..chem import normalize_element
from .geomrecord import GeometryStatistics
from .grow import build_structure
from .records import BuiltStructure
from .write import write_built_structure


def _field(obj, name, default=None):
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def select_representative(library, counts: Mapping[str, int], stats: GeometryStatistics):
    """The largest observed structure with the same elements as ``counts`` (ref §4.8 step 1).

    library : iterable of ``(symbols, positions[, label])`` or objects with ``.symbols`` and
        ``.positions``. Only elements known to ``stats`` are compared. The structure with the most
        node atoms wins (ties: more atoms, then the first). Returns ``(symbols, positions)`` or
        None when no structure has exactly those elements.
    """
    want = {normalize_element(e) for e, n in counts.items() if n}
    best, best_key = None, None
    for k, item in enumerate(library):
        if hasattr(item, "symbols") and hasattr(item, "positions"):
            syms, pos = item.symbols, item.positions
        else:
            syms, pos = item[0], item[1]
        norm = [normalize_element(s) for s in syms]
        have = {s for s in norm if s in stats.atom_type_by_element}
        if have != want:
            continue
        n_nodes = sum(1 for s in norm if stats.atom_type_by_element.get(s) == "node")
        key = (n_nodes, len(norm), -k)
        if best_key is None or key > best_key:
            best, best_key = (list(syms), np.asarray(pos, dtype=float)), key
    return best


def build_predicted_structures(
    candidates,
    stats: GeometryStatistics,
    out_dir=None,
    *,
    library=None,
    representatives: Mapping | None = None,
    shell_templates: Mapping | None = None,
    seed: int = 0,
    fmt: str | None = None,
    on_crowding: str = "relax",
) -> list[tuple[object, BuiltStructure, Path | None]]:
    """Build (and write) one structure per retained prediction candidate.

    candidates : objects or dicts with ``counts`` (element -> int), ``label``, ``node_count``
        (target size), ``rank`` and optionally ``source_label``.
    out_dir : folder for ``NN_rankRR_<label>.xyz`` (or .pdb with ``shell_templates``); None: do
        not write.
    library : structures to pick each representative from (:func:`select_representative`);
        ``representatives`` (label or source_label -> structure) takes precedence.
    on_crowding : 'relax' (default here, so that one over-crowded candidate does not stop a
        run; a RuntimeWarning names it, see ``quality.relaxed_atoms``) or 'raise'.
    Returns ``[(candidate, BuiltStructure, path or None), ...]`` in candidate order.
    """
    out = []
    lib = list(library) if library is not None else None
    for cand in candidates:
        counts = _field(cand, "counts")
        if counts is None:
            raise ValueError(f"candidate {cand!r} has no counts")
        label = _field(cand, "label")
        source = _field(cand, "source_label")
        rep = None
        if representatives:
            rep = representatives.get(source) if source is not None else None
            rep = rep if rep is not None else representatives.get(label)
        if rep is None and lib is not None:
            rep = select_representative(lib, counts, stats)
        built = build_structure(counts, stats, representative=rep, label=label, seed=seed, on_crowding=on_crowding)
        if built.quality.relaxed_atoms:
            warnings.warn(
                f"predicted structure {built.label} is too crowded for the learned geometry: "
                f"{built.quality.relaxed_atoms} atoms placed by the relaxed mode; shortest "
                f"{built.quality.shortest_contact_pair} contact = {built.quality.min_distance_ratio:.2f} x the "
                f"learned minimum", RuntimeWarning, stacklevel=2)
        path = None
        if out_dir is not None:
            path = write_built_structure(
                out_dir, built, target_node_count=int(_field(cand, "node_count", 0) or
                                                      sum(1 for t in built.atom_types if t == "node")),
                rank=int(_field(cand, "rank", 1)), source_label=source, shell_templates=shell_templates, fmt=fmt,
            )
        out.append((cand, built, path))
    return out
