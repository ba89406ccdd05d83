"""Figures for the scattering stage: component traces and a fit with its residual panel.

Every function writes PNG and SVG next to each other and returns their paths. matplotlib is
imported inside the functions with the Agg backend (no display needed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_saxs_traces", "plot_saxs_fit"]


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("plotting needs matplotlib (pip install matplotlib)") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path_stem) -> list[Path]:
    stem = Path(path_stem)
    if stem.suffix.lower() in (".png", ".svg"):
        stem = stem.with_suffix("")
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in (".png", ".svg"):
        p = stem.with_suffix(ext)
        fig.savefig(p, dpi=150, bbox_inches="tight")
        out.append(p)
    return out


def plot_saxs_traces(components, path_stem, *, title: str | None = None, logy: bool = True,
                     show_std: bool = True) -> list[Path]:
    """Plot component traces I(q) (electrons^2) against q (1/angstrom), with the +-std band of
    averaged components. ``components``: SaxsComponent objects or (label, q, I) tuples.
    Returns [png, svg]."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for c in components:
        if hasattr(c, "intensity"):
            lab, q, I, sd = c.label, c.q, c.intensity, getattr(c, "std", None)
            if getattr(c, "source", "") == "fps_average":
                lab = f"{lab} (FPS K={c.k} of {c.n_library})"
        else:
            lab, q, I = c
            sd = None
        (line,) = ax.plot(q, I, lw=1.4, label=str(lab))
        if show_std and sd is not None and np.any(sd > 0):
            ax.fill_between(q, I - sd, I + sd, color=line.get_color(), alpha=0.2, lw=0)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(r"q (1/$\AA$)")
    ax.set_ylabel(r"I(q) (electrons$^2$)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    paths = _save(fig, path_stem)
    plt.close(fig)
    return paths


def plot_saxs_fit(result, path_stem, *, title: str | None = None, logy: bool = True) -> list[Path]:
    """Data (with sigma error bars), fitted curve and its parts, and a residual panel
    ((y - fit) / sigma, or y - fit without sigma). ``result``: a SaxsFitResult. Returns [png, svg]."""
    plt = _pyplot()
    fig, (ax, axr) = plt.subplots(2, 1, figsize=(6.4, 6.0), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1], "hspace": 0.06})
    q = result.q
    if result.sigma is not None:
        ax.fill_between(q, result.data - result.sigma, result.data + result.sigma, color="0.6", alpha=0.4, lw=0,
                        label=r"data $\pm\sigma$")
    ax.plot(q, result.data, ".", ms=2.5, color="k", label="data")
    ax.plot(q, result.fitted, "-", color="C3", lw=1.6, label="fit")
    ax.plot(q, result.scale * result.mixture, "--", color="C0", lw=1.0, label="scaled mixture")
    if result.solvent is not None and result.solvent_scale:
        ax.plot(q, result.solvent_scale * result.solvent, ":", color="C2", lw=1.0, label="solvent")
    if logy and np.all(result.data > 0):
        ax.set_yscale("log")
    ax.set_ylabel("I(q)")
    text = (f"$\\chi^2_\\nu$ = {result.chi2_reduced:.3g}\nRMSE = {result.rmse:.3g}\n"
            f"Pearson r = {result.pearson:.4f}")
    ax.text(0.98, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=8,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"})
    ax.legend(fontsize=8, loc="lower left")
    if title:
        ax.set_title(title)
    if result.sigma is not None:
        axr.plot(q, result.normalized_residuals, ".", ms=2.5, color="k")
        axr.set_ylabel(r"(y - fit)/$\sigma$")
    else:
        axr.plot(q, result.residuals, ".", ms=2.5, color="k")
        axr.set_ylabel("y - fit")
    axr.axhline(0.0, color="C3", lw=1.0)
    axr.set_xlabel(r"q (1/$\AA$)")
    paths = _save(fig, path_stem)
    plt.close(fig)
    return paths
