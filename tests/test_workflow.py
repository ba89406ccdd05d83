"""Workflow orchestration: run folders, saved settings, reload, history, failures.

The stage steps are replaced here by small test doubles so these tests check only the wiring
(run folder life cycle, resolved run file, run_info, dataset reload, runs list/compare);
the end-to-end run on the real stages is in test_cli.py / the example test.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from _workflow_doubles import PBI, fake_steps
from clusterdynamicsml.build import stage as build_stage
from clusterdynamicsml.pipeline import workflow
from clusterdynamicsml.pipeline.config import ConfigError, RunConfig
from clusterdynamicsml.pipeline.runs import RunResult


@pytest.fixture
def job(tmp_path):
    (tmp_path / "frames.xyz").write_text("2\n\nPb 0 0 0\nI 3 0 0\n")
    run = tmp_path / "run.toml"
    run.write_text('[run]\nname = "t"\noutput_dir = "out"\nprogress = false\n[frames]\npath = "frames.xyz"\n' + PBI)
    return run


def test_run_writes_its_own_timestamped_folder(job, monkeypatch):
    fake_steps(monkeypatch)
    r1 = workflow.run(job)
    r2 = workflow.run(job)
    assert r1.run_dir != r2.run_dir
    assert r1.run_dir.parent == job.parent / "out"
    for r in (r1, r2):
        assert (r.run_dir / "run.toml").is_file()
        assert (r.run_dir / "summary.txt").is_file()
        info = json.loads((r.run_dir / "run_info.json").read_text())
        assert info["versions"]["clusterdynamicsml"]
        assert isinstance(info["openmp"], bool) and info["threads"] >= 1
        assert [s["name"] for s in info["steps"]] == [name for name, _ in workflow.STEPS]
    assert not list((job.parent / "out").glob("*.partial"))
    # the saved run file is resolved (absolute paths) and reloads to the same settings
    saved = RunConfig.from_toml(r1.run_dir / "run.toml")
    assert saved.frames.path == str((job.parent / "frames.xyz").resolve())
    assert saved == RunConfig.from_toml(job).resolved()
    assert r1.step("saxs").status == "skipped"


def test_dataset_reloads_and_reports(job, monkeypatch):
    import clusterdynamicsml as cdml

    fake_steps(monkeypatch)
    res = cdml.run(str(job))  # the public entry point takes a run-file path too
    assert (res.run_dir / res.outputs["report_html"]).is_file()
    assert (res.run_dir / res.outputs["report_pptx"]).is_file()
    back = workflow.load_run(res.run_dir)
    assert back.config == res.config
    assert back.data["prediction"]["predictions"][0]["label"] == "Pb4I8"
    assert [s.name for s in back.steps] == [s.name for s in res.steps]
    assert workflow.load_run(res.dataset_path).run_dir == res.run_dir


def test_failed_run_leaves_nothing_half_written(job, monkeypatch):
    fake_steps(monkeypatch, fail_at="dynamics")
    with pytest.raises(ValueError, match="line 3"):
        workflow.run(job)
    out = job.parent / "out"
    assert not out.exists() or not any(out.iterdir())
    with pytest.raises(ValueError):
        workflow.run(job, keep_failed=True)
    failed = list(out.glob("*.failed"))
    assert len(failed) == 1 and "line 3" in (failed[0] / "error.txt").read_text()


def test_bad_paths_fail_before_any_folder_is_made(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text('[run]\noutput_dir = "out"\n[frames]\npath = "missing.xyz"\n')
    with pytest.raises(ConfigError, match=r"run.toml: \[frames\] path: not found"):
        workflow.run(run)
    assert not (tmp_path / "out").exists()


def test_runs_list_and_compare(job, monkeypatch):
    fake_steps(monkeypatch)
    a = workflow.run(job)
    cfg = RunConfig.from_toml(job).replace("predict", candidates_per_size=1)
    b = workflow.run(cfg)
    runs = workflow.list_runs(job.parent / "out")
    assert [r["dir"] for r in runs] == [str(a.run_dir), str(b.run_dir)]
    assert runs[0]["summary"]["predictions"] == 3
    cmp = workflow.compare_runs(a.run_dir, b.run_dir)
    assert ("predict.candidates_per_size", 3, 1) in cmp["settings"]
    labels = [p[1] for p in cmp["predictions"]]
    assert labels == ["Pb4I10", "Pb4I8", "Pb4I9"]
    row = next(p for p in cmp["predictions"] if p[1] == "Pb4I9")
    assert row[2] == pytest.approx(0.25) and row[3] is None
    assert "predict.candidates_per_size" in cmp["text"]


# ---------------------------------------------------------------------------------------------
# end to end on the bundled example (real stages, no doubles)
# ---------------------------------------------------------------------------------------------
def _small_example(out_dir):
    from clusterdynamicsml.example import example_config

    cfg = example_config(out_dir)
    cfg = cfg.replace("run", progress=False)
    cfg = cfg.replace("frames", stride=2)  # 100 frames
    cfg = cfg.replace("dynamics", frames_per_bin=5)
    cfg = cfg.replace("predict", bootstrap=5)
    cfg = cfg.replace("saxs", q_points=40, max_structures_per_label=4)
    return cfg.replace("report", formats=["png"], dpi=60)


def test_example_end_to_end(tmp_path):
    import csv

    cfg = _small_example(tmp_path)
    res = workflow.run(cfg)
    status = {s.name: s.status for s in res.steps}
    for step in ("frames", "dynamics", "library", "predict", "structures", "saxs", "figures", "reports"):
        assert status[step] == "done", (step, res.step(step).message, res.warnings)
    d = res.run_dir
    # the CSVs of SPEC 8 / ref 3.7 and 4.10
    for key in ("cluster_distribution_csv", "lifetime_csv", "energy_csv", "predictions_csv",
                "observed_histogram_csv", "observed_plus_predicted_structures_histogram_csv",
                "debye_waller_csv", "predicted_structures_csv"):
        assert (d / res.outputs[key]).is_file(), key
    with open(d / res.outputs["lifetime_csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert {"PbI", "PbI2"} <= {r["label"] for r in rows}
    # SAXS: component profiles, mixtures and the fit to the stitched experimental curve
    profiles = sorted((d / "saxs_components").glob("*.txt"))
    assert any(p.name.startswith("observed_") for p in profiles)
    assert any(p.name.startswith("predicted_") for p in profiles)
    assert "# Columns: q, S(q)_avg, S(q)_std, S(q)_se" in profiles[0].read_text()
    with open(d / res.outputs["saxs_csv"]) as fh:
        saxs_rows = list(csv.DictReader(fh))
    assert len(saxs_rows) == 40 and {"q", "raw_model_intensity", "fitted_model_intensity", "residual"} <= set(saxs_rows[0])
    fit = res.data["saxs"]["fit"]["combined"]
    assert fit.scale >= 0 and fit.chi2_reduced > 0
    with open(d / res.outputs["predicted_structures_csv"]) as fh:
        quality = list(csv.DictReader(fh))
    assert {"relaxed_atoms", "bond_length_deviations", "node_coordination_deviations"} <= set(quality[0])
    assert not [w for w in res.warnings if "no plot function" in w]
    built = sorted((d / "predicted_structures").glob("*.xyz"))
    assert built and all(p.name[:2].isdigit() and "_rank" in p.name for p in built)
    assert "label=" in built[0].read_text().splitlines()[1]
    # figures: heatmap with energy panel, lifetimes, histograms
    figs = res.data["figures"]
    for key in ("heatmap", "lifetimes", "histograms", "debye_waller", "saxs_components", "saxs_fit_combined"):
        assert key in figs and all(Path(p).stat().st_size > 1000 for p in figs[key]), key
    html = (d / res.outputs["report_html"]).read_text()
    assert "data:image/png;base64" in html and "Predicted larger clusters" in html  # formats = ["png"]
    # the dataset reloads without recomputing, and report rebuilds from it
    back = workflow.load_run(d)
    assert back.config == res.config
    assert back.data["dynamics"].labels == res.data["dynamics"].labels
    assert [c.label for c in back.data["prediction"].candidates] == [c.label for c in res.data["prediction"].candidates]
    assert back.data["saxs"]["fit"]["combined"].chi2_reduced == pytest.approx(fit.chi2_reduced)
    from clusterdynamicsml.pipeline.report import report

    folder = report(d)
    assert (folder / "example_report.html").is_file() and (folder / "example_report.pptx").is_file()
    assert {p.name for p in (folder / "figures").iterdir()} >= {"example_heatmap.png", "example_histograms.png"}


def test_dynamics_step_forwards_time_and_percolation_notes(tmp_path, monkeypatch):
    from types import SimpleNamespace

    def analyze_dynamics(frames, rules, **kw):
        return SimpleNamespace(time_warnings=["frame times from the timestep"],
                               warnings=["3 percolating clusters (PbI2) left out of the counts"],
                               labels=["PbI2"], n_bins=1)

    monkeypatch.setattr(workflow, "analyze_dynamics", analyze_dynamics)
    ctx = workflow._Context(RunConfig.from_toml_string(PBI), tmp_path, "t", progress=False)
    ctx.data["frames"] = []
    assert workflow._step_dynamics(ctx) == "1 labels, 1 time bins"
    assert ctx.warnings == ["dynamics: frame times from the timestep",
                            "dynamics: 3 percolating clusters (PbI2) left out of the counts"]


def test_lifetime_table_shows_censoring_aware_estimates():
    from clusterdynamicsml.pipeline.report import _tables

    row = {"label": "PbI2", "cluster_size": 3, "mean_lifetime_fs": 15.0, "std_lifetime_fs": 5.0,
           "mle_lifetime_fs": 22.0, "km_mean_lifetime_fs": 19.0}
    res = RunResult(run_dir=Path("."), config=RunConfig(), dynamics={"lifetime_by_label": [row]})
    title, rows, cols = _tables(res)[0]
    assert "mle_lifetime_fs" in cols and "km_mean_lifetime_fs" in cols and "Kaplan-Meier" in title


def test_structures_step_relaxes_crowded_candidates_and_uses_shell_templates(tmp_path, monkeypatch):
    import csv
    from types import SimpleNamespace

    calls = {"build": [], "write": []}

    class Quality:
        def to_dict(self):
            return {"shortest_contact": 2.1, "relaxed_atoms": 2, "max_abs_bond_deviation": 0.1,
                    "bond_length_deviations": {"Pb-I": 0.012, "Pb-O": -0.03},
                    "node_coordination_deviations": {"node": 0.5}}

    def build_valid_structure(counts, stats, rules, *, representative=None, label=None, seed=0, rg_interval=None,
                              on_crowding="raise"):
        calls["build"].append(on_crowding)
        return SimpleNamespace(quality=Quality(), n_atoms=7, symbols=["Pb"], positions=[[0.0, 0.0, 0.0]]), SimpleNamespace(passed=True, n_components=1, rg=3.0,
                                                                             reasons=()), 1

    def write_built_structure(path, st, *, target_node_count=None, rank=1, source_label=None, shell_templates=None):
        calls["write"].append(shell_templates)
        out = Path(path) / f"{target_node_count:02d}_rank{rank:02d}.pdb"
        out.write_text("END\n")
        return out

    monkeypatch.setattr(build_stage, "geometry_statistics", lambda *a, **k: {})
    monkeypatch.setattr(build_stage, "write_built_structure", write_built_structure)
    monkeypatch.setattr(build_stage, "build_valid_structure", build_valid_structure)
    monkeypatch.setattr(build_stage, "rg_interval_of", lambda c: None)
    monkeypatch.setattr(build_stage, "representative_structure", lambda library, c: None)
    (tmp_path / "dmf.pdb").write_text("HETATM\n")
    cfg = RunConfig.from_dict({"predict": {"shell_templates": {"O": "dmf.pdb"}}}, base_dir=tmp_path)
    cfg.check_paths(need_frames=False)
    ctx = workflow._Context(cfg, tmp_path / "run", "t", progress=False)
    cand = SimpleNamespace(counts={"Pb": 4, "I": 8}, label="Pb4I8", node_count=4, rank=1, source_label=None)
    ctx.data.update(prediction=SimpleNamespace(candidates=[cand]), library=SimpleNamespace(labels=[]),
                    rules=SimpleNamespace(role_elements=lambda role: []))
    assert workflow._step_structures(ctx) == "1 of 1 structures built, 1 valid"
    assert calls["build"] == ["relax"] and calls["write"] == [{"O": str(tmp_path / "dmf.pdb")}]
    assert any("too crowded" in w and "2 atoms" in w for w in ctx.warnings)
    with open(ctx.dir / ctx.outputs["predicted_structures_csv"]) as fh:
        row = next(csv.DictReader(fh))
    assert row["relaxed_atoms"] == "2" and row["bond_length_deviations"] == "Pb-I=+0.012;Pb-O=-0.03"
    assert row["node_coordination_deviations"] == "node=+0.5"
    bad = RunConfig.from_dict({"predict": {"shell_templates": {"O": "missing.pdb"}}}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"\[predict\] shell_templates: O: not found"):
        bad.check_paths(need_frames=False)


def _pairs_run(tmp_path, shift: float):
    """Two Na-Cl pairs per frame in a 20 A box; ``shift`` is the second pair's Na-Cl distance."""
    lines = []
    for k in range(4):
        lines += ["4", f'Lattice="20 0 0 0 20 0 0 0 20" Time={10.0 * k}',
                  "Na 1 1 1", "Cl 3.4 1 1", "Na 10 10 10", f"Cl {10 + shift} 10 10"]
    (tmp_path / "pairs.extxyz").write_text("\n".join(lines) + "\n")
    run_file = tmp_path / "run.toml"
    run_file.write_text(
        '[run]\nname = "pairs"\noutput_dir = "runs"\n\n[frames]\npath = "pairs.extxyz"\n\n'
        '[clusters]\nnode = ["Na"]\nlinker = ["Cl"]\nshell = []\ncutoffs = { "Na-Cl" = 3.0 }\n\n'
        '[saxs]\nenabled = false\n')
    return run_file


