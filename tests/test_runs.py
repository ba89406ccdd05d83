"""Run results and run folders (pipeline/runs.py): typed stage fields, no workflow/report circle."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import clusterdynamicsml
from clusterdynamicsml.pipeline.config import RunConfig
from clusterdynamicsml.pipeline.runs import STAGE_FIELDS, RunResult, StepRecord

PIPELINE = Path(clusterdynamicsml.__file__).parent / "pipeline"


def _imported_modules(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
            out.update("." * node.level + (node.module + "." if node.module else "") + a.name for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_report_and_runs_do_not_import_the_workflow():
    for name in ("runs.py", "report.py"):
        mods = _imported_modules(PIPELINE / name)
        assert not any("workflow" in m for m in mods), (name, sorted(mods))
    assert not any("report" in m for m in _imported_modules(PIPELINE / "runs.py"))


def test_from_data_fills_typed_fields_and_rejects_unknown_stage_data(tmp_path):
    res = RunResult.from_data(tmp_path, RunConfig(), {"dynamics": {"labels": ["PbI2"]}, "_info": {"x": 1}},
                              steps=[StepRecord("frames", "done")])
    assert res.dynamics == {"labels": ["PbI2"]} and res.prediction is None
    assert dict(res.data) == {"dynamics": {"labels": ["PbI2"]}}
    with pytest.raises(TypeError):
        res.data["figures"] = {}  # read-only view: set res.figures instead
    with pytest.raises(ValueError, match="no field for stage data.*'spectra'"):
        RunResult.from_data(tmp_path, RunConfig(), {"spectra": [1.0]})
    assert set(STAGE_FIELDS) <= {f for f in RunResult.__dataclass_fields__}


def test_summary_numbers_read_typed_results_and_saved_tables(tmp_path):
    res = RunResult(run_dir=tmp_path, config=RunConfig(), frames=[0] * 5,
                    dynamics={"labels": ["PbI2", "PbI"], "bin_edges_fs": [0.0, 10.0, 20.0]},
                    prediction={"predictions": [{"label": "Pb4I8"}]})
    nums = res.summary_numbers()
    assert nums["frames"] == 5 and nums["labels"] == 2 and nums["time_bins"] == 2
    assert nums["predictions"] == 1 and nums["predicted_labels"] == ["Pb4I8"]


def _saved_run(folder: Path, name: str, evidence: dict | None) -> Path:
    """A minimal saved run folder: its dataset and, with ``evidence``, its <name>_saxs_fit.json."""
    import json

    folder.mkdir(parents=True)
    outputs = {"dataset": f"{name}_dataset.json"}
    if evidence is not None:
        outputs["saxs_fit_json"] = f"{name}_saxs_fit.json"
        (folder / outputs["saxs_fit_json"]).write_text(json.dumps({"verdict": "...", "evidence": evidence}))
    (folder / outputs["dataset"]).write_text(json.dumps({
        "format": "clusterdynamicsml.run", "version": 1, "settings": {"run": {"name": name}},
        "outputs": outputs, "summary": {"labels": 3}}))
    return folder


def test_runs_compare_shows_each_runs_saxs_verdict(tmp_path, capsys):
    from clusterdynamicsml.pipeline.cli import main
    from clusterdynamicsml.pipeline.runs import compare_runs

    a = _saved_run(tmp_path / "a", "a", {"supported": False, "cluster_model": "combined",
                                         "reason": "it does not beat a generic guinier of 1.6 A by delta BIC > 10"})
    b = _saved_run(tmp_path / "b", "b", None)
    c = _saved_run(tmp_path / "c", "c", {"supported": True, "cluster_model": "observed",
                                         "reason": "BIC lower than the background alone by 120"})
    cmp = compare_runs(a, b)
    assert cmp["saxs"]["a"]["supported"] is False and "generic guinier" in cmp["saxs"]["a"]["reason"]
    assert cmp["saxs"]["b"] == {"supported": None, "reason": "the run computed no SAXS", "text": "no SAXS"}
    assert compare_runs(c, a)["saxs"]["a"]["supported"] is True
    assert main(["runs", "compare", str(a), str(c)]) == 0
    out = capsys.readouterr().out
    assert "A = not supported (combined): it does not beat a generic guinier" in out
    assert "B = supported (observed): BIC lower than the background alone by 120" in out
    assert main(["runs", "compare", str(c), str(b)]) == 0
    assert "B = no SAXS" in capsys.readouterr().out
