"""Figures and reports of a run: a self-contained HTML page and a PowerPoint deck.

``make_figures(data, config, folder)`` draws every figure the stage plot modules provide
(PNG and SVG): heatmap with energy subplot and lifetimes (``plot_dynamics``), observed vs
observed-plus-predicted histograms (``plot_predict``), SAXS traces and fit with residuals
(``plot_saxs``). ``write_html_report`` / ``write_pptx_report`` assemble settings, summary,
tables and figures of a :class:`~clusterdynamicsml.pipeline.workflow.RunResult`. ``report(dataset)``
(CLI ``clusterdynamicsml report DATASET``) rebuilds figures and reports from a saved run
without recomputing anything, into a new timestamped folder.

The HTML report embeds the figures as base64 data URIs (SVG, or PNG when no SVG exists), so
the single file can be mailed or archived on its own.
"""
from __future__ import annotations

import base64
import dataclasses
import html
import inspect
import math
from collections.abc import Callable
from pathlib import Path

from .._io import atomic_path, atomic_write

__all__ = ["make_figures", "write_html_report", "write_pptx_report", "report", "table_rows", "FIGURES"]

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
    "saxs_components": ("plot.saxs", ("plot_saxs_traces",),
                        "SAXS component profiles (Debye, absolute units; the heaviest observed and predicted "
                        "components, all of them in saxs_components/)"),
    "saxs_mixtures": ("plot.saxs", ("plot_saxs_traces",), "SAXS mixtures: observed only vs observed plus predicted"),
    "saxs_fit_observed": ("plot.saxs", ("plot_saxs_fit",), "SAXS fit of the observed-only mixture, with residuals"),
    "saxs_fit_combined": ("plot.saxs", ("plot_saxs_fit",),
                          "SAXS fit of the observed plus predicted mixture, with residuals"),
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
        return (saxs.get("fit") or {}).get(key)
    return get


# which data each figure needs: a key of the run data, or a function of the run data
_FIGURE_INPUT = {"heatmap": "dynamics", "lifetimes": "dynamics", "histograms": "prediction",
                 "predictions": "prediction", "debye_waller": "prediction",
                 "saxs_components": _saxs_part("components"), "saxs_mixtures": _saxs_part("mixtures"),
                 "saxs_fit_observed": _saxs_part("observed"), "saxs_fit_combined": _saxs_part("combined")}


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


def make_figures(data: dict, cfg, folder, *, stem: str = "cdml", warn: Callable[[str], None] | None = None) -> dict:
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
    for key in FIGURES:
        getter = _FIGURE_INPUT[key]
        source = getter(data) if callable(getter) else data.get(getter)
        if source is None or isinstance(source, dict) and not source:
            continue
        func = _plot_function(key)
        if func is None:
            if warn:
                warn(f"figure {key}: no plot function in this build ({FIGURES[key][0]})")
            continue
        out_stem = folder / f"{stem}_{key}"
        # the two fit figures look alike: their titles say which mixture was fitted
        kwargs = _figure_kwargs(func, cfg, source, FIGURES[key][2] if key.startswith("saxs_fit") else None)
        try:
            if _writes_files(func):
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
def table_rows(obj) -> list[dict]:
    """Rows (list of dicts) from a list of dataclasses/dicts, a dict of columns, or an
    object with ``to_rows()`` / ``rows``."""
    if obj is None:
        return []
    if hasattr(obj, "to_rows"):
        return [dict(r) for r in obj.to_rows()]
    if hasattr(obj, "rows") and not isinstance(obj, dict):
        return table_rows(obj.rows)
    if isinstance(obj, dict):
        cols = {k: v for k, v in obj.items() if isinstance(v, (list, tuple))}
        if cols and len({len(v) for v in cols.values()}) == 1:
            n = len(next(iter(cols.values())))
            return [{k: v[i] for k, v in cols.items()} for i in range(n)]
        return [obj]
    rows = []
    for item in obj:
        if dataclasses.is_dataclass(item):
            rows.append(dataclasses.asdict(item))
        elif isinstance(item, dict):
            rows.append(dict(item))
        elif hasattr(item, "_asdict"):
            rows.append(item._asdict())
        elif hasattr(item, "to_dict"):
            rows.append(item.to_dict())
    return rows


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        if len(value) > 8:
            return f"[{len(value)} values]"
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return str(value)


def _simple_columns(rows: list[dict], limit: int = 10) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k not in cols and not (isinstance(v, (list, tuple)) and len(v) > 8) and not hasattr(v, "shape"):
                cols.append(k)
    return cols[:limit]


def _get(obj, *names, default=None):
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if not isinstance(obj, dict) and hasattr(obj, name):
            return getattr(obj, name)
    return default


