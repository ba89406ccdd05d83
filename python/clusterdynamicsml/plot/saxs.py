"""Figures for the scattering stage: component traces and a fit with its residual panel.

Every function writes PNG and SVG next to each other and returns their paths. matplotlib is
imported inside the functions with the Agg backend (no display needed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plot._common import pyplot, save_figure

__all__ = ["plot_saxs_traces", "plot_saxs_fit"]


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
