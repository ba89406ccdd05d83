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
   modes around a single neighbour; the first 12 anchors in the reference order). Score (lower is better, ref §4.8 step 2)::

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

The result is deterministic for a given ``seed`` (it only seeds the rotation of the direction
sets). Distances in angstrom, angles in degrees.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .. import _core
from ..build.geomstats import (
    ASSOCIATION_SCALE,
    ATOM_TYPES,
    GeometryStatistics,
    element_pair_key,
    measure_structure,
    normalize_element,
)
from .._validate import as_positions

_KIND = {name: k for k, name in enumerate(ATOM_TYPES)}
_N_SPHERE = 48
_CONE_SAMPLES = 10
_RADIUS_STEPS = (1.0, 1.1, 1.2, 1.35, 1.5)
_RELAXED_STEPS = (1.75, 2.0, 2.5, 3.0)
_GROWTH_ANCHORS = 12


# ---- records ------------------------------------------------------------------------------

@dataclass(frozen=True)
class BuildQuality:
    """How well a built structure matches the learned geometry (measured with
    :func:`~clusterdynamicsml.build.geomstats.measure_structure`).

    shortest_contact : shortest interatomic distance (angstrom) and shortest_contact_pair its
        element pair. min_distance_ratio : min over pairs of d / learned minimum distance
        (>= 1: no contact is shorter than anything seen in the library).
    bond_length_medians / bond_length_deviations : built median bond length per element pair
        and (built - learned) in angstrom. max_abs_bond_deviation : largest absolute deviation.
    node_coordination_deviations : type -> built - learned median node coordination.
    non_node_node_coordination_deviations : element -> built - learned.
    atom_coordination_deviations : 'center>neighbor' -> built - learned median contact count.
    relaxed_atoms : atoms placed by the relaxed mode (farther than 1.5 x their bond length, or at
        the least violating position); 0 for a normal build.
    """

    shortest_contact: float
    shortest_contact_pair: str | None
    min_distance_ratio: float
    bond_length_medians: dict[str, float] = field(default_factory=dict)
    bond_length_deviations: dict[str, float] = field(default_factory=dict)
    max_abs_bond_deviation: float = 0.0
    node_coordination_deviations: dict[str, float] = field(default_factory=dict)
    non_node_node_coordination_deviations: dict[str, float] = field(default_factory=dict)
    atom_coordination_deviations: dict[str, float] = field(default_factory=dict)
    relaxed_atoms: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BuiltStructure:
    """A built cluster: symbols (n,), positions float64 (n, 3) in angstrom (centroid at the
    origin; nodes first, then non-node atoms in placement order), its label and quality."""

    symbols: list[str]
    positions: np.ndarray
    label: str
    quality: BuildQuality
    atom_types: list[str] = field(default_factory=list)  # 'node' / 'linker' / 'shell' per atom

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.symbols:
            out[s] = out.get(s, 0) + 1
        return dict(sorted(out.items()))

    @property
    def n_atoms(self) -> int:
        return len(self.symbols)


def build_quality(symbols, positions, stats: GeometryStatistics, relaxed_atoms: int = 0) -> BuildQuality:
    """Measure ``symbols``/``positions`` against the learned medians of ``stats``."""
    m = measure_structure(symbols, positions, stats)
    bond_dev = {
        k: v - stats.bond_length_medians[k] for k, v in m["bond_length_medians"].items() if k in stats.bond_length_medians
    }
    node_dev = {
        t: v - stats.node_coordination_medians[t]
        for t, v in m["node_coordination_medians"].items()
        if t in stats.node_coordination_medians
    }
    nn_dev = {
        e: v - stats.non_node_node_coordination_medians[e]
        for e, v in m["non_node_node_coordination_medians"].items()
        if e in stats.non_node_node_coordination_medians
    }
    atom_dev = {
        k: v - stats.atom_coordination_medians[k]
        for k, v in m["atom_coordination_medians"].items()
        if k in stats.atom_coordination_medians
    }
    return BuildQuality(
        shortest_contact=float(m["shortest_contact"]),
        shortest_contact_pair=m["shortest_contact_pair"],
        min_distance_ratio=float(m["min_distance_ratio"]),
        bond_length_medians=m["bond_length_medians"],
        bond_length_deviations=bond_dev,
        max_abs_bond_deviation=float(max((abs(v) for v in bond_dev.values()), default=0.0)),
        node_coordination_deviations=node_dev,
        non_node_node_coordination_deviations=nn_dev,
        atom_coordination_deviations=atom_dev,
        relaxed_atoms=int(relaxed_atoms),
    )


