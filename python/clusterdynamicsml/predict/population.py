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

Units: counts per frame; ``a`` is ``log`` of a count per frame, ``b`` is per node, ``s`` per
node^(2/3), all in kT.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

POPULATION_MODELS = ("fisher", "cnt", "geometric", "reference")

#: Fisher exponent of the cluster-size distribution in three dimensions (fixed, see module docs).
FISHER_TAU = 2.2


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
    """

    model: str
    requested: str
    coef: dict
    train_sizes: list
    chi2_reduced: float | None = None
    flagged: bool = False
    warnings: list = field(default_factory=list)

    def log_count(self, n) -> np.ndarray:
        n = np.asarray(n, dtype=np.float64)
        return (
            self.coef["a"]
            + self.coef["b"] * n
            + self.coef.get("s", 0.0) * n ** (2.0 / 3.0)
            - self.coef.get("tau", 0.0) * np.log(n)
        )

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


def fit_population(model: str, sizes, counts, observations, max_target: int | None = None) -> PopulationFit:
    """Fit ``model`` ("fisher", "cnt" or "geometric") to observed sizes, counts per frame and
    the number of clusters observed at each size (the Poisson weights)."""
    if model == "fisher":
        return fit_cnt(sizes, counts, observations, max_target, FISHER_TAU)
    if model == "cnt":
        return fit_cnt(sizes, counts, observations, max_target)
    if model == "geometric":
        return fit_geometric(sizes, counts, observations)
    raise ValueError(f"population model must be 'fisher', 'cnt' or 'geometric' here, got {model!r}")