def _tables(result) -> list[tuple[str, list[dict], list[str]]]:
    """(title, rows, columns) for the report tables that exist in this run."""
    d = result.data
    out = []
    dyn = d.get("dynamics")
    if dyn is not None:
        rows = table_rows(_get(dyn, "lifetime_by_label"))
        want = ["label", "cluster_size", "mean_count_per_frame", "occupancy_fraction", "mean_lifetime_fs",
                "std_lifetime_fs", "mle_lifetime_fs", "km_mean_lifetime_fs", "completed_lifetime_count", "window_truncated_lifetime_count",
                "association_rate_per_ps", "dissociation_rate_per_ps"]
        if rows:
            cols = [c for c in want if c in rows[0]] or _simple_columns(rows)
            out.append(("Observed lifetimes by label (fs, rates per ps; mean of completed lifetimes as the "
                        "reference tool, censoring-aware exponential MLE and Kaplan-Meier mean)", rows, cols))
    pred = d.get("prediction")
    if pred is not None:
        rows = table_rows(pred.predictions_table() if hasattr(pred, "predictions_table") else _get(pred, "predictions"))
        want = ["target_node_count", "rank", "label", "predicted_population_share", "share_p05", "share_p95",
                "predicted_mean_count_per_frame", "predicted_occupancy_fraction", "predicted_mean_lifetime_fs",
                "mean_lifetime_fs_p05", "mean_lifetime_fs_p95", "predicted_mean_radius_of_gyration", "source_label"]
        if rows:
            cols = [c for c in want if c in rows[0]] or _simple_columns(rows)
            out.append(("Predicted larger clusters (shares with bootstrap 5-95 %, lifetimes in fs, Rg in "
                        "angstrom)", rows, cols))
        val = _get(pred, "validation")
        if val is not None:
            rows = table_rows(val)
            if rows:
                out.append(("Leave-largest-size-out validation", rows, _simple_columns(rows)))
    quality = d.get("structure_quality")
    if quality:
        out.append(("Predicted structures: shortest contact and deviation from the learned geometry (angstrom)",
                    list(quality), ["target_node_count", "rank", "label", "n_atoms", "shortest_contact",
                                    "shortest_contact_pair", "min_distance_ratio", "max_abs_bond_deviation", "relaxed_atoms",
                                    "file"] + [c for c in ("valid", "n_components", "radius_of_gyration", "invalid_reasons")
                                               if any(c in r for r in quality)]))
    dw = d.get("debye_waller")
    if dw is None and pred is not None:
        dw = _get(pred, "debye_waller")
    if dw:
        rows = table_rows(dw)
        want = ["source", "method", "label", "node_count", "element_a", "element_b", "sigma", "b_factor",
                "support_count", "sigma_p05", "sigma_p95"]
        if rows:
            cols = [c for c in want if c in rows[0]] or _simple_columns(rows)
            out.append(("Debye-Waller table (sigma in angstrom, B = 8 pi^2 sigma^2 in angstrom^2)", rows, cols))
    saxs = d.get("saxs")
    if isinstance(saxs, dict):
        rows = [dict(r) for r in saxs.get("component_rows", [])]
        if rows:
            cols = [c for c in ("label", "source", "kind", "n_structures", "n_library", "weight",
                                "observed_only_weight", "combined_weight") if any(c in r for r in rows)]
            out.append(("SAXS components and mixture weights", rows, cols))
        fits = []
        for name, f in (saxs.get("fit") or {}).items():
            row = {"model": "observed only" if name == "observed" else "observed + predicted"}
            for k in ("chi2_reduced", "rmse", "pearson", "scale", "background", "solvent_scale", "sigma_scale",
                      "n_points", "weight_method"):
                row[k] = _get(f, k)
            qr = _get(f, "q_range")
            row["q_range_inv_A"] = None if qr is None else f"{qr[0]:.3g}..{qr[1]:.3g}"
            fits.append(row)
        if fits:
            out.append(("SAXS fit to the experimental data (weighted least squares with sigma)", fits, list(fits[0])))
    return out


def _settings_rows(cfg) -> list[tuple[str, str]]:
    from ..pipeline.config import flatten

    return [(k, _fmt(v)) for k, v in flatten(cfg.to_dict()).items()]


