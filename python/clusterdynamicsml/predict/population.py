"""Total cluster population per node count: fits that extrapolate to larger sizes.

``c(n)`` is the mean number of clusters per frame with ``n`` node atoms, summed over every
composition (linker and shell counts). Four models:

* ``"cnt"`` (association equilibrium, classical nucleation form)::

      log c(n) = a + b n + s n^(2/3)

  In equilibrium ``c(n) = c0 exp(-dG(n)/kT)``, and for a cluster of ``n`` formula units
  ``dG(n)/kT = -(b n + s n^(2/3))`` up to a constant: ``-b`` is the bulk free energy per node
  (kT units; ``b < 0`` means a large cluster costs free energy per added node, the
  sub-saturated melt or solution) and ``-s`` is the surface term (kT per n^(2/3)). Fitted by
  weighted least squares on the observed sizes with Poisson weights: the variance of
  ``log c`` is about ``1/N(n)``, ``N(n)`` the number of clusters observed at size ``n`` over
  all frames, so the weight is ``N(n)``.
* ``"fisher"`` (Fisher droplet model, M. E. Fisher, Physics 3, 255 (1967)): the same law
  plus the entropy of the cluster's surface configurations, ``-tau log n``::

      log c(n) = a + b n + s n^(2/3) - tau log n,     tau = 2.2 (fixed)

  ``tau`` is the universal exponent of the cluster-size distribution in three dimensions
  (2.2 in Fisher's model; 2.19 for 3D percolation clusters), not fitted: with six or fewer
  observed sizes a free ``tau`` is not determined. ``a``, ``b``, ``s`` are fitted with the
  same Poisson weights. Without the ``tau`` term, the fit on small sizes bends the slope
  upward (``b > 0``) to follow the flattening of ``log c`` that the ``log n`` term describes.
* ``"geometric"``: a geometric tail ``log c(n) = a + b n``, fitted the same way on the upper
  half of the training sizes (at least two; the small sizes follow monomer chemistry, not
  the tail).
* ``"reference"``: no size model here; the reference ridge of ``models.py`` predicts each
  composition (kept for comparison with the reference tool).

Guards: fewer than three training sizes make the ``"cnt"`` fit degenerate, so it falls back
to ``"geometric"`` with a warning. A fit whose slope ``d log c / dn = b + (2/3) s n^(-1/3)`` is
not negative at some size between the largest training size and the largest target would
make the population grow with size there; the fit is flagged and replaced by the geometric
tail (a warning names the slope). With one training size nothing can be extrapolated
(ValueError).

Tail anchor (every size model): a law fitted with Poisson weights is dominated by the small,
populous sizes and can pass far above the few clusters observed at the largest sizes (the
bundled example: 0.985 clusters per frame at n = 3, 0.015 and 0.025 at n = 4 and 5, the Fisher
fit on n <= 5 gives 0.147 at n = 6). With ``L`` the largest observed node count, ``N(L)`` its
clusters over all frames and ``F(n) = N(n)/c(n)`` the frames behind each count, the law is
anchored when its prediction at ``L + 1`` exceeds the one-sided 95 % Poisson upper limit of the
count at ``L``::

    c_law(L + 1) > c_up(L) = c(L) U95(N(L)) / N(L),   U95(N) = chi2_0.95(2N + 2) / 2

Beyond ``L`` the law's shape is kept and its level is set by the tail, the Poisson maximum
likelihood scale over the ``TAIL_SIZES`` = 2 largest observed sizes ``T`` (the largest alone
is often a handful of clusters), bounded so that the first extrapolated size respects the limit::

    A = min(1, sum_T N(n) / sum_T F(n) c_law(n),  c_up(L) / c_law(L + 1))
    c(n) = A c_law(n)  for n > L       (c(n) = c_law(n) for n <= L)

A law that already follows the tail (``c_law(L + 1) <= c_up(L)``) is not changed (``A = 1``),
nor is a flagged law that does not fall beyond ``L`` (its warning already says that nothing
reliable can be extrapolated).
Because the law falls beyond ``L`` (the slope guard below), the anchored counts are
non-increasing beyond ``L`` and ``c(L + 1) <= c_up(L)``. The factor, the bound and the tail
are recorded (``PopulationFit.anchor``, ``anchor_info``, a warning). The bootstrap refits every
replicate through ``fit_population``, so each replicate is anchored by the same rule, against
the replicate's time-resampled counts of every observed size (``tail``): the case resampling
of node counts perturbs the law's shape, it does not remove the observed tail.

Units: counts per frame; ``a`` is ``log`` of a count per frame, ``b`` is per node, ``s`` per
node^(2/3), all in kT.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import chi2 as _chi2

POPULATION_MODELS = ("fisher", "cnt", "geometric", "reference")

#: Fisher exponent of the cluster-size distribution in three dimensions (fixed, see module docs).
FISHER_TAU = 2.2

#: largest observed sizes whose clusters set the level of an anchored law (module docs)
TAIL_SIZES = 2
#: one-sided confidence of the Poisson upper limit that triggers the anchor
TAIL_CONFIDENCE = 0.95


def poisson_upper(n_obs: float, confidence: float = TAIL_CONFIDENCE) -> float:
    """One-sided upper limit of a Poisson mean given ``n_obs`` events (exact, Garwood):
    ``chi2_conf(2 n + 2) / 2`` (3.00 for 0 events, 10.5 for 5 at 95 %)."""
    return float(_chi2.ppf(confidence, 2.0 * float(n_obs) + 2.0) / 2.0)


@dataclass
class PopulationFit:
    """A fitted population law ``log c(n) = sum_k coef_k f_k(n)``.

    model : the model actually used ("fisher", "cnt" or "geometric").
    requested : the model asked for.
    coef : {"a", "b", "s", "tau"} (s = 0 for geometric, tau = 0 unless fisher); log counts per
        frame, per node, per n^(2/3), per log n.
    train_sizes : node counts used in the fit.
    chi2_reduced : weighted residual sum of squares / (points - parameters) (None if no dof).
    warnings : fallbacks and flags, each a sentence.
    anchor : factor on the law beyond ``anchor_from`` (the largest observed node count); 1
        when the law follows the observed tail (module docs, "Tail anchor").
    anchor_info : the tail test and, when anchored, the tail sizes and levels (None before
        ``anchor_to_tail``).
    """

    model: str
    requested: str
    coef: dict
    train_sizes: list
    chi2_reduced: float | None = None
    flagged: bool = False
    warnings: list = field(default_factory=list)
    anchor: float = 1.0
    anchor_from: int | None = None
    anchor_info: dict | None = None

    def law_log_count(self, n) -> np.ndarray:
        """``log`` of the fitted law, without the tail anchor."""
        n = np.asarray(n, dtype=np.float64)
        return (
            self.coef["a"]
            + self.coef["b"] * n
            + self.coef.get("s", 0.0) * n ** (2.0 / 3.0)
            - self.coef.get("tau", 0.0) * np.log(n)
        )

    def log_count(self, n) -> np.ndarray:
        """``log c(n)``: the law, times ``anchor`` beyond ``anchor_from``."""
        out = self.law_log_count(n)
        if self.anchor != 1.0 and self.anchor_from is not None:
            out = out + np.where(np.asarray(n, dtype=np.float64) > self.anchor_from, math.log(self.anchor), 0.0)
        return out

    def count_per_frame(self, n) -> np.ndarray:
        """Predicted clusters per frame at node count(s) ``n``."""
        return np.exp(self.log_count(n))

    def slope(self, n) -> np.ndarray:
        """``d log c / dn`` (per node)."""
        n = np.asarray(n, dtype=np.float64)
        return (
            self.coef["b"] + (2.0 / 3.0) * self.coef.get("s", 0.0) * n ** (-1.0 / 3.0) - self.coef.get("tau", 0.0) / n
        )

    def free_energy_terms(self) -> dict:
        """``dG(n)/kT = const + bulk n + surface n^(2/3) + tau log n`` with ``bulk = -b``,
        ``surface = -s`` (kT) and the fixed Fisher ``tau``."""
        return {
            "bulk_kT_per_node": -self.coef["b"],
            "surface_kT_per_node_2_3": -self.coef.get("s", 0.0),
            "tau": self.coef.get("tau", 0.0),
        }

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "requested": self.requested,
            "coef": dict(self.coef),
            "free_energy": self.free_energy_terms(),
            "train_sizes": [int(s) for s in self.train_sizes],
            "chi2_reduced": self.chi2_reduced,
            "flagged": self.flagged,
            "warnings": list(self.warnings),
            "anchor": float(self.anchor),
            "anchor_from": self.anchor_from,
            "anchor_info": self.anchor_info,
        }


def _wls(X, y, w):
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    resid = y - X @ coef
    dof = X.shape[0] - X.shape[1]
    chi2 = float(np.sum(w * resid**2) / dof) if dof > 0 else None
    return coef, chi2


def _check_inputs(sizes, counts, observations):
    n = np.asarray(sizes, dtype=np.float64).reshape(-1)
    c = np.asarray(counts, dtype=np.float64).reshape(-1)
    N = np.asarray(observations, dtype=np.float64).reshape(-1)
    if not (n.shape == c.shape == N.shape):
        raise ValueError(
            f"sizes, counts and observations must have the same length, got {n.shape}, {c.shape}, {N.shape}"
        )
    if np.any(~np.isfinite(n)) or np.any(n <= 0) or np.any(n != np.round(n)):
        raise ValueError(f"sizes must be positive integers (node counts), got {n.tolist()}")
    if np.any(~np.isfinite(c)) or np.any(~np.isfinite(N)) or np.any(N < 0):
        raise ValueError("counts and observations must be finite and observations >= 0")
    keep = c > 0
    return n[keep], c[keep], np.where(N[keep] > 0, N[keep], 1.0)


def fit_geometric(sizes, counts, observations, requested: str = "geometric", warnings=None) -> PopulationFit:
    """Geometric tail ``log c = a + b n`` on the upper half of the sizes (>= 2 points).

    A tail that does not fall (``b >= 0``) is refitted on all sizes and flagged; if that
    still rises the fit is kept, flagged, with a warning that nothing reliable can be said.
    """
    n, c, N = _check_inputs(sizes, counts, observations)
    if n.size < 2:
        raise ValueError(
            f"at least 2 observed node counts with a positive count are needed for a population fit, got {n.tolist()}"
        )
    order = np.argsort(n)
    n, c, N = n[order], c[order], N[order]
    k = max(2, int(math.ceil(n.size / 2)))
    warns = list(warnings or [])
    flagged = False
    for used in (slice(n.size - k, None), slice(None)):
        X = np.column_stack([np.ones_like(n[used]), n[used]])
        coef, chi2 = _wls(X, np.log(c[used]), N[used])
        if coef[1] < 0:
            break
        flagged = True
        if used.start is not None and k < n.size:
            warns.append(
                f"the geometric tail of the largest {k} sizes rises with size (slope {coef[1]:+.3g} per node): "
                f"refitted on all {n.size} sizes"
            )
        else:
            warns.append(
                f"the observed population does not fall with size (geometric slope {coef[1]:+.3g} per node): larger "
                "clusters cannot be extrapolated reliably"
            )
            break
    return PopulationFit(
        "geometric",
        requested,
        {"a": float(coef[0]), "b": float(coef[1]), "s": 0.0, "tau": 0.0},
        n[used].astype(int).tolist(),
        chi2,
        flagged,
        warns,
    )


def fit_cnt(sizes, counts, observations, max_target: int | None = None, tau: float = 0.0) -> PopulationFit:
    """``log c = a + b n + s n^(2/3) - tau log n`` by Poisson-weighted least squares (module
    docs; ``tau = 0`` is the "cnt" model, ``tau > 0`` the "fisher" model), with the geometric
    fallback for too few sizes or a slope that turns upward."""
    name = "fisher" if tau else "cnt"
    n, c, N = _check_inputs(sizes, counts, observations)
    if n.size < 3:
        return fit_geometric(
            sizes,
            counts,
            observations,
            name,
            [
                f"only {n.size} observed node counts: the 3-term population law needs >= 3, so the geometric tail is "
                "used"
            ],
        )
    X = np.column_stack([np.ones_like(n), n, n ** (2.0 / 3.0)])
    coef, chi2 = _wls(X, np.log(c) + tau * np.log(n), N)
    fit = PopulationFit(
        name,
        name,
        {"a": float(coef[0]), "b": float(coef[1]), "s": float(coef[2]), "tau": float(tau)},
        sorted(n.astype(int).tolist()),
        chi2,
    )
    hi = max(int(max_target or 0), int(n.max()) + 1)
    grid = np.arange(int(n.max()), hi + 1)
    slope = fit.slope(grid)
    if np.any(slope >= 0) or fit.coef["b"] > 0:
        where = int(grid[np.argmax(slope >= 0)]) if np.any(slope >= 0) else hi
        return fit_geometric(
            sizes,
            counts,
            observations,
            name,
            [
                f"the 3-term population law turns upward (d log c/dn >= 0 at n = {where}, b = {fit.coef['b']:+.3g}, s "
                f"= {fit.coef['s']:+.3g}): flagged and replaced by the geometric tail"
            ],
        )
    return fit


def anchor_to_tail(fit: PopulationFit, sizes, counts, observations) -> PopulationFit:
    """Anchor ``fit`` to the observed tail when its prediction at the size after the largest
    observed one exceeds the Poisson upper limit of the count there (module docs, "Tail
    anchor"). Sets ``anchor``, ``anchor_from``, ``anchor_info`` and, when anchored, a warning;
    returns ``fit``."""
    n, c, N = _check_inputs(sizes, counts, observations)
    order = np.argsort(n)
    n, c, N = n[order], c[order], N[order]
    L = int(n[-1])
    c_up = float(c[-1] * poisson_upper(N[-1]) / N[-1])
    first = float(fit.count_per_frame(L + 1))
    info: dict = {
        "largest_observed_node_count": L,
        "observed_count_at_largest": float(c[-1]),
        "observed_clusters_at_largest": float(N[-1]),
        "upper_limit_at_largest": c_up,
        "confidence": TAIL_CONFIDENCE,
        "law_count_after_largest": first,
        "anchored": False,
    }
    fit.anchor, fit.anchor_from, fit.anchor_info = 1.0, L, info
    if not first > c_up:
        return fit
    if not first < float(fit.count_per_frame(L)):
        info["reason"] = "the law does not fall beyond the largest observed node count (flagged): not anchored"
        return fit
    t = slice(max(0, n.size - TAIL_SIZES), None)
    frames = N[t] / c[t]
    expected = float(np.sum(frames * fit.count_per_frame(n[t])))
    tail_scale = float(np.sum(N[t]) / expected)
    A = min(1.0, tail_scale, c_up / first)
    tail_sizes = n[t].astype(int).tolist()
    info.update({"anchored": True, "tail_node_counts": tail_sizes, "tail_observed_clusters": float(np.sum(N[t])),
                 "tail_law_clusters": expected, "tail_scale": tail_scale, "anchor": A})
    fit.anchor = A
    fit.warnings.append(
        f"the {fit.model} law predicts {first:.3g} clusters per frame at node count {L + 1}, above the "
        f"{100 * TAIL_CONFIDENCE:g} % Poisson upper limit {c_up:.3g} of the count at the largest observed node count "
        f"{L} ({c[-1]:.3g} per frame, {N[-1]:g} clusters): beyond {L} the law is anchored to the observed tail "
        f"(node counts {tail_sizes}: {np.sum(N[t]):g} clusters observed, {expected:.3g} by the law), factor {A:.3g}"
    )
    return fit


def fit_population(model: str, sizes, counts, observations, max_target: int | None = None, tail=None) -> PopulationFit:
    """Fit ``model`` ("fisher", "cnt" or "geometric") to observed sizes, counts per frame and
    the number of clusters observed at each size (the Poisson weights), then anchor it to the
    observed tail if it passes above it (``anchor_to_tail``).

    tail : ``(sizes, counts, observations)`` the anchor is tested against instead of the fitted
        data (the bootstrap passes each replicate's time-resampled observation of every size,
        so that the case resampling of node counts cannot drop the observed tail).
    """
    if model == "fisher":
        fit = fit_cnt(sizes, counts, observations, max_target, FISHER_TAU)
    elif model == "cnt":
        fit = fit_cnt(sizes, counts, observations, max_target)
    elif model == "geometric":
        fit = fit_geometric(sizes, counts, observations)
    else:
        raise ValueError(f"population model must be 'fisher', 'cnt' or 'geometric' here, got {model!r}")
    return anchor_to_tail(fit, *(tail if tail is not None else (sizes, counts, observations)))
