"""Composition of the clusters at each node count: a full distribution over linker (and
shell) counts that moves smoothly with size.

For each non-node element ``e`` of the label (linkers, and shells when they enter the label),
the count ``m_e`` of a cluster with ``n`` nodes follows a discretised normal distribution
truncated to ``m >= 0``::

    P(m | n) = [Phi((m + 1/2 - mu_e(n)) / sd_e(n)) - Phi((m - 1/2 - mu_e(n)) / sd_e(n))] / Z
    mu_e(n)  = alpha_e + beta_e n                    (linear: a constant offset from a fixed
                                                      stoichiometry, e.g. m - n for NaCl)
    sd_e(n)  = s_e n^p_e,   0 <= p_e <= 1            (power law)

Fit: at every observed size with at least two nodes (see below) the maximum-likelihood ``(mu, sd)``
of the observed label counts (weights: clusters per frame of each label), then ``mu(n)`` and
``log sd(n)`` by least squares over the sizes, each size weighted by the number of clusters
observed there. Elements are
independent given ``n`` (the joint distribution is the product); an ionic cluster stays near
neutrality because the observed offsets do, the law does not assume charges.

Single-node clusters are left out of the fit when at least two larger sizes are observed: a
one-node cluster is the coordination complex of that node (a free ion counts with m = 0), its
linker count follows the first coordination shell and not the bridging network of the larger
clusters the law extrapolates to. On molten NaCl (1450 K) including n = 1 pulled the mean
slope from 0.97 to 1.14 linkers per node and the width exponent from 0.5 to 0.

Shell elements that are tracked but not in the label (the shares are over labels) get the
same law; only its mean enters the built composition (rounded half up).

``CompositionModel.distribution(n)`` lists ``(label, counts, probability)`` by probability
(labels formatted by ``AtomTypes.format_label``); the probabilities of one size sum to 1 (up
to the dropped tail below ``min_probability``, which is renormalised away).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import ndtr

from ..library.read import AtomTypes

SD_FLOOR = 0.15  # smallest width fitted (counts); a size with one composition has sd -> 0


def discretised_normal(mu: float, sd: float, m_max: int | None = None) -> np.ndarray:
    """P(m) for m = 0..m_max of the discretised normal truncated to m >= 0 (sums to 1)."""
    sd = max(float(sd), 1e-6)
    if m_max is None:
        m_max = max(int(math.ceil(mu + 8 * sd)), 1)
    m = np.arange(m_max + 1, dtype=np.float64)
    p = ndtr((m + 0.5 - mu) / sd) - ndtr((m - 0.5 - mu) / sd)
    p = np.clip(p, 0.0, None)
    tot = p.sum()
    if tot <= 0:  # all mass below 0 or far above: a point mass at the nearest count
        p = np.zeros_like(m)
        p[int(np.clip(round(mu), 0, m_max))] = 1.0
        return p
    return p / tot


def fit_discretised_normal(values, weights) -> tuple:
    """Maximum-likelihood (mu, sd) of weighted integer observations (sd >= SD_FLOOR)."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if v.size == 0 or w.sum() <= 0:
        raise ValueError("no observation to fit a composition distribution to")
    w = w / w.sum()
    mean = float(np.sum(w * v))
    sd0 = max(math.sqrt(max(float(np.sum(w * (v - mean) ** 2)) - 1.0 / 12.0, 0.0)), SD_FLOOR)
    m_max = int(v.max()) + 10

    idx = v.astype(int)

    def nll(x):
        p = discretised_normal(x[0], math.exp(x[1]), m_max)
        return -float(np.sum(w * np.log(np.clip(p[idx], 1e-300, None))))

    res = minimize(
        nll,
        [mean, math.log(sd0)],
        method="L-BFGS-B",
        bounds=[(None, None), (math.log(SD_FLOOR), math.log(10.0 * m_max))],
    )
    return float(res.x[0]), float(max(math.exp(res.x[1]), SD_FLOOR))


@dataclass
class ElementLaw:
    """``mu(n) = alpha + beta n``, ``sd(n) = s n^p`` for one element (counts)."""

    element: str
    alpha: float
    beta: float
    s: float
    p: float
    in_label: bool = True
    per_size: dict = field(default_factory=dict)  # {n: (mu, sd, weight)}

    def mean(self, n) -> float:
        return float(self.alpha + self.beta * n)

    def sd(self, n) -> float:
        return float(max(self.s * float(n) ** self.p, SD_FLOOR))

    def pmf(self, n) -> np.ndarray:
        return discretised_normal(self.mean(n), self.sd(n))

    def to_dict(self) -> dict:
        return {
            "element": self.element,
            "alpha": self.alpha,
            "beta": self.beta,
            "s": self.s,
            "p": self.p,
            "in_label": self.in_label,
            "per_size": {int(k): {"mu": v[0], "sd": v[1], "weight": v[2]} for k, v in self.per_size.items()},
        }


