"""The figures of a run: ``make_figures(data, config, folder)`` draws every figure the stage plot
modules provide (PNG and SVG): heatmap with energy subplot and lifetimes (``plot.dynamics``),
observed vs observed-plus-predicted histograms and the size extrapolation (``plot.predict``),
SAXS traces, model fits with residuals and reweighting (``plot.saxs``).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..plot._common import figure_options

__all__ = ["FIGURES", "make_figures"]

#: figure key -> (stage plot module, function names tried in order, title). A plot function
#: either takes ``(result, out_stem)``, writes ``<out_stem>.png/.svg`` and returns the paths,
#: or takes ``(result)`` and returns a matplotlib Figure (saved here in every format).
FIGURES = {
    "heatmap": ("plot.dynamics", ("plot_heatmap", "heatmap_figure"),
                "Cluster populations over time (heatmap with energy subplot)"),
    "lifetimes": ("plot.dynamics", ("plot_lifetimes", "plot_lifetime_table", "lifetime_figure"),
                  "Cluster lifetimes"),
    "histograms": ("plot.predict", ("plot_population_histograms", "plot_histograms"),
                   "Observed vs observed plus predicted populations"),
    "predictions": ("plot.predict", ("plot_prediction_table",), "Predicted larger clusters"),
    "debye_waller": ("plot.predict", ("plot_debye_waller_table", "plot_debye_waller"), "Debye-Waller table"),
    "size_extrapolation": ("plot.predict", ("plot_size_extrapolation",),
                           "Extrapolation validation: observed vs predicted clusters per frame by size"),
    "saxs_components": ("plot.saxs", ("plot_saxs_traces",),
                        "SAXS component profiles (Debye, absolute units; the heaviest observed and predicted "
                        "components, all of them in saxs_components/)"),
    "saxs_mixtures": ("plot.saxs", ("plot_saxs_traces",), "SAXS mixtures: observed only vs observed plus predicted"),
    "saxs_fit_observed": ("plot.saxs", ("plot_saxs_fit",), "SAXS fit of the observed-only mixture, with residuals"),
    "saxs_fit_combined": ("plot.saxs", ("plot_saxs_fit",),
                          "SAXS fit of the observed plus predicted mixture, with residuals"),
    "saxs_evidence": ("plot.saxs", ("plot_saxs_models",),
                      "SAXS evidence: background, generic form factor and cluster models with residuals in units "
                      "of the estimated noise"),
    "saxs_reweighting": ("plot.saxs", ("plot_saxs_reweighting",),
                         "Maximum-entropy reweighting: MD vs reweighted populations and the L-curve"),
}

MAX_OBSERVED_TRACES = 8
MAX_PREDICTED_TRACES = 6


def _main_components(saxs: dict) -> list:
    """The components worth a line in the traces figure: the heaviest observed ones (by mixture
    weight) and the heaviest predicted ones, so the figure stays readable for large libraries
    (all components are in the CSV files and the component profiles)."""
    comps = list(saxs.get("components") or [])
    rows = list(saxs.get("component_rows") or [])
    if len(rows) != len(comps):
        return comps[: MAX_OBSERVED_TRACES + MAX_PREDICTED_TRACES]
    picked = []
    for source, limit in (("observed", MAX_OBSERVED_TRACES), ("predicted", MAX_PREDICTED_TRACES)):
        idx = [k for k, r in enumerate(rows) if r.get("source") == source]
        idx.sort(key=lambda k: -float(rows[k].get("weight") or 0.0))
        picked += [comps[k] for k in idx[:limit]]
    return picked


def _saxs_part(key):
    def get(data):
        saxs = data.get("saxs")
        if not isinstance(saxs, dict):
            return None
        if key == "components":
            return _main_components(saxs) or None
        if key == "mixtures":
            curves = [(name, saxs["q"], saxs[k]) for name, k in (("observed only", "observed_intensity"),
                                                                  ("observed + predicted", "combined_intensity"))
                      if saxs.get(k) is not None]
            return curves or None
        if key in ("evidence", "reweighting"):  # live objects only (a reloaded run keeps plain dicts)
            ev = saxs.get("evidence")
            if ev is None or isinstance(ev, dict):
                return None
            return ev if key == "evidence" else ev.reweighting
        return (saxs.get("fit") or {}).get(key)
    return get


# which data each figure needs: a key of the run data, or a function of the run data
_FIGURE_INPUT = {"heatmap": "dynamics", "lifetimes": "dynamics", "histograms": "prediction",
                 "predictions": "prediction", "debye_waller": "prediction",
                 "size_extrapolation": lambda data: (
                     v if isinstance(v := getattr(data.get("prediction"), "validation", None), dict)
                     and v.get("comparison") else None),
                 "saxs_components": _saxs_part("components"), "saxs_mixtures": _saxs_part("mixtures"),
                 "saxs_fit_observed": _saxs_part("observed"), "saxs_fit_combined": _saxs_part("combined"),
                 "saxs_evidence": _saxs_part("evidence"), "saxs_reweighting": _saxs_part("reweighting")}


def _figure_title(key: str, data: Mapping[str, Any], source) -> str | None:
    import numpy as np

    if key.startswith("saxs_fit"):
        return FIGURES[key][2]
    saxs = data.get("saxs")
    if not isinstance(saxs, dict):
        saxs = {}
    if key == "saxs_components":
        total = len(saxs.get("components") or [])
        if len(source) < total:
            return (f"SAXS components: the {len(source)} heaviest of {total} shown (all {total} in "
                    "saxs_components/)")
        return f"SAXS components (all {total})"
    if key == "saxs_mixtures":
        title = "SAXS mixtures: observed only vs observed + predicted"
        if len(source) == 2:
            a, b = (np.asarray(c[2], dtype=float) for c in source)
            ok = np.isfinite(a) & np.isfinite(b) & (np.abs(a) > 0)
            if ok.any():
                diff = float(np.max(np.abs(b[ok] - a[ok]) / np.abs(a[ok])))
                title += f" (the two differ by at most {100 * diff:.2g} %)"
        return title
    return None


def _plot_function(key: str):
    import importlib

    module, names, _ = FIGURES[key]
    try:
        mod = importlib.import_module(f"clusterdynamicsml.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("clusterdynamicsml"):
            return None
        raise
    for name in names:
        func = getattr(mod, name, None)
        if callable(func):
            return func
    return None


def _time_unit(cfg, source) -> str:
    unit = cfg.report.time_unit
    if unit != "auto":
        return unit
    start, stop = getattr(source, "start_fs", None), getattr(source, "observed_stop_fs", None)
    if start is None or stop is None:
        return "ps"
    return "fs" if (stop - start) < 2000.0 else "ps"


def _figure_kwargs(func, cfg, source=None, title: str | None = None) -> dict:
    rc = cfg.report
    has_energy = getattr(source, "energy", None) is not None
    energy = None if (rc.energy_column == "none" or not has_energy) else rc.energy_column
    options = {"energy": energy, "lower_quantile": rc.color_quantiles[0], "upper_quantile": rc.color_quantiles[1],
               "mode": rc.heatmap_mode, "display_mode": rc.heatmap_mode, "time_unit": _time_unit(cfg, source),
               "cmap": rc.colormap, "colormap": rc.colormap, "quantiles": tuple(rc.color_quantiles),
               "energy_column": energy, "energy_quantity": energy,
               "dpi": rc.dpi, "formats": tuple(rc.formats),
               "max_labels": getattr(rc, "heatmap_max_labels", 40) or None}
    if title is not None:
        options["title"] = title
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return {}
    return {k: v for k, v in options.items() if k in params}


def _writes_files(func) -> bool:
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return False
    return len(params) >= 2 and params[1] in ("out_stem", "path_stem", "stem", "path", "out_path")


def make_figures(data: Mapping[str, Any], cfg, folder, *, stem: str = "cdml",
                 warn: Callable[[str], None] | None = None) -> dict:
    """Draw every available figure into ``folder`` as ``<stem>_<key>.<fmt>``. Returns
    {key: [paths]}. A figure whose plot function is not in this build, or whose input is
    missing, is skipped (with a warning); a plot function that fails is reported as a warning
    and the run goes on."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[str]] = {}
    formats = list(cfg.report.formats)
    if (cfg.report.html or cfg.report.pptx) and not {"png", "svg"} & set(formats):
        # the HTML report embeds SVG or PNG and the PowerPoint report PNG: a PDF-only run
        # would leave both without figures, so PNG copies are drawn too (and said so)
        formats.append("png")
        cfg = cfg.replace("report", formats=formats)
        if warn:
            warn(f"figures: formats {list(cfg.report.formats)[:-1]} cannot be embedded in the HTML and PowerPoint "
                 "reports; PNG copies are written too")
    for key in FIGURES:
        getter = _FIGURE_INPUT[key]
        source = getter(data) if callable(getter) else data.get(getter)
        if source is None or isinstance(source, dict) and not source:
            saxs = data.get("saxs")
            if warn and key in ("saxs_evidence", "saxs_reweighting") and isinstance(saxs, dict) \
                    and isinstance(saxs.get("evidence"), dict):
                warn(f"figure {key}: not redrawn from a saved run (it needs the model fits, which the dataset "
                     "keeps as numbers only); the run's own figures/ folder has it")
            continue
        func = _plot_function(key)
        if func is None:
            if warn:
                warn(f"figure {key}: no plot function in this build ({FIGURES[key][0]})")
            continue
        out_stem = folder / f"{stem}_{key}"
        # the two fit figures look alike: their titles say which mixture was fitted; the SAXS
        # traces say how many components they show and how far the two mixtures differ
        kwargs = _figure_kwargs(func, cfg, source, _figure_title(key, data, source))
        try:
            if _writes_files(func):
                # [report] formats and dpi reach writers that do not take them as arguments
                with figure_options(formats=tuple(cfg.report.formats), dpi=cfg.report.dpi):
                    paths = func(source, out_stem, **kwargs)
                paths = [str(p) for p in (paths or []) if p is not None and Path(p).is_file()]
            else:
                fig = func(source, **kwargs)
                if fig is None:
                    continue
                if not hasattr(fig, "savefig") and hasattr(fig, "figure"):
                    fig = fig.figure
                paths = []
                for fmt in cfg.report.formats:
                    path = folder / f"{stem}_{key}.{fmt}"
                    fig.savefig(path, dpi=cfg.report.dpi, bbox_inches="tight")
                    paths.append(str(path))
                plt.close(fig)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if warn:
                warn(f"figure {key}: not drawn ({exc.__class__.__name__}: {exc})")
            plt.close("all")
            continue
        if paths:
            out[key] = paths
    return out


# ---------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------
