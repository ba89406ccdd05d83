"""Geometry-guided structure builder for predicted clusters (ref §4.8) and its file writers.

Given a composition (``{"Pb": 4, "I": 9, "O": 6}``) and the :class:`GeometryStatistics` learned
from the structure library, :func:`build_structure` places atoms in stages:

1. **Seed**: the node atoms of a representative structure (the largest observed cluster of the
   same elements), in file order while each element is still needed; otherwise one node at the
   origin. Seed scaffold = the pass-1 scaffold (explicit edges + Kruskal) of those nodes.
2. **Node growth**: one node at a time (alphabetically first element still needed) at
   ``anchor + b u`` with ``b`` the learned node bond length and ``u`` from a direction set
   (48 Fibonacci-sphere directions under a seeded random rotation, 12 basis directions around
   the anchor's outward vector, the trans direction and cones at the learned node-node angle
   modes around a single neighbour; the first 12 anchors in the reference order). Score (lower
   is better, ref §4.8 step 2)::

       sum_j  500 (0.75 b - d_j)^2 [d_j < 0.75 b]  +  60 (0.95 b - d_j)^2 [0.75 b <= d_j < 0.95 b]
     + sum_(anchor neighbours k) min_m |angle(k, anchor, new) - theta_m|  -  8 u . outward
     + 10 max(deg(anchor) + 1 - round(median node>node coordination), 0)

3. **Order of the non-node atoms**: by (-median node coordination of the element, linkers
   before shells, element).
4. **Non-node placement** at the learned bond length ``b_X`` (median of the learned
   (X, node element) bond lengths): *bridges* (median node coordination of X >= 1.5) on the
   scaffold edge with the largest coordination deficit, on a ring of radius
   ``h = sqrt(max(b_X, L/2)^2 - (L/2)^2)`` around the edge midpoint; *terminal* atoms around the
   node with the largest deficit (directions as above plus cones at the learned angle modes
   around every existing neighbour and the polyhedral sites that make learned angles with two
   neighbours at once). Scores: ``4 (|d_A - b_X| + |d_B - b_X|) - 3 min d`` for bridges,
   ``sum 500 (0.7 b_X - d)^2 + 40 (0.95 b_X - d)^2 + sum min_m |angle - mode_m| - 8 u . outward``
   for terminal atoms, both plus the interaction penalty (ref §4.8 step 4: short non-node
   contacts ``220 (max(0.65 t, 0.45) - d)^2``, contact-count deficits 12 / excesses 10 per atom
   of each type against the learned atom coordination, 8 x the distance errors of the
   nearest contacts, +-6 per over / under-coordinated neighbour) and an over-coordination
   penalty ``6 (count + 1 - median)`` for every node the new atom would bond to.
   Contact counts are kept incrementally (the reference recounts all pairs for every
   candidate, which is what made it take 170 s for 160 atoms).

**Hard constraint**: no candidate closer to an existing atom than the shortest distance of that
element pair seen in the library (:meth:`GeometryStatistics.min_distance`). When no candidate
passes at the bond length, a 400-point sphere and then the radii 1.1, 1.2, 1.35 and 1.5 x b are
tried over all anchors; if still nothing fits the composition is too crowded for the learned
geometry: ValueError, or with ``on_crowding="relax"`` radii up to 3 x b and finally the least
violating position (counted in ``quality.relaxed_atoms``).

**Connectivity under the run's rules** (:mod:`.connect`, ``rules=``): bonds are placed a margin
below their rule cutoff, non-node candidates must be bonded / attached to a placed core atom,
linkers join the components of the core first (ring and three-fold sites), and components left
apart at the end are docked; ``compactness`` > 0 grows compact instead of open node scaffolds.
Check the result with :func:`clusterdynamicsml.build.validate.validate_structure`.

The writers, shell molecules and the candidate loop live in :mod:`.write`, :mod:`.shells` and
:mod:`.predicted` (their names are still importable from here).

The result is deterministic for a given ``seed`` (it only seeds the rotation of the direction
sets). Distances in angstrom, angles in degrees.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .. import _core
from .._validate import as_positions
from ..chem import normalize_element
from .connect import dock_components, join_candidates, joins
from .directions import (
    _CONE_SAMPLES,
    _DENSE_SPHERE,
    _SPHERE,
    _angle_cost,
    _basis,
    _basis_directions,
    _cone,
    _cone_angles,
    _cone_intersections,
    _neighbour_cones,
    _random_rotation,
    _unit,
)
from .geomrecord import _KIND, ASSOCIATION_SCALE, ATOM_TYPES, GeometryStatistics
from .records import BuildQuality, BuiltStructure, build_quality, format_counts_label  # noqa: F401
from .state import _bond_length_to_nodes, _coerce_counts, _interaction_penalty, _node_bonding, _State

_RADIUS_STEPS = (1.0, 1.1, 1.2, 1.35, 1.5)
_RELAXED_STEPS = (1.75, 2.0, 2.5, 3.0)
_GROWTH_ANCHORS = 12


def _seed_nodes(state: _State, need: dict[str, int], representative, n_nodes: int) -> None:
    if representative is not None:
        if hasattr(representative, "symbols") and hasattr(representative, "positions"):
            rsym, rpos = representative.symbols, representative.positions
        else:
            try:
                rsym, rpos = representative[0], representative[1]
            except (TypeError, IndexError, KeyError):
                raise ValueError("representative must be (symbols, positions) or have .symbols/.positions") from None
        rpos = as_positions(rpos, "representative positions")
        rsym = [normalize_element(s) for s in rsym]
        if len(rsym) != rpos.shape[0]:
            raise ValueError(f"representative has {len(rsym)} symbols but {rpos.shape[0]} positions")
        chosen: list[tuple[str, np.ndarray]] = []
        for s, p in zip(rsym, rpos):
            if need.get(s, 0) > 0 and state.stats.atom_type_by_element.get(s) == "node" and len(chosen) < n_nodes:
                chosen.append((s, p))
                need[s] -= 1
        if chosen:
            centre = np.mean([p for _, p in chosen], axis=0)
            for s, p in chosen:
                state.add_atom(s, p - centre)
            if len(chosen) > 1:
                idx = state.node_indices()
                ids = state.el[idx].astype(np.int32)
                kinds = state.kind_of_el.astype(np.int32)
                res = _core.scaffold_statistics(
                    np.ascontiguousarray(state.pos[idx]), np.array([0, idx.size], dtype=np.int64), ids, kinds,
                    np.ascontiguousarray(state.assoc_cut), 1,
                )
                for a, b in zip(res["edge_i"].tolist(), res["edge_j"].tolist()):
                    state.add_edge(int(idx[a]), int(idx[b]))
            return
    first = sorted(e for e, n in need.items() if n > 0 and state.stats.atom_type(e) == "node")[0]
    state.add_atom(first, np.zeros(3))
    need[first] -= 1


def _grow_node(state: _State, element: str, rng: np.random.Generator) -> None:
    stats = state.stats
    b = max(stats.node_bond_length, 0.1)
    e = state.eid[element]
    c = state.bond_cut[e, e]
    if c > 0 and b < ASSOCIATION_SCALE * c:  # nodes the rules bond directly: a margin below the cutoff
        b = min(b, state.safe_cut[e, e])
    nodes = state.node_indices()
    placed = state.pos[: state.n]
    centroid = placed[nodes].mean(axis=0)
    thetas = stats.node_angle_targets("node", "node")
    nn_target = state.node_target[0]
    rot = _random_rotation(rng)
    sphere = _SPHERE @ rot.T
    dirs_all, extra = [], []
    # anchors in the reference order (degree ascending, farther from the centroid first, index);
    # only the first _GROWTH_ANCHORS are scored (inner, saturated nodes never win the score)
    far = np.linalg.norm(placed[nodes] - centroid, axis=1)
    c = state.compactness
    # compact growth (c > 0) looks at the inner anchors first; the reference order takes the outer ones
    anchors = nodes[np.lexsort((nodes, far if c > 0 else -far, state.node_cnt[nodes, 0]))][:_GROWTH_ANCHORS].tolist()
    for a in anchors:
        nbr = [j for j in state.node_nb[a] if state.kind_of_el[state.el[j]] == 0]
        outward = (placed[a] - centroid) + sum((placed[a] - placed[j] for j in nbr), np.zeros(3))
        if nodes.size == 1:
            dirs = np.vstack([[1.0, 0.0, 0.0], sphere])  # ref: the second node goes to +x b
        else:
            parts = [_basis_directions(outward), sphere]
            if len(nbr) == 1:
                w = _unit(placed[nbr[0]] - placed[a])
                parts.append(-w[None, :])
                parts += [_cone(w, t, 12) for t in _cone_angles(thetas)]
            dirs = np.vstack(parts)
        # radius-independent terms: alignment with the outward vector, angles, degree
        term = -8.0 * (1.0 - min(c, 1.0)) * (dirs @ _unit(outward))
        if nbr:
            term = term + _angle_cost(dirs, _unit(placed[nbr] - placed[a]), [thetas] * len(nbr))
        if nn_target > 0:
            term = term + 10.0 * max(len(nbr) + 1 - nn_target, 0)
        dirs_all.append(dirs)
        extra.append(term)
    anchor_of = np.concatenate([np.full(len(d), a) for a, d in zip(anchors, dirs_all)])
    dirs_cat = np.vstack(dirs_all)
    extra_cost = np.concatenate(extra)
    rows = np.arange(len(dirs_cat))
    steps = _RADIUS_STEPS + (_RELAXED_STEPS if state.relax else ())
    for scale in steps + ((None,) if state.relax else ()):
        if scale is None:  # relaxed mode, nothing admissible: the least violating position
            cand = placed[anchor_of] + dirs_cat * b
            k = state.least_violation(cand, e)
            anchor, p = int(anchor_of[k]), cand[k]
            state.relaxed += 1
            new = state.add_atom(element, p)
            state.add_edge(anchor, new)
            return
        cand = placed[anchor_of] + dirs_cat * (b * scale)
        d, ok = state.feasible(cand, e)
        if not np.any(ok):
            continue
        others = d[:, nodes]
        pen = np.where(others < 0.75 * b, 500.0 * (0.75 * b - others) ** 2, 0.0)
        pen += np.where((others >= 0.75 * b) & (others < 0.95 * b), 60.0 * (0.95 * b - others) ** 2, 0.0)
        score = pen.sum(axis=1) + 5.0 * np.abs(d[rows, anchor_of] - b) + extra_cost
        if c > 0:  # compact growth: 20 c per node bond length of distance from the centroid
            score = score + 20.0 * c * np.linalg.norm(cand - centroid, axis=1) / b
        k = int(np.argmin(np.where(ok, score, np.inf)))
        anchor, p = int(anchor_of[k]), cand[k]
        state.relaxed += scale in _RELAXED_STEPS
        new = state.add_atom(element, p)
        state.add_edge(anchor, new)
        # explicit scaffold edges to every other node within 1.15 x the pair cutoff
        for j in nodes.tolist():
            c = state.assoc_cut[e, state.el[j]]
            if j != anchor and c > 0 and np.linalg.norm(state.pos[j] - p) <= c:
                state.add_edge(j, new)
        return
    raise ValueError(
        f"cannot place node {element}: every position at 1-1.5 x the node bond length ({b:.3f} A) is closer "
        f"to an existing atom than the learned minimum distances allow"
    )


def _place_joining(state: _State, e: int, b_x: float, phase: float, available: np.ndarray, remaining: int,
                   finish) -> bool:
    """Place a linker at a site that joins components of the core (see :mod:`.connect`): with C
    components and ``remaining`` linkers left (this one included), a site that merges at least
    ceil((C - 1) / remaining) + 1 components when there is one, else the best join available.
    Score (lower is better): ``4 sum_bonded |d - b_x| + interaction - 3 min d + over-coordination
    + 6 |bonded nodes - median|``. Returns False when no admissible site joins anything."""
    need = state.components.count(state.n) - 1
    min_join = -(-need // max(remaining, 1))
    cand = join_candidates(state, e, b_x, need_triples=min_join >= 2, phase=phase)
    if len(cand) == 0:
        return False
    d, ok = state.feasible(cand, e)
    j = joins(state, d, e)
    ok &= j >= 1
    if not np.any(ok):
        return False
    ok &= j >= min(min_join, int(j[ok].max()))
    n = state.n
    lim = state.safe_cut[e, state.el[:n]]
    bond = (d <= lim + 1e-9) & (lim > 0) & (state.components.comp[:n] >= 0)
    score = 4.0 * np.where(bond, np.abs(d - b_x), 0.0).sum(axis=1)
    score += _interaction_penalty(state, d, e, available) - 3.0 * d.min(axis=1)
    bonded, over = _node_bonding(state, d, e)
    nn_target = max(1, round(state.stats.non_node_node_coordination(state.elements[e])))
    score += over + 6.0 * np.abs(bonded.sum(axis=1) - nn_target)
    k = int(np.argmin(np.where(ok, score, np.inf)))
    nodes = state.node_indices()
    finish(cand[k], nodes[bond[k, nodes]].tolist())
    return True


def _place_bridging(state: _State, e: int, b_x: float, phase: float, deficit: np.ndarray, nn_target: int,
                    available: np.ndarray, finish, placed: np.ndarray, centroid: np.ndarray) -> bool:
    """Bridge placement of a non-node atom of element id ``e`` across a scaffold edge: edges by
    largest node deficit, least use, farthest from the centroid; on each of the first 8 a ring of
    directions at the bond length ``b_x`` (angstrom) from both ends. True when placed."""
    edges = np.array(state.edges)
    mid = 0.5 * (placed[edges[:, 0]] + placed[edges[:, 1]])
    keys = [
        (-(deficit[a] + deficit[b]), state.edge_use[(a, b)], -float(np.linalg.norm(mid[k] - centroid)), k)
        for k, (a, b) in enumerate(state.edges)
    ]
    keys.sort()
    if keys and -keys[0][0] > 0:
        for key in keys[:8]:
            k = key[3]
            a, b = state.edges[k]
            axis = placed[b] - placed[a]
            half = 0.5 * float(np.linalg.norm(axis))
            h = math.sqrt(max(max(b_x, half) ** 2 - half**2, 0.0))
            ax, u, v = _basis(axis)
            radial = (mid[k] - centroid) - np.dot(mid[k] - centroid, ax) * ax
            ring_dirs = [u, -u, v, -v]
            if np.linalg.norm(radial) > 1e-9:
                r_u = _unit(radial)
                ring_dirs += [r_u, -r_u]
            phi = phase + 2.0 * math.pi * np.arange(12) / 12
            ring = np.vstack([np.array(ring_dirs), np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v])
            cand = mid[k] + h * ring
            d, ok = state.feasible(cand, e)
            if not np.any(ok):
                continue
            score = 4.0 * (np.abs(d[:, a] - b_x) + np.abs(d[:, b] - b_x))
            score += _interaction_penalty(state, d, e, available) - 3.0 * d.min(axis=1)
            bonded, over = _node_bonding(state, d, e)
            score += over + 6.0 * np.abs(bonded.sum(axis=1) - nn_target)
            score = np.where(ok, score, np.inf)
            j = int(np.argmin(score))
            state.edge_use[(a, b)] += 1
            finish(cand[j], [a, b])
            return True
    return False


def _place_non_node(state: _State, element: str, b_x: float, bridge: bool, rng: np.random.Generator,
                    available: np.ndarray, remaining_linkers: int = 0) -> None:
    e = state.eid[element]
    my_kind = state.kind_of_el[e]
    placed = state.pos[: state.n]
    centroid = placed.mean(axis=0)
    nodes = state.node_indices()
    rot = _random_rotation(rng)
    sphere = _SPHERE @ rot.T
    phase = float(rng.uniform(0.0, 2.0 * math.pi))
    deficit = np.maximum(state.node_target[my_kind] - state.node_cnt[:, my_kind], 0)
    nn_target = max(1, round(state.stats.non_node_node_coordination(element)))

    def finish(p: np.ndarray, anchors: list[int]) -> None:
        k = state.add_atom(element, p)
        d = np.linalg.norm(state.pos[nodes] - p, axis=1)
        cut = state.assoc_cut[e, state.el[nodes]]
        bonded = set(nodes[(cut > 0) & (d <= cut)].tolist()) | set(anchors)
        for j in sorted(bonded):
            state.bond_to_node(k, int(j))

    # while the core is in several components, a linker must join some of them
    if (my_kind == _KIND["linker"] and remaining_linkers > 0 and state.components.count(state.n) > 1
            and _place_joining(state, e, b_x, phase, available, remaining_linkers, finish)):
        return

    if bridge and state.edges and _place_bridging(state, e, b_x, phase, deficit, nn_target, available, finish,
                                                  placed, centroid):
        return

    # terminal placement
    angle_targets = [state.stats.node_angle_targets(ATOM_TYPES[my_kind], t) for t in ATOM_TYPES]
    term_target = state.node_target[my_kind] if state.node_target[my_kind] > 0 else 1
    # anchor order (ref _select_attachment_node): largest deficit, farthest from the centroid,
    # fewest non-node then node neighbours, index
    far = np.linalg.norm(placed[nodes] - centroid, axis=1)
    def_t = np.maximum(term_target - state.node_cnt[nodes, my_kind], 0)
    n_nonnode = state.node_cnt[nodes, 1] + state.node_cnt[nodes, 2]
    order = nodes[np.lexsort((nodes, state.node_cnt[nodes, 0], n_nonnode, -far, -def_t))].tolist()
    steps = [(_RADIUS_STEPS[0], False), (_RADIUS_STEPS[0], True)] + [(x, True) for x in _RADIUS_STEPS[1:]]
    if state.relax:
        steps += [(x, True) for x in _RELAXED_STEPS]
    cache: dict = {}
    dense_dirs = _DENSE_SPHERE @ rot.T

    def anchor_directions(a: int):
        """Directions around anchor a (cached over the radius steps of this placement)."""
        if a not in cache:
            nb = state.node_nb[a]
            node_nb = [j for j in nb if state.kind_of_el[state.el[j]] == 0]
            outward = (placed[a] - centroid) - sum((placed[j] - placed[a] for j in node_nb), np.zeros(3))
            nb_vec = _unit(placed[nb] - placed[a]) if nb else np.zeros((0, 3))
            nb_targets = [angle_targets[state.kind_of_el[state.el[j]]] for j in nb]
            dirs = [_basis_directions(outward), sphere, _neighbour_cones(nb_vec, nb_targets, _CONE_SAMPLES, phase)]
            if nb:
                dirs.append(_cone_intersections(nb_vec, nb_targets))
            cache[a] = (np.vstack(dirs), nb_vec, nb_targets, _unit(outward))
        return cache[a]

    for scale, dense in steps:
        r = b_x * scale
        for a in order:
            dirs, nb_vec, nb_targets, out_u = anchor_directions(a)
            if scale == _RADIUS_STEPS[0] and dense:
                dirs = np.vstack([dirs, dense_dirs])
            cand = placed[a] + r * dirs
            d, ok = state.feasible(cand, e, center=placed[a], reach=r)
            if not np.any(ok):
                continue
            # score only the admissible candidates (the others can never be taken)
            keep = np.nonzero(ok)[0]
            dirs, cand, d = dirs[keep], cand[keep], d[keep]
            score = np.where(d < 0.7 * r, 500.0 * (0.7 * r - d) ** 2, 0.0)
            score += np.where((d >= 0.7 * r) & (d < 0.95 * r), 40.0 * (0.95 * r - d) ** 2, 0.0)
            score = score.sum(axis=1) + _angle_cost(dirs, nb_vec, nb_targets) - 8.0 * (dirs @ out_u)
            score += _interaction_penalty(state, d, e, available)
            bonded, over = _node_bonding(state, d, e)
            score += over + 6.0 * np.abs(np.maximum(bonded.sum(axis=1), 1) - nn_target)
            j = int(np.argmin(score))
            state.relaxed += scale in _RELAXED_STEPS
            finish(cand[j], [a])
            return
    if state.relax:  # nothing admissible anywhere: the least violating position around any node
        cand = np.vstack([placed[a] + b_x * (_DENSE_SPHERE @ rot.T) for a in order])
        anchor_of = np.repeat(order, len(_DENSE_SPHERE))
        k = state.least_violation(cand, e)
        state.relaxed += 1
        finish(cand[k], [int(anchor_of[k])])
        return
    raise ValueError(
        f"cannot place {element}: no position at 1-1.5 x its bond length ({b_x:.3f} A) around any node keeps "
        f"the learned minimum distances; the composition is too crowded for the learned geometry"
    )


def build_structure(
    counts: Mapping[str, int],
    stats: GeometryStatistics,
    *,
    representative=None,
    label: str | None = None,
    seed: int = 0,
    on_crowding: str = "raise",
    rules=None,
    compactness: float = 0.0,
) -> BuiltStructure:
    """Build a cluster of the given composition with the learned geometry (ref §4.8).

    Parameters
    ----------
    counts : element -> number of atoms, e.g. ``{"Pb": 4, "I": 9, "O": 6}``; every element must be
        known to ``stats`` and at least one must be a node element.
    stats : :class:`~clusterdynamicsml.build.geomstats.GeometryStatistics` of the structure library.
    representative : optional ``(symbols, positions)`` (or an object with ``.symbols`` and
        ``.positions``) of the largest observed cluster of the same elements; its node atoms seed
        the build.
    label : label of the structure (default: formatted from ``counts``, nodes first).
    seed : seed of the direction-set rotations; equal seeds give identical structures.
    on_crowding : 'raise' (default): ValueError when an atom cannot be placed without a contact
        shorter than the learned minimum. 'relax': try radii up to 3 x the bond length, then take
        the least violating position; ``quality.min_distance_ratio`` < 1 then reports it.
    rules : the run's :class:`~clusterdynamicsml.clusters.ClusterRules` (default: the cutoffs of
        ``stats``). Bonds are placed a margin below their rule cutoff and linkers join the
        components of the core first, so that the structure is one cluster under these rules
        whenever the composition allows it (:mod:`clusterdynamicsml.build.connect`); check with
        :func:`clusterdynamicsml.build.validate.validate_structure`.
    compactness : 0 (default) grows the node scaffold as the reference (outer anchors first, bias
        along the outward vector: open, chain-like clusters). c > 0 takes inner anchors first,
        scales the outward bias by (1 - min(c, 1)) and adds ``20 c |r - centroid| / b`` to every
        node candidate: compact clusters (used to meet a predicted radius of gyration).

    Returns
    -------
    BuiltStructure with exactly the requested composition, centroid at the origin, and its
    :class:`BuildQuality`.

    Raises ValueError for unknown elements, negative counts, no node atom, an element with no
    learned bond to the nodes, or a composition that cannot be placed without contacts shorter
    than the learned minimum distances.
    """
    if not isinstance(stats, GeometryStatistics):
        raise ValueError(f"stats must be a GeometryStatistics, got {type(stats).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if isinstance(compactness, bool) or not isinstance(compactness, (int, float, np.integer, np.floating)) or not (
            0.0 <= float(compactness) < math.inf):
        raise ValueError(f"compactness must be a finite number >= 0, got {compactness!r}")
    if on_crowding not in ("raise", "relax"):
        raise ValueError(f"on_crowding must be 'raise' or 'relax', got {on_crowding!r}")
    want = _coerce_counts(counts, stats)
    types = {e: stats.atom_type(e) for e in want}
    node_els = sorted(e for e in want if types[e] == "node")
    b_x = {e: _bond_length_to_nodes(e, node_els, stats) for e in want if types[e] != "node"}
    elements = sorted(want)
    state = _State(stats, elements, sum(want.values()), relax=on_crowding == "relax", rules=rules,
                   compactness=compactness)
    for el in b_x:  # bonds a margin below the rule cutoff (a learned length above it is shortened)
        i = state.eid[el]
        safe = [state.safe_cut[i, state.eid[n]] for n in node_els]
        safe = [v for v, n in zip(safe, node_els) if v > 0 and v >= state.min_d[i, state.eid[n]]]
        if safe:
            b_x[el] = min(b_x[el], min(safe))
    rng = np.random.default_rng(int(seed))
    n_nodes = sum(want[e] for e in node_els)

    need = {e: want[e] for e in node_els}
    _seed_nodes(state, need, representative, n_nodes)
    while any(n > 0 for n in need.values()):
        el = sorted(e for e, n in need.items() if n > 0)[0]
        _grow_node(state, el, rng)
        need[el] -= 1

    order = sorted(
        (e for e in want if types[e] != "node"),
        key=lambda e: (-stats.non_node_node_coordination(e), 0 if types[e] == "linker" else 1, e),
    )
    available = np.zeros(3, dtype=np.int64)
    linkers_left = sum(want[e] for e in order if types[e] == "linker")
    for el in order:
        bridge = min(max(round(stats.non_node_node_coordination(el)), 1), 2) == 2
        for _ in range(want[el]):
            available = np.bincount(state.kinds, minlength=3)
            _place_non_node(state, el, b_x[el], bridge, rng, available, linkers_left)
            linkers_left -= types[el] == "linker"
    if state.components.count(state.n) > 1:  # composition short of linkers for one join each
        dock_components(state, _DENSE_SPHERE)

    positions = state.pos[: state.n] - state.pos[: state.n].mean(axis=0)
    symbols = [elements[k] for k in state.el[: state.n].tolist()]
    if label is None:
        label = format_counts_label(want, stats)
    return BuiltStructure(symbols=symbols, positions=positions, label=str(label),
                          quality=build_quality(symbols, positions, stats, state.relaxed),
                          atom_types=[types[s] for s in symbols])


# the writers and the candidate loop moved to their own modules; their names stay importable here
from .predicted import build_predicted_structures, select_representative  # noqa: E402,F401
from .shells import ShellTemplate, place_shell_molecules  # noqa: E402,F401
from .write import built_structure_filename, write_built_structure  # noqa: E402,F401
