"""Debye-Waller sigma for observed and predicted clusters (ref §5.3, ML estimator).

1. Observed (method ``ensemble``): for each library label and element pair, the rank-aligned
   spread of the pair distances over the label's structures, from ``saxs.rank_aligned_sigma``:
   per structure the pair distances (``d <= 1.15 * cutoff`` when the rules give a level-0
   cutoff for the pair, otherwise all distances of that pair) sorted ascending, aligned by
   rank up to the smallest count ``n*``, population std per rank, root-mean-square over
   ranks. Only structures containing the pair count; at least two are needed.
2. A weighted ridge per element pair (features ``[1, n, N_tot, X_k/n]``, log1p target,
   lower bound 0, weight = stability weight x max(support, 1), lambda 1e-6; one row gives a
   constant model).
3. Observed labels without an ensemble value for a pair of their composition get a ``ridge``
   row; 4. predicted candidates get a ``ridge`` row for every pair of their composition
   (same-element pairs need a count >= 2), with a bootstrap over the ensemble rows for the
   uncertainty.
5. Beyond the reference: every ridge value (and every bootstrap replicate) is bounded to the
   range of the ensemble sigma observed for that pair, ``[min, max]`` over labels. The log1p
   ridge is nearly linear for sigma ~ 0.1 A, so extrapolating to larger clusters drives a
   slowly falling spread to 0 (no damping on a bond damped in every observed label) and a
   rising one to several angstrom. The data say nothing outside the observed range, so the
   prediction stops at its edge. ``sigma_model`` keeps the unbounded ridge value and
   ``clipped`` says whether the bound acted (``sigma_min`` / ``sigma_max`` are the bounds).

``B = 8 pi^2 sigma^2`` (angstrom^2); sigma in angstrom.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from ..library.read import AtomTypes
from ..predict.models import RIDGE_LAMBDA, WeightedRidge, feature_vector
from ..saxs.debye import rank_aligned_sigma

DW_COLUMNS = (
    "source",
    "method",
    "label",
    "node_count",
    "candidate_rank",
    "element_a",
    "element_b",
    "sigma",
    "b_factor",
    "support_count",
    "aligned_pair_count",
    "source_label",
    "sigma_std",
    "sigma_p05",
    "sigma_p95",
    "sigma_model",
    "clipped",
    "sigma_min",
    "sigma_max",
)


def b_factor(sigma: float) -> float:
    """``B = 8 pi^2 sigma^2`` (angstrom^2) from sigma (angstrom)."""
    return 8.0 * math.pi**2 * float(sigma) ** 2


def pair_keys(counts) -> list:
    """Sorted element pairs of a composition: a same-element pair needs a count >= 2."""
    els = sorted(e for e, c in counts.items() if c > 0)
    keys = [(e, e) for e in els if counts[e] >= 2]
    keys += list(itertools.combinations(els, 2))
    return sorted(keys)


def _pair_distances(symbols, positions, pair, cutoff):
    sym = np.asarray(symbols)
    a, b = pair
    pa = positions[sym == a]
    if a == b:
        if len(pa) < 2:
            return np.zeros(0)
        d = np.linalg.norm(pa[:, None, :] - pa[None, :, :], axis=-1)[np.triu_indices(len(pa), 1)]
    else:
        pb = positions[sym == b]
        d = np.linalg.norm(pa[:, None, :] - pb[None, :, :], axis=-1).ravel()
    return d if cutoff is None else d[d <= cutoff]


def observed_sigma_rows(library, rows, types: AtomTypes, cutoff_tolerance: float = 1.15) -> list:
    """Ensemble sigma rows for every library label and pair with >= 2 supporting structures."""
    ras = rank_aligned_sigma
    out = []
    for r in rows:
        structures = [(s, p) for s, p in library.structures(r.label) if len(s) >= 2]
        if len(structures) < 2:
            continue
        for pair in pair_keys(r.element_counts):
            base = types.pair_cutoff(*pair)
            cutoff = None if base is None else cutoff_tolerance * base
            counts = [_pair_distances(s, p, pair, cutoff).size for s, p in structures]
            subset = [st for st, n in zip(structures, counts) if n > 0]
            if len(subset) < 2:
                continue
            sigma = float(ras(subset, pair, cutoff))
            if not math.isfinite(sigma):
                continue
            out.append(
                dict(
                    source="observed",
                    method="ensemble",
                    label=r.label,
                    node_count=r.node_count,
                    candidate_rank=None,
                    element_a=pair[0],
                    element_b=pair[1],
                    sigma=sigma,
                    b_factor=b_factor(sigma),
                    support_count=len(subset),
                    aligned_pair_count=int(min(n for n in counts if n > 0)),
                    source_label=None,
                    sigma_std=None,
                    sigma_p05=None,
                    sigma_p95=None,
                    sigma_model=None,
                    clipped=False,
                    sigma_min=None,
                    sigma_max=None,
                )
            )
    return out


def _fit_pair_model(data, node, non_node, alpha):
    X = np.array([feature_vector(r.element_counts, node, non_node) for r, _, _ in data])
    y = np.array([s for _, s, _ in data])
    w = np.array([r.stability_weight * max(sup, 1) for r, _, sup in data])
    return WeightedRidge(alpha, "log1p", 0.0, None, float(np.sum(w * y) / np.sum(w))).fit(X, y, w)


def debye_waller_table(library, rows, candidates, types: AtomTypes, n_bootstrap: int = 200, seed: int = 0, cutoff_tolerance: float = 1.15, alpha: float = RIDGE_LAMBDA) -> list:
    """The Debye-Waller table: observed ensemble rows, ridge rows for observed labels lacking
    an ensemble value, and ridge rows for predicted candidates (columns ``DW_COLUMNS``).
    Ridge values are bounded to the pair's observed ensemble range (``clipped`` marks rows
    where the bound acted; ``sigma_model`` is the unbounded value).

    Sorted observed before predicted, then node count, rank, label, element_a, element_b.
    """
    rows = list(rows)
    table = observed_sigma_rows(library, rows, types, cutoff_tolerance)
    by_label = {r.label: r for r in rows}
    node = types.node_elements
    non_node = tuple(sorted({e for r in rows for e, c in r.element_counts.items() if c > 0} - set(node)))
    training: dict = {}
    for t in table:
        training.setdefault((t["element_a"], t["element_b"]), []).append((by_label[t["label"]], t["sigma"], t["support_count"]))
    models = {pair: _fit_pair_model(data, node, non_node, alpha) for pair, data in training.items()}
    bounds = {pair: (min(s for _, s, _ in data), max(s for _, s, _ in data)) for pair, data in training.items()}
    rng = np.random.default_rng(seed)
    boot_models = {}
    for pair, data in training.items():
        reps = []
        for _ in range(int(n_bootstrap)):
            idx = rng.integers(0, len(data), len(data))
            reps.append(_fit_pair_model([data[i] for i in idx], node, non_node, alpha))
        boot_models[pair] = reps
    have = {(t["label"], t["element_a"], t["element_b"]) for t in table}

    def ridge_row(source, label, node_count, rank, counts, pair, source_label):
        x = feature_vector(counts, node, non_node)[None, :]
        lo, hi = bounds[pair]
        model_sigma = float(models[pair].predict(x)[0])
        sigma = float(np.clip(model_sigma, lo, hi))
        reps = [float(np.clip(m.predict(x)[0], lo, hi)) for m in boot_models[pair]]
        p05, p95 = (np.percentile(reps, [5, 95]) if reps else (None, None))
        return dict(
            source=source,
            method="ridge",
            label=label,
            node_count=node_count,
            candidate_rank=rank,
            element_a=pair[0],
            element_b=pair[1],
            sigma=sigma,
            b_factor=b_factor(sigma),
            support_count=len(training[pair]),
            aligned_pair_count=None,
            source_label=source_label,
            sigma_std=float(np.std(reps, ddof=1)) if len(reps) > 1 else None,
            sigma_p05=None if p05 is None else float(p05),
            sigma_p95=None if p95 is None else float(p95),
            sigma_model=model_sigma,
            clipped=bool(sigma != model_sigma),
            sigma_min=float(lo),
            sigma_max=float(hi),
        )

    for r in rows:
        for pair in pair_keys(r.element_counts):
            if pair in models and (r.label, *pair) not in have:
                table.append(ridge_row("observed", r.label, r.node_count, None, r.element_counts, pair, None))
    for c in candidates:
        for pair in pair_keys(c.counts):
            if pair in models:
                table.append(ridge_row("predicted", c.label, c.node_count, c.rank, c.counts, pair, c.source_label))
    table.sort(key=lambda t: (t["source"] != "observed", t["node_count"], t["candidate_rank"] or 0, t["label"], t["element_a"], t["element_b"]))
    return table


def sigma_lookup(table, label: str) -> dict:
    """``{(el_a, el_b): sigma}`` of one label from a Debye-Waller table, for ``debye_intensity``."""
    return {(t["element_a"], t["element_b"]): t["sigma"] for t in table if t["label"] == label}