def test_one_observed_cluster_size_skips_prediction_and_keeps_the_dynamics(tmp_path):
    # every cluster is NaCl (one node): nothing to extrapolate from, but the run is not an error
    res = workflow.run(str(_pairs_run(tmp_path, 2.4)))
    status = {s.name: s.status for s in res.steps}
    assert status["dynamics"] == "done" and status["predict"] == "skipped", status
    assert "at least 2 distinct observed node counts" in res.step("predict").message
    assert any(w.startswith("predict: skipped:") for w in res.warnings), res.warnings
    assert (res.run_dir / "pairs_dynamics_cluster_distribution.csv").is_file()


def test_a_library_without_node_clusters_skips_prediction_naming_percolation(tmp_path):
    # a Na-Cl chain (1.75 A bonds) that closes on itself across a 7 A periodic box: every cluster
    # percolates and is left out of the library
    run_file = _pairs_run(tmp_path, 2.4)
    lines = []
    for k in range(3):
        lines += ["4", f'Lattice="7 0 0 0 20 0 0 0 20" Time={10.0 * k}',
                  "Na 0 1 1", "Cl 1.75 1 1", "Na 3.5 1 1", "Cl 5.25 1 1"]
    (tmp_path / "pairs.extxyz").write_text("\n".join(lines) + "\n")
    res = workflow.run(str(run_file))
    status = {s.name: s.status for s in res.steps}
    assert status["dynamics"] == "done" and status["predict"] == "skipped", (status, res.warnings)
    assert "include_percolating" in " ".join(res.warnings)