# ---- geometry helpers ---------------------------------------------------------------------

def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross has a large per-call overhead)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _unit(v: np.ndarray) -> np.ndarray:
    if v.ndim == 1:
        n = math.sqrt(float(v @ v))
        return v / n if n > 1e-12 else np.zeros(3)
    n = np.sqrt((v * v).sum(axis=-1, keepdims=True))
    return np.divide(v, n, out=np.zeros_like(v), where=n > 1e-12)


def _fibonacci_sphere(n: int) -> np.ndarray:
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    r = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    phi = k * math.pi * (3.0 - math.sqrt(5.0))
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


_SPHERE = _fibonacci_sphere(_N_SPHERE)
_DENSE_SPHERE = _fibonacci_sphere(400)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly random rotation matrix from a normalised Gaussian quaternion (w, x, y, z)."""
    w, x, y, z = rng.standard_normal(4)
    n = math.sqrt(w * w + x * x + y * y + z * z) or 1.0
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal (axis, u, v); a fixed axis when ``axis`` is zero."""
    a = _unit(np.asarray(axis, float))
    if not np.any(a):
        a = np.array([1.0, 0.0, 0.0])
    helper = np.array([0.0, 0.0, 1.0]) if abs(a[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = _unit(_cross(a, helper))
    v = _cross(a, u)
    return a, u, v


def _basis_directions(axis: np.ndarray) -> np.ndarray:
    """The 12 directions of ref §4.8 around an axis: +-a, +-u, +-v, a+-u, a+-v, u+-v (normalised)."""
    a, u, v = _basis(axis)
    d = np.array([a, -a, u, -u, v, -v, a + u, a - u, a + v, a - v, u + v, u - v])
    return _unit(d)


def _cone(axis: np.ndarray, angle_deg: float, n: int = _CONE_SAMPLES, phase: float = 0.0) -> np.ndarray:
    a, u, v = _basis(axis)
    t = math.radians(angle_deg)
    phi = phase + 2.0 * math.pi * np.arange(n) / n
    return math.cos(t) * a + math.sin(t) * (np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v)


def _cone_angles(targets: Sequence[float]) -> list[float]:
    """Target angles that define a cone (a 0 or 180 degree target is a single direction)."""
    return [t for t in targets if 15.0 < t < 165.0]


def _cone_intersections(w: np.ndarray, targets: Sequence[Sequence[float]]) -> np.ndarray:
    """Unit directions x that make a target angle with two neighbours at once: for every pair
    (a, b) of the unit rows of w and every pair of their target angles (up to two solutions
    each), plus the opposite -w_a of every row. These are the sites that complete a polyhedron
    around a centre whose neighbours point along w (e.g. the free corners of an octahedron)."""
    out = [-w]
    m = w.shape[0]
    cones = [np.cos(np.radians(_cone_angles(t))) for t in targets]
    for a in range(m):
        for b in range(a + 1, m):
            g = float(w[a] @ w[b])
            if 1.0 - g * g < 1e-6:
                continue
            n = _cross(w[a], w[b])
            n /= math.sqrt(float(n @ n))
            for ca in cones[a]:
                for cb in cones[b]:
                    alpha = (ca - cb * g) / (1.0 - g * g)
                    beta = (cb - ca * g) / (1.0 - g * g)
                    gamma2 = 1.0 - (alpha * alpha + beta * beta + 2.0 * alpha * beta * g)
                    if gamma2 < 0.0:
                        continue
                    base = alpha * w[a] + beta * w[b]
                    gamma = math.sqrt(gamma2)
                    out.append(np.array([base + gamma * n, base - gamma * n]))
    return _unit(np.vstack(out)) if out else np.zeros((0, 3))


def _angle_cost(dirs: np.ndarray, nb_vec: np.ndarray, targets: Sequence[Sequence[float]]) -> np.ndarray:
    """sum over neighbours of min over that neighbour's target angles |angle - target| (degrees),
    for every unit direction in dirs (K, 3); nb_vec (m, 3) unit neighbour vectors."""
    if len(nb_vec) == 0:
        return np.zeros(len(dirs))
    width = max(len(t) for t in targets)
    tab = np.full((len(targets), width), 1e9)
    for k, t in enumerate(targets):
        tab[k, : len(t)] = t
    ang = _angles_deg(dirs, nb_vec)
    return np.abs(ang[:, :, None] - tab[None, :, :]).min(axis=2).sum(axis=1)


def _angles_deg(u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Angles (K, m) in degrees between unit rows of u (K, 3) and unit rows of w (m, 3)."""
    return np.degrees(np.arccos(np.clip(u @ w.T, -1.0, 1.0)))


def _pairwise(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Distances (K, n) between rows of p (K, 3) and q (n, 3), angstrom."""
    diff = p[:, None, :] - q[None, :, :]
    return np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))


# ---- input checks -------------------------------------------------------------------------

def _coerce_counts(counts, stats: GeometryStatistics) -> dict[str, int]:
    if not isinstance(counts, Mapping):
        raise ValueError(f"counts must be a mapping element -> count like {{'Pb': 4, 'I': 8}}, got {counts!r}")
    out: dict[str, int] = {}
    for el, n in counts.items():
        e = normalize_element(el)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"count of {e} must be a non-negative integer, got {n!r}")
        if n == 0:
            continue
        stats.atom_type(e)  # ValueError for unknown elements
        out[e] = out.get(e, 0) + int(n)
    n_nodes = sum(n for e, n in out.items() if stats.atom_type(e) == "node")
    if n_nodes == 0:
        raise ValueError(
            f"cannot build a structure without node atoms: counts {dict(counts)!r} contain none of the "
            f"node elements {stats.node_elements}"
        )
    return out