def _fit_law(element, per_size, in_label) -> ElementLaw:
    ns = np.array(sorted(per_size), dtype=np.float64)
    mu = np.array([per_size[n][0] for n in sorted(per_size)])
    sd = np.array([per_size[n][1] for n in sorted(per_size)])
    w = np.array([max(per_size[n][2], 1e-9) for n in sorted(per_size)])
    if ns.size == 1:  # one size: proportional mean, constant width
        return ElementLaw(element, 0.0, float(mu[0] / ns[0]), float(sd[0]), 0.0, in_label, per_size)
    sw = np.sqrt(w)
    X = np.column_stack([np.ones_like(ns), ns])
    (alpha, beta), *_ = np.linalg.lstsq(X * sw[:, None], mu * sw, rcond=None)
    Xl = np.column_stack([np.ones_like(ns), np.log(ns)])
    (ls, p), *_ = np.linalg.lstsq(Xl * sw[:, None], np.log(sd) * sw, rcond=None)
    p = float(np.clip(p, 0.0, 1.0))
    ls = float(np.sum(w * (np.log(sd) - p * np.log(ns))) / np.sum(w))  # refit the level at the clipped exponent
    return ElementLaw(element, float(alpha), float(beta), float(math.exp(ls)), p, in_label, per_size)


class CompositionModel:
    """Per-element laws fitted on observed labels (see module docs)."""

    def __init__(self, types: AtomTypes, laws: list, notes=(), node_fractions=None):
        self.types = types
        self.laws = list(laws)
        self.notes = list(notes)
        self.node_fractions = dict(node_fractions or {types.node_elements[0]: 1.0})

    @classmethod
    def fit(cls, observed, types: AtomTypes) -> CompositionModel:
        """Fit on ``ObservedClusters`` (labels with clusters per frame > 0)."""
        node = set(types.node_elements)
        label_els = [e for e in types.label_elements if e not in node]
        extra = [e for e in types.shell_elements if e not in label_els]
        by_size = observed.by_size()
        if not by_size:
            raise ValueError("no observed cluster with node atoms: the composition distribution cannot be fitted")
        laws, notes = [], []
        if sum(1 for n in by_size if n >= 2) >= 2:
            by_size = {n: d for n, d in by_size.items() if n >= 2}
            notes.append(
                "single-node clusters (coordination complexes of one node) are left out of the composition laws"
            )
        for el, in_label in [(e, True) for e in label_els] + [(e, False) for e in extra]:
            per_size = {}
            for n, d in by_size.items():
                labs = d["labels"] if in_label else [o for o in d["labels"] if o.atom_count is not None]
                if not labs:
                    continue
                vals = [o.counts.get(el, 0) for o in labs]
                wts = [o.count_per_frame for o in labs]
                mu, sd = fit_discretised_normal(vals, wts)
                per_size[n] = (mu, sd, float(sum(o.observations for o in labs)) or 1.0)
            if not per_size:
                notes.append(f"no observed structure carries {el}: it is left out of the predicted compositions")
                continue
            laws.append(_fit_law(el, per_size, in_label))
        fractions = {e: 0.0 for e in types.node_elements}
        for d in by_size.values():
            for o in d["labels"]:
                for e in fractions:
                    fractions[e] += o.count_per_frame * o.counts.get(e, 0) / o.node_count
        total = sum(fractions.values())
        fractions = {e: v / total for e, v in fractions.items()} if total > 0 else {types.node_elements[0]: 1.0}
        if len(types.node_elements) > 1:
            frac = ", ".join(f"{e} {v:.3g}" for e, v in fractions.items())
            notes.append(
                f"several node elements ({', '.join(types.node_elements)}): every predicted size gets one node "
                f"composition, their mean observed fractions ({frac}) allocated by largest remainder; the observed "
                "spread of node compositions at a size is not modelled, so the predicted within-size shares are too "
                "concentrated (one composition at share 1.0 when there is no linker)"
            )
        return cls(types, laws, notes, fractions)

    def distribution(self, n: int, min_probability: float = 1e-4) -> list:
        """``[(label, counts, probability)]`` at node count ``n``, most probable first.

        The node composition: ``n`` atoms of the node element; with several node elements their
        count-weighted mean observed fractions allocated to ``n`` by the largest-remainder
        method (a note in ``notes``). Shell elements outside the label get the rounded mean of
        their law.
        """
        from .candidates import allocate_node_counts

        base = allocate_node_counts(self.node_fractions, int(n))
        for law in self.laws:
            if not law.in_label:
                v = int(math.floor(max(law.mean(n), 0.0) + 0.5))
                if v > 0:
                    base[law.element] = v
        label_laws = [law for law in self.laws if law.in_label]
        if not label_laws:
            return [(self.types.format_label(base), dict(base), 1.0)]
        supports = []
        for law in label_laws:
            p = law.pmf(n)
            idx = np.nonzero(p >= min_probability)[0]
            supports.append([(int(m), float(p[m])) for m in idx])
        out = []
        for combo in itertools.product(*supports):
            prob = float(np.prod([c[1] for c in combo]))
            if prob < min_probability:
                continue
            counts = dict(base)
            for law, (m, _) in zip(label_laws, combo):
                if m > 0:
                    counts[law.element] = m
            out.append((self.types.format_label(counts), counts, prob))
        tot = sum(p for _, _, p in out)
        out = [(lab, c, p / tot) for lab, c, p in out]
        out.sort(key=lambda t: (-t[2], t[0]))
        return out

    def shares(self, n: int, min_probability: float = 1e-4) -> dict:
        return {lab: p for lab, _, p in self.distribution(n, min_probability)}

    def to_dict(self) -> dict:
        return {"laws": [law.to_dict() for law in self.laws], "notes": list(self.notes)}


def total_variation(p: dict, q: dict) -> float:
    """``0.5 sum |p - q|`` over the union of labels (0 = identical, 1 = disjoint)."""
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))
