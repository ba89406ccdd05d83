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
import html
from pathlib import Path

from .._io import atomic_write
from .figures import FIGURES, _plot_function, _writes_files, make_figures  # noqa: F401  (the report's public names)
from .outputs import file_entries, files_line, listing_of
from .report_pptx import write_pptx_report
from .tables import _figures_of, _fmt, _settings_rows, _simple_columns, _tables, table_rows  # noqa: F401

__all__ = ["make_figures", "write_html_report", "write_pptx_report", "report", "table_rows", "FIGURES"]


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}
h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
.tablewrap{max-width:100%;overflow-x:auto;margin:.5em 0 1em}
table{border-collapse:collapse;font-size:.85em} th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right;
overflow-wrap:anywhere;max-width:28em} table.kv{font-size:1em;margin:0} table.kv td{border:none;padding:0 .4em 0 0}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.meta{color:#555;font-size:.9em} figure{margin:1em 0} figure svg,figure img{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#444} .warn{color:#8a4b00} details{margin:.5em 0}
"""


def _html_table(rows: list[dict], cols: list[str], limit: int = 200) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for r in rows[:limit]:
        body.append("<tr>" + "".join(f"<td>{_html_cell(r.get(c))}</td>" for c in cols) + "</tr>")
    more = f"<p class='meta'>{len(rows) - limit} more rows in the CSV files.</p>" if len(rows) > limit else ""
    return (f"<div class='tablewrap'><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"</div>{more}")


def _html_cell(value) -> str:
    """A table cell; a dict (e.g. a validation summary) is a small key/value table, not its repr."""
    if isinstance(value, dict) and value:
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{_html_cell(v)}</td></tr>" for k, v in value.items())
        return f"<table class='kv'>{rows}</table>"
    return html.escape(_fmt(value))


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
    listing = listing_of(result)  # the count and list summary.txt and the PowerPoint state too
    parts.append(f"<h2>Files</h2><p>{html.escape(files_line(listing))}</p><ul>"
                 + "".join(f"<li>{html.escape(o)}</li>" for o in file_entries(listing)) + "</ul>")
    parts.append("</body></html>\n")
    return atomic_write(path, "".join(parts))


# ---------------------------------------------------------------------------------------
# PowerPoint
# ---------------------------------------------------------------------------------------
def report(dataset, output_dir=None, *, formats: tuple[str, ...] | None = None) -> Path:
    """Rebuild figures, HTML and PowerPoint from a saved run (dataset JSON or run folder)
    into ``<output_dir or run folder>/report_<timestamp>/``. Returns that folder."""
    import datetime as _dt

    from .._paths import safe_name
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
        stem = safe_name(result.config.run.name)
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
