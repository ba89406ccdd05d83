"""Connectivity of a build under the run's cluster rules (issue 12 item 5).

A structure built for a rule set must be one cluster under that rule set. The rules bond two
node / linker atoms when ``d <= cutoff(a, b)`` (level 0), and attach a shell atom to a cluster
when it lies within its cutoff of a cluster atom; shells never connect clusters. The builder
therefore

* places every bond a *margin* below its cutoff: ``safe = cutoff - max(BOND_MARGIN x cutoff,
  BOND_MARGIN_MIN)`` (a learned bond length above ``safe`` is shortened to ``safe``), so that
  written coordinates (8 decimals) and tiny perturbations cannot break a bond;
* keeps the components of the rule bond graph of the placed core (node / linker) atoms, counting
  only bonds ``d <= safe``;
* while the core is in several components, places every linker at a site that *joins*
  components: on a ring around the midpoint of two bondable core atoms of different
  components, or (when the remaining linkers are too few for one join each, e.g. Na12Cl10
  where 10 two-fold Cl cannot join 12 Na) at a site bonded to three atoms of three components;
* never takes a non-node candidate that is bonded / attached to no core atom (hard constraint
  beside the learned minimum distances).

Why: the original builder grew the node scaffold first (Na-Na at the learned node bond length,
no Na-Na cutoff) and placed each two-fold Cl on the scaffold edge with the largest
coordination deficit. Bond lengths were fine (2.49 A < 2.6 A), but (a) a second Cl could go to
an edge that was already bridged (a Na2Cl2 ring) while another edge stayed empty, and (b) with
fewer linkers than scaffold edges (Na12Cl10: 10 Cl, 11 edges, each Cl bonded to exactly two Na)
a connected structure was impossible. Na12Cl10 split into Na7Cl6 + Na5Cl4 and Na13Cl12 into
Na11Cl10 + Na2Cl2. Distances in angstrom.
"""
from __future__ import annotations

import math

import numpy as np

from .directions import _bases, _cross_rows, _pairwise

BOND_MARGIN = 0.03       # relative margin below a rule cutoff at which bonds are placed
BOND_MARGIN_MIN = 0.02   # angstrom, smallest margin
_CORE = (0, 1)           # node, linker kinds; shells (2) attach but never connect


def rule_cutoffs(elements, stats, rules=None) -> np.ndarray:
    """(ne, ne) level-0 cutoffs of the run's rules between the build's elements (0: no bond).

    rules : a ClusterRules (its ``cutoff(a, b, 0)``, which includes ``default_cutoff``) or None,
    then ``stats.pair_cutoffs`` (the cutoffs the statistics were learned with)."""
    from .geomrecord import element_pair_key

    ne = len(elements)
    out = np.zeros((ne, ne))
    for a in range(ne):
        for b in range(ne):
            if rules is not None and callable(getattr(rules, "cutoff", None)):
                c = rules.cutoff(elements[a], elements[b], 0)
            else:
                c = stats.pair_cutoffs.get(element_pair_key(elements[a], elements[b]))
            out[a, b] = float(c) if c else 0.0
    return out


def safe_cutoffs(cut: np.ndarray) -> np.ndarray:
    """Cutoffs minus the placement margin (0 stays 0)."""
    margin = np.maximum(BOND_MARGIN * cut, BOND_MARGIN_MIN)
    return np.where(cut > 0, np.maximum(cut - margin, 0.0), 0.0)


class Components:
    """Components of the rule bond graph of the placed core atoms (bonds ``d <= safe``)."""

    def __init__(self, n_total: int):
        self.comp = np.full(n_total, -1, dtype=np.int64)

    def add(self, state, k: int) -> None:
        e = state.el[k]
        if state.kind_of_el[e] not in _CORE:
            return
        self.comp[k] = k
        if k == 0:
            return
        prev = np.arange(k)
        core = self.comp[:k] >= 0
        d = np.linalg.norm(state.pos[:k] - state.pos[k], axis=1)
        lim = state.safe_cut[e, state.el[:k]]
        hit = prev[core & (lim > 0) & (d <= lim + 1e-9)]
        if hit.size:
            merged = np.unique(self.comp[hit])
            new = int(min(merged.min(), k))
            self.comp[np.isin(self.comp, merged)] = new
            self.comp[k] = new

    def count(self, n: int) -> int:
        c = self.comp[:n]
        return int(np.unique(c[c >= 0]).size)


