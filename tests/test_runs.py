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
