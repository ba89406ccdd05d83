"""Ensemble-averaged Debye partial sums: a whole ensemble of structures (a cluster label's
library structures) in one C++ call.

For structures k with weights w_k (default 1) the ensemble mean of any quantity X is
``mean X = sum_k w_k X_k / sum_k w_k``. The Debye intensity of one structure,

    I_k(q) = sum_a n_ka f_a^2 + 2 sum_{a<=b} f_a f_b D_ab(q) S_kab(q),

is linear in its counts n_ka and partial sums S_kab, and neither the form factors f_a(q) nor
the pairwise Debye-Waller damping D_ab(q) = exp(-sigma_ab^2 q^2 / 2) depend on k, so

    mean I(q) = sum_a mean(n_a) f_a^2 + 2 sum_{a<=b} f_a f_b D_ab(q) mean(S_ab)(q):

averaging the partials first and damping afterwards is exactly the mean of the damped traces.
:func:`debye_partials_ensemble` returns those mean partials as an :class:`EnsemblePartials`
(a :class:`~clusterdynamicsml.saxs.debye.DebyePartials` whose counts and pair counts are
means, floats), over the union of the structures' elements (an element absent from a
structure counts zero atoms there).

Methods (units: angstrom, q in 1/angstrom):

* ``"histogram"``: every pair of every structure is binned into ONE histogram per element
  pair (bin width ``bin_width``, bins over [0, the largest bounding-box diagonal]) and
  transformed once: cost ~ (all pairs + bins x nq) instead of all pairs x nq. Weights must be
  integers 0..32768 (multiplicities: a structure's pairs are binned w_k times). The mean obeys
  the bound of :meth:`EnsemblePartials.histogram_error_bound`,
  ``|I_hist - I_exact| <= e(q) * 2 sum_{a<=b} |f_a f_b| mean(N_ab)`` with e(q) from
  :mod:`clusterdynamicsml.saxs.debye` (r_max the largest diagonal), i.e. at most e(q) of the
  mean forward intensity.
* ``"exact"``: every structure's exact sums, one structure per thread, added in structure order.
* ``"auto"``: the histogram when the weights are integers and the pooled pairs outnumber four
  times the bins (the one-structure rule, :func:`~clusterdynamicsml.saxs.batch.auto_method`,
  applied to the pooled pair count), else each structure by the one-structure rule.

``moments=True`` also returns the covariance over the structures of their counts and partial
sums, from which :meth:`EnsemblePartials.intensity_std` gives the population std of I(q) over the
structures for any damping. A std needs every structure's own sums, so with moments each
structure is computed on its own ("exact": exact, "histogram": its own histogram, "auto": the
one-structure rule per structure) and no pooled histogram is used.

Every result is bit-identical for any thread count (integer histogram sums, or per-structure
sums reduced in structure order).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _core
from .._threads import resolve_threads
from .batch import _check_call, _prepare
from .debye import DebyePartials, _pair_dict, _pair_list, histogram_error_per_pair

__all__ = ["EnsemblePartials", "debye_partials_ensemble"]


@dataclass(frozen=True)
class EnsemblePartials(DebyePartials):
    """Weighted-mean partial sums of an ensemble (see the module docstring).

    counts : float64 (T,) mean atoms per element; pair_counts : float64 (P,) mean pairs per
    element pair; s : (P, nq) mean S_ab(q). method : 'histogram' when any structure's pairs were
    binned (``pooled``: into one shared histogram), else 'exact'. r_max : the largest
    bounding-box diagonal (angstrom). n_structures, weight_sum : the ensemble and its total weight.
    cov : with moments, (T + P, T + P, nq) population covariance over the structures of
    (n_a ..., S_ab(q) ...), else None.
    """

    n_structures: int = 1
    weight_sum: float = 1.0
    pooled: bool = False
    n_histogram: int = 0
    cov: np.ndarray | None = None

    def _coefficients(self, sigma, sigma_scale: float, ff) -> np.ndarray:
        """(T + P, nq) c with I(q) = c . (counts, S): f_a^2, then 2 f_a f_b D_ab(q)."""
        sg = _pair_dict(sigma, "sigma")
        scale = float(sigma_scale)
        if not np.isfinite(scale) or scale < 0:
            raise ValueError(f"sigma_scale must be finite and >= 0, got {sigma_scale!r}")
        f = self.form_factor_table(ff)
        index = {e: k for k, e in enumerate(self.elements)}
        rows = [f[a] * f[a] for a in range(len(self.elements))]
        for a, b in self.pairs:
            sig = sg.get((a, b), 0.0) * scale
            rows.append(2.0 * f[index[a]] * f[index[b]] * np.exp(-0.5 * sig * sig * self.q**2))
        return np.array(rows).reshape(len(rows), self.q.size)

    def intensity_std(self, sigma=None, sigma_scale: float = 1.0, ff=None) -> np.ndarray:
        """Population std over the structures (weighted, ddof 0) of their traces I_k(q)
        (electrons^2, (nq,)) for damping ``sigma`` {('A', 'B'): angstrom} on every pair:
        sqrt(c^T cov c). Needs partials computed with ``moments=True``."""
        if self.cov is None:
            raise ValueError("intensity_std needs ensemble partials computed with moments=True")
        c = self._coefficients(sigma, sigma_scale, ff)
        var = np.einsum("ik,ijk,jk->k", c, self.cov, c)
        return np.sqrt(np.clip(var, 0.0, None))

    def histogram_error_bound(self, ff=None) -> np.ndarray:
        """Bound on |I_hist - I_exact| of the mean trace (electrons^2, (nq,)):
        e(q) * 2 sum_{a<=b} |f_a f_b| mean(N_ab) with r_max the largest diagonal; zeros when no
        structure was binned. Per structure this is e(q) ((sum_i |f_i|)^2 - sum_i f_i^2), and the
        mean of the bounds bounds the error of the mean. Damping only shrinks it."""
        if self.method != "histogram":
            return np.zeros_like(self.q)
        if self.bin_width is None or self.pair_counts is None:
            raise ValueError("histogram partials need their bin_width (angstrom) and pair counts")
        f = np.abs(self.form_factor_table(ff))
        index = {e: k for k, e in enumerate(self.elements)}
        total = np.zeros_like(self.q)
        for p, (a, b) in enumerate(self.pairs):
            total += 2.0 * f[index[a]] * f[index[b]] * self.pair_counts[p]
        return histogram_error_per_pair(self.q, self.bin_width, self.r_max) * total


def debye_partials_ensemble(structures, q, method: str = "auto", bin_width: float = 0.001, weights=None,
                            moments: bool = False, num_threads: int | None = None) -> EnsemblePartials:
    """Ensemble-averaged partial Debye sums of ``structures`` in one C++ call.

    structures : sequence of ``(symbols, positions)`` (or objects with ``.symbols`` and
        ``.positions``); positions (n, 3) angstrom; compositions may differ.
    q : (nq,) 1/angstrom >= 0.  method : 'auto', 'exact' or 'histogram' (module docstring).
    bin_width : histogram bin width, angstrom.
    weights : None (all 1) or (B,) finite weights >= 0 with a positive sum; the pooled
        histogram needs integers 0..32768 (multiplicities).
    moments : also compute the covariance for :meth:`EnsemblePartials.intensity_std`.
    num_threads : None (package default) or a positive int; the result is the same for any.

    ``result.intensity(sigma)`` is the weighted mean of the structures' traces
    ``debye_partials(...).intensity(sigma)`` (electrons^2). Raises ValueError naming the
    structure (``structures[k]`` / ``structure k``) for bad input.
    """
    bw, qa = _check_call(method, bin_width, q)
    items = list(structures)
    if not items:
        raise ValueError("an ensemble needs at least one structure")
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (len(items),):
            raise ValueError(f"weights must have shape ({len(items)},), got {w.shape}")
    pos_all, union, types_all = _prepare(items)
    s, counts, pair_counts, pooled, n_hist, r_max, cov, _uniform = _core.debye_partials_ensemble(
        pos_all, types_all, len(union), qa, method, bw, w, bool(moments), resolve_threads(num_threads))
    hist = int(n_hist) > 0
    return EnsemblePartials(
        q=qa, elements=tuple(union), counts=np.asarray(counts), pairs=tuple(_pair_list(union)), s=s,
        method="histogram" if hist else "exact", bin_width=bw if hist else None,
        pair_counts=np.asarray(pair_counts), r_max=float(r_max), n_structures=len(items),
        weight_sum=float(len(items) if w is None else w.sum()), pooled=bool(pooled), n_histogram=int(n_hist),
        cov=cov)
