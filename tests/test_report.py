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
