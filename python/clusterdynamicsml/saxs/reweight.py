"""Maximum-entropy reweighting of MD cluster populations against a SAXS curve, and the
Pearson-correlation weight fit of seed 001.

Model: y(q) ~ s sum_i w_i I_i(q) + B(q) b, with w on the simplex (cluster-number fractions),
s >= 0 a scale and B the background columns (constant, q^k, solvent) with coefficients b.
For given w the linear parameters are profiled out: with z = y / sigma, Z_i = I_i / sigma and
P the projector onto the complement of the weighted background columns,

    chi2(w) = c0 - max(0, h.w)^2 / (w.G.w),   G = (P Z)(P Z)^T,  h = (P Z)(P z),  c0 = |P z|^2,

so each evaluation costs O(m^2), independent of the number of q points (the scale
s = h.w / w.G.w; no negative scale: chi2 = c0 when h.w <= 0).

Maximum entropy (Bayesian ensemble refinement, e.g. Hummer & Koefinger 2015; Bottaro et al.
2020): minimise over w

    L(w) = chi2(w) / 2 - theta S_rel(w || w0),     S_rel = -sum_i w_i ln(w_i / w0_i) <= 0

with w0 the MD populations (clusters per frame, normalised) and w_i = w0_i exp(g_i) / Z; L-BFGS
on g with the analytical gradient dL/dg_j = w_j (v_j - w.v), v = dL/dw. theta is scanned from
large (w = w0) to small (w fits the data as well as the components allow), warm-started; the
scan gives the L-curve chi2(theta) against -S_rel(theta) and its knee (the point farthest below
the chord joining its ends, with -S_rel and log chi2 scaled to [0, 1]). The chosen theta is the largest one
whose chi2 lies within tol = 2 sqrt(2 nu) max(1, chi2_min / nu) of the smallest chi2 of the scan
(nu = n - 1; 2 sqrt(2 nu) is twice the standard deviation of a chi2 with nu degrees of freedom,
widened when even the best fit is poor): the least change from the MD populations that fits the
data as well as the components allow, within the noise of chi2. When the whole scan lowers chi2
by less than tol, the MD populations are kept (largest theta).
The effective sample size is phi_eff = exp(S_rel) in (0, 1] (1: the MD populations unchanged).

Pearson weight fit (seed 001): non-negative weights maximising the (unweighted, as in the seed)
Pearson correlation r between the measured curve and the model curve, the scale and background
profiled by unweighted least squares (which always contain a constant, so r^2 = 1 - RSS / TSS);
optimised by L-BFGS on a softmax parametrisation from the MD weights and from equal weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["ProfiledChi2", "ReweightResult", "maxent_reweight", "pearson_weights"]


class ProfiledChi2:
    """chi2(w) with the scale and background profiled out (module docstring).

    X : (m, n) component curves on the data q points. y, sigma : (n,). background : (n, p)
    columns (may be empty)."""

    def __init__(self, X, y, sigma, background=None):
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        s = np.asarray(sigma, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != y.size or s.shape != y.shape:
            raise ValueError(f"X must be (m, {y.size}) and sigma ({y.size},), got {X.shape} and {s.shape}")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y)) and np.all(s > 0)):
            raise ValueError("curves must be finite and sigma > 0")
        Z = X / s
        z = y / s
        if background is not None and np.size(background):
            A = np.asarray(background, dtype=np.float64).reshape(y.size, -1) / s[:, None]
            Q, _ = np.linalg.qr(A / np.maximum(np.linalg.norm(A, axis=0), 1e-300))
            Z = Z - (Z @ Q) @ Q.T
            z = z - Q @ (Q.T @ z)
        self.G = Z @ Z.T
        self.h = Z @ z
        self.c0 = float(z @ z)
        self.m = X.shape[0]
        self.n = y.size

    def value_grad(self, w, signed: bool = False):
        """(chi2, dchi2/dw).

        With ``signed`` the objective for the optimisers: where h.w <= 0 the true chi2 is flat
        (scale 0, chi2 = c0, zero gradient), which would strand an optimiser started from a
        mixture that anti-correlates with the data; the signed form c0 - h.w |h.w| / w.G.w equals
        chi2 where h.w > 0, is continuously differentiable at h.w = 0 and rises above c0 where
        h.w < 0, so its gradient points towards a positive scale."""
        hw = float(self.h @ w)
        Gw = self.G @ w
        wGw = float(w @ Gw)
        if wGw <= 0 or (hw <= 0 and not signed):
            return self.c0, np.zeros_like(w)
        a = abs(hw)
        chi2 = self.c0 - hw * a / wGw
        grad = -2.0 * a / wGw * self.h + 2.0 * hw * a / (wGw * wGw) * Gw
        return (max(chi2, 0.0) if hw > 0 else chi2), grad

    def scale(self, w) -> float:
        wGw = float(w @ self.G @ w)
        return max(float(self.h @ w), 0.0) / wGw if wGw > 0 else 0.0


def _one_blas_thread():
    """Limit BLAS to one thread around the many tiny (m x m) products of the optimiser: a
    multi-threaded BLAS on a busy machine made them 10x slower (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _softmax(a):
    e = np.exp(a - a.max())
    return e / e.sum()


def _minimise(prof: ProfiledChi2, logw0, theta, g0, norm, maxiter=1000):
    """L-BFGS on g at one theta (objective divided by ``norm`` for a well-scaled tolerance)."""
    from scipy.optimize import minimize

    w0 = np.exp(logw0)

    def fun(g):
        a = logw0 + g
        w = _softmax(a)
        chi2, dchi = prof.value_grad(w, signed=True)
        lw = np.log(np.maximum(w, 1e-300))
        kl = float(w @ (lw - logw0))  # = -S_rel
        v = 0.5 * dchi + theta * (lw - logw0 + 1.0)
        grad = w * (v - w @ v)
        return (0.5 * chi2 + theta * kl) / norm, grad / norm

    r = minimize(fun, g0, jac=True, method="L-BFGS-B", options={"maxiter": maxiter, "gtol": 1e-9, "ftol": 1e-12})
    w = _softmax(logw0 + r.x)
    chi2, _ = prof.value_grad(w)
    s_rel = -float(np.sum(np.where(w > 0, w * (np.log(np.maximum(w, 1e-300)) - np.log(np.maximum(w0, 1e-300))), 0)))
    return r.x, w, chi2, min(s_rel, 0.0)


@dataclass
class ReweightResult:
    """Maximum-entropy reweighting (module docstring).

    labels, w0 (MD populations, normalised), weights (reweighted), theta (chosen), s_rel,
    effective_sample_size = exp(s_rel), chi2 (at the chosen theta), chi2_prior (w = w0),
    chi2_best (smallest theta), scan : [{"theta", "chi2", "s_rel", "effective_sample_size"}],
    chosen : index into scan, criterion : how theta was chosen, scale : s at the chosen w.
    """

    labels: list
    w0: np.ndarray
    weights: np.ndarray
    theta: float
    s_rel: float
    effective_sample_size: float
    chi2: float
    chi2_prior: float
    chi2_best: float
    scan: list
    chosen: int
    criterion: str
    n_points: int
    knee: int = 0
    scale: float = 0.0
    notes: list = field(default_factory=list)

    def populations(self) -> dict:
        return {lab: {"md": float(a), "reweighted": float(b)} for lab, a, b in zip(self.labels, self.w0, self.weights)}

    def table(self) -> list:
        """Rows label, md, reweighted, ratio reweighted / md (sorted by MD population)."""
        rows = [{"label": lab, "md_population": float(a), "reweighted_population": float(b),
                 "ratio": float(b / a) if a > 0 else None} for lab, a, b in zip(self.labels, self.w0, self.weights)]
        return sorted(rows, key=lambda r: -r["md_population"])

    def to_dict(self) -> dict:
        return {"theta": self.theta, "effective_sample_size": self.effective_sample_size, "s_rel": self.s_rel,
                "chi2": self.chi2, "chi2_prior": self.chi2_prior, "chi2_best": self.chi2_best,
                "n_points": self.n_points, "criterion": self.criterion,
                "theta_knee": self.scan[self.knee]["theta"] if self.scan else None, "populations": self.populations(),
                "scan": self.scan, "notes": list(self.notes)}


def _knee(x, y) -> int:
    """Index of the L-curve knee. x = -S_rel grows and y = log chi2 falls along the scan; with
    both scaled to [0, 1] the chord joins (0, 1) and (1, 0), and the point farthest below it is
    the one with the smallest x + y."""
    x = np.asarray(x, dtype=np.float64)
    y = np.log(np.maximum(np.asarray(y, dtype=np.float64), 1e-300))
    xs = (x - x.min()) / (np.ptp(x) or 1.0)
    ys = (y - y.min()) / (np.ptp(y) or 1.0)
    return int(np.argmin(xs + ys))


def maxent_reweight(X, y, sigma, w0, background=None, labels=None, thetas=None, theta=None,
                    early_stop: bool = True) -> ReweightResult:
    """Maximum-entropy reweighting of the populations ``w0`` against the curve y (module docstring).

    X : (m, n) component curves on the data q points (any units; the scale is fitted).
    y, sigma : (n,) data and the noise used. w0 : (m,) MD populations (>= 0, positive sum;
    components with w0 = 0 cannot gain weight and keep 0). background : (n, p) columns profiled out.
    thetas : the scan (descending is not required); default 29 values geometrically spaced over
    [1e-3, 1e1] x max(chi2(w0), n). theta : a fixed theta instead of the L-curve choice.
    early_stop : end the scan once four successive steps lowered chi2 by less than tol / 10
    in total (tol below); the skipped smaller thetas would only overfit.
    """
    w0 = np.asarray(w0, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if w0.ndim != 1 or w0.size != X.shape[0] or not np.all(np.isfinite(w0)) or np.any(w0 < 0) or w0.sum() <= 0:
        raise ValueError(f"w0 must be {X.shape[0]} finite populations >= 0 with a positive sum")
    labels = [str(v) for v in (labels if labels is not None else range(w0.size))]
    keep = w0 > 0
    w0n = w0 / w0.sum()
    prof = ProfiledChi2(X[keep], y, sigma, background)
    logw0 = np.log(w0n[keep])
    chi2_prior, _ = prof.value_grad(w0n[keep])
    if thetas is None:
        base = max(chi2_prior, float(prof.n))
        thetas = base * np.geomspace(1e1, 1e-3, 29)
    thetas = np.sort(np.asarray(thetas, dtype=np.float64))[::-1]
    if np.any(thetas <= 0):
        raise ValueError("theta values must be > 0")
    if theta is not None:
        thetas = np.array([float(theta)])
    g = np.zeros(int(keep.sum()))
    norm = max(0.5 * chi2_prior, 1.0)
    scan, sols = [], []
    dof = max(prof.n - 1, 1)
    with _one_blas_thread():
        for t in thetas:
            g, w, chi2, s_rel = _minimise(prof, logw0, float(t), g, norm)
            scan.append({"theta": float(t), "chi2": float(chi2), "s_rel": float(s_rel),
                         "effective_sample_size": float(math.exp(s_rel))})
            sols.append(w)
            # the L-curve has flattened: smaller theta only overfits (not while the fitted scale is
            # still 0, where chi2 is flat because the mixture anti-correlates with the data)
            if early_stop and len(scan) >= 5 and prof.scale(w) > 0:
                tol_now = 2.0 * math.sqrt(2.0 * dof) * max(1.0, chi2 / dof)
                if scan[-5]["chi2"] - chi2 < 0.1 * tol_now:
                    break
    chis = np.array([s["chi2"] for s in scan])
    notes = []
    if prof.scale(w0n[keep]) <= 0:
        notes.append("the MD mixture fits with scale 0 (once the background is profiled out it does not "
                     "correlate positively with the data): chi2 at the MD populations is the background's alone")
    knee = _knee([-s["s_rel"] for s in scan], chis) if len(scan) > 2 else 0
    tol = 2.0 * math.sqrt(2.0 * dof) * max(1.0, float(chis.min()) / dof)
    if theta is not None:
        k, crit = 0, "fixed theta"
    elif chi2_prior - chis.min() < tol:
        k, crit = 0, (f"no significant gain: chi2 falls by {chi2_prior - chis.min():.4g} < {tol:.4g} over the scan; "
                      "the MD populations are kept")
    else:
        k = int(np.flatnonzero(chis <= chis.min() + tol)[0])  # thetas descend: the largest such theta
        crit = (f"largest theta with chi2 within {tol:.4g} of the best (2 sqrt(2 nu) max(1, chi2_min / nu), "
                f"the chi2 noise)")
    full = np.zeros_like(w0n)
    full[keep] = sols[k]
    res = ReweightResult(labels, w0n, full, scan[k]["theta"], scan[k]["s_rel"], scan[k]["effective_sample_size"],
                         scan[k]["chi2"], float(chi2_prior), float(chis.min()), scan, k, crit, prof.n,
                         knee, prof.scale(sols[k]), notes)
    return res


def pearson_weights(X, y, w0=None, background=None, labels=None):
    """Non-negative weights (summing to 1) maximising the unweighted Pearson correlation between
    y and the least-squares model s X^T w + background (a constant is always included), by
    L-BFGS from ``w0`` and from equal weights. Returns (weights (m,), r)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = X.shape[0]
    cols = [np.ones_like(y)]
    if background is not None and np.size(background):
        cols.append(np.asarray(background, dtype=np.float64).reshape(y.size, -1))
    B = np.column_stack(cols)
    prof = ProfiledChi2(X, y, np.ones_like(y), B)
    tss = float(np.sum((y - y.mean()) ** 2))
    starts = [np.full(m, 1.0 / m)]
    if w0 is not None:
        w0 = np.asarray(w0, dtype=np.float64)
        if w0.sum() > 0:
            starts.insert(0, np.maximum(w0, 1e-12) / w0.sum())
    from scipy.optimize import minimize

    def fun(z):
        w = _softmax(z)
        rss, d = prof.value_grad(w, signed=True)
        v = d / tss  # d(RSS/TSS)/dw; r^2 = 1 - RSS/TSS is maximised
        return rss / tss, w * (v - w @ v)

    best = None
    with _one_blas_thread():
        for st in starts:
            r = minimize(fun, np.log(st), jac=True, method="L-BFGS-B",
                         options={"maxiter": 5000, "gtol": 1e-14, "ftol": 1e-16, "maxcor": 30})
            if best is None or r.fun < best.fun:
                best = r
    w = _softmax(best.x)
    return w, math.sqrt(max(0.0, 1.0 - prof.value_grad(w)[0] / tss))