def _bond_length_to_nodes(el: str, node_els: Sequence[str], stats: GeometryStatistics) -> float:
    vals = [stats.bond_length(el, n) for n in node_els]
    vals = [v for v in vals if v is not None]
    if not vals:
        vals = [stats.pair_cutoffs[element_pair_key(el, n)] for n in node_els if element_pair_key(el, n) in stats.pair_cutoffs]
    if not vals:
        raise ValueError(
            f"{el} cannot be bonded to the nodes {list(node_els)}: the geometry statistics have no learned "
            f"bond length and no pair cutoff between {el} and any of them"
        )
    return max(float(np.median(vals)), 0.1)


# ---- the builder --------------------------------------------------------------------------

class _State:
    """Mutable build state: positions, element / kind per atom, scaffold and counters."""

    def __init__(self, stats: GeometryStatistics, elements: list[str], n_total: int, relax: bool = False):
        self.stats = stats
        self.relax = relax
        self.relaxed = 0
        self.elements = elements
        self.eid = {e: k for k, e in enumerate(elements)}
        ne = len(elements)
        self.kind_of_el = np.array([_KIND[stats.atom_type(e)] for e in elements], dtype=np.int64)
        self.min_d = np.array([[stats.min_distance(a, b) for b in elements] for a in elements])
        self.contact_cut = np.array([[stats.contact_cutoff(a, b) for b in elements] for a in elements])
        self.target_d = np.array([[stats.pair_distance(a, b) for b in elements] for a in elements])
        assoc = np.zeros((ne, ne))
        for a in range(ne):
            for b in range(ne):
                c = stats.pair_cutoffs.get(element_pair_key(elements[a], elements[b]))
                assoc[a, b] = ASSOCIATION_SCALE * c if c is not None else 0.0
        self.assoc_cut = assoc
        self.pos = np.zeros((n_total, 3))
        self.el = np.zeros(n_total, dtype=np.int64)
        self.n = 0
        self.node_nb: dict[int, list[int]] = {}          # node -> scaffold neighbours + bonded atoms
        self.node_cnt = np.zeros((n_total, 3), dtype=np.int64)     # node: neighbours by kind
        self.contact_cnt = np.zeros((n_total, 3), dtype=np.int64)  # contacts by kind (pass-2 rule)
        self.edges: list[tuple[int, int]] = []
        self.edge_use: dict[tuple[int, int], int] = {}
        # learned targets
        self.node_target = np.array([round(stats.node_coordination(t)) for t in ATOM_TYPES], dtype=np.int64)
        self.atom_target = np.array(
            [[round(stats.atom_coordination(c, t)) for t in ATOM_TYPES] for c in ATOM_TYPES], dtype=np.int64
        )

    @property
    def kinds(self) -> np.ndarray:
        return self.kind_of_el[self.el[: self.n]]

    def add_atom(self, element: str, p: np.ndarray) -> int:
        k = self.n
        e = self.eid[element]
        self.pos[k] = p
        self.el[k] = e
        self.n += 1
        if k > 0:  # contact bookkeeping (pass-2 definition)
            d = np.linalg.norm(self.pos[:k] - p, axis=1)
            hit = np.nonzero(d <= self.contact_cut[e, self.el[:k]])[0]
            if hit.size:
                kinds = self.kind_of_el[self.el[hit]]
                self.contact_cnt[hit, self.kind_of_el[e]] += 1
                np.add.at(self.contact_cnt[k], kinds, 1)
        if self.kind_of_el[e] == _KIND["node"]:
            self.node_nb[k] = []
        return k

    def add_edge(self, a: int, b: int) -> None:
        a, b = min(a, b), max(a, b)
        if (a, b) in self.edge_use:
            return
        self.edges.append((a, b))
        self.edge_use[(a, b)] = 0
        self.node_nb[a].append(b)
        self.node_nb[b].append(a)
        self.node_cnt[a, 0] += 1
        self.node_cnt[b, 0] += 1

    def bond_to_node(self, atom: int, node: int) -> None:
        self.node_nb[node].append(atom)
        self.node_cnt[node, self.kind_of_el[self.el[atom]]] += 1

    def node_indices(self) -> np.ndarray:
        return np.nonzero(self.kinds == _KIND["node"])[0]

    def least_violation(self, cand: np.ndarray, e: int) -> int:
        """Index of the candidate whose worst d / learned-minimum ratio is largest."""
        d = _pairwise(cand, self.pos[: self.n])
        return int(np.argmax((d / self.min_d[e, self.el[: self.n]]).min(axis=1)))

    def feasible(self, cand: np.ndarray, e: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances (K, n) to the placed atoms and the mask of candidates that respect every
        learned minimum distance."""
        d = _pairwise(cand, self.pos[: self.n])
        ok = np.all(d >= self.min_d[e, self.el[: self.n]] - 1e-9, axis=1)
        return d, ok


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
        chosen = []
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
    anchors = nodes[np.lexsort((nodes, -far, state.node_cnt[nodes, 0]))][:_GROWTH_ANCHORS].tolist()
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
        term = -8.0 * (dirs @ _unit(outward))
        if nbr:
            term = term + _angle_cost(dirs, _unit(placed[nbr] - placed[a]), [thetas] * len(nbr))
        if nn_target > 0:
            term = term + 10.0 * max(len(nbr) + 1 - nn_target, 0)
        dirs_all.append(dirs)
        extra.append(term)
    anchor_of = np.concatenate([np.full(len(d), a) for a, d in zip(anchors, dirs_all)])
    dirs_cat = np.vstack(dirs_all)
    extra = np.concatenate(extra)
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
        score = pen.sum(axis=1) + 5.0 * np.abs(d[rows, anchor_of] - b) + extra
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


def _interaction_penalty(state: _State, d_all: np.ndarray, e: int, available: np.ndarray) -> np.ndarray:
    """Ref §4.8 interaction penalty against the placed non-node atoms, vectorised over K candidates.

    d_all: (K, n) distances to every placed atom. available: placed atoms per kind (3,).
    Returns (K,) penalty - bonus.
    """
    kinds = state.kinds
    my_kind = state.kind_of_el[e]
    nn = np.nonzero(kinds != 0)[0]
    K = d_all.shape[0]
    if nn.size == 0:
        return np.zeros(K)
    d = d_all[:, nn]
    ej = state.el[nn]
    t = state.target_d[e, ej]
    floor = np.maximum(0.65 * t, 0.45)
    pen = 220.0 * (np.clip(floor - d, 0.0, None) ** 2).sum(axis=1)
    contact = d <= state.contact_cut[e, ej]
    kj = kinds[nn]
    desired = state.atom_target[kj, my_kind]
    cur = state.contact_cnt[nn, my_kind]
    has = desired > 0
    bonus = 6.0 * (contact * (has * np.maximum(desired - cur, 0))).sum(axis=1)
    pen += 6.0 * (contact * (has * np.maximum(cur + 1 - desired, 0))).sum(axis=1)
    err = np.abs(d - t)
    for kind in (1, 2):
        sel = kj == kind
        if not np.any(sel):
            continue
        target = int(min(state.atom_target[my_kind, kind], available[kind]))
        c = contact[:, sel]
        observed = c.sum(axis=1)
        pen += np.where(target > observed, 12.0 * (target - observed), 10.0 * (observed - target))
        if target > 0:
            errs = np.sort(np.where(c, err[:, sel], np.inf), axis=1)[:, :target]
            pen += 8.0 * np.where(np.isfinite(errs), errs, 0.0).sum(axis=1)
        else:
            m = np.where(c, err[:, sel], np.inf).min(axis=1)
            pen += np.where(np.isfinite(m), 4.0 * m, 0.0)
    return pen - bonus


def _node_bonding(state: _State, d_all: np.ndarray, e: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes each candidate would bond to (mask (K, n_nodes)) and its over-coordination penalty."""
    nodes = state.node_indices()
    dn = d_all[:, nodes]
    cut = state.assoc_cut[e, state.el[nodes]]
    bonded = (cut > 0) & (dn <= np.where(cut > 0, cut, 0.0))
    my_kind = state.kind_of_el[e]
    target = state.node_target[my_kind]
    over = np.maximum(state.node_cnt[nodes, my_kind] + 1 - target, 0) if target > 0 else np.ones(nodes.size)
    pen = 6.0 * (bonded * over).sum(axis=1)
    return bonded, pen


def _place_non_node(state: _State, element: str, b_x: float, bridge: bool, rng: np.random.Generator,
                    available: np.ndarray) -> None:
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

    if bridge and state.edges:
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
                ring = [u, -u, v, -v]
                if np.linalg.norm(radial) > 1e-9:
                    r = _unit(radial)
                    ring += [r, -r]
                phi = phase + 2.0 * math.pi * np.arange(12) / 12
                ring = np.vstack([np.array(ring), np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v])
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
    for scale, dense in steps:
        r = b_x * scale
        for a in order:
            nb = state.node_nb[a]
            node_nb = [j for j in nb if state.kind_of_el[state.el[j]] == 0]
            outward = (placed[a] - centroid) - sum((placed[j] - placed[a] for j in node_nb), np.zeros(3))
            dirs = [_basis_directions(outward), sphere]
            nb_vec = _unit(placed[nb] - placed[a]) if nb else np.zeros((0, 3))
            nb_targets = [angle_targets[state.kind_of_el[state.el[j]]] for j in nb]
            for w, targets in zip(nb_vec, nb_targets):
                dirs += [_cone(w, t, _CONE_SAMPLES, phase) for t in _cone_angles(targets)]
            if nb:
                dirs.append(_cone_intersections(nb_vec, nb_targets))
            if scale == _RADIUS_STEPS[0] and dense:
                dirs.append(_DENSE_SPHERE @ rot.T)
            dirs = np.vstack(dirs)
            cand = placed[a] + r * dirs
            d, ok = state.feasible(cand, e)
            if not np.any(ok):
                continue
            score = np.where(d < 0.7 * r, 500.0 * (0.7 * r - d) ** 2, 0.0)
            score += np.where((d >= 0.7 * r) & (d < 0.95 * r), 40.0 * (0.95 * r - d) ** 2, 0.0)
            score = score.sum(axis=1)
            score += _angle_cost(dirs, nb_vec, nb_targets)
            score += _interaction_penalty(state, d, e, available)
            score -= 8.0 * (dirs @ _unit(outward))
            bonded, over = _node_bonding(state, d, e)
            score += over + 6.0 * np.abs(np.maximum(bonded.sum(axis=1), 1) - nn_target)
            score = np.where(ok, score, np.inf)
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
    if on_crowding not in ("raise", "relax"):
        raise ValueError(f"on_crowding must be 'raise' or 'relax', got {on_crowding!r}")
    want = _coerce_counts(counts, stats)
    types = {e: stats.atom_type(e) for e in want}
    node_els = sorted(e for e in want if types[e] == "node")
    b_x = {e: _bond_length_to_nodes(e, node_els, stats) for e in want if types[e] != "node"}
    elements = sorted(want)
    state = _State(stats, elements, sum(want.values()), relax=on_crowding == "relax")
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
    for el in order:
        bridge = min(max(round(stats.non_node_node_coordination(el)), 1), 2) == 2
        for _ in range(want[el]):
            available = np.bincount(state.kinds, minlength=3)
            _place_non_node(state, el, b_x[el], bridge, rng, available)

    positions = state.pos[: state.n] - state.pos[: state.n].mean(axis=0)
    symbols = [elements[k] for k in state.el[: state.n].tolist()]
    if label is None:
        label = format_counts_label(want, stats)
    return BuiltStructure(symbols=symbols, positions=positions, label=str(label),
                          quality=build_quality(symbols, positions, stats, state.relaxed),
                          atom_types=[types[s] for s in symbols])


def format_counts_label(counts: Mapping[str, int], stats: GeometryStatistics) -> str:
    """Label of a composition: node elements, then linkers, then shells, each alphabetical,
    count 1 omitted (the convention of ``clusters.format_label``)."""
    from ..chem import format_label

    return format_label(counts, stats.atom_type_by_element)


# ---- writers -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShellTemplate:
    """A full shell molecule (e.g. DMF) anchored on one of its atoms.

    symbols (m,), positions float64 (m, 3) angstrom, atom_names (m,), residue_name, and
    anchor_index: the atom that sits on the built shell atom (for DMF: its O).
    """

    symbols: list[str]
    positions: np.ndarray
    atom_names: list[str]
    residue_name: str
    anchor_index: int

    @classmethod
    def from_pdb(cls, path, anchor_element: str) -> "ShellTemplate":
        """Read a one-molecule PDB (or XYZ) with :func:`clusterdynamicsml.io.frames.read_frames`; the
        anchor is the first atom of ``anchor_element``. ValueError when the file cannot be read, has
        no atoms or no such element."""
        from ..io.frames import read_frames

        path = Path(path)
        source = read_frames(path)
        if len(source) < 1:
            raise ValueError(f"{path}: no structure in the shell template file")
        frame = source[0]
        syms = [normalize_element(s) for s in frame.symbols]
        if not syms:
            raise ValueError(f"{path}: the shell template has no atoms")
        anchor = normalize_element(anchor_element)
        if anchor not in syms:
            raise ValueError(f"{path}: the shell template has no {anchor} atom to anchor on (elements {sorted(set(syms))})")
        names = list(frame.atom_names) if frame.atom_names else [f"{s}{k + 1}" for k, s in enumerate(syms)]
        resname = (frame.residues[0] if frame.residues else "") or "SOL"
        return cls(syms, np.asarray(frame.positions, float), [n[:4] for n in names], resname[:4], syms.index(anchor))


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation matrix R with R @ unit(a) = unit(b) (Rodrigues)."""
    a, b = _unit(a), _unit(b)
    v = _cross(a, b)
    c = float(a @ b)
    if c < -1.0 + 1e-12:
        _, u, _ = _basis(a)
        return 2.0 * np.outer(u, u) - np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1.0 + c)


def _axis_rotations(axis: np.ndarray, n: int) -> np.ndarray:
    """(n, 3, 3) rotations by 2 pi k / n about a unit axis."""
    a = _unit(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = 2.0 * math.pi * np.arange(n) / n
    return np.eye(3)[None] + np.sin(t)[:, None, None] * k[None] + (1 - np.cos(t))[:, None, None] * (k @ k)[None]


def _best_orientation(others, out_t, anchor, radial, axes, env):
    """Best placement of a template (non-anchor atoms ``others`` relative to the anchor) with its
    outward vector along one of ``axes`` and 24 rotations about it. Returns
    (score, positions (m-1, 3), clash penalty)."""
    best = None
    for ax in axes:
        r0 = _rotation_between(out_t, ax)
        rots = _axis_rotations(ax, 24) @ r0  # (24, 3, 3)
        mols = np.einsum("rij,mj->rmi", rots, others) + anchor  # (24, m-1, 3)
        if len(env):
            d = np.sqrt(((mols[:, :, None, :] - env[None, None, :, :]) ** 2).sum(-1))
            clash = 800.0 * (np.clip(1.2 - d, 0, None) ** 2).sum((1, 2)) + 15.0 * (
                np.clip(1.5 - d, 0, None) ** 2).sum((1, 2))
            score = clash - 0.5 * np.minimum(d.min((1, 2)), 8.0)
        else:
            clash = np.zeros(len(rots))
            score = np.zeros(len(rots))
        score = score - 10.0 * float(_unit(ax) @ radial)
        j = int(np.argmin(score))
        if best is None or score[j] < best[0] - 1e-12:
            best = (float(score[j]), mols[j], float(clash[j]))
    return best


def place_shell_molecules(structure: BuiltStructure, templates: Mapping[str, ShellTemplate]):
    """Replace every built atom of a templated shell element by a full molecule (ref §4.8 step 6).

    Each molecule is rotated so that its outward vector (mean of the non-anchor atoms - anchor)
    points away from the cluster centroid, then the best of 24 rotations about that axis (and
    about 6 axes tilted by 25 degrees) is kept; if that leaves a contact under 1.5 A, 48 axes
    over the whole sphere are tried as well. Score against the cluster, the molecules already
    placed and the anchors still to be expanded::

        800 sum clip(1.2 - d, 0)^2 + 15 sum clip(1.5 - d, 0)^2 - 0.5 min(min d, 8) - 10 u . outward

    Returns a list of residues ``(residue_name, symbols, positions (m, 3), atom_names)`` in atom
    order: templated atoms become whole molecules, the others single-atom residues.
    """
    pos = structure.positions
    syms = structure.symbols
    anchors = [k for k, s in enumerate(syms) if s in templates]
    anchor_set = set(anchors)
    solute_idx = [k for k in range(len(syms)) if k not in anchor_set]
    centroid = pos.mean(axis=0) if len(syms) else np.zeros(3)
    placed_solvent: list[np.ndarray] = []
    molecules: dict[int, np.ndarray] = {}
    for k in anchors:
        t = templates[syms[k]]
        local = t.positions - t.positions[t.anchor_index]
        others = np.delete(local, t.anchor_index, axis=0)
        out_t = others.mean(axis=0) if len(others) else np.array([1.0, 0.0, 0.0])
        radial = pos[k] - centroid
        if np.linalg.norm(radial) < 1e-9:
            radial = np.array([0.0, 0.0, 1.0])
        radial = _unit(radial)
        axes = [radial] + [_unit(math.cos(math.radians(25)) * radial + math.sin(math.radians(25)) * w)
                           for w in _cone(radial, 90.0, 6)]
        env = [pos[solute_idx]] + placed_solvent + [pos[[j for j in anchors if j != k and j not in molecules]]]
        env = np.vstack([e for e in env if len(e)]) if any(len(e) for e in env) else np.zeros((0, 3))
        # atoms farther than (template extent + 8 A) cannot change the score: drop them
        reach = (np.linalg.norm(others, axis=1).max() if len(others) else 0.0) + 8.0
        if len(env):
            env = env[np.linalg.norm(env - pos[k], axis=1) <= reach]
        best = _best_orientation(others, out_t, pos[k], radial, axes, env)
        if best[2] > 0.0:  # a contact under 1.5 A: search axes over the whole sphere
            wide = _best_orientation(others, out_t, pos[k], radial, list(_SPHERE), env)
            if wide[0] < best[0]:
                best = wide
        full = np.insert(best[1], t.anchor_index, pos[k], axis=0)
        molecules[k] = full
        placed_solvent.append(np.delete(full, t.anchor_index, axis=0))
    residues = []
    tags = {"node": "NOD", "linker": "LNK", "shell": "SOL"}
    for k, s in enumerate(syms):
        if k in molecules:
            t = templates[s]
            residues.append((t.residue_name, list(t.symbols), molecules[k], list(t.atom_names)))
        else:
            kind = structure.atom_types[k] if structure.atom_types else "node"
            residues.append((tags.get(kind, "UNK"), [s], pos[k][None, :], [f"{s}{k + 1}"[:4] if k < 99 else s]))
    return residues


def built_structure_filename(label: str, target_node_count: int, rank: int, ext: str = "xyz") -> str:
    """``NN_rankRR_<label>.<ext>``: NN the target size and RR the rank (2 digits), the label with
    every character outside ``[A-Za-z0-9._-]`` replaced by ``_`` (ref §4.10)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(label))
    return f"{int(target_node_count):02d}_rank{int(rank):02d}_{safe}.{ext}"


