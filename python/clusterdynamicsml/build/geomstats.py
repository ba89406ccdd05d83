"""Geometry statistics of a structure library (ref §4.7), computed with C++ pair kernels.

Every structure is an isolated cluster (open boundaries, angstrom). Atoms are classified by
element as *node*, *linker* or *shell* (any element not listed is ignored). Two passes:

Pass 1 (C++ ``scaffold_statistics``, structures with at least one node atom):

* nearest contact: for every atom i and every element E, ``min_j |r_i - r_j|`` over the other
  atoms j of element E; pooled per unordered element pair;
* node scaffold: node pairs with ``d <= 1.15 * cutoff(a, b)`` are explicit edges; components are
  then joined by the shortest remaining node pairs (Kruskal; a plain minimum spanning tree
  when there is no explicit edge). Edge lengths are bond lengths of the (node, node) pair;
* association: every non-node atom X is bonded to the nodes with ``d <= 1.15 * cutoff(X, node)``,
  or to its nearest node when there is none. Those distances are bond lengths of (X, node) and
  the number of nodes is X's node coordination;
* node coordination by type (scaffold neighbours for ``node``, associated atoms for the
  others, zeros included) and node-centred angles between every pair of neighbour vectors
  (``acos(u.v / |u||v|)`` in degrees), keyed by the sorted type pair.

Pass 2 (C++ ``contact_statistics``, all structures): a pair (a, b) is a *contact* when

    d <= min(1.25 * t + 0.15, 1.40 * f + 0.20)

with t the pass-1 nearest-contact median of the element pair and f the pair cutoff (or the
default node bond length). Contact distances are pooled per element pair and per type pair;
each atom's number of contacts of each type gives the atom coordination
``(center_type, neighbor_type)``.

All reported values are medians (numpy ``median``: the mean of the two middle values for an
even count). The kernels are parallel over structures and give identical results for any
thread count.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .. import _core
from .._threads import resolve_threads
from ..chem import normalize_element, parse_pair
from ..rules import as_rules
from .geombatch import _Batch, _cutoff_matrix, _make_batch, _median
from .geomrecord import (  # noqa: F401  (the record and its keys stay importable from here)
    _KIND,
    ASSOCIATION_SCALE,
    ATOM_TYPES,
    DEFAULT_BOND_LENGTH,
    DEFAULT_NODE_ANGLE,
    DEFAULT_NODE_NODE_ANGLE,
    GeometryStatistics,
    coordination_key,
    element_pair_key,
    type_pair_key,
)
from .measure import measure_structure  # noqa: F401  (importable from here as before)


def _parse_cutoffs(pair_cutoffs) -> dict[str, float]:
    out: dict[str, float] = {}
    if pair_cutoffs is None:
        return out
    if not isinstance(pair_cutoffs, Mapping):
        raise ValueError(
            f"pair_cutoffs must be a mapping {{('Pb', 'I'): 3.36, ...}}, got {type(pair_cutoffs).__name__}"
        )
    for key, value in pair_cutoffs.items():
        try:
            pair = parse_pair(key)
        except ValueError as exc:
            raise ValueError(f"pair_cutoffs keys must be element pairs like ('Pb', 'I') or 'Pb-I': {exc}") from None
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"pair cutoff for {key!r} must be a number in angstrom, got {value!r}") from None
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"pair cutoff for {key!r} must be finite and > 0 angstrom, got {value!r}")
        out[str(pair)] = v
    return out


def atom_types_from(node_elements, linker_elements=(), shell_elements=(), rules=None) -> dict[str, str]:
    """Element -> atom type ('node' / 'linker' / 'shell') map; ValueError on overlaps or no node."""
    if rules is not None:
        return as_rules(rules).atom_type_by_element
    if node_elements is None:
        raise ValueError("node_elements is required (e.g. ['Pb'])")
    if isinstance(node_elements, str):
        node_elements = [node_elements]
    if isinstance(linker_elements, str):
        linker_elements = [linker_elements]
    if isinstance(shell_elements, str):
        shell_elements = [shell_elements]
    out: dict[str, str] = {}
    for kind, elems in (("node", node_elements), ("linker", linker_elements or ()), ("shell", shell_elements or ())):
        for e in elems:
            el = normalize_element(e)
            if el in out and out[el] != kind:
                raise ValueError(f"element {el!r} is listed both as {out[el]} and as {kind}")
            out[el] = kind
    if "node" not in out.values():
        raise ValueError("at least one node element is required (node_elements is empty)")
    return out


def _rules_cutoffs(rules) -> dict:
    # level-0 cutoff of every pair of role elements (incl. default_cutoff)
    rules = as_rules(rules)
    els = sorted({e for role in ATOM_TYPES for e in rules.role_elements(role)})
    out = {}
    for a_i, a in enumerate(els):
        for b in els[a_i:]:
            c = rules.cutoff(a, b, 0)
            if c:
                out[(a, b)] = float(c)
    return out


ANGLE_BIN_DEG = 2.0
ANGLE_SMOOTH_DEG = 4.0
ANGLE_MODE_MIN_HEIGHT = 0.15


def angle_modes(angles_deg: np.ndarray) -> list[float]:
    """Peaks of an angle distribution (degrees).

    Histogram on [0, 180] with 2-degree bins, smoothed by a Gaussian of 4 degrees (reflected at
    0 and 180), local maxima at least 15 % of the highest one. Each mode is reported as the
    median of the angles within +-10 degrees of the peak, rounded to 0.01 degree.
    """
    a = np.asarray(angles_deg, dtype=float)
    if a.size == 0:
        return []
    nb = int(round(180.0 / ANGLE_BIN_DEG))
    hist, edges = np.histogram(a, bins=nb, range=(0.0, 180.0))
    centres = 0.5 * (edges[1:] + edges[:-1])
    half = int(np.ceil(3 * ANGLE_SMOOTH_DEG / ANGLE_BIN_DEG))
    padded = np.concatenate([hist[half - 1::-1], hist, hist[: -half - 1: -1]]).astype(float)
    x = np.arange(-half, half + 1) * ANGLE_BIN_DEG
    kernel = np.exp(-0.5 * (x / ANGLE_SMOOTH_DEG) ** 2)
    smooth = np.convolve(padded, kernel, mode="same")[half:half + nb]
    top = smooth.max()
    modes = []
    for k in range(nb):
        left = smooth[k - 1] if k > 0 else -np.inf
        right = smooth[k + 1] if k < nb - 1 else -np.inf
        if smooth[k] >= ANGLE_MODE_MIN_HEIGHT * top and smooth[k] > left and smooth[k] >= right:
            near = a[np.abs(a - centres[k]) <= 10.0]
            modes.append(round(float(np.median(near)) if near.size else float(centres[k]), 2))
    return sorted(set(modes))


def _fallback_node_bond_length(atom_types: Mapping[str, str], cutoffs: Mapping[str, float]) -> float:
    node_node, node_other = [], []
    for key, v in cutoffs.items():
        a, b = key.split("-")
        ta, tb = atom_types.get(a), atom_types.get(b)
        if ta == "node" and tb == "node":
            node_node.append(v)
        elif "node" in (ta, tb) and ta is not None and tb is not None:
            node_other.append(2.0 * v)
    if node_node:
        return float(np.median(node_node))
    if node_other:
        return float(np.median(node_other))
    return DEFAULT_BOND_LENGTH


def _put_median(medians: dict, support: dict[str, int], statistic: str, key: str, values: np.ndarray) -> None:
    """``medians[key]`` = the median of ``values``; ``support['<statistic>:<key>']`` = their number."""
    medians[key] = _median(values)
    support[f"{statistic}:{key}"] = int(values.size)


def _pair_groups(a_ids: np.ndarray, b_ids: np.ndarray, names: Sequence[str], key_of) -> list:
    """``(key_of(name_a, name_b), mask)`` of every unordered pair of ids present (ids index
    ``names``), in the order of the pair code ``min * n + max``."""
    n = len(names)
    code = np.minimum(a_ids, b_ids) * n + np.maximum(a_ids, b_ids)
    return [(key_of(names[c // n], names[c % n]), code == c) for c in np.unique(code)]


def geometry_statistics(
    structures: Iterable,
    node_elements: Sequence[str] | None = None,
    linker_elements: Sequence[str] = (),
    shell_elements: Sequence[str] = (),
    pair_cutoffs: Mapping | None = None,
    labels: Sequence[str] | None = None,
    rules=None,
    num_threads: int | None = None,
) -> GeometryStatistics:
    """Learn bond, contact, angle and coordination medians from a structure library (ref §4.7).

    Parameters
    ----------
    structures : iterable of ``(symbols, positions)``, ``(symbols, positions, label)`` or objects
        with ``.symbols`` and ``.positions`` (and optionally ``.label``); positions (n, 3) in
        angstrom, each structure an isolated cluster. Atoms of elements that are not node,
        linker or shell elements are ignored.
    node_elements, linker_elements, shell_elements : element symbols of each atom type.
    pair_cutoffs : ``{('Pb', 'I'): 3.36, ...}`` or ``{'Pb-I': 3.36}`` bond cutoffs in angstrom
        (unordered pairs). Node/non-node association uses 1.15 x cutoff (ref §4.7).
    labels : optional label per structure (overrides labels carried by the structures).
    rules : optional :class:`~clusterdynamicsml.rules.ClusterRules` (roles and level-0 cutoffs,
        including its ``default_cutoff``), or a mapping for ``ClusterRules.from_dict``; then the
        element lists are not used. Explicit ``pair_cutoffs`` override the rules' values.
    num_threads : threads of the C++ kernels (None: package default). Results do not depend on it.

    Returns
    -------
    GeometryStatistics (JSON-serialisable with ``to_json``).

    Raises ValueError for malformed structures, overlapping or missing node elements, bad
    cutoffs, or a library without any node atom.
    """
    atom_types = atom_types_from(node_elements, linker_elements, shell_elements, rules=rules)
    raw_cutoffs = dict(_rules_cutoffs(rules)) if rules is not None else {}
    if pair_cutoffs:
        raw_cutoffs.update(pair_cutoffs)
    cutoffs = _parse_cutoffs(raw_cutoffs)
    nthreads = resolve_threads(num_threads)
    structures = list(structures)
    if not structures:
        raise ValueError("the structure library is empty")
    batch, carried_labels = _make_batch(structures, atom_types)
    if labels is not None:
        labels = list(labels)
        if len(labels) != len(structures):
            raise ValueError(f"got {len(labels)} labels for {len(structures)} structures")
    else:
        labels = carried_labels
    kinds, ids = batch.kinds, batch.element_ids
    is_node_atom = kinds[ids] == _KIND["node"] if ids.size else np.zeros(0, bool)
    nodes_per_struct = np.bincount(batch.structure_of_atom[is_node_atom], minlength=len(structures))
    if not np.any(nodes_per_struct > 0):
        raise ValueError(
            f"no structure of the library contains a node atom (node elements: "
            f"{sorted(e for e, t in atom_types.items() if t == 'node')})"
        )
    support: dict[str, int] = {}
    tracked_types = [t for t in ATOM_TYPES if t == "node" or t in atom_types.values()]

    # ---- pass 1 ----------------------------------------------------------------------
    assoc = _cutoff_matrix(batch.elements, cutoffs, ASSOCIATION_SCALE)
    p1 = _core.scaffold_statistics(batch.positions, batch.offsets, ids, kinds, assoc, nthreads)
    atom_in_pass1 = nodes_per_struct[batch.structure_of_atom] > 0
    seed, min_contact = _seed_contacts(batch, p1["nearest"], atom_in_pass1, support)
    bond_medians = _bond_medians(batch, p1, support)
    if p1["edge_d"].size:
        node_bond = _median(p1["edge_d"])
        support["node_bond_length"] = int(p1["edge_d"].size)
    else:
        node_bond = _fallback_node_bond_length(atom_types, cutoffs)
    node_coord, non_node_coord = _node_coordination(
        batch, p1["coordination"], atom_in_pass1 & is_node_atom, atom_in_pass1, tracked_types, support
    )
    angles, modes = _node_angles(p1, support)

    # ---- pass 2 ----------------------------------------------------------------------
    contact_cut = _contact_cutoffs(batch.elements, seed, cutoffs, node_bond)
    cmat = _cutoff_matrix(batch.elements, contact_cut)
    p2 = _core.contact_statistics(batch.positions, batch.offsets, ids, cmat, nthreads)
    contact_medians, type_contact = _contact_medians(batch, p2, support)
    atom_coord = _atom_coordination(batch, p2["counts"], tracked_types, support)

    return GeometryStatistics(
        atom_type_by_element=dict(sorted(atom_types.items())),
        pair_cutoffs=dict(sorted(cutoffs.items())),
        node_bond_length=float(node_bond),
        bond_length_medians=dict(sorted(bond_medians.items())),
        seed_contact_medians=dict(sorted(seed.items())),
        min_contact_distances=dict(sorted(min_contact.items())),
        contact_cutoffs=dict(sorted(contact_cut.items())),
        contact_distance_medians=dict(sorted(contact_medians.items())),
        geometry_contact_distance_medians=dict(sorted(type_contact.items())),
        node_angle_medians=dict(sorted(angles.items())),
        node_angle_modes=dict(sorted(modes.items())),
        node_coordination_medians=node_coord,
        non_node_node_coordination_medians=dict(sorted(non_node_coord.items())),
        atom_coordination_medians=atom_coord,
        support=dict(sorted(support.items())),
        n_structures=len(structures),
        labels=tuple(sorted({str(x) for x in labels if x is not None})),
        rg_relative_spread=_rg_relative_spread(batch, nodes_per_struct),
    )


def _seed_contacts(batch: _Batch, nearest: np.ndarray, atom_in_pass1: np.ndarray, support: dict) -> tuple:
    """Pass 1 nearest contacts per element pair: ``(seed, min_contact)``, the median over the
    structures with a node atom and the shortest distance over all structures (angstrom)."""
    elements, ids = batch.elements, batch.element_ids
    ne = len(elements)
    seed: dict[str, float] = {}
    min_contact: dict[str, float] = {}
    for a in range(ne):
        rows = atom_in_pass1 & (ids == a)
        for b in range(a, ne):
            vals = nearest[rows, b]
            if a != b:
                other = atom_in_pass1 & (ids == b)
                vals = np.concatenate([vals, nearest[other, a]])
            vals = vals[np.isfinite(vals)]
            if vals.size:
                _put_median(seed, support, "seed_contact", element_pair_key(elements[a], elements[b]), vals)
            # the shortest distance ever seen, over ALL structures (not only those with nodes)
            allv = nearest[ids == a, b]
            allv = allv[np.isfinite(allv)]
            if allv.size:
                min_contact[element_pair_key(elements[a], elements[b])] = float(allv.min())
    return seed, min_contact


def _bond_medians(batch: _Batch, p1: dict, support: dict) -> dict[str, float]:
    """Median bond length per element pair over the scaffold edges and the associations."""
    ids = batch.element_ids
    bonds: dict[str, list[np.ndarray]] = {}
    for x, y, d in ((p1["edge_i"], p1["edge_j"], p1["edge_d"]), (p1["assoc_atom"], p1["assoc_node"], p1["assoc_d"])):
        if d.size == 0:
            continue
        for key, sel in _pair_groups(ids[x], ids[y], batch.elements, element_pair_key):
            bonds.setdefault(key, []).append(d[sel])
    bond_medians: dict[str, float] = {}
    for key, parts in bonds.items():
        _put_median(bond_medians, support, "bond", key, np.concatenate(parts))
    return bond_medians


def _node_coordination(batch: _Batch, coord: np.ndarray, node_rows: np.ndarray, atom_in_pass1: np.ndarray,
                       tracked_types: list[str], support: dict) -> tuple:
    """``(node_coord, non_node_coord)``: median neighbours of each type per node, and median
    number of bonded nodes per non-node element (pass 1)."""
    node_coord: dict[str, float] = {}
    for t in tracked_types:
        vals = coord[node_rows, _KIND[t]]
        if vals.size:
            _put_median(node_coord, support, "node_coordination", t, vals)
    non_node_coord: dict[str, float] = {}
    for a, element in enumerate(batch.elements):
        if batch.kinds[a] == _KIND["node"]:
            continue
        vals = coord[atom_in_pass1 & (batch.element_ids == a), _KIND["node"]]
        if vals.size:
            _put_median(non_node_coord, support, "non_node_node_coordination", element, vals)
    return node_coord, non_node_coord


def _node_angles(p1: dict, support: dict) -> tuple:
    """``(medians, modes)`` of the node-centred angles per type pair (degrees)."""
    angles: dict[str, float] = {}
    modes: dict[str, list[float]] = {}
    ka, kb, deg = p1["angle_kind_a"], p1["angle_kind_b"], p1["angle_deg"]
    for x in range(3):
        for y in range(x, 3):
            sel = (ka == x) & (kb == y)
            if np.any(sel):
                key = type_pair_key(ATOM_TYPES[x], ATOM_TYPES[y])
                _put_median(angles, support, "node_angle", key, deg[sel])
                modes[key] = angle_modes(deg[sel])
    return angles, modes


def _contact_cutoffs(elements: list[str], seed: dict, cutoffs: dict, node_bond: float) -> dict[str, float]:
    """Pass 2 contact cutoff ``min(1.25 t + 0.15, 1.40 f + 0.20)`` of every element pair with a
    seed contact median t (f: the pair cutoff, else the node bond length)."""
    contact_cut: dict[str, float] = {}
    for a in range(len(elements)):
        for b in range(a, len(elements)):
            key = element_pair_key(elements[a], elements[b])
            fallback = cutoffs.get(key, node_bond)
            target = seed.get(key)
            if target is None:
                continue
            contact_cut[key] = min(1.25 * target + 0.15, 1.40 * fallback + 0.20)
    return contact_cut


def _contact_medians(batch: _Batch, p2: dict, support: dict) -> tuple:
    """``(per element pair, per type pair)`` median contact distances (pass 2)."""
    contact_medians: dict[str, float] = {}
    type_contact: dict[str, float] = {}
    cd = p2["d"]
    if cd.size:
        ea, eb = batch.element_ids[p2["i"]], batch.element_ids[p2["j"]]
        for key, sel in _pair_groups(ea, eb, batch.elements, element_pair_key):
            _put_median(contact_medians, support, "contact", key, cd[sel])
        for key, sel in _pair_groups(batch.kinds[ea], batch.kinds[eb], ATOM_TYPES, type_pair_key):
            _put_median(type_contact, support, "geometry_contact", key, cd[sel])
    return contact_medians, type_contact


def _atom_coordination(batch: _Batch, counts: np.ndarray, tracked_types: list[str], support: dict) -> dict:
    """``'center>neighbor'`` -> median number of contacts of that type around an atom (pass 2)."""
    ids, kinds = batch.element_ids, batch.kinds
    atom_coord: dict[str, float] = {}
    atom_kinds = kinds[ids] if ids.size else np.zeros(0, np.int32)
    by_type = np.zeros((ids.size, 3), dtype=np.int64)
    for e in range(len(batch.elements)):
        by_type[:, kinds[e]] += counts[:, e]
    for c in tracked_types:
        rows = atom_kinds == _KIND[c]
        if not np.any(rows):
            continue
        for t in tracked_types:
            _put_median(atom_coord, support, "atom_coordination", coordination_key(c, t), by_type[rows, _KIND[t]])
    return atom_coord


def _rg_relative_spread(batch: _Batch, nodes_per_struct, min_files: int = 5) -> float:
    """Pooled within-composition coefficient of variation of Rg (see GeometryStatistics); the
    structures are grouped by their element counts (the label's content, labels not needed)."""
    off = batch.offsets
    groups: dict[tuple, list[float]] = {}
    for k in range(off.size - 1):
        p = batch.positions[off[k]:off[k + 1]]
        if nodes_per_struct[k] < 2 or p.shape[0] < 2:
            continue
        key = tuple(np.bincount(batch.element_ids[off[k]:off[k + 1]], minlength=len(batch.elements)).tolist())
        groups.setdefault(key, []).append(float(np.sqrt(((p - p.mean(0)) ** 2).sum(1).mean())))
    num = den = 0.0
    for vals in groups.values():
        if len(vals) >= min_files:
            v = np.asarray(vals)
            num += (v.size - 1) * float(np.var(v, ddof=1)) / float(v.mean()) ** 2
            den += v.size - 1
    return float(np.sqrt(num / den)) if den else 0.0