def attached(state, d: np.ndarray, e: int) -> np.ndarray:
    """(K,) mask: the candidate is within the safe cutoff of at least one placed core atom."""
    n = state.n
    core = state.components.comp[:n] >= 0
    lim = state.safe_cut[e, state.el[:n]]
    return np.any((d <= lim + 1e-9) & core & (lim > 0), axis=1)


def joins(state, d: np.ndarray, e: int) -> np.ndarray:
    """(K,) number of components a candidate would merge minus one (0: joins nothing)."""
    n = state.n
    comp = state.components.comp[:n]
    lim = state.safe_cut[e, state.el[:n]]
    bond = (d <= lim + 1e-9) & (comp >= 0) & (lim > 0)
    ids, inv = np.unique(np.where(comp >= 0, comp, -1), return_inverse=True)
    onehot = np.zeros((n, ids.size), dtype=bool)
    onehot[np.arange(n), inv] = True
    onehot[:, ids < 0] = False
    hits = (bond.astype(np.int64) @ onehot.astype(np.int64)) > 0
    return np.maximum(hits.sum(axis=1) - 1, 0)


def _ring_sites(pi, pj, r, ring_n, phase):
    """Points at distance max(r, L/2) from both pi (P, 3) and pj (P, 3): ring of ring_n around the
    midpoint; returns (P * ring_n, 3) and the radius used per pair (P,)."""
    axis = pj - pi
    half = 0.5 * np.linalg.norm(axis, axis=1)
    rr = np.maximum(r, half)
    h = np.sqrt(np.maximum(rr * rr - half * half, 0.0))
    phi = phase + 2.0 * math.pi * np.arange(ring_n) / ring_n
    _, u, v = _bases(axis)
    ring = np.cos(phi)[None, :, None] * u[:, None, :] + np.sin(phi)[None, :, None] * v[:, None, :]
    out = 0.5 * (pi + pj)[:, None, :] + h[:, None, None] * ring
    return out.reshape(-1, 3), rr


def _triangle_sites(pa, pb, pc, r, limit):
    """Points at distance max(r, circumradius) from the three corners (both sides of the plane),
    for the triangles where that distance is <= limit (T,); (K, 3)."""
    ab, ac = pb - pa, pc - pa
    n = _cross_rows(ab, ac)
    nn = np.einsum("ij,ij->i", n, n)
    ok = nn > 1e-12
    nn = np.where(ok, nn, 1.0)
    # circumcentre: pa + ((|ac|^2 (n x ab)) + (|ab|^2 (ac x n))) / (2 |n|^2)
    cc = pa + (np.einsum("ij,ij->i", ac, ac)[:, None] * _cross_rows(n, ab)
               + np.einsum("ij,ij->i", ab, ab)[:, None] * _cross_rows(ac, n)) / (2.0 * nn[:, None])
    rc = np.linalg.norm(cc - pa, axis=1)
    rr = np.maximum(r, rc)
    h = np.sqrt(np.maximum(rr * rr - rc * rc, 0.0))
    un = n / np.sqrt(nn)[:, None]
    ok &= rr <= limit + 1e-9
    return np.concatenate([cc[ok] + h[ok, None] * un[ok], cc[ok] - h[ok, None] * un[ok]])


