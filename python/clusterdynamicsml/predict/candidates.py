"""Candidate compositions for larger clusters: generation, filters, scoring, shares (ref §4.4,
§4.5, §4.9).

Per target node count ``n*``:

1. Node composition: weighted node-element fractions ``f_e = sum_rows w count_e / n_row / sum w``
   (renormalised), allocated to ``n*`` by the largest-remainder method (ties by element).
2. Route "trend": the non-node counts ``x`` solve the fixed point ``x = max(m(x), 0)``, where
   ``m`` evaluates every count model on the feature vector of the composition ``(nodes, x)``
   itself. Better than ref N2, which evaluates each model on a partial composition (non-node
   ratios 0, ``N_tot = n*``) and so biases counts low. Solved by Newton steps on
   ``g(x) = max(m(x), 0) - x`` with a damped fixed-point fallback, then rounded half up.
3. Route "scaled": for every training row (stability desc, node count desc, label), its
   non-node counts times ``n*/n_row``, rounded half up (better than ref N3's half-to-even).
4. Filters: required linker floors ``max(1, ceil(n* min_row(count/n_row) - 1e-9))`` for linker
   elements present in every multi-node row; a pure-node candidate needs an observed pure-node
   row with ``n* <= max pure-node size + 1``; duplicate labels: the first wins.
5. Score ``max(count, 0) * max(lifetime, dt) * max(occ, 0.05) / (1 + d)``, with ``d`` the
   composition distance ``sum_e |a_e - b_e| / max(n*, 1)`` to the first surviving candidate;
   top ``k`` per size by (-score, label).

Shares over all retained predictions (all sizes together)::

    sw = max(count, 0) * max(occ, 0.05)   -> if 0: max(occ, 0)  -> if 0: max(lifetime, 0)/dt
    share = sw / max(sum sw, 1e-12)

Pruning per size keeps the first by (share desc, score desc, label) and the others with
``share >= threshold``; shares are recomputed over the survivors when anything was removed.

Tail-anchored predicted mass (ref §4.9): with ``T[s]`` the summed observed weight
``max(count, 0) max(occ, 0.05)`` of the rows with node count ``s`` (sizes with ``T > 0``),
``s_L`` the largest such size, ``r_i = (T[s_i]/T[s_i-1])^(1/(s_i - s_i-1))``,
``decay = clip(median r, 0.05, 0.9)`` (0.5 without ratios),
``E = sum_targets (T[s] or T_L if s <= s_L else T_L decay^(s - s_L))`` and
``W_pred = min(E, T_L)``: the predicted mass never exceeds the largest observed size's mass.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..library.read import AtomTypes

PREDICTED_FIELDS = (
    "mean_count_per_frame",
    "occupancy_fraction",
    "mean_lifetime_fs",
    "association_rate_per_ps",
    "dissociation_rate_per_ps",
    "mean_radius_of_gyration",
    "mean_max_radius",
    "mean_semiaxis_a",
    "mean_semiaxis_b",
    "mean_semiaxis_c",
)


def round_half_up(value: float) -> int:
    """Round to the nearest integer with halves going up (2.5 -> 3, 3.5 -> 4); ref N3 fix."""
    return int(math.floor(float(value) + 0.5))


def weighted_node_fractions(rows, node_elements: Sequence[str]) -> dict:
    """Stability-weighted mean node-element fractions, renormalised to sum 1 (uniform if no weight)."""
    sums = {e: 0.0 for e in node_elements}
    total_w = 0.0
    for r in rows:
        n = sum(r.element_counts.get(e, 0) for e in node_elements)
        if n <= 0:
            continue
        w = r.stability_weight
        total_w += w
        for e in node_elements:
            sums[e] += w * r.element_counts.get(e, 0) / n
    s = sum(sums.values())
    if total_w <= 0 or s <= 0:
        return {e: 1.0 / len(node_elements) for e in node_elements}
    return {e: v / s for e, v in sums.items()}


def allocate_node_counts(fractions: Mapping, n: int) -> dict:
    """Integer node counts summing to ``n`` by the largest-remainder method (ties by element)."""
    raw = {e: f * n for e, f in fractions.items()}
    counts = {e: int(math.floor(v)) for e, v in raw.items()}
    rest = n - sum(counts.values())
    for e in sorted(raw, key=lambda e: (-(raw[e] - counts[e]), e))[:rest]:
        counts[e] += 1
    return {e: c for e, c in counts.items() if c > 0}


def self_consistent_counts(model, node_counts: Mapping, tol: float = 1e-8, max_iter: int = 200) -> tuple:
    """Non-node counts ``x`` with ``x = max(m(x), 0)`` (see the module docs, route "trend").

    Returns ``({element: float count}, info)`` with info keys ``iterations``, ``residual``,
    ``converged``.
    """
    els = tuple(model.non_node_elements_)
    if not els:
        return {}, {"iterations": 0, "residual": 0.0, "converged": True}
    n_star = max(sum(node_counts.values()), 1)
    cap = 1e3 * n_star

    def F(x):
        counts = dict(node_counts)
        counts.update(zip(els, x))
        pred = model.predict_counts(counts)
        return np.clip(np.array([pred[e] for e in els]), 0.0, cap)

    x = np.zeros(len(els))
    fx = F(x)
    res = float(np.max(np.abs(fx - x)))
    it = 0
    while res > tol and it < max_iter:
        it += 1
        h = 1e-4
        J = np.empty((len(els), len(els)))
        for j in range(len(els)):
            xp = x.copy()
            xp[j] += h
            J[:, j] = (F(xp) - fx) / h
        try:
            step = np.linalg.solve(np.eye(len(els)) - J, fx - x)
            x_new = np.clip(x + step, 0.0, cap)
        except np.linalg.LinAlgError:
            x_new = fx
        f_new = F(x_new)
        res_new = float(np.max(np.abs(f_new - x_new)))
        if not res_new < res:
            x_new = 0.5 * x + 0.5 * fx  # damped fixed-point step
            f_new = F(x_new)
            res_new = float(np.max(np.abs(f_new - x_new)))
        x, fx, res = x_new, f_new, res_new
    return dict(zip(els, (float(v) for v in x))), {"iterations": it, "residual": res, "converged": res <= max(tol, 1e-6)}


def required_linker_floors(rows, types: AtomTypes, n_target: int) -> dict:
    """Minimum count per linker element for a candidate of ``n_target`` nodes (ref §4.4 filter 1).

    Applies when ``n_target > 1`` and some row has node count >= 2: a linker element present
    in every multi-node row gets ``floor = max(1, ceil(n_target * min(count / node_count) - 1e-9))``.
    """
    multi = [r for r in rows if r.node_count >= 2]
    if n_target <= 1 or not multi:
        return {}
    floors = {}
    for el in types.linker_elements:
        if all(r.element_counts.get(el, 0) > 0 for r in multi):
            ratio = min(r.element_counts[el] / r.node_count for r in multi)
            floors[el] = max(1, int(math.ceil(n_target * ratio - 1e-9)))
    return floors


def has_pure_node_support(rows, types: AtomTypes, n_target: int) -> bool:
    """True when a pure-node candidate of ``n_target`` nodes is supported (ref §4.4 filter 2):
    some observed row is pure-node and ``n_target <= max(pure-node sizes) + 1``."""
    node = set(types.node_elements)
    sizes = [r.node_count for r in rows if all(e in node for e, c in r.element_counts.items() if c > 0)]
    return bool(sizes) and n_target <= max(sizes) + 1


def composition_distance(a: Mapping, b: Mapping, n_target: int) -> float:
    """``sum_e |a_e - b_e| / max(n_target, 1)``."""
    keys = set(a) | set(b)
    return sum(abs(a.get(k, 0) - b.get(k, 0)) for k in keys) / max(n_target, 1)


@dataclass
class Candidate:
    """A predicted larger-cluster composition and its predicted properties.

    For the structure builder: ``counts`` ({element: count}, tracked elements), ``label``,
    ``node_count``, ``rank``, ``share``, ``predicted_radius_of_gyration``,
    ``predicted_max_radius``, ``predicted_semiaxes`` (a, b, c), all in angstrom, and
    ``reference_label`` / ``reference_path`` (the observed label and representative file whose
    geometry best matches, ref §4.5 "source observation").

    predicted : {target: value} in target units (counts per frame, fraction, fs, 1/ps, angstrom).
    score : stability score (count per frame * fs * fraction / (1 + distance)).
    share : population share among all retained predictions (sums to 1).
    weight : population weight after tail anchoring (same units as observed weights).
    uncertainty : {quantity: {"mean", "std", "p05", "p50", "p95"}} from the bootstrap.
    """

    node_count: int
    label: str
    counts: dict
    route: str
    source_label: str | None = None
    notes: str = ""
    predicted: dict = field(default_factory=dict)
    score: float = 0.0
    share: float = 0.0
    weight: float = 0.0
    rank: int = 0
    reference_label: str | None = None
    reference_path: str | None = None
    uncertainty: dict = field(default_factory=dict)

    @property
    def target_node_count(self) -> int:
        return self.node_count

    @property
    def element_counts(self) -> dict:
        return self.counts

    @property
    def atom_count(self) -> int:
        return int(sum(self.counts.values()))

    @property
    def predicted_radius_of_gyration(self) -> float:
        return float(self.predicted.get("mean_radius_of_gyration", float("nan")))

    @property
    def predicted_max_radius(self) -> float:
        return float(self.predicted.get("mean_max_radius", float("nan")))

    @property
    def predicted_semiaxes(self) -> tuple:
        return tuple(float(self.predicted.get(f"mean_semiaxis_{k}", float("nan"))) for k in "abc")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> Candidate:
        names = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in data.items() if k in names}
        d["counts"] = {str(k): int(v) for k, v in d.get("counts", {}).items()}
        return cls(**d)


def _ordered_rows(rows):
    return sorted(rows, key=lambda r: (-r.stability_weight, -r.node_count, r.label))


def generate_candidates(rows, model, types: AtomTypes, n_target: int) -> tuple:
    """Raw candidates for one target size, filtered and deduplicated (module docs, steps 1-4).

    Returns ``(candidates, rejected)``; rejected entries are dicts with node_count, label,
    route and reason.
    """
    node_counts = allocate_node_counts(weighted_node_fractions(rows, types.node_elements), n_target)
    raw = []
    cont, info = self_consistent_counts(model, node_counts)
    counts = dict(node_counts)
    counts.update({e: round_half_up(v) for e, v in cont.items() if round_half_up(v) > 0})
    detail = ", ".join(f"{e}={v:.3f}" for e, v in cont.items())
    raw.append(
        Candidate(
            n_target,
            types.format_label(counts),
            counts,
            "trend",
            None,
            f"Trend extrapolation (self-consistent composition {detail}; {info['iterations']} iterations, residual {info['residual']:.2g})",
        )
    )
    for r in _ordered_rows(rows):
        counts = dict(node_counts)
        for e, c in sorted(r.element_counts.items()):
            if e in types.node_elements:
                continue
            v = round_half_up(c * n_target / r.node_count)
            if v > 0:
                counts[e] = v
        raw.append(Candidate(n_target, types.format_label(counts), counts, "scaled", r.label, f"Composition scaled from observed {r.label}"))
    floors = required_linker_floors(rows, types, n_target)
    pure_ok = has_pure_node_support(rows, types, n_target)
    node = set(types.node_elements)
    kept, rejected, seen = [], [], set()
    for c in raw:
        short = {e: f for e, f in floors.items() if c.counts.get(e, 0) < f}
        if short:
            reason = "below linker floor " + ", ".join(f"{e} {c.counts.get(e, 0)} < {f}" for e, f in short.items())
        elif all(e in node for e in c.counts) and not pure_ok:
            reason = "pure-node candidate without pure-node support at nearby sizes"
        elif c.label in seen:
            reason = "duplicate of an earlier candidate"
        else:
            reason = None
        if reason:
            rejected.append({"node_count": n_target, "label": c.label, "route": c.route, "source_label": c.source_label, "reason": reason})
            continue
        seen.add(c.label)
        kept.append(c)
    return kept, rejected


def _reference_row(c: Candidate, rows):
    if c.source_label is not None:
        for r in rows:
            if r.label == c.source_label:
                return r
    with_file = [r for r in rows if r.representative_path] or list(rows)
    return min(with_file, key=lambda r: (abs(c.node_count - r.node_count), composition_distance(c.counts, r.element_counts, c.node_count), r.label))


def score_candidates(candidates, model, rows, timestep_fs: float) -> list:
    """Predict every target for each candidate and set ``predicted``, ``score`` and the
    reference observation. The composition distance is measured to the first candidate."""
    if not candidates:
        return []
    first = candidates[0].counts
    dt = float(timestep_fs)
    for c in candidates:
        p = model.predict(c.counts)
        c.predicted = {k: p[k] for k in PREDICTED_FIELDS}
        d = composition_distance(c.counts, first, c.node_count)
        c.score = max(p["mean_count_per_frame"], 0.0) * max(p["mean_lifetime_fs"], dt) * max(p["occupancy_fraction"], 0.05) / (1.0 + d)
        ref = _reference_row(c, rows)
        c.reference_label = ref.label
        c.reference_path = ref.representative_path
    return candidates


def top_k(candidates, k: int) -> list:
    """The ``k`` best by (-score, label), ranked 1..k."""
    best = sorted(candidates, key=lambda c: (-c.score, c.label))[: max(int(k), 1)]
    for i, c in enumerate(best, start=1):
        c.rank = i
    return best


def share_weight(predicted: Mapping, timestep_fs: float) -> float:
    """Unnormalised share weight with the two fallbacks (module docs)."""
    sw = max(predicted["mean_count_per_frame"], 0.0) * max(predicted["occupancy_fraction"], 0.05)
    if sw == 0:
        sw = max(predicted["occupancy_fraction"], 0.0)
    if sw == 0:
        sw = max(predicted["mean_lifetime_fs"], 0.0) / max(float(timestep_fs), 1e-12)
    return sw


def assign_shares(candidates, timestep_fs: float) -> list:
    """Set ``share`` over all candidates together (sums to 1 unless every weight is 0)."""
    ws = [share_weight(c.predicted, timestep_fs) for c in candidates]
    total = max(sum(ws), 1e-12)
    for c, w in zip(candidates, ws):
        c.share = w / total
    return candidates


def _rerank(candidates) -> list:
    out = []
    for n in sorted({c.node_count for c in candidates}, reverse=True):
        group = sorted((c for c in candidates if c.node_count == n), key=lambda c: (-c.share, -c.score, c.label))
        for i, c in enumerate(group, start=1):
            c.rank = i
        out.extend(group)
    return out


def prune_by_share(candidates, threshold: float, timestep_fs: float) -> tuple:
    """Per size keep the first (share desc, score desc, label) and every other candidate with
    ``share >= threshold`` (threshold <= 0 keeps all); recompute shares if anything was removed.

    Returns ``(kept, removed)``; kept is re-ranked within each size and ordered by size
    descending.
    """
    kept, removed = [], []
    for n in sorted({c.node_count for c in candidates}):
        group = sorted((c for c in candidates if c.node_count == n), key=lambda c: (-c.share, -c.score, c.label))
        for i, c in enumerate(group):
            (kept if i == 0 or threshold <= 0 or c.share >= threshold else removed).append(c)
    if removed:
        assign_shares(kept, timestep_fs)
    return _rerank(kept), removed


def tail_anchored_mass(rows, target_sizes, predicted_base_weights=()) -> dict:
    """Total predicted population weight anchored to the observed size tail (module docs).

    Returns a dict with ``weight`` (W_pred), ``expected`` (E), ``decay``, ``largest_size``
    (s_L), ``largest_mass`` (T_L), ``mass_by_size`` ({size: T}) and ``fallback`` (None or
    which fallback gave the weight).
    """
    T: dict = {}
    for r in rows:
        if r.node_count > 0:
            T[r.node_count] = T.get(r.node_count, 0.0) + r.observed_weight
    T = {s: v for s, v in sorted(T.items()) if v > 0}
    out = {"weight": 0.0, "expected": 0.0, "decay": None, "largest_size": None, "largest_mass": 0.0, "mass_by_size": T, "fallback": None}
    if T:
        sizes = sorted(T)
        sL = sizes[-1]
        TL = T[sL]
        ratios = [(T[b] / T[a]) ** (1.0 / (b - a)) for a, b in zip(sizes, sizes[1:])]
        decay = float(np.clip(np.median(ratios) if ratios else 0.5, 0.05, 0.9))
        E = sum(T.get(s, TL) if s <= sL else TL * decay ** (s - sL) for s in target_sizes)
        out.update(weight=min(E, TL), expected=E, decay=decay, largest_size=sL, largest_mass=TL)
    if out["weight"] <= 0:
        positive = [r.observed_weight for r in rows if r.observed_weight > 0]
        base = float(sum(predicted_base_weights))
        if positive:
            out.update(weight=min(positive), fallback="smallest positive observed weight")
        elif base > 0:
            out.update(weight=base, fallback="sum of predicted base weights")
        else:
            out.update(weight=1.0, fallback="unit weight")
    return out


def apply_predicted_mass(candidates, mass: float) -> list:
    """``weight = share_normalised * mass`` for each candidate (shares renormalised to 1)."""
    total = sum(c.share for c in candidates)
    for c in candidates:
        c.weight = (c.share / total if total > 0 else 1.0 / len(candidates)) * mass
    return candidates


def predict_candidates(rows, model, types: AtomTypes, target_sizes, timestep_fs: float, candidates_per_size: int = 3, share_threshold: float = 0.02) -> dict:
    """The whole candidate pipeline for already-fitted models.

    Returns a dict with ``candidates`` (retained, ranked, ordered by size descending, with
    shares and tail-anchored weights), ``raw`` (every scored candidate before top-k),
    ``rejected`` (filtered compositions with reasons), ``pruned`` (removed by the share
    threshold) and ``mass`` (the ``tail_anchored_mass`` dict).
    """
    rows = list(rows)
    retained, rejected, raw_all = [], [], []
    for n in sorted(set(int(s) for s in target_sizes)):
        cands, rej = generate_candidates(rows, model, types, n)
        rejected.extend(rej)
        score_candidates(cands, model, rows, timestep_fs)
        raw_all.extend(dataclasses.replace(c) for c in cands)
        retained.extend(top_k(cands, candidates_per_size))
    assign_shares(retained, timestep_fs)
    kept, pruned = prune_by_share(retained, share_threshold, timestep_fs)
    base = [max(c.predicted["mean_count_per_frame"], 0.0) * max(c.predicted["occupancy_fraction"], 0.05) for c in kept]
    mass = tail_anchored_mass(rows, sorted({c.node_count for c in kept}), base)
    apply_predicted_mass(kept, mass["weight"])
    return {"candidates": kept, "raw": raw_all, "rejected": rejected, "pruned": pruned, "mass": mass}
