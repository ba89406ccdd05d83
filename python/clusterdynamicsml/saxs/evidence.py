"""Does a SAXS curve support the cluster model? Competing models, honest statistics, a verdict.

Every model shares the same background B(q) b: a constant (free sign, or >= 0), optional
polynomial terms c_k q^k (k = 1..degree) and an optional solvent curve (scale >= 0). Models:

* ``background``: B(q) b alone.
* ``generic``: s P(q; R) + B b with a homogeneous sphere P = [3 (sin x - x cos x) / x^3]^2,
  x = q R, or a Guinier term exp(-q^2 Rg^2 / 3), size fitted (grid over 0.5..60 A, then a bounded
  scalar search); the better of the two by BIC.
* ``observed``: s sum_i w_i I_i + B b with the MD weights (clusters per frame) of the observed labels.
* ``combined``: the same with the observed and the predicted labels.
* ``reweighted``: the combined components with maximum-entropy reweighted populations (reweight.py).
* ``pearson``: the combined components with the weights maximising Pearson r (seed 001).

Linear parameters (s >= 0, b) are fitted by bounded weighted least squares with the noise
``used`` (noise.py). For each model, with n points, k fitted parameters and residuals
e_i = (y_i - f_i) / sigma_i:

    chi2 = sum e_i^2,  chi2_red = chi2 / (n - k)  (also with the file's sigma: chi2_red_file_sigma)
    AIC = chi2 + 2 k,  BIC = chi2 + k ln n          (Gaussian likelihood, constants dropped)
    Durbin-Watson DW = sum (e_i - e_{i-1})^2 / sum e_i^2   (~2 for independent residuals, -> 0 systematic)
    runs test (Wald-Wolfowitz) on the signs of e: z = (R - mu) / sd, mu = 2 n+ n- / n + 1,
        sd^2 = (mu - 1)(mu - 2) / (n - 1); p two-sided; z << 0: too few runs (systematic misfit)
    Pearson r between y and f.

k counts every fitted number: background columns, the scale, the size of the generic model, and
m - 1 weights for the reweighted and the Pearson models (m components; an upper bound for the
regularised maximum-entropy fit, so its BIC is conservative).

Evidence: the cluster model is the one of observed / combined / reweighted / pearson with the
smallest BIC. delta_bic_vs_X = BIC(X) - BIC(cluster) (positive favours the cluster model).
``supported`` is true only when both deltas exceed ``margin`` (default 10, "very strong" on the
Kass-Raftery scale) and the cluster model's residuals are not worse than either reference's:
DW not lower by more than 0.05 and runs z not lower by more than 1, and its fitted background is
not negative at more than half of the points (a mixture that overshoots the data and needs an
unphysical negative offset is not evidence for it). The background share is
B(q) b / f(q) of the cluster model (and per model) at the first, middle and last q of the fit; a
warning is given, for the cluster model and the MD (combined) model, when the background is
negative anywhere or |B b / f| > 1/2 at more than half of the points.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .expdata import SaxsData
from .fit import _curve_on, _linear, pearson
from .noise import NoiseEstimate, estimate_noise

if TYPE_CHECKING:
    from .reweight import ReweightResult

__all__ = [
    "BIC_MARGIN",
    "ModelFit",
    "SaxsEvidence",
    "durbin_watson",
    "guinier_term",
    "model_statistics",
    "runs_test",
    "saxs_evidence",
    "sphere_form_factor",
]

BIC_MARGIN = 10.0
DW_TOLERANCE = 0.05
RUNS_Z_TOLERANCE = 1.0
CLUSTER_MODELS = ("observed", "combined", "reweighted", "pearson")


def durbin_watson(e) -> float:
    e = np.asarray(e, dtype=np.float64)
    den = float(e @ e)
    return float(np.sum(np.diff(e) ** 2) / den) if den > 0 else float("nan")


def runs_test(e) -> tuple[float, float]:
    """Wald-Wolfowitz runs test on the signs of e (zeros dropped): (z, two-sided p)."""
    s = np.sign(np.asarray(e, dtype=np.float64))
    s = s[s != 0]
    n1, n2 = int(np.sum(s > 0)), int(np.sum(s < 0))
    n = n1 + n2
    if n1 == 0 or n2 == 0 or n < 3:
        return float("-inf") if n >= 3 else float("nan"), 0.0 if n >= 3 else float("nan")
    runs = 1 + int(np.sum(s[1:] != s[:-1]))
    mu = 2.0 * n1 * n2 / n + 1.0
    var = (mu - 1.0) * (mu - 2.0) / (n - 1.0)
    z = (runs - mu) / math.sqrt(var) if var > 0 else 0.0
    return float(z), float(math.erfc(abs(z) / math.sqrt(2.0)))


def model_statistics(y, fitted, sigma, k: int, file_sigma=None) -> dict:
    """The M record of one model (module docstring)."""
    y = np.asarray(y, dtype=np.float64)
    f = np.asarray(fitted, dtype=np.float64)
    n = y.size
    e = (y - f) / sigma
    chi2 = float(e @ e)
    dof = max(n - k, 1)
    z, p = runs_test(e)
    out = {"chi2": chi2, "chi2_red": chi2 / dof,
           "chi2_red_file_sigma": None if file_sigma is None else float(np.sum(((y - f) / file_sigma) ** 2)) / dof,
           "aic": chi2 + 2.0 * k, "bic": chi2 + k * math.log(n), "n_params": int(k), "n_points": int(n),
           "durbin_watson": durbin_watson(e), "runs_z": z, "runs_p": p, "pearson_r": pearson(y, f),
           "max_abs_normalized_residual": float(np.max(np.abs(e)))}
    return out


def sphere_form_factor(q, radius: float) -> np.ndarray:
    """P(q) of a homogeneous sphere of radius R (angstrom), P(0) = 1."""
    x = np.asarray(q, dtype=np.float64) * float(radius)
    out = np.ones_like(x)
    m = x > 1e-6
    xm = x[m]
    out[m] = (3.0 * (np.sin(xm) - xm * np.cos(xm)) / xm**3) ** 2
    return out


def guinier_term(q, rg: float) -> np.ndarray:
    """exp(-q^2 Rg^2 / 3) (Rg in angstrom)."""
    return np.exp(-(np.asarray(q, dtype=np.float64) * float(rg)) ** 2 / 3.0)


@dataclass
class ModelFit:
    """One fitted model on the fit's q points: fitted curve, its background part and its
    signal part (fitted = signal + background), statistics and parameters."""

    name: str
    fitted: np.ndarray
    background: np.ndarray
    signal: np.ndarray
    stats: dict
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**self.stats, **self.params}


@dataclass
class SaxsEvidence:
    """Models, statistics and the verdict for one experimental curve (module docstring)."""

    source: str
    q: np.ndarray
    data: np.ndarray
    noise: NoiseEstimate
    models: dict
    evidence: dict
    background_share: dict
    warnings: list
    verdict: str
    reweighting: ReweightResult | None = None
    labels: list = field(default_factory=list)

    @property
    def normalized_residuals(self) -> dict:
        """{model: (y - f) / sigma_estimate} (in units of the estimated noise)."""
        return {k: (self.data - m.fitted) / self.noise.sigma for k, m in self.models.items()}

    def to_dict(self) -> dict:
        out = {"source": self.source, "q_range": [float(self.q[0]), float(self.q[-1])], "n_points": int(self.q.size),
               "noise": self.noise.to_dict(), "models": {k: m.to_dict() for k, m in self.models.items()},
               "evidence": dict(self.evidence), "background_share": dict(self.background_share),
               "warnings": list(self.warnings), "verdict": self.verdict}
        out["reweighting"] = self.reweighting.to_dict() if self.reweighting is not None else None
        return out


def _background_columns(q, background, nonnegative, degree, solvent):
    cols, low, names = [], [], []
    if background:
        cols.append(np.ones_like(q))
        low.append(0.0 if nonnegative else -np.inf)
        names.append("c0")
    qn = q / q[-1]
    for k in range(1, int(degree) + 1):
        cols.append(qn**k)
        low.append(-np.inf)
        names.append(f"c{k}")
    if solvent is not None:
        cols.append(solvent)
        low.append(0.0)
        names.append("solvent")
    return cols, low, names


def _fit_signal(y, sigma, signal, bcols, blow):
    """Bounded weighted least squares of y on [signal (scale >= 0), background columns].
    Returns (fitted, background part, signal part, scale)."""
    w = 1.0 / sigma
    if signal is None:
        if not bcols:
            return np.zeros_like(y), np.zeros_like(y), np.zeros_like(y), 0.0
        x, fit = _linear(y, w, bcols, blow)
        return fit, fit, np.zeros_like(y), 0.0
    x, fit = _linear(y, w, [signal] + bcols, [0.0] + blow)
    sig = x[0] * signal
    return fit, fit - sig, sig, float(x[0])


def _generic(q, y, sigma, bcols, blow, file_sigma):
    best = None
    n_bg = len(bcols)
    for kind, func in (("sphere", sphere_form_factor), ("guinier", guinier_term)):
        from scipy.optimize import minimize_scalar

        def chi2_of(size, func=func):
            f = _fit_signal(y, sigma, func(q, size), bcols, blow)[0]
            return float(np.sum(((y - f) / sigma) ** 2))

        grid = np.geomspace(0.5, 60.0, 48)
        vals = [chi2_of(r) for r in grid]
        i = int(np.argmin(vals))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        r = minimize_scalar(chi2_of, bounds=(lo, hi), method="bounded", options={"xatol": 1e-4})
        size = float(r.x) if r.fun <= vals[i] else float(grid[i])
        fit, bg, sig, s = _fit_signal(y, sigma, func(q, size), bcols, blow)
        stats = model_statistics(y, fit, sigma, n_bg + 2, file_sigma)
        cand = ModelFit("generic", fit, bg, sig, stats, {"kind": kind, "size_angstrom": size, "scale": s,
                                                         "size_at_grid_edge": bool(i in (0, grid.size - 1))})
        if best is None or stats["bic"] < best.stats["bic"]:
            best = cand
    return best


def _curves(components, q):
    labels, X = [], []
    for k, c in enumerate(components):
        if hasattr(c, "intensity") and hasattr(c, "q"):
            lab, cq, ci = getattr(c, "label", f"component {k}"), c.q, c.intensity
        else:
            lab, cq, ci = c
        labels.append(str(lab))
        X.append(_curve_on(q, cq, ci, str(lab)))
    return labels, np.array(X, dtype=np.float64).reshape(len(labels), q.size)


def saxs_evidence(data, components, weights, sources=None, *, q_range=None, background: bool = True,
                  background_nonnegative: bool = False, background_degree: int = 0, solvent=None,
                  noise: NoiseEstimate | None = None, noise_factor: float = 2.0, margin: float = BIC_MARGIN,
                  reweight: bool = True, pearson_fit: bool = True) -> SaxsEvidence:
    """Fit every model of the module docstring to one curve and weigh the evidence.

    data : SaxsData (q in 1/angstrom). components : SaxsComponent objects or (label, q, I) tuples
    covering the fit range. weights : (m,) MD weights (clusters per frame, >= 0). sources :
    'observed' | 'predicted' per component (default all observed). q_range : (q_min, q_max).
    solvent : None or (q, I) of a measured solvent curve. noise : a NoiseEstimate of the whole
    curve (default: :func:`estimate_noise` of ``data`` before the q selection, per detector segment).
    """
    if not isinstance(data, SaxsData):
        raise TypeError("data must be a SaxsData (load_saxs_data / stitch_saxs)")
    comps = list(components)
    if not comps:
        raise ValueError("saxs_evidence needs at least one component")
    w_md = np.asarray(weights, dtype=np.float64)
    if w_md.shape != (len(comps),) or not np.all(np.isfinite(w_md)) or np.any(w_md < 0) or w_md.sum() <= 0:
        raise ValueError(f"weights must be {len(comps)} finite values >= 0 with a positive sum")
    sources = list(sources) if sources is not None else ["observed"] * len(comps)
    if len(sources) != len(comps):
        raise ValueError("sources must have one entry per component")
    noise_full = noise if noise is not None else estimate_noise(data, factor=noise_factor)
    lo, hi = (None, None) if q_range is None else q_range
    sel = data.select(lo, hi)
    mask = (data.q >= sel.q[0]) & (data.q <= sel.q[-1])
    nz = noise_full.select(mask) if noise_full.q.size == data.q.size else noise_full
    q, y = sel.q, sel.intensity
    sig, fsig = nz.used_sigma, nz.file_sigma
    solv = None if solvent is None else _curve_on(q, solvent[0], solvent[1], "solvent")
    bcols, blow, bnames = _background_columns(q, background, background_nonnegative, background_degree, solv)
    n_bg = len(bcols)
    labels, X = _curves(comps, q)
    models = {}
    fit, bg, s, _ = _fit_signal(y, sig, None, bcols, blow)
    models["background"] = ModelFit("background", fit, bg, s, model_statistics(y, fit, sig, n_bg, fsig),
                                    {"background_terms": bnames})
    models["generic"] = _generic(q, y, sig, bcols, blow, fsig)

    def mixture_model(name, idx, omega, k_extra, extra=None):
        om = np.asarray(omega, dtype=np.float64)
        om = om / om.sum()
        f, b, sg, sc = _fit_signal(y, sig, om @ X[idx], bcols, blow)
        params = {"scale": sc, "weights": {labels[i]: float(v) for i, v in zip(idx, om)}, **(extra or {})}
        models[name] = ModelFit(name, f, b, sg, model_statistics(y, f, sig, n_bg + 1 + k_extra, fsig), params)

    obs = [i for i, s_ in enumerate(sources) if s_ == "observed" and w_md[i] > 0]
    allk = [i for i in range(len(comps)) if w_md[i] > 0]
    if obs:
        mixture_model("observed", obs, w_md[obs], 0)
    mixture_model("combined", allk, w_md[allk], 0,
                  {"note": "no predicted component" if len(allk) == len(obs) else None})
    rw = None
    bmat = np.column_stack(bcols) if bcols else None
    if reweight and len(allk) > 1:
        from .reweight import maxent_reweight

        rw = maxent_reweight(X[allk], y, sig, w_md[allk], bmat, labels=[labels[i] for i in allk])
        mixture_model("reweighted", allk, np.maximum(rw.weights, 0) + 0.0, len(allk) - 1,
                      {"theta": rw.theta, "effective_sample_size": rw.effective_sample_size})
        neg = float(np.mean(models["reweighted"].background < 0))
        if neg > 0:
            rw.notes.append(f"the reweighted fit needs a negative background at {100 * neg:.0f} % of the points: "
                            "its populations are not a measurement of what the sample holds")
    if pearson_fit and len(allk) > 1:
        from .reweight import pearson_weights

        nonconst = np.column_stack(bcols[1:]) if background and len(bcols) > 1 else (bmat if not background else None)
        wp, r = pearson_weights(X[allk], y, w_md[allk], nonconst)
        mixture_model("pearson", allk, wp, len(allk) - 1, {"pearson_objective": r})
    ev, share, warnings = _weigh(models, q, margin)
    verdict = (f"The data {'support' if ev['supported'] else 'do not support'} the cluster model "
               f"({ev['cluster_model']}): {ev['reason']}.")
    return SaxsEvidence(sel.source or data.source, q, y, nz, models, ev, share, warnings, verdict, rw, labels)


def _weigh(models, q, margin):
    names = [m for m in CLUSTER_MODELS if m in models]
    best = min(names, key=lambda m: models[m].stats["bic"])
    c = models[best].stats
    d_bg = models["background"].stats["bic"] - c["bic"]
    d_gen = models["generic"].stats["bic"] - c["bic"]
    problems = []
    if d_bg <= margin:
        problems.append(f"it does not beat the background alone by delta BIC > {margin:g} ({d_bg:.4g})")
    if d_gen <= margin:
        g = models["generic"].params
        problems.append(f"it does not beat a generic {g['kind']} of {g['size_angstrom']:.3g} A with the same "
                        f"background by delta BIC > {margin:g} ({d_gen:.4g})")
    for ref in ("background", "generic"):
        r = models[ref].stats
        if c["durbin_watson"] < r["durbin_watson"] - DW_TOLERANCE or c["runs_z"] < r["runs_z"] - RUNS_Z_TOLERANCE:
            problems.append(f"its residuals are more correlated than those of the {ref} model (Durbin-Watson "
                            f"{c['durbin_watson']:.3g} vs {r['durbin_watson']:.3g}, runs z {c['runs_z']:.3g} vs "
                            f"{r['runs_z']:.3g})")
    neg = float(np.mean(models[best].background < 0))
    if neg > 0.5:
        problems.append(f"its fitted background is negative at {100 * neg:.0f} % of the points (the mixture "
                        "overshoots the data and needs an unphysical negative offset)")
    supported = not problems
    if supported:
        reason = (f"BIC lower than the background alone by {d_bg:.4g} and than a generic "
                  f"{models['generic'].params['kind']} by {d_gen:.4g} (margin {margin:g}), residuals not more "
                  f"correlated (Durbin-Watson {c['durbin_watson']:.3g})")
    else:
        reason = "; ".join(problems)
    mid = int(np.argmin(np.abs(q - 0.5 * (q[0] + q[-1]))))

    def shares(m):
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(m.fitted != 0, m.background / m.fitted, np.nan)
        return {"q_min": float(frac[0]), "q_mid": float(frac[mid]), "q_max": float(frac[-1]),
                "fraction_of_points_above_half": float(np.mean(np.abs(frac) > 0.5)),
                "negative_background": bool(np.any(m.background < 0))}

    share = {"model": best, **shares(models[best]), "q_values": [float(q[0]), float(q[mid]), float(q[-1])],
             "per_model": {k: shares(models[k]) for k in names}}
    warnings = []
    for k in dict.fromkeys([best, "combined"]):
        if k not in models:
            continue
        m, sh = models[k], share["per_model"][k]
        if sh["negative_background"]:
            neg = q[m.background < 0]
            warnings.append(f"the fitted background of the {k} model is negative for q {neg[0]:.3g}..{neg[-1]:.3g} "
                            "1/A (unphysical: the model needs a negative offset to fit)")
        if sh["fraction_of_points_above_half"] > 0.5:
            warnings.append(f"the background carries more than half of the fitted intensity of the {k} model at "
                            f"{100 * sh['fraction_of_points_above_half']:.0f} % of the points (share "
                            f"{sh['q_min']:.2f} / {sh['q_mid']:.2f} / {sh['q_max']:.2f} at q_min / q_mid / q_max)")
    if models["generic"].params.get("size_at_grid_edge"):
        warnings.append("the generic model's size is at the edge of its search range (0.5-60 A)")
    ev = {"cluster_model": best, "delta_bic_vs_background": float(d_bg), "delta_bic_vs_generic": float(d_gen),
          "supported": bool(supported), "reason": reason, "margin": float(margin),
          "convention": "delta_bic_vs_X = BIC(X) - BIC(cluster model); positive favours the cluster model",
          "per_model": {k: {"delta_bic_vs_background": models["background"].stats["bic"] - models[k].stats["bic"],
                            "delta_bic_vs_generic": models["generic"].stats["bic"] - models[k].stats["bic"]}
                        for k in names}}
    return ev, share, warnings