def join_candidates(state, e: int, r: float, need_triples: bool, phase: float, max_pairs: int = 400,
                    max_triangles: int = 400) -> np.ndarray:
    """Candidate sites for a linker of element index e at bond length r that can join components:
    12-point rings on pairs of bondable core atoms of different components within reach, and with
    ``need_triples`` the sites bonded to three atoms of three components. (K, 3)."""
    n = state.n
    comp = state.components.comp[:n]
    lim = state.safe_cut[e, state.el[:n]]
    idx = np.nonzero((comp >= 0) & (lim > 0))[0]
    if idx.size < 2:
        return np.zeros((0, 3))
    p = state.pos[idx]
    dd = _pairwise(p, p)
    reach = lim[idx][:, None] + lim[idx][None, :]
    i, j = np.nonzero(np.triu((comp[idx][:, None] != comp[idx][None, :]) & (dd <= reach), 1))
    if i.size == 0:
        return np.zeros((0, 3))
    order = np.argsort(dd[i, j], kind="stable")[:max_pairs]
    i, j = i[order], j[order]
    sites, rr = _ring_sites(p[i], p[j], r, 12, phase)
    keep = rr <= np.minimum(lim[idx][i], lim[idx][j]) + 1e-9
    out = [sites[np.repeat(keep, 12)]]
    if need_triples:
        tri = []
        for a, b in zip(i.tolist(), j.tolist()):
            ks = np.nonzero((dd[a] <= reach[a]) & (dd[b] <= reach[b]) & (comp[idx] != comp[idx][a])
                            & (comp[idx] != comp[idx][b]))[0]
            ks = ks[ks > b]
            tri += [(a, b, k) for k in ks.tolist()]
            if len(tri) >= max_triangles:
                break
        if tri:
            t = np.array(tri[:max_triangles])
            out.append(_triangle_sites(p[t[:, 0]], p[t[:, 1]], p[t[:, 2]], r, np.min(lim[idx][t], axis=1)))
    return np.vstack(out) if out else np.zeros((0, 3))


def recompute(state) -> None:
    """Components from scratch (after atoms were moved)."""
    comps = Components(len(state.components.comp))
    for k in range(state.n):
        comps.add(state, k)
    state.components = comps


def dock_components(state, directions: np.ndarray, max_rounds: int = 64) -> int:
    """Join the components left after placement by moving each smaller one rigidly (its core atoms
    and the shell atoms whose nearest core atom is in it) so that one of its core atoms bonds, at
    the learned bond length capped by the safe cutoff, to a core atom of the largest component,
    without any contact under the learned minimum distances. Among the admissible moves the
    one forming the most bonds, then the shortest, wins. Returns the number of moves made."""
    moved = 0
    for _ in range(max_rounds):
        n = state.n
        comp = state.components.comp[:n]
        ids, sizes = np.unique(comp[comp >= 0], return_counts=True)
        if ids.size <= 1:
            break
        main = ids[np.argmax(sizes)]
        done = False
        for cid in ids[np.argsort(sizes, kind="stable")]:
            if cid == main:
                continue
            if _dock_one(state, cid, main, directions):
                moved += 1
                done = True
                break
        if not done:
            break
    return moved


def _dock_one(state, cid: int, main: int, directions: np.ndarray) -> bool:
    n = state.n
    comp = state.components.comp[:n]
    pos = state.pos[:n]
    el = state.el[:n]
    core = comp >= 0
    shells = np.nonzero(~core)[0]
    members = comp == cid
    if shells.size:  # shells go with the component of their nearest core atom
        cidx = np.nonzero(core)[0]
        near = cidx[np.argmin(_pairwise(pos[shells], pos[cidx]), axis=1)]
        members[shells[comp[near] == cid]] = True
    grp = np.nonzero(members)[0]
    rest = np.nonzero(~members)[0]
    targets = np.nonzero(comp == main)[0]
    best = None
    for a in grp[core[grp]].tolist():
        lim = state.safe_cut[el[a], el[targets]]
        ms = targets[lim > 0]
        if ms.size == 0:
            continue
        r = np.minimum(state.target_d[el[a], el[ms]], state.safe_cut[el[a], el[ms]])
        sites = (pos[ms][:, None, :] + r[:, None, None] * directions[None, :, :]).reshape(-1, 3)
        shift = sites - pos[a]                                   # (K, 3)
        new = pos[grp][None, :, :] + shift[:, None, :]           # (K, g, 3)
        diff = new[:, :, None, :] - pos[rest][None, None, :, :]  # (K, g, r, 3)
        d = np.sqrt(np.einsum("kgrx,kgrx->kgr", diff, diff))
        ok = np.all(d >= state.min_d[el[grp]][:, el[rest]][None] - 1e-9, axis=(1, 2))
        if not np.any(ok):
            continue
        bonds = ((d <= state.safe_cut[el[grp]][:, el[rest]][None] + 1e-9)
                 & core[grp][None, :, None] & core[rest][None, None, :]).sum(axis=(1, 2))
        key = np.where(ok, -bonds * 1e6 + np.linalg.norm(shift, axis=1), np.inf)
        k = int(np.argmin(key))
        if best is None or key[k] < best[0]:
            best = (float(key[k]), shift[k])
    if best is None:
        return False
    state.pos[grp] += best[1]
    recompute(state)
    return True