# ---------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0 1em} th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.meta{color:#555;font-size:.9em} figure{margin:1em 0} figure svg,figure img{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#444} .warn{color:#8a4b00} details{margin:.5em 0}
"""


def _html_table(rows: list[dict], cols: list[str], limit: int = 200) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in rows[:limit]:
        body.append("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c)))}</td>" for c in cols) + "</tr>")
    more = f"<p class='meta'>{len(rows) - limit} more rows in the CSV files.</p>" if len(rows) > limit else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _embed_figure(paths: list[str]) -> str:
    svg = next((p for p in paths if p.endswith(".svg") and Path(p).is_file()), None)
    if svg is not None:  # base64 in an <img>: self-contained, and the SVG ids of figures cannot clash
        b64 = base64.b64encode(Path(svg).read_bytes()).decode("ascii")
        return f"<img alt='figure' src='data:image/svg+xml;base64,{b64}'>"
    png = next((p for p in paths if p.endswith(".png") and Path(p).is_file()), None)
    if png is not None:
        b64 = base64.b64encode(Path(png).read_bytes()).decode("ascii")
        return f"<img alt='figure' src='data:image/png;base64,{b64}'>"
    return ""


def _figures_of(result) -> dict:
    figs = result.data.get("figures")
    if figs:
        return figs
    out: dict[str, list[str]] = {}
    for key, rel in result.outputs.items():
        if key.startswith("figure_"):
            name = key[len("figure_"):].rsplit("_", 1)[0]
            out.setdefault(name, []).append(str(result.run_dir / rel))
    return out


def write_html_report(result, path) -> Path:
    """A single self-contained HTML file (figures as base64 data URIs, no external resources)."""
    cfg = result.config
    info = result.info or {}
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>clusterdynamicsml report: {html.escape(cfg.run.name)}</title><style>{_CSS}</style></head><body>"]
    parts.append(f"<h1>clusterdynamicsml report: {html.escape(cfg.run.name)}</h1>")
    versions = info.get("versions", {})
    parts.append(
        f"<p class='meta'>Run folder {html.escape(str(result.run_dir))}<br>clusterdynamicsml "
        f"{html.escape(str(versions.get('clusterdynamicsml')))}, OpenMP {'on' if info.get('openmp') else 'off'}, "
        f"{html.escape(str(info.get('threads')))} threads, started {html.escape(str(info.get('started', '')))}, "
        f"{html.escape(str(info.get('wall_seconds', '')))} s. Units: angstrom, fs, rates per ps, q in 1/angstrom.</p>")
    parts.append("<h2>Summary</h2>")
    step_rows = [{"step": s.name, "status": "running" if s.status == "pending" else s.status,
                  "seconds": round(s.seconds, 2), "result": s.message} for s in result.steps]
    parts.append(_html_table(step_rows, ["step", "status", "seconds", "result"]))
    if result.warnings:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li class='warn'>{html.escape(w)}</li>"
                                                      for w in result.warnings) + "</ul>")
    figs = _figures_of(result)
    for key, (_, _, title) in FIGURES.items():
        if key in figs:
            parts.append(f"<h2>{html.escape(title)}</h2><figure>{_embed_figure(figs[key])}"
                         f"<figcaption>{html.escape(title)}</figcaption></figure>")
    for title, rows, cols in _tables(result):
        parts.append(f"<h2>{html.escape(title)}</h2>" + _html_table(rows, cols))
    parts.append("<h2>Settings</h2><details open><summary>resolved run file</summary>")
    parts.append(_html_table([{"setting": k, "value": v} for k, v in _settings_rows(cfg)], ["setting", "value"],
                             limit=1000))
    parts.append("</details>")
    outs = sorted(v for v in result.outputs.values())
    parts.append("<h2>Files</h2><ul>" + "".join(f"<li>{html.escape(o)}</li>" for o in outs) + "</ul>")
    parts.append("</body></html>\n")
    return atomic_write(path, "".join(parts))


# ---------------------------------------------------------------------------------------
# PowerPoint
# ---------------------------------------------------------------------------------------
def write_pptx_report(result, path) -> Path:
    """PowerPoint deck: cover, settings, summary, one slide per figure, tables."""
    try:
        from pptx import Presentation
        from pptx.util import Inches, Pt
    except ImportError:  # pragma: no cover
        raise RuntimeError("the PowerPoint report needs python-pptx: pip install python-pptx") from None

    cfg = result.config
    info = result.info or {}
    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    blank = prs.slide_layouts[6]

    def title_box(slide, text, size=28):
        tb = slide.shapes.add_textbox(Inches(0.5), Inches(0.3), Inches(12.3), Inches(0.9))
        tb.text_frame.text = text
        tb.text_frame.paragraphs[0].runs[0].font.size = Pt(size)
        tb.text_frame.paragraphs[0].runs[0].font.bold = True

    def text_lines(slide, lines, top=1.3, size=14):
        tb = slide.shapes.add_textbox(Inches(0.6), Inches(top), Inches(12.1), Inches(7.5 - top - 0.3))
        tf = tb.text_frame
        tf.word_wrap = True
        for k, line in enumerate(lines):
            p = tf.paragraphs[0] if k == 0 else tf.add_paragraph()
            p.text = line
            for r in p.runs:
                r.font.size = Pt(size)

    def table_slide(title, rows, cols, max_rows=14):
        for start in range(0, max(len(rows), 1), max_rows):
            chunk = rows[start:start + max_rows]
            slide = prs.slides.add_slide(blank)
            title_box(slide, title if start == 0 else f"{title} (continued)", 22)
            shape = slide.shapes.add_table(len(chunk) + 1, len(cols), Inches(0.4), Inches(1.3), Inches(12.5),
                                           Inches(0.35 * (len(chunk) + 1)))
            tbl = shape.table
            for j, c in enumerate(cols):
                tbl.cell(0, j).text = c.replace("_", " ")
            for i, r in enumerate(chunk, start=1):
                for j, c in enumerate(cols):
                    tbl.cell(i, j).text = _fmt(r.get(c))
            for i in range(len(chunk) + 1):
                for j in range(len(cols)):
                    for p in tbl.cell(i, j).text_frame.paragraphs:
                        for run in p.runs:
                            run.font.size = Pt(10)

    slide = prs.slides.add_slide(blank)
    title_box(slide, f"clusterdynamicsml: {cfg.run.name}", 36)
    versions = info.get("versions", {})
    text_lines(slide, [
        f"Run folder: {result.run_dir}",
        f"Frames: {cfg.frames.path}",
        f"clusterdynamicsml {versions.get('clusterdynamicsml')}, OpenMP {'on' if info.get('openmp') else 'off'}, "
        f"{info.get('threads')} threads",
        f"Started {info.get('started', '')}, wall time {info.get('wall_seconds', '')} s",
        "Units: angstrom, fs, rates per ps, q in 1/angstrom",
    ], top=1.6, size=18)

    slide = prs.slides.add_slide(blank)
    title_box(slide, "Summary")
    text_lines(slide, [f"{s.name}: {s.status} ({s.seconds:.2f} s) {s.message}" for s in result.steps]
               + [f"warning: {w}" for w in result.warnings[:8]], size=14)

    settings = _settings_rows(cfg)
    half = (len(settings) + 1) // 2
    slide = prs.slides.add_slide(blank)
    title_box(slide, "Settings")
    for col, chunk in enumerate((settings[:half], settings[half:])):
        tb = slide.shapes.add_textbox(Inches(0.4 + 6.4 * col), Inches(1.2), Inches(6.2), Inches(6))
        tf = tb.text_frame
        tf.word_wrap = True
        for k, (key, value) in enumerate(chunk):
            p = tf.paragraphs[0] if k == 0 else tf.add_paragraph()
            p.text = f"{key} = {value}"
            for r in p.runs:
                r.font.size = Pt(8)

    figs = _figures_of(result)
    for key, (_, _, title) in FIGURES.items():
        png = next((p for p in figs.get(key, []) if p.endswith(".png") and Path(p).is_file()), None)
        if png is None:
            continue
        slide = prs.slides.add_slide(blank)
        title_box(slide, title, 24)
        from PIL import Image

        with Image.open(png) as im:
            w, h = im.size
        max_w, max_h = 12.3, 5.9
        scale = min(max_w / w, max_h / h)
        slide.shapes.add_picture(png, Inches(0.5 + (max_w - w * scale) / 2), Inches(1.3),
                                 width=Inches(w * scale), height=Inches(h * scale))
    for title, rows, cols in _tables(result):
        table_slide(title, rows, cols)
    with atomic_path(path) as tmp:
        prs.save(tmp)
    return Path(path)


# ---------------------------------------------------------------------------------------
# report from a saved dataset
# ---------------------------------------------------------------------------------------
def report(dataset, output_dir=None, *, formats: tuple[str, ...] | None = None) -> Path:
    """Rebuild figures, HTML and PowerPoint from a saved run (dataset JSON or run folder)
    into ``<output_dir or run folder>/report_<timestamp>/``. Returns that folder."""
    import datetime as _dt

    from .runs import load_run

    result = load_run(dataset)
    if formats is not None:
        result.config = result.config.replace("report", formats=list(formats))
    parent = Path(output_dir) if output_dir is not None else result.run_dir
    parent.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d_%H%M%S_%f")
    final = parent / f"report_{stamp}"
    work = final.with_name(final.name + ".partial")
    work.mkdir()
    try:
        stem = result.config.run.name
        warnings: list[str] = []
        figs = make_figures(result.data, result.config, work / "figures", stem=stem, warn=warnings.append)
        result.figures = figs  # embedded from the work folder before the rename
        result.warnings = list(result.warnings) + [w for w in warnings if w not in result.warnings]
        write_html_report(result, work / f"{stem}_report.html")
        write_pptx_report(result, work / f"{stem}_report.pptx")
        work.rename(final)
    except BaseException:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        raise
    return final
