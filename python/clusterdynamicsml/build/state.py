"""Build state of the structure builder (positions, bookkeeping, the run's rule cutoffs and the
learned targets), the input checks and the score terms shared by the placement steps
(ref §4.8 step 4). Distances in angstrom."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..chem import normalize_element
from .connect import Components, attached, rule_cutoffs, safe_cutoffs
from .directions import _pairwise
from .geomrecord import _KIND, ASSOCIATION_SCALE, ATOM_TYPES, GeometryStatistics, element_pair_key

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
    learned = [stats.bond_length(el, n) for n in node_els]
    vals = [v for v in learned if v is not None]
    if not vals:
        keys = [element_pair_key(el, n) for n in node_els]
        vals = [stats.pair_cutoffs[k] for k in keys if k in stats.pair_cutoffs]
    if not vals:
        raise ValueError(
            f"{el} cannot be bonded to the nodes {list(node_els)}: the geometry statistics have no learned "
            f"bond length and no pair cutoff between {el} and any of them"
        )
    return max(float(np.median(vals)), 0.1)


# ---- the builder --------------------------------------------------------------------------

class _State:
    """Mutable build state: positions, element / kind per atom, scaffold and counters."""

    def __init__(self, stats: GeometryStatistics, elements: list[str], n_total: int, relax: bool = False,
                 rules=None, compactness: float = 0.0):
        self.stats = stats
        self.compactness = float(compactness)
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
        # the run's rule cutoffs (0: no bond; shells never bond to shells) and the placement margin
        bond = rule_cutoffs(elements, stats, rules)
        shell = self.kind_of_el == _KIND["shell"]
        bond[np.ix_(shell, shell)] = 0.0
        self.bond_cut = bond
        self.safe_cut = safe_cutoffs(bond)
        # an element the rules can bond at a distance the learned minima allow must be bonded
        # (when the library's shortest contact is beyond the cutoff it never is: not enforced)
        core_el = self.kind_of_el != _KIND["shell"]
        # every score term and constraint acts within this range (angstrom): farther atoms are skipped
        self.interaction_range = float(max(self.contact_cut.max(), assoc.max(), self.min_d.max(), self.target_d.max(),
                                           bond.max())) + 0.5
        self.must_attach = np.any((self.safe_cut > 0) & (self.safe_cut >= self.min_d) & core_el[None, :], axis=1)
        self.components = Components(n_total)
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
        self.components.add(self, k)
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

    def feasible(self, cand: np.ndarray, e: int, center: np.ndarray | None = None,
                 reach: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Distances (K, n) to the placed atoms and the mask of candidates that respect every
        learned minimum distance and, for a non-node atom that the rules can bond or attach, lie
        within the safe cutoff of at least one placed core atom.

        With ``center`` (every candidate within ``reach`` of it), only atoms within ``reach`` +
        the interaction range of the centre are measured; the others get distance 1e6, which no
        score term or constraint sees (they all act within the interaction range)."""
        placed = self.pos[: self.n]
        if center is None:
            d = _pairwise(cand, placed)
        else:
            local = np.nonzero(np.einsum("ij,ij->i", placed - center, placed - center)
                               <= (reach + self.interaction_range) ** 2)[0]
            d = np.full((len(cand), self.n), 1e6)
            d[:, local] = _pairwise(cand, placed[local])
        ok = np.all(d >= self.min_d[e, self.el[: self.n]] - 1e-9, axis=1)
        if self.kind_of_el[e] != _KIND["node"] and self.must_attach[e]:
            ok &= attached(self, d, e)
        return d, ok


# ---- score terms shared by the placement steps ------------------------------------------------

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
