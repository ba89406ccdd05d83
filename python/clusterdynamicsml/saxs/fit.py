"""Fitting a mixture of Debye components to an experimental curve (better than ref N9).

Model, on the data q grid (optionally restricted to a q range):

    I_fit(q) = s * sum_i omega_i I_i(q; gamma) + c + t * I_solvent(q)   [+ sum_{k=1..K} c_k q^k]

with s >= 0 (scale), c a constant background (free sign, or >= 0 on request; the optional
polynomial terms up to ``background_degree`` K model a smooth solvent rise when no measured
solvent curve exists, as for the non-subtracted APS PbI2/DMF data), t >= 0 (solvent
scale, only with a solvent curve), omega_i >= 0 with sum omega_i = 1 (mixture weights, fixed or
refitted) and gamma >= 0 an optional common factor on every Debye-Waller sigma of the
single-structure components. The linear parameters minimise the weighted sum of squares

    chi2 = sum_k ((y_k - I_fit(q_k)) / sigma_k)^2          (sigma_k = 1 when the data have none)

by bounded linear least squares (scipy.optimize.lsq_linear). Weights are refitted either by
NNLS (one non-negative coefficient a_i per component, s = sum a_i, omega = a / s) or by
maximising the Pearson correlation between the data and the fitted curve over a softmax
parametrisation omega = softmax(z) (seed 001), the linear parameters being refitted for each
omega. gamma is found by a bounded scalar search on chi2.

Reported: chi2_reduced = chi2 / (n - n_free), RMSE = sqrt(mean((y - I_fit)^2)) (data units),
Pearson r between y and I_fit, the residuals y - I_fit and normalised residuals.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..saxs.expdata import SaxsData, load_saxs_data

__all__ = ["SaxsFitResult", "fit_saxs", "pearson"]

REFIT = (None, "nnls", "pearson")


def pearson(x, y, w=None) -> float:
    """(Weighted) Pearson correlation of two curves; 0 when either is constant."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(x) if w is None else np.asarray(w, dtype=np.float64)
    if np.ptp(x) == 0 or np.ptp(y) == 0:  # constant curve: rounding in w @ y would leave a tiny variance
        return 0.0
    w = w / w.sum()
    mx, my = w @ x, w @ y
    vx, vy = w @ (x - mx) ** 2, w @ (y - my) ** 2
    if vx <= 0 or vy <= 0:
        return 0.0
    return float(w @ ((x - mx) * (y - my)) / math.sqrt(vx * vy))


