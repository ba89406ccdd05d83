"""One structure measured with the definitions and learned cutoffs of a :class:`GeometryStatistics`
(the same C++ passes as the statistics; angstrom)."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._threads import resolve_threads
from .geombatch import _cutoff_matrix, _make_batch, _median
from .geomrecord import _KIND, ASSOCIATION_SCALE, ATOM_TYPES, GeometryStatistics, coordination_key, element_pair_key


def measure_structure(symbols, positions, stats: GeometryStatistics, num_threads: int | None = None) -> dict:
    """Measure one structure with the definitions and learned cutoffs of ``stats``.

    Runs the same two C++ passes as :func:`geometry_statistics` on a single structure, with the
    pass-2 contact cutoffs taken from ``stats`` (so the numbers are directly comparable with the
    learned medians). Atoms of elements unknown to ``stats`` are ignored.

    Returns a dict with
    ``shortest_contact`` (angstrom, over all atom pairs; inf with fewer than two atoms),
    ``shortest_contact_pair`` (element pair key), ``min_distance_ratio`` (min over pairs of
    d / ``stats.min_distance``; >= 1 means no contact is shorter than the learned minimum),
    ``pair_min_distances`` (element pair -> shortest distance), ``bond_length_medians``,
    ``node_coordination_medians``, ``non_node_node_coordination_medians`` and
    ``atom_coordination_medians`` (same keys as :class:`GeometryStatistics`).
    """
    atom_types = dict(stats.atom_type_by_element)
    batch, _ = _make_batch([(symbols, positions)], atom_types)
    elements, kinds, ids = batch.elements, batch.kinds, batch.element_ids
    ne = len(elements)
    nthreads = resolve_threads(num_threads)
    assoc = _cutoff_matrix(elements, stats.pair_cutoffs, ASSOCIATION_SCALE)
    p1 = _core.scaffold_statistics(batch.positions, batch.offsets, ids, kinds, assoc, nthreads)
    out: dict = {"shortest_contact": float("inf"), "shortest_contact_pair": None, "min_distance_ratio": float("inf")}
    pair_min: dict[str, float] = {}
    nearest = p1["nearest"]
    for a in range(ne):
        rows = ids == a
        if not np.any(rows):
            continue
        for b in range(ne):
            v = nearest[rows, b]
            v = v[np.isfinite(v)]
            if v.size == 0:
                continue
            key = element_pair_key(elements[a], elements[b])
            d = float(v.min())
            pair_min[key] = min(d, pair_min.get(key, np.inf))
    for key, d in pair_min.items():
        el_a, el_b = key.split("-")
        if d < out["shortest_contact"]:
            out["shortest_contact"], out["shortest_contact_pair"] = d, key
        out["min_distance_ratio"] = min(out["min_distance_ratio"], d / stats.min_distance(el_a, el_b))
    out["pair_min_distances"] = dict(sorted(pair_min.items()))

    bonds: dict[str, list] = {}
    for x, y, d in ((p1["edge_i"], p1["edge_j"], p1["edge_d"]), (p1["assoc_atom"], p1["assoc_node"], p1["assoc_d"])):
        for xx, yy, dd in zip(ids[x].tolist(), ids[y].tolist(), d.tolist()):
            bonds.setdefault(element_pair_key(elements[xx], elements[yy]), []).append(dd)
    out["bond_length_medians"] = {k: _median(np.asarray(v)) for k, v in sorted(bonds.items())}

    coord = p1["coordination"]
    node_rows = kinds[ids] == _KIND["node"] if ids.size else np.zeros(0, bool)
    tracked = [t for t in ATOM_TYPES if t == "node" or t in atom_types.values()]
    out["node_coordination_medians"] = (
        {t: _median(coord[node_rows, _KIND[t]]) for t in tracked} if np.any(node_rows) else {}
    )
    out["non_node_node_coordination_medians"] = {
        elements[a]: _median(coord[ids == a, 0])
        for a in range(ne)
        if kinds[a] != _KIND["node"] and np.any(ids == a)
    }
    cmat = np.zeros((ne, ne))
    for a in range(ne):
        for b in range(ne):
            cmat[a, b] = stats.contact_cutoff(elements[a], elements[b])
    p2 = _core.contact_statistics(batch.positions, batch.offsets, ids, cmat, nthreads)
    by_type = np.zeros((ids.size, 3), dtype=np.int64)
    for e in range(ne):
        by_type[:, kinds[e]] += p2["counts"][:, e]
    atom_kinds = kinds[ids] if ids.size else np.zeros(0, np.int32)
    atom_coord = {}
    for c in tracked:
        rows = atom_kinds == _KIND[c]
        if np.any(rows):
            for t in tracked:
                atom_coord[coordination_key(c, t)] = _median(by_type[rows, _KIND[t]])
    out["atom_coordination_medians"] = atom_coord
    return out
