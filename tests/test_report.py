"""HTML and PowerPoint reports from a RunResult (figures embedded, tables from stage rows)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from clusterdynamicsml.pipeline.config import RunConfig
from clusterdynamicsml.pipeline.report import table_rows, write_html_report, write_pptx_report
from clusterdynamicsml.pipeline.runs import RunResult, StepRecord


@pytest.fixture
def result(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [1, 4, 9], label="test")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("count")
    ax.legend()
    paths = []
    for fmt in ("png", "svg"):
        p = tmp_path / f"fig_heatmap.{fmt}"
        fig.savefig(p, dpi=60)
        paths.append(str(p))
    plt.close(fig)
    data = {
        "dynamics": {"lifetime_by_label": [{"label": "PbI2", "cluster_size": 3, "mean_lifetime_fs": 15.0,
                                            "std_lifetime_fs": 5.0}]},
        "prediction": {"predictions": [{"target_node_count": 4, "rank": 1, "label": "Pb4I8",
                                        "predicted_population_share": 0.7}],
                       "debye_waller": [{"source": "observed", "label": "PbI2", "element_a": "I", "element_b": "Pb",
                                         "sigma": 0.08, "b_factor": 0.505}]},
        "figures": {"heatmap": paths},
    }
    return RunResult(run_dir=tmp_path, config=RunConfig(), steps=[StepRecord("frames", "done", 0.1, "3 frames")],
                     **data, outputs={"run_file": "run.toml"}, warnings=["a warning"],
                     info={"versions": {"clusterdynamicsml": "0.1.0"}, "openmp": True, "threads": 2})


def test_html_is_self_contained(result, tmp_path):
    path = write_html_report(result, tmp_path / "r.html")
    text = path.read_text()
    assert "data:image/svg+xml;base64," in text  # figure embedded
    assert not re.search(r"(src|href)=['\"](?!data:)(?!#)", text)  # nothing external
    for word in ("Pb4I8", "PbI2", "Debye-Waller", "a warning", "clusters.cutoffs", "OpenMP on"):
        assert word in text, word


def test_pptx_has_figure_and_tables(result, tmp_path):
    from pptx import Presentation

    path = write_pptx_report(result, tmp_path / "r.pptx")
    prs = Presentation(str(path))
    texts = []
    pictures = 0
    for slide in prs.slides:
        for shape in slide.shapes:
            if shape.shape_type == 13:
                pictures += 1
            if shape.has_text_frame:
                texts.append(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                texts += [c.text for row in shape.table.rows for c in row.cells]
    assert pictures == 1
    joined = "\n".join(texts)
    assert "Pb4I8" in joined and "PbI2" in joined and "Settings" in joined


def test_table_rows_accepts_columns_and_records():
    assert table_rows({"label": ["a", "b"], "n": [1, 2]}) == [{"label": "a", "n": 1}, {"label": "b", "n": 2}]
    assert table_rows([{"x": 1}]) == [{"x": 1}]
    assert table_rows(None) == []
    assert Path  # noqa: B018


def test_tables_read_typed_stage_results_and_refuse_other_objects(tmp_path):
    """tables.py reads each stage result through its class (no attribute-name guessing): an object
    that is not the stage's result type is a TypeError naming the RunResult field, not an empty
    or half-filled table."""
    import ast
    from types import SimpleNamespace

    import clusterdynamicsml.pipeline.tables as tables
    from clusterdynamicsml.pipeline.tables import _tables

    tree = ast.parse(Path(tables.__file__).read_text())
    assert not [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_get"]
    lookalike = SimpleNamespace(lifetime_by_label=[{"label": "PbI2", "mean_lifetime_fs": 15.0}])
    with pytest.raises(TypeError, match="RunResult.dynamics must be a DynamicsResult"):
        _tables(RunResult(run_dir=tmp_path, config=RunConfig(), dynamics=lookalike))
    with pytest.raises(TypeError, match="RunResult.prediction must be a PredictionResult"):
        _tables(RunResult(run_dir=tmp_path, config=RunConfig(), prediction=SimpleNamespace(predictions=[])))
    fit = {"combined": SimpleNamespace(chi2_reduced=1.0, q_range=(0.02, 0.8))}
    with pytest.raises(TypeError, match=r"saxs\['fit'\]\['combined'\] must be a SaxsFitResult"):
        _tables(RunResult(run_dir=tmp_path, config=RunConfig(), saxs={"fit": fit}))


def _pptx_texts(path) -> list[str]:
    from pptx import Presentation

    out = []
    for slide in Presentation(str(path)).slides:
        for shape in slide.shapes:
            if shape.has_text_frame:
                out += [p.text for p in shape.text_frame.paragraphs]
            if getattr(shape, "has_table", False) and shape.has_table:
                out += [c.text for row in shape.table.rows for c in row.cells]
    return out


def test_summary_html_and_pptx_state_the_same_steps_and_files(tmp_path):
    """The reports are written before the dataset, run_info.json and summary.txt: all three still
    state the same step states, the same list of outputs and the same count of files written,
    and that count is the number of files in the finished run folder."""
    import html as _html

    from clusterdynamicsml.pipeline import workflow
    from test_workflow import _small_example

    res = workflow.run(_small_example(tmp_path).replace("predict", bootstrap=0))
    on_disk = sum(1 for p in res.run_dir.rglob("*") if p.is_file())
    summary = (res.run_dir / "summary.txt").read_text().splitlines()
    page = _html.unescape((res.run_dir / res.outputs["report_html"]).read_text())
    slides = _pptx_texts(res.run_dir / res.outputs["report_pptx"])
    counts = {
        "summary": re.findall(r"files written: (\d+) \(", "\n".join(summary)),
        "html": re.findall(r"files written: (\d+) \(", page),
        "pptx": re.findall(r"files written: (\d+) \(", "\n".join(slides)),
    }
    assert counts == {k: [str(on_disk)] * len(v) for k, v in counts.items()} and all(counts.values()), (counts, on_disk)
    assert len(counts["pptx"]) == 2  # the summary slide and the files slides
    # the same list: one line per output (folders with their file counts)
    start = next(i for i, line in enumerate(summary) if "files written:" in line)
    listed = [line.strip() for line in summary[start + 1:] if line.startswith("    ")]
    assert len(listed) == len(set(res.outputs.values())) and "library/ (" in " ".join(listed)
    assert re.findall(r"<li>([^<]*)</li>", page) == listed
    files_slide = slides.index(next(t for t in slides if t.startswith("Files (")))
    assert [t for t in slides[files_slide:] if t in listed] == listed
    # the same step states
    states = {s.name: s.status for s in res.steps}
    assert all(f"{name}: {status} (" in "\n".join(slides) for name, status in states.items())
    rows = re.findall(r"<tr><td>(\w+)</td><td>(\w+)</td>", page)
    assert dict(rows[:len(states)]) == states
    assert all(re.search(rf"^  {name}\s+{status}\s", "\n".join(summary), re.M) for name, status in states.items())


def _suffixes(folder) -> set[str]:
    return {p.suffix for p in Path(folder).rglob("*") if p.is_file()}


def test_figure_formats_are_honoured_and_a_rebuilt_report_lists_its_own_folder(tmp_path, capsys):
    """Every figure writer honours ``[report] formats``: a png-only run folder holds no .svg, a
    pdf-only set of figures (no HTML or PowerPoint to embed them) no .png or .svg, and with the
    reports on, pdf-only figures get PNG copies (documented: the reports embed PNG or SVG) and a
    warning. ``report DATASET`` rebuilds into a new folder whose HTML and PowerPoint list and count
    the files of that folder, not the saved run's."""
    import html as _html

    from clusterdynamicsml.pipeline import workflow
    from clusterdynamicsml.pipeline.figures import make_figures
    from clusterdynamicsml.pipeline.report import report
    from test_workflow import _small_example

    res = workflow.run(_small_example(tmp_path).replace("predict", bootstrap=0))  # formats = ["png"]
    figs = sorted(p.name for p in (res.run_dir / "figures").iterdir())
    assert len(figs) >= 8 and all(n.endswith(".png") for n in figs), figs
    assert ".svg" not in _suffixes(res.run_dir), sorted(map(str, res.run_dir.rglob("*.svg")))
    from PIL import Image  # and at [report] dpi = 60 (PNG pHYs), every writer

    dpis = {n: round(Image.open(res.run_dir / "figures" / n).info["dpi"][0]) for n in figs}
    assert set(dpis.values()) == {60}, dpis
    # pdf only, no reports: every figure writer writes PDF and nothing else
    cfg = res.config.replace("report", formats=["pdf"], html=False, pptx=False)
    out = make_figures(res.data, cfg, tmp_path / "pdf_only", stem="x")
    assert len(out) == len(figs) and _suffixes(tmp_path / "pdf_only") == {".pdf"}
    # report DATASET --formats pdf: PDF plus the PNG copies the reports embed, said so on stderr
    # too, with the figures a saved run cannot redraw
    from clusterdynamicsml.pipeline.cli import main

    capsys.readouterr()
    assert main(["report", str(res.dataset_path), "-o", str(tmp_path / "rebuilt"), "--formats", "pdf"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith("clusterdynamicsml: warning: figures: formats ['pdf'] cannot be embedded")
               for line in err), err
    assert any(line.startswith("clusterdynamicsml: warning: figure saxs_evidence: not redrawn from a saved run")
               for line in err), err
    (folder,) = (tmp_path / "rebuilt").iterdir()
    assert _suffixes(folder / "figures") == {".pdf", ".png"}
    on_disk = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    page = _html.unescape(next(folder.glob("*_report.html")).read_text())
    assert "PNG copies are written too" in page
    assert re.findall(r"files written: (\d+) \(", page) == [str(len(on_disk))], (on_disk, page[-2000:])
    assert sorted(re.findall(r"<li>([^<]*)</li>", page)) == on_disk
    slides = "\n".join(_pptx_texts(next(folder.glob("*_report.pptx"))))
    assert re.findall(r"files written: (\d+) \(", slides) == [str(len(on_disk))] * 2
    # a png-only rebuild of the same run: no .svg anywhere in its folder
    folder = report(res.dataset_path, tmp_path / "rebuilt", formats=("png",))
    assert ".svg" not in _suffixes(folder)


def test_html_tables_break_headers_at_underscores_and_keep_labels_whole(result, tmp_path):
    """In a 1400 px window the tables fit without breaking words in the middle: column names
    break only after an underscore (<wbr>), the first column (labels, setting names) breaks at
    spaces only, and the page may use the window's width (measured with headless Chromium at
    1400 px on the example and NaCl reports: no table wider than the window)."""
    text = write_html_report(result, tmp_path / "r.html").read_text()
    assert "<th class=n>mean_<wbr>lifetime_<wbr>fs</th>" in text
    # numbers right-aligned, text (labels, step results) left-aligned
    assert "<td>PbI2</td>" in text and "<td class=n>15</td>" in text
    css = text[text.find("<style>"):text.find("</style>")]
    width = int(re.search(r"body\{[^}]*max-width:(\d+)px", css).group(1))
    assert 1100 < width <= 1400 - 2 * 16 - 20  # padding 1em each side, a scrollbar
    assert re.search(r"td:first-child\{[^}]*overflow-wrap:normal", css)
    assert re.search(r"th\.n,td\.n\{text-align:right\}", css) and re.search(r"th,td\{[^}]*text-align:left", css)


def test_validation_is_shown_as_a_table_per_size_and_per_model(tmp_path):
    """The held-out validation (a nested dict) is a table of the held-out sizes (observed vs
    predicted with intervals) and a table of the population models, never key/value dumps of
    its nested dicts nor rows made up from its unrelated lists."""
    size = {"node_count": 5, "observed_count_per_frame": 0.156, "predicted_count_per_frame": 0.158,
            "predicted_count_p05": 0.114, "predicted_count_p95": 0.222, "count_ratio": 1.014,
            "count_in_interval_90": True, "observed_shares": {"Na5Cl5": 0.5}, "predicted_rg": 3.1}
    summary = {"sizes": 3, "max_count_factor": 1.678, "count_coverage_90": 3, "count_intervals": 3}
    val = {"train_max_node_count": 4, "population_model": "fisher", "target_node_counts": [5, 6, 7],
           "sizes": [dict(size, node_count=n) for n in (5, 6, 7)], "summary": summary,
           "comparison": {"fisher": {"summary": summary, "population_fit": {"chi2_reduced": 0.47}},
                          "reference": {"summary": dict(summary, max_count_factor=None, sizes_predicted_zero=3)}},
           "settings": {"n_bootstrap": 100, "observed_clusters": {"1": 9232}},
           "warnings": ["a", "b", "c"]}
    res = RunResult(run_dir=tmp_path, config=RunConfig(), prediction={"predictions": [], "validation": val})
    page = write_html_report(res, tmp_path / "r.html").read_text()
    start = page.find("validation")
    section = page[start:page.find("<h2>Settings")]
    assert "<table class='kv'>" not in section and "Na5Cl5" not in section, section
    sizes = re.findall(r"<tr><td class=n>(\d+)</td><td class=n>0\.156</td>", section)
    assert sizes == ["5", "6", "7"], section
    assert "count_<wbr>ratio" in section and "train on node counts &lt;= 4, predict [5, 6, 7]" in section
    models = re.findall(r"<tr><td>(fisher|reference)</td>", section)
    assert models == ["fisher", "reference"], section
    assert "max_<wbr>count_<wbr>factor" in section and "chi2_<wbr>reduced" in section
    skipped = RunResult(run_dir=tmp_path, config=RunConfig(),
                        prediction={"predictions": [], "validation": {"skipped": "too few sizes"}})
    page = write_html_report(skipped, tmp_path / "s.html").read_text()
    assert "validation skipped: too few sizes" in page