@dataclass
class SaxsFitResult:
    """Outcome of :func:`fit_saxs`. Arrays are float64 on the fitted q points (1/angstrom)."""

    q: np.ndarray
    data: np.ndarray
    sigma: np.ndarray | None
    fitted: np.ndarray
    residuals: np.ndarray
    normalized_residuals: np.ndarray
    mixture: np.ndarray
    labels: list
    weights: np.ndarray
    scale: float
    background: float
    solvent_scale: float | None
    sigma_scale: float | None
    chi2: float
    chi2_reduced: float
    rmse: float
    pearson: float
    n_points: int
    n_free: int
    weight_method: str | None
    q_range: tuple
    component_curves: np.ndarray | None = field(repr=False, default=None)
    solvent: np.ndarray | None = field(repr=False, default=None)
    source: str = ""
    background_poly: np.ndarray | None = None

    def summary(self) -> str:
        """A short human-readable report."""
        lines = [
            f"SAXS fit of {self.source or 'data'}: {self.n_points} points, q {self.q[0]:.4g}..{self.q[-1]:.4g} 1/A",
            f"  chi2_reduced = {self.chi2_reduced:.4g}   RMSE = {self.rmse:.4g}   Pearson r = {self.pearson:.6f}",
            f"  scale = {self.scale:.4g}   background = {self.background:.4g}"
            + (f"   solvent scale = {self.solvent_scale:.4g}" if self.solvent_scale is not None else "")
            + (f"   background q^1..q^{len(self.background_poly)}: "
               + ", ".join(f"{c:.4g}" for c in self.background_poly) if self.background_poly is not None else "")
            + (f"   DW sigma scale = {self.sigma_scale:.4g}" if self.sigma_scale is not None else ""),
            f"  weights ({self.weight_method or 'fixed'}): "
            + ", ".join(f"{lab} {w:.4f}" for lab, w in zip(self.labels, self.weights)),
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready scalars and lists."""
        return {
            "source": self.source, "q_range": list(self.q_range), "n_points": self.n_points, "n_free": self.n_free,
            "scale": self.scale, "background": self.background, "solvent_scale": self.solvent_scale,
            "sigma_scale": self.sigma_scale, "chi2": self.chi2, "chi2_reduced": self.chi2_reduced,
            "rmse": self.rmse, "pearson": self.pearson, "weight_method": self.weight_method,
            "labels": list(self.labels), "weights": [float(w) for w in self.weights],
        }


def _curve_on(q: np.ndarray, cq, ci, name: str) -> np.ndarray:
    cq = np.asarray(cq, dtype=np.float64)
    ci = np.asarray(ci, dtype=np.float64)
    if cq.shape == q.shape and np.allclose(cq, q, rtol=0, atol=1e-12):
        return ci
    if q[0] < cq[0] - 1e-12 or q[-1] > cq[-1] + 1e-12:
        raise ValueError(f"{name} covers q {cq[0]:.4g}..{cq[-1]:.4g} but the data need {q[0]:.4g}..{q[-1]:.4g}")
    return np.interp(q, cq, ci)


def _components(components, q):
    """-> labels, callables gamma -> (n,) curve on q, whether any depends on gamma."""
    labels, funcs, dw = [], [], False
    for k, c in enumerate(components):
        if hasattr(c, "intensity") and hasattr(c, "q"):
            lab = getattr(c, "label", f"component {k}")
            cq = c.q
            if hasattr(c, "intensity_at") and c.source == "single" and c.sigma:
                dw = True
                funcs.append(lambda g, c=c, cq=cq, lab=lab: _curve_on(q, cq, c.intensity_at(g), lab))
            else:
                cur = _curve_on(q, cq, c.intensity, lab)
                funcs.append(lambda g, cur=cur: cur)
        else:
            try:
                lab, cq, ci = c
            except (TypeError, ValueError):
                raise ValueError(f"component {k} must be a SaxsComponent or (label, q, intensity)") from None
            cur = _curve_on(q, cq, ci, str(lab))
            funcs.append(lambda g, cur=cur: cur)
        labels.append(str(lab))
        if not np.all(np.isfinite(funcs[-1](1.0))):
            raise ValueError(f"component {lab!r} has non-finite values")
    return labels, funcs, dw


def _linear(y, w, columns, lower):
    """Bounded weighted linear least squares: min || w (y - A x) ||, x >= lower."""
    from scipy.optimize import lsq_linear

    A = np.column_stack(columns)
    colscale = np.maximum(np.abs(A).max(axis=0), 1e-300)
    res = lsq_linear((A / colscale) * w[:, None], y * w, bounds=(np.asarray(lower) * 1.0, np.inf),
                     method="bvls", tol=1e-12)
    x = res.x / colscale
    return x, A @ x


def _initial_weights(weights, m: int) -> np.ndarray:
    """Starting mixture weights: equal, or ``weights`` (m finite values >= 0) normalised to 1."""
    if weights is None:
        return np.full(m, 1.0 / m)
    omega0 = np.asarray(weights, dtype=np.float64)
    if omega0.shape != (m,) or not np.all(np.isfinite(omega0)) or np.any(omega0 < 0) or omega0.sum() <= 0:
        raise ValueError(f"weights must be {m} finite values >= 0 with a positive sum, got {weights!r}")
    return omega0 / omega0.sum()


def _solvent_curve(solvent, q: np.ndarray, data_shape: tuple, q_range) -> np.ndarray:
    """The solvent curve on the fitted grid ``q``: a SaxsData or (q, I) is interpolated, an
    array must already be on the (q-range selected) data grid."""
    if isinstance(solvent, SaxsData):
        return _curve_on(q, solvent.q, solvent.intensity, "solvent")
    if isinstance(solvent, tuple) and len(solvent) == 2:
        return _curve_on(q, solvent[0], solvent[1], "solvent")
    solv = np.asarray(solvent, dtype=np.float64)
    if solv.shape != data_shape and q_range is not None:
        raise ValueError("an array solvent must be on the (q-range selected) data grid")
    if solv.shape != q.shape:
        raise ValueError(f"solvent has shape {solv.shape}, expected {q.shape}")
    return solv


def _extra_columns(q, qn, background: bool, bg_low: float, solv, degree: int) -> tuple[list, list]:
    """Non-mixture design columns and their lower bounds: the constant background, the solvent
    (scale >= 0) and the scaled background powers (qn^k, k = 1..degree, free sign)."""
    cols, low = [], []
    if background:
        cols.append(np.ones_like(q))
        low.append(bg_low)
    if solv is not None:
        cols.append(solv)
        low.append(0.0)
    for k in range(1, degree + 1):
        cols.append(qn**k)
        low.append(-np.inf)
    return cols, low


def _pearson_weights(X, y, w, ecols, elow, omega_start) -> np.ndarray:
    """Mixture weights maximising the weighted Pearson correlation of the fit with the data
    (Nelder-Mead on softmax logits, from ``omega_start`` and from equal weights)."""
    from scipy.optimize import minimize

    m = X.shape[0]

    def neg_cc(z):
        om = np.exp(z - z.max())
        om /= om.sum()
        _, f = _linear(y, w, [om @ X] + ecols, [0.0] + elow)
        return -pearson(y, f, w * w)

    starts = [np.log(np.maximum(omega_start, 1e-12)), np.zeros(m)]
    best = min((minimize(neg_cc, z0, method="Nelder-Mead",
                         options={"xatol": 1e-6, "fatol": 1e-12, "maxiter": 400 * m})
                for z0 in starts), key=lambda r: r.fun)
    omega = np.exp(best.x - best.x.max())
    omega /= omega.sum()
    return omega


def _solve_mixture(X, y, w, ecols, elow, omega_start, refit_weights):
    """One linear fit of the (m, n) component curves ``X`` plus the extra columns: free
    non-negative weights ('nnls'), Pearson-optimal weights ('pearson') or ``omega_start``
    with one scale. Returns (chi2, weights, scale, extra coefficients, fitted curve, X)."""
    m = X.shape[0]
    if refit_weights == "nnls":
        x, fit = _linear(y, w, list(X) + ecols, [0.0] * m + elow)
        a = x[:m]
        s = float(a.sum())
        omega = a / s if s > 0 else omega_start
        rest = x[m:]
    else:
        omega = omega_start
        if refit_weights == "pearson" and m > 1:
            omega = _pearson_weights(X, y, w, ecols, elow, omega_start)
        x, fit = _linear(y, w, [omega @ X] + ecols, [0.0] + elow)
        s = float(x[0])
        rest = x[1:]
    chi2 = float(np.sum(((y - fit) * w) ** 2))
    return chi2, omega, s, rest, fit, X


def fit_saxs(data, components, weights=None, *, solvent=None, q_range=None, background: bool = True,
             background_nonnegative: bool = False, background_degree: int = 0, refit_weights: str | None = None,
             refine_sigma_scale: bool = False, sigma_scale_bounds=(0.0, 3.0), use_sigma: bool = True) -> SaxsFitResult:
    """Fit a mixture of components to experimental data (see the module docstring).

    data : SaxsData or a path (load_saxs_data). components : SaxsComponent objects or
    (label, q, intensity) tuples; curves on other q grids are interpolated (they must cover the
    data range). weights : mixture weights (>= 0, normalised; default equal). solvent : optional
    SaxsData / (q, I) / array on the data grid, added with a non-negative scale. q_range :
    (q_min, q_max) in 1/angstrom. background : fit a constant. background_degree : also fit
    c_k q^k for k = 1..degree (free sign). refit_weights : None, 'nnls' or
    'pearson'. refine_sigma_scale : also fit a common factor on all Debye-Waller sigma of the
    single-structure components, within ``sigma_scale_bounds``. use_sigma : weight by the
    data's sigma column (else unit weights).
    """
    d = data if isinstance(data, SaxsData) else load_saxs_data(data)
    if q_range is not None:
        try:
            lo, hi = q_range
        except (TypeError, ValueError):
            raise ValueError(f"q_range must be (q_min, q_max), got {q_range!r}") from None
        d = d.select(lo, hi)
    q, y = d.q, d.intensity
    sig = d.sigma if (use_sigma and d.sigma is not None) else None
    w = 1.0 / sig if sig is not None else np.ones_like(y)
    comps = list(components)
    if not comps:
        raise ValueError("fit_saxs needs at least one component")
    labels, funcs, has_dw = _components(comps, q)
    m = len(funcs)
    if refit_weights not in REFIT:
        raise ValueError(f"refit_weights must be one of {REFIT}, got {refit_weights!r}")
    omega0 = _initial_weights(weights, m)
    solv = None if solvent is None else _solvent_curve(solvent, q, d.q.shape, q_range)
    if refine_sigma_scale and not has_dw:
        raise ValueError("refine_sigma_scale needs at least one single-structure component with sigma")
    bg_low = 0.0 if background_nonnegative else -np.inf
    if isinstance(background_degree, bool) or not isinstance(background_degree, (int, np.integer)) \
            or not 0 <= background_degree <= 6:
        raise ValueError(f"background_degree must be an integer 0..6, got {background_degree!r}")
    qn = q / q[-1]  # scaled powers keep the columns well conditioned

    def solve(gamma, omega_start):
        X = np.array([f(gamma) for f in funcs])  # (m, n)
        ecols, elow = _extra_columns(q, qn, background, bg_low, solv, int(background_degree))
        return _solve_mixture(X, y, w, ecols, elow, omega_start, refit_weights)

    gamma = None
    if refine_sigma_scale:
        from scipy.optimize import minimize_scalar

        lo_g, hi_g = (float(v) for v in sigma_scale_bounds)
        if not (0 <= lo_g < hi_g and math.isfinite(hi_g)):
            raise ValueError(f"sigma_scale_bounds must be 0 <= lo < hi, got {sigma_scale_bounds!r}")
        r = minimize_scalar(lambda g: solve(g, omega0)[0], bounds=(lo_g, hi_g), method="bounded",
                            options={"xatol": 1e-4})
        gamma = float(r.x)
    chi2, omega, s, rest, fit, X = solve(1.0 if gamma is None else gamma, omega0)
    bg = float(rest[0]) if background else 0.0
    ts = float(rest[1 if background else 0]) if solv is not None else None
    poly = np.asarray(rest[int(background) + int(solv is not None):], dtype=np.float64) / q[-1] ** np.arange(
        1, int(background_degree) + 1) if background_degree else None
    n = q.size
    n_free = (1 + int(background) + int(solv is not None) + int(background_degree)
              + (m - 1 if refit_weights and m > 1 else 0) + int(gamma is not None))
    if n <= n_free:
        raise ValueError(f"{n} data points cannot constrain {n_free} parameters")
    resid = y - fit
    return SaxsFitResult(
        q=q, data=y, sigma=sig, fitted=fit, residuals=resid,
        normalized_residuals=resid * w, mixture=omega @ X, labels=labels, weights=omega, scale=s,
        background=bg, solvent_scale=ts, sigma_scale=gamma, chi2=chi2, chi2_reduced=chi2 / (n - n_free),
        rmse=float(np.sqrt(np.mean(resid**2))), pearson=pearson(y, fit), n_points=n, n_free=n_free,
        weight_method=refit_weights, q_range=(float(q[0]), float(q[-1])), component_curves=X, solvent=solv,
        source=d.source, background_poly=poly,
    )
