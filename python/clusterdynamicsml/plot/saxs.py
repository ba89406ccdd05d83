"""Figures for the scattering stage: component traces, a fit with its residual panel, every
evidence model with residuals in units of the estimated noise, and the reweighting.

Every function writes PNG and SVG next to each other and returns their paths. matplotlib is
imported inside the functions with the Agg backend (no display needed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plot._common import pyplot, save_figure

__all__ = ["plot_saxs_traces", "plot_saxs_fit", "plot_saxs_models", "plot_saxs_reweighting"]


#: line styles cycled every 10 colours, so 40 curves stay distinguishable
_LINESTYLES = ("-", "--", ":", "-.")


def _curve_style(i: int) -> dict:
    """Colour ``C0..C9`` and, every 10 curves, the next line style."""
    return {"color": f"C{i % 10}", "linestyle": _LINESTYLES[(i // 10) % len(_LINESTYLES)]}


def _legend_layout(labels) -> tuple[int, float, float]:
    """(columns, font size, legend width in inches) of an outside legend for these labels."""
    n = max(len(labels), 1)
    fontsize = 8.0 if n <= 12 else 7.0 if n <= 30 else 6.0
    rows = 22 if fontsize <= 6.0 else 18
    ncol = max(1, -(-n // rows))
    longest = max((len(str(lab)) for lab in labels), default=4)
    col_w = 0.55 + 0.58 * longest * fontsize / 72.0  # handle + text (about 0.58 em per character)
    return ncol, fontsize, ncol * col_w + 0.2


def plot_saxs_traces(components, path_stem, *, title: str | None = None, logy: bool = True,
                     show_std: bool = True) -> list[Path]:
    """Plot component traces I(q) (electrons^2) against q (1/angstrom), with the +-std band of
    averaged components. ``components``: SaxsComponent objects or (label, q, I) tuples.

    The legend sits outside the axes on the right (several columns and a smaller font for
    many curves; the figure is widened to hold it); colours repeat every 10 curves with the
    next line style. Returns [png, svg]."""
    plt = pyplot()
    curves = []
    for c in components:
        if hasattr(c, "intensity"):
            lab, q, I, sd = c.label, c.q, c.intensity, getattr(c, "std", None)
            if getattr(c, "source", "") == "fps_average":
                lab = f"{lab} (FPS K={c.k} of {c.n_library})"
        else:
            lab, q, I = c
            sd = None
        curves.append((str(lab), np.asarray(q), np.asarray(I), None if sd is None else np.asarray(sd)))
    ncol, fontsize, legend_w = _legend_layout([c[0] for c in curves])
    axes_w, axes_h = 5.4, 3.8
    fig = plt.figure(figsize=(axes_w + 1.0 + legend_w, axes_h + 0.9))
    ax = fig.add_axes([0.8 / fig.get_figwidth(), 0.6 / fig.get_figheight(),
                       axes_w / fig.get_figwidth(), axes_h / fig.get_figheight()])
    for i, (lab, q, I, sd) in enumerate(curves):
        style = _curve_style(i)
        ax.plot(q, I, lw=1.2 if len(curves) > 10 else 1.4, label=lab, **style)
        if show_std and sd is not None and np.any(sd > 0):
            ax.fill_between(q, I - sd, I + sd, color=style["color"], alpha=0.15 if len(curves) > 10 else 0.2, lw=0)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(r"q (1/$\AA$)")
    ax.set_ylabel(r"I(q) (electrons$^2$)")
    if title:
        ax.set_title(title)
    if curves:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=fontsize,
                  ncol=ncol, handlelength=2.2, columnspacing=1.0, labelspacing=0.3, frameon=False)
    paths = save_figure(fig, path_stem, bbox_inches="tight")
    plt.close(fig)
    return paths


def _background_curve(result) -> np.ndarray | None:
    """The fitted smooth background ``c + sum_k c_k q^k`` on ``result.q`` (None if there is none)."""
    q = np.asarray(result.q, dtype=np.float64)
    bg = np.full_like(q, float(result.background or 0.0))
    poly = getattr(result, "background_poly", None)
    if poly is not None:
        for k, ck in enumerate(np.asarray(poly, dtype=np.float64), start=1):
            bg = bg + ck * q**k
    if not np.any(bg != 0.0):
        return None
    return bg


def plot_saxs_fit(result, path_stem, *, title: str | None = None, logy: bool = True,
                  intensity_unit: str | None = None) -> list[Path]:
    """Data (with sigma error bars), the fit and its parts, and a residual panel
    ((y - fit) / sigma, or y - fit without sigma). ``result``: a SaxsFitResult.

    The parts are drawn as their own lines: the scaled mixture ``s I_mix`` (``I_mix`` in
    electrons^2, ``s`` in data units per electron^2), the fitted background (constant plus
    polynomial) and the scaled solvent term; they add up to the fit. ``intensity_unit``: the
    data's intensity unit for the y label (default: ``result.intensity_unit`` if present, else
    "data units"). Legend and metrics sit outside the axes, so no data point is covered.
    Returns [png, svg]."""
    plt = pyplot()
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(9.4, 6.0), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1], "hspace": 0.06})
    fig.subplots_adjust(left=0.09, right=0.66)
    q = result.q
    unit = intensity_unit or getattr(result, "intensity_unit", None) or "data units"
    if result.sigma is not None:
        ax.fill_between(q, result.data - result.sigma, result.data + result.sigma, color="0.6", alpha=0.4, lw=0,
                        label=r"data $\pm\sigma$")
    ax.plot(q, result.data, ".", ms=2.5, color="k", label="data")
    bg = _background_curve(result)
    has_solvent = result.solvent is not None and bool(result.solvent_scale)
    parts = " + ".join(["mixture"] + (["background"] if bg is not None else []) + (["solvent"] if has_solvent else []))
    ax.plot(q, result.fitted, "-", color="C3", lw=1.6, label=f"fit = {parts}")
    ax.plot(q, result.scale * result.mixture, "--", color="C0", lw=1.2,
            label=f"scaled mixture s$\\cdot$I$_{{mix}}$\n(s = {result.scale:.3g} per electron$^2$)")
    hidden = [] if not logy or np.any(result.scale * result.mixture > 0) else ["scaled mixture"]
    if bg is not None:
        poly = getattr(result, "background_poly", None)
        kind = (f"constant, c = {float(result.background):.3g}" if poly is None or len(poly) == 0
                else f"polynomial, degree {len(poly)}")
        ax.plot(q, bg, "-.", color="C1", lw=1.2, label=f"background ({kind})")
        if logy and np.any(bg <= 0):
            hidden.append("background")
    if has_solvent:
        ax.plot(q, result.solvent_scale * result.solvent, ":", color="C2", lw=1.4,
                label=f"solvent (t = {result.solvent_scale:.3g})")
    log_axis = logy and np.all(result.data > 0)
    if log_axis:
        ax.set_yscale("log")
        # show the positive parts down to 1/30 of the smallest data value
        curves = [result.scale * result.mixture] + ([bg] if bg is not None else [])
        if has_solvent:
            curves.append(result.solvent_scale * result.solvent)
        low = min([float(np.min(result.data))] + [float(np.min(c[c > 0])) for c in curves if np.any(c > 0)])
        ax.set_ylim(bottom=max(low / 1.5, float(np.min(result.data)) / 30.0))
    ax.set_ylabel(f"I(q) ({unit})")
    text = (f"$\\chi^2_\\nu$ = {result.chi2_reduced:.3g}\nRMSE = {result.rmse:.3g}\n"
            f"Pearson r = {result.pearson:.4f}\n{result.n_points} points, q {q[0]:.3g}-{q[-1]:.3g} 1/$\\AA$")
    if log_axis and hidden:
        text += "\n(" + ", ".join(hidden) + " <= 0 in part or\n whole: not shown on the log axis)"
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    ax.text(1.02, 0.0, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=8,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"})
    if title:
        ax.set_title(title)
    if result.sigma is not None:
        axr.plot(q, result.normalized_residuals, ".", ms=2.5, color="k")
        axr.set_ylabel(r"(y - fit)/$\sigma$")
    else:
        axr.plot(q, result.residuals, ".", ms=2.5, color="k")
        axr.set_ylabel(f"y - fit ({unit})")
    axr.axhline(0.0, color="C3", lw=1.0)
    axr.set_xlabel(r"q (1/$\AA$)")
    paths = save_figure(fig, path_stem, bbox_inches="tight")
    plt.close(fig)
    return paths


_MODEL_STYLE = {"background": ("C1", "-."), "generic": ("C2", ":"), "observed": ("C0", "--"),
                "combined": ("C3", "-"), "reweighted": ("C4", "-"), "pearson": ("C5", "--")}


def _model_label(name, m) -> str:
    st = m.stats if hasattr(m, "stats") else m
    extra = ""
    params = getattr(m, "params", {}) or {}
    if name == "generic" and params.get("kind"):
        extra = f" ({params['kind']}, {params['size_angstrom']:.3g} $\\AA$)"
    return (f"{name}{extra}: $\\chi^2_\\nu$ {st['chi2_red']:.3g}, BIC {st['bic']:.5g}, DW {st['durbin_watson']:.2f}")


def plot_saxs_models(evidence, path_stem, *, title: str | None = None, logy: bool = True,
                     intensity_unit: str | None = None) -> list[Path]:
    """Every fitted model of a :class:`~clusterdynamicsml.saxs.evidence.SaxsEvidence` as its own
    curve with the data, the cluster model's background as a separate curve, and one residual
    panel per model in units of the estimated noise ((y - fit) / sigma_estimate). The verdict and
    the background share are printed beside the axes. Returns [png, svg]."""
    plt = pyplot()
    names = [k for k in ("background", "generic", "observed", "combined", "reweighted", "pearson")
             if k in evidence.models]
    nres = len(names)
    fig = plt.figure(figsize=(10.5, 4.2 + 0.75 * nres))
    gs = fig.add_gridspec(1 + nres, 1, height_ratios=[4.0] + [1.0] * nres, hspace=0.08)
    ax = fig.add_subplot(gs[0])
    fig.subplots_adjust(left=0.09, right=0.6)
    q, y = evidence.q, evidence.data
    unit = intensity_unit or "data units"
    sig = evidence.noise.sigma
    ax.fill_between(q, y - sig, y + sig, color="0.6", alpha=0.4, lw=0, label=r"data $\pm\sigma_{est}$")
    ax.plot(q, y, ".", ms=2.0, color="k", label="data")
    for name in names:
        m = evidence.models[name]
        color, ls = _MODEL_STYLE[name]
        ax.plot(q, m.fitted, ls=ls, color=color, lw=1.3, label=_model_label(name, m))
    best = evidence.evidence.get("cluster_model")
    if best in evidence.models:
        bg = evidence.models[best].background
        ax.plot(q, bg, color="0.3", lw=1.0, ls=(0, (1, 1)), label=f"background of the {best} model")
    if logy and np.all(y > 0):
        ax.set_yscale("log")
        ax.set_ylim(bottom=float(np.min(y)) / 3.0)
    ax.set_ylabel(f"I(q) ({unit})")
    ax.tick_params(labelbottom=False)
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    sh = evidence.background_share
    ev = evidence.evidence
    text = (f"{'SUPPORTED' if ev.get('supported') else 'NOT SUPPORTED'}: {best}\n"
            f"$\\Delta$BIC vs background {ev.get('delta_bic_vs_background', float('nan')):.4g}\n"
            f"$\\Delta$BIC vs generic {ev.get('delta_bic_vs_generic', float('nan')):.4g}\n"
            f"background share {sh.get('q_min', float('nan')):.2f} / {sh.get('q_mid', float('nan')):.2f} / "
            f"{sh.get('q_max', float('nan')):.2f}\n(q_min / q_mid / q_max)\n"
            f"noise: {evidence.noise.used}"
            + (f" (file sigma = {evidence.noise.ratio:.3g} x estimate)" if evidence.noise.ratio else ""))
    if best in evidence.models and logy and np.any(evidence.models[best].background <= 0):
        text += "\n(background <= 0 in part or whole:\n not shown on the log axis)"
    ax.text(1.02, 0.0, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=7.5,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"})
    if title:
        ax.set_title(title)
    lim = 0.0
    res = evidence.normalized_residuals
    axes = []
    for i, name in enumerate(names):
        axr = fig.add_subplot(gs[1 + i], sharex=ax)
        color, _ = _MODEL_STYLE[name]
        axr.plot(q, res[name], ".", ms=1.5, color=color)
        axr.axhline(0.0, color="0.3", lw=0.8)
        axr.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
        axr.tick_params(labelsize=7, labelbottom=(i == nres - 1))
        lim = max(lim, float(np.percentile(np.abs(res[name]), 99)))
        axes.append(axr)
    for axr in axes:
        axr.set_ylim(-1.1 * lim, 1.1 * lim)
    if axes:
        axes[0].set_title(r"residuals (y - fit) / $\sigma_{est}$", fontsize=8)
        axes[-1].set_xlabel(r"q (1/$\AA$)")
    paths = save_figure(fig, path_stem, bbox_inches="tight")
    plt.close(fig)
    return paths


def plot_saxs_reweighting(reweighting, path_stem, *, title: str | None = None, max_labels: int = 30) -> list[Path]:
    """Maximum-entropy reweighting: MD vs reweighted populations (the ``max_labels`` most populated
    labels, log scale) and the L-curve chi2 against -S_rel with the chosen theta and the knee
    marked. ``reweighting``: a ReweightResult. Returns [png, svg]."""
    plt = pyplot()
    rows = reweighting.table()[:max_labels]
    fig, (ax, axl) = plt.subplots(1, 2, figsize=(12.0, 4.6), gridspec_kw={"width_ratios": [2.2, 1.0], "wspace": 0.3})
    x = np.arange(len(rows))
    md = np.array([r["md_population"] for r in rows])
    rw = np.array([r["reweighted_population"] for r in rows])
    ax.bar(x - 0.2, md, 0.4, color="0.55", label="MD (clusters per frame, normalised)")
    ax.bar(x + 0.2, rw, 0.4, color="C4", label=f"reweighted ($\\theta$ = {reweighting.theta:.3g})")
    ax.set_yscale("log")
    floor = 1e-6 * max(float(md.max()), float(rw.max()), 1e-300)
    ax.set_ylim(bottom=floor)
    if np.any(rw < floor):
        ax.text(0.99, 0.02, f"bars below {floor:.0e} cut at the axis", transform=ax.transAxes, ha="right",
                va="bottom", fontsize=7)
    ax.set_xticks(x)
    ax.set_xticklabels([r["label"] for r in rows], rotation=70, fontsize=7)
    ax.set_ylabel("population (fraction of clusters)")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(f"effective sample size exp(S_rel) = {reweighting.effective_sample_size:.3g}", fontsize=9)
    xs = np.array([-s["s_rel"] for s in reweighting.scan])
    ys = np.array([s["chi2"] for s in reweighting.scan])
    axl.plot(xs, ys, "o-", ms=3, color="C0")
    axl.plot(xs[reweighting.chosen], ys[reweighting.chosen], "s", ms=8, mfc="none", color="C3", label="chosen")
    axl.plot(xs[reweighting.knee], ys[reweighting.knee], "^", ms=8, mfc="none", color="C2", label="L-curve knee")
    axl.set_xlabel(r"$-S_{rel}$ (relative entropy to MD)")
    axl.set_ylabel(r"$\chi^2$")
    axl.set_yscale("log")
    axl.legend(fontsize=8, frameon=False)
    axl.set_title(r"L-curve ($\theta$ scan)", fontsize=9)
    if title:
        fig.suptitle(title)
    paths = save_figure(fig, path_stem, bbox_inches="tight")
    plt.close(fig)
    return paths