def write_built_structure(
    path,
    structure: BuiltStructure,
    *,
    target_node_count: int | None = None,
    rank: int = 1,
    source_label: str | None = None,
    shell_templates: Mapping | None = None,
    fmt: str | None = None,
) -> Path:
    """Write a built structure as XYZ, or as PDB with full shell molecules.

    path : a directory (the file is named by :func:`built_structure_filename`) or a file path
        ending in .xyz / .pdb.
    target_node_count : NN of the file name and comment (default: the number of node atoms).
    rank, source_label : written to the comment line
        ``label=<L> target_node_count=<n> rank=<r> source_label=<s>`` (ref §4.10).
    shell_templates : ``{element: ShellTemplate or path to a one-molecule PDB}``; each built atom
        of that element becomes a whole molecule (see :func:`place_shell_molecules`); implies PDB.
    fmt : 'xyz' or 'pdb' (default from the path suffix, else 'pdb' with templates, else 'xyz').

    Files are written by :func:`clusterdynamicsml.io.frames.write_xyz` (coordinates with 8 decimals)
    and :func:`~clusterdynamicsml.io.frames.write_pdb` (the comment as a REMARK line). Returns the path.
    """
    if not isinstance(structure, BuiltStructure):
        raise ValueError(f"structure must be a BuiltStructure, got {type(structure).__name__}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 0:
        raise ValueError(f"rank must be a non-negative integer, got {rank!r}")
    if target_node_count is None:
        target_node_count = sum(1 for t in structure.atom_types if t == "node") or len(structure.symbols)
    if isinstance(target_node_count, bool) or not isinstance(target_node_count, (int, np.integer)) or target_node_count < 0:
        raise ValueError(f"target_node_count must be a non-negative integer, got {target_node_count!r}")
    templates: dict[str, ShellTemplate] = {}
    for el, t in (shell_templates or {}).items():
        e = normalize_element(el)
        templates[e] = t if isinstance(t, ShellTemplate) else ShellTemplate.from_pdb(t, e)
    path = Path(path)
    if fmt is None:
        fmt = path.suffix.lower().lstrip(".") if path.suffix.lower() in (".xyz", ".pdb") else (
            "pdb" if templates else "xyz")
    fmt = fmt.lower()
    if fmt not in ("xyz", "pdb"):
        raise ValueError(f"fmt must be 'xyz' or 'pdb', got {fmt!r}")
    if templates and fmt != "pdb":
        raise ValueError("shell_templates need the PDB format")
    if path.suffix.lower() not in (".xyz", ".pdb"):
        path.mkdir(parents=True, exist_ok=True)
        path = path / built_structure_filename(structure.label, target_node_count, rank, fmt)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    from ..io.frames import write_pdb, write_xyz

    source = structure.label if source_label is None else source_label
    comment = f"label={structure.label} target_node_count={int(target_node_count)} rank={int(rank)} source_label={source}"
    if fmt == "xyz":
        write_xyz(path, structure.symbols, structure.positions, comment=comment)
    else:
        residues = place_shell_molecules(structure, templates)
        syms, pos, names, resn, rid = [], [], [], [], []
        for k, (resname, rsyms, rpos, rnames) in enumerate(residues, 1):
            syms += rsyms
            pos.append(rpos)
            names += rnames
            resn += [resname] * len(rsyms)
            rid += [k] * len(rsyms)
        write_pdb(path, syms, np.vstack(pos) if pos else np.zeros((0, 3)), residues=resn, residue_ids=rid,
                  atom_names=names, comment=comment)
    return path


# ---- pipeline helpers ---------------------------------------------------------------------

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
