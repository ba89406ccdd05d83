"""The command line, in process (``main(argv) -> int``) and once as a real subprocess."""
from __future__ import annotations

import io
import subprocess
import sys

import pytest

import clusterdynamicsml as cdml
from _workflow_doubles import PBI
from clusterdynamicsml.pipeline.cli import main
from clusterdynamicsml.pipeline.config import RunConfig


def _err_lines(capsys):
    err = capsys.readouterr().err.strip()
    return [line for line in err.splitlines() if line]


def test_version(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert cdml.__version__ in out and "OpenMP" in out and "threads" in out


def test_write_template_and_reload(tmp_path, capsys):
    target = tmp_path / "run.toml"
    assert main(["run", "--write-template", str(target)]) == 0
    assert RunConfig.from_toml(target) == RunConfig()
    assert "[saxs]" in target.read_text()
    # never overwrites without --force
    assert main(["run", "--write-template", str(target)]) == 1
    assert _err_lines(capsys)[-1].endswith("already exists (use --force to overwrite)")
    assert main(["run", "--write-template", str(target), "--force"]) == 0


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[dynamics]\nframes_per_bin = "two"\n', "run.toml: [dynamics] frames_per_bin: expected an integer, got 'two'"),
        ("[frames]\npaht = 'x'\n", "run.toml: [frames] paht: unknown key (did you mean 'path'?)"),
        ("[frames]\npath = 'missing_frames.xyz'\n", "run.toml: [frames] path: not found: "),
        ("[run]\nname = 'x'\n", "run.toml: [frames] path: required"),
        ("[frames]\npath = 'f.xyz'\nenergy_file = 'nope.ener'\n", "run.toml: [frames] energy_file: not found"),
        ("[frames]\npath = 'f.xyz'\n[saxs]\nexperimental = ['nope.dat']\n", "run.toml: [saxs] experimental: not found"),
        ("[frames]\npath = 'f.xyz'\nenergy_file = 'bad.ener'\n" + PBI, "run.toml: [frames] energy_file: "),
        ("[frames]\npath = 'f.xyz'\n[clusters]\nnode = ['Pb']\nlinker = ['I']\ncutoffs = { 'Pb-I' = 3.0, 'Xx-I' = 2.0 }\n",
         "run.toml: [clusters]: cutoffs"),
        ("[frames]\npath = 'f.xyz'\n", "run.toml: [clusters] node: required: the node elements"),
        ("[frames]\npath = 'f.xyz'\n[clusters]\nnode = ['Na']\nlinker = ['Cl']\n",
         "run.toml: [clusters] cutoffs: no cutoff for Na-Cl: give the bond distance in angstrom, e.g. "
         "cutoffs = {\"Na-Cl\" = 3.0} (command line: --cutoff Na-Cl=3.0)"),
    ],
)
def test_bad_run_file_gives_one_line_and_exit_1(tmp_path, capsys, text, expected):
    (tmp_path / "f.xyz").write_text("1\n\nPb 0 0 0\n")
    (tmp_path / "bad.ener").write_text("# step time kin temp pot\n0 0.0 x 300 -1\n")
    run = tmp_path / "run.toml"
    run.write_text(text)
    assert main(["run", str(run), "-o", str(tmp_path / "out")]) == 1
    lines = _err_lines(capsys)
    assert len(lines) == 1, lines
    assert lines[0].startswith("clusterdynamicsml: error: " + expected), lines[0]
    assert "Traceback" not in lines[0]
    assert not (tmp_path / "out").exists()


def test_bad_saxs_inputs_are_caught_before_the_run(tmp_path, capsys):
    (tmp_path / "f.xyz").write_text("1\n\nPb 0 0 0\n")
    (tmp_path / "bad.dat").write_text("# q I sigma\n0.1 1.0 0.1\n0.2 x 0.1\n")
    (tmp_path / "ok.dat").write_text("".join(f"{0.1 + 0.01 * k} 1.0 0.1\n" for k in range(20)))
    run = tmp_path / "run.toml"
    run.write_text("[frames]\npath = 'f.xyz'\n[saxs]\nexperimental = ['bad.dat']\n" + PBI)
    assert main(["run", str(run), "-o", str(tmp_path / "out")]) == 1
    assert _err_lines(capsys) == [f"clusterdynamicsml: error: run.toml: [saxs] experimental: "
                                  f"{tmp_path / 'bad.dat'}, line 3: expected numbers, got '0.2 x 0.1'"]
    run.write_text("[frames]\npath = 'f.xyz'\n[saxs]\nexperimental = ['ok.dat']\nfit_q_min = 2.0\nfit_q_max = 3.0\n"
                   + PBI)
    assert main(["run", str(run), "-o", str(tmp_path / "out")]) == 1
    assert "run.toml: [saxs] fit_q_max: the fit range [2, 0.29] 1/A is empty" in _err_lines(capsys)[0]
    assert not (tmp_path / "out").exists()


def test_missing_run_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 1
    assert _err_lines(capsys) == [f"clusterdynamicsml: error: {tmp_path / 'nope.toml'}: run file not found"]


def test_debug_shows_the_exception(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text("[dynamics]\nframes_per_bin = 'two'\n")
    with pytest.raises(ValueError, match="frames_per_bin"):
        main(["run", str(run), "--debug"])


def test_usage_errors_exit_2(capsys):
    assert main(["frobnicate"]) == 2
    assert main(["run"]) == 2
    assert main([]) == 2
    assert main(["--help"]) == 0
    capsys.readouterr()


def test_bad_command_line_values(tmp_path, capsys):
    (tmp_path / "f.xyz").write_text("1\n\nPb 0 0 0\n")
    assert main(["dynamics", str(tmp_path / "f.xyz"), "--cutoff", "PbI=3", "-o", str(tmp_path)]) == 1
    assert "command line: [clusters] cutoffs: pair 'PbI'" in _err_lines(capsys)[-1]
    assert main(["dynamics", str(tmp_path / "f.xyz"), "--cutoff", "Pb-I=x"]) == 1
    assert "--cutoff 'Pb-I=x'" in _err_lines(capsys)[-1]
    assert main(["dynamics", str(tmp_path / "f.xyz"), "--frames-per-bin", "0"]) == 1
    assert "[dynamics] frames_per_bin: must be >= 1" in _err_lines(capsys)[-1]


def test_runs_commands_on_bad_input(tmp_path, capsys):
    assert main(["runs", "list", str(tmp_path / "none")]) == 1
    assert "not a folder" in _err_lines(capsys)[-1]
    assert main(["runs", "list", str(tmp_path)]) == 0
    assert "no finished runs" in capsys.readouterr().out
    (tmp_path / "a").mkdir()
    assert main(["runs", "compare", str(tmp_path / "a"), str(tmp_path / "a")]) == 1
    assert "no *_dataset.json" in _err_lines(capsys)[-1]
    assert main(["report", str(tmp_path / "a")]) == 1
    assert "no *_dataset.json" in _err_lines(capsys)[-1]


def test_subprocess_entry_point(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text("[clusters]\nnode = 'Pb'\n")
    proc = subprocess.run([sys.executable, "-m", "clusterdynamicsml", "run", str(run)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "clusterdynamicsml: error: run.toml: [clusters] node: expected a list of strings, got 'Pb'"
    proc = subprocess.run([sys.executable, "-m", "clusterdynamicsml", "--version"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and cdml.__version__ in proc.stdout


def _job(tmp_path, name):
    (tmp_path / "frames.xyz").write_text("2\n\nPb 0 0 0\nI 3 0 0\n")
    run = tmp_path / f"{name}.toml"
    run.write_text(f'[run]\nname = "{name}"\noutput_dir = "out"\nprogress = false\n[frames]\npath = "frames.xyz"\n' + PBI)
    return run


def test_run_batch_runs_and_compare_in_process(tmp_path, monkeypatch, capsys):
    from _workflow_doubles import fake_steps

    fake_steps(monkeypatch)
    a, b = _job(tmp_path, "a"), _job(tmp_path, "b")
    b.write_text(b.read_text() + "[predict]\ncandidates_per_size = 2\n")
    assert main(["run", str(a), "-q", "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "results: " in out and "frames" in out
    assert main(["batch-run", str(a), str(b), "-q"]) == 0
    assert "2 of 2 runs finished" in capsys.readouterr().out
    runs = sorted(p for p in (tmp_path / "out").iterdir())
    assert len(runs) == 3 and all(p.name.endswith(("_a", "_b")) for p in runs)
    assert main(["runs", "list", str(tmp_path / "out")]) == 0
    listing = capsys.readouterr().out
    assert all(p.name in listing for p in runs)
    run_b = next(p for p in runs if p.name.endswith("_b"))
    assert main(["runs", "compare", str(runs[0]), str(run_b)]) == 0
    text = capsys.readouterr().out
    assert "predict.candidates_per_size" in text and "Pb4I10" in text
    assert main(["report", str(run_b), "-q"]) == 0
    assert "report written to" in capsys.readouterr().out
    reports = list(run_b.glob("report_*"))
    assert len(reports) == 1 and (reports[0] / "b_report.html").is_file()


def test_batch_run_reports_failures(tmp_path, monkeypatch, capsys):
    from _workflow_doubles import fake_steps

    fake_steps(monkeypatch, fail_at="dynamics")
    a = _job(tmp_path, "a")
    assert main(["batch-run", str(a), str(a), "--keep-going", "-q"]) == 1
    cap = capsys.readouterr()
    assert "0 of 2 runs finished, 2 failed" in cap.out
    assert "FAILED" in cap.err and "line 3" in cap.err


def test_real_subprocess_run_of_the_example_data(tmp_path):
    """One full `clusterdynamicsml run` in a separate process on the bundled example data."""
    from clusterdynamicsml.example import example_config

    cfg = example_config(tmp_path / "runs")
    cfg = cfg.replace("frames", stride=4).replace("predict", bootstrap=0, validate=False)
    cfg = cfg.replace("saxs", q_points=20, max_structures_per_label=2)
    cfg = cfg.replace("report", figures=False, pptx=False)
    run_file = tmp_path / "small.toml"
    cfg.resolved().write_toml(run_file)
    proc = subprocess.run([sys.executable, "-m", "clusterdynamicsml", "run", str(run_file), "-j", "1"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and not runs[0].name.endswith(".partial")
    assert f"results: {runs[0]}" in proc.stdout
    assert "1 threads" in proc.stdout
    saved = RunConfig.from_toml(runs[0] / "run.toml")
    assert saved.frames.stride == 4 and saved.run.threads == 1
    assert (runs[0] / "example_report.html").is_file()


def test_batch_run_on_a_local_dask_cluster(tmp_path, monkeypatch, capsys):
    distributed = pytest.importorskip("distributed")
    from _workflow_doubles import fake_steps

    fake_steps(monkeypatch)  # in-process (thread) workers see the test doubles
    a, b = _job(tmp_path, "a"), _job(tmp_path, "b")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        assert main(["batch-run", str(a), str(b), "--scheduler", cluster.scheduler_address, "-q"]) == 0
    assert "2 of 2 runs finished" in capsys.readouterr().out
    assert len([p for p in (tmp_path / "out").iterdir() if not p.name.endswith(".partial")]) == 2


def test_saxs_of_structure_files_matches_the_two_atom_formula(tmp_path, capsys):
    import numpy as np

    from clusterdynamicsml.saxs.formfactors import form_factors

    xyz = tmp_path / "pbi.xyz"
    xyz.write_text("2\ntwo atoms\nPb 0 0 0\nI 3.1 0 0\n")
    assert main(["saxs", str(xyz), "-o", str(tmp_path), "--q-min", "0.1", "--q-max", "2.0", "--q-points", "20"]) == 0
    data = np.genfromtxt(tmp_path / "debye_profiles.csv", delimiter=",", names=True)
    q = data["q_inv_angstrom"]
    f = form_factors(["Pb", "I"], q)
    expected = f["Pb"] ** 2 + f["I"] ** 2 + 2 * f["Pb"] * f["I"] * np.sin(q * 3.1) / (q * 3.1)
    np.testing.assert_allclose(data["I_pbi_e2"], expected, rtol=1e-13)
    assert main(["saxs", str(tmp_path / "missing.xyz")]) == 1
    assert "missing.xyz: not found" in capsys.readouterr().err


def test_predict_command_with_global_quiet_flag(tmp_path, capsys):
    """Regression: `predict` asked for an unknown step and always failed; `-q` before the
    subcommand was rejected; summary.txt named the temporary `.partial` folder."""
    from clusterdynamicsml.example import example_config

    cfg = example_config(tmp_path / "runs")
    cfg = cfg.replace("frames", stride=4).replace("predict", bootstrap=0, validate=False)
    cfg = cfg.replace("report", figures=False, pptx=False)
    run_file = tmp_path / "small.toml"
    cfg.resolved().write_toml(run_file)
    assert main(["-q", "predict", str(run_file)]) == 0, capsys.readouterr().err
    (run_dir,) = list((tmp_path / "runs").iterdir())
    assert not run_dir.name.endswith(".partial")
    first = (run_dir / "summary.txt").read_text().splitlines()[0]
    assert first.endswith(str(run_dir)) and ".partial" not in first
    assert any(run_dir.glob("*_predictions.csv"))


def test_element_map_from_the_run_file(tmp_path, capsys):
    """Atom names that are not element symbols (here D for deuterium) are renamed via
    [frames] element_map; a malformed entry is one line naming the key."""
    (tmp_path / "frames.xyz").write_text("2\n\nPb 0 0 0\nD 3 0 0\n2\n\nPb 0 0 0\nD 3 0 0\n")
    run = tmp_path / "run.toml"
    base = ('[run]\nname = "d"\noutput_dir = "out"\nprogress = false\n'
            '[frames]\npath = "frames.xyz"\nbox = [20.0, 20.0, 20.0]\ntimestep_fs = 1.0\n')
    hydrides = '[clusters]\nnode = ["Pb"]\nlinker = ["H"]\ncutoffs = { "Pb-H" = 3.5 }\n'
    run.write_text(base + hydrides)
    assert main(["dynamics", "--config", str(run), "-q"]) == 1
    assert "D" in _err_lines(capsys)[-1]
    run.write_text(base + 'element_map = ["D=H"]\n' + hydrides)
    assert main(["dynamics", "--config", str(run), "-q"]) == 0, capsys.readouterr().err
    run.write_text(base + 'element_map = ["D"]\n' + hydrides)
    assert main(["dynamics", "--config", str(run), "-q"]) == 1
    line = _err_lines(capsys)[-1]
    assert "[frames] element_map" in line and "FROM=TO" in line


def test_dynamics_checkpoint_from_the_run_file(tmp_path, capsys):
    """[dynamics] checkpoint (relative to the run file) is written by the first run and reused
    by the next run of the same run file, with identical results."""
    import json

    lines = []
    for k in range(12):
        lines += ["2", "", "Pb 0 0 0", f"I {2.5 + 0.2 * (k % 5):.2f} 0 0"]
    (tmp_path / "frames.xyz").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run.toml"
    run.write_text('[run]\nname = "c"\noutput_dir = "out"\nprogress = false\n'
                   '[frames]\npath = "frames.xyz"\nbox = [20.0, 20.0, 20.0]\ntimestep_fs = 1.0\n'
                   '[dynamics]\nchunk_size = 4\ncheckpoint = "state/dyn.ckpt"\n' + PBI)
    (tmp_path / "state").mkdir()
    assert main(["dynamics", "--config", str(run), "-q"]) == 0, capsys.readouterr().err
    ckpt = tmp_path / "state" / "dyn.ckpt"
    assert ckpt.is_file() and len(ckpt.read_text().splitlines()) == 1 + 3  # header + 3 chunks
    assert main(["dynamics", "--config", str(run), "-q"]) == 0, capsys.readouterr().err
    runs = sorted((tmp_path / "out").iterdir())
    assert len(runs) == 2
    tables = [(r / "c_dynamics_lifetime.csv").read_text() for r in runs]
    assert tables[0] == tables[1]
    assert len(ckpt.read_text().splitlines()) == 4  # nothing recomputed or appended twice
    assert json.loads(ckpt.read_text().splitlines()[0])


def test_runs_list_into_a_closed_pipe_exits_quietly(tmp_path, monkeypatch, capsys):
    # `clusterdynamicsml runs list DIR --json | head`: the reader leaves early; no traceback, exit 0
    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["runs", "list", str(tmp_path), "--json"]) == 0
    monkeypatch.undo()
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ saxs RUNFILE reuses a saved run
def _saxs_job(tmp_path):
    """A small run file of the bundled example with its own copy of the frames and energy file."""
    import shutil

    from clusterdynamicsml.example import example_config

    cfg = example_config(tmp_path / "runs").resolved()
    for key in ("path", "energy_file"):
        src = cfg.resolve_path(getattr(cfg.frames, key))
        shutil.copy(src, tmp_path / src.name)
        cfg = cfg.replace("frames", **{key: str(tmp_path / src.name)})
    cfg = cfg.replace("frames", stride=4).replace("predict", bootstrap=0, validate=False)
    cfg = cfg.replace("saxs", q_points=20, max_structures_per_label=2).replace("report", figures=False, pptx=False)
    cfg.write_toml(tmp_path / "job.toml")
    return tmp_path / "job.toml", cfg


def _snapshot(folder):
    return {p.relative_to(folder): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def test_saxs_runfile_reuses_a_matching_saved_run(tmp_path, capsys, monkeypatch):
    from clusterdynamicsml.pipeline import workflow

    job, cfg = _saxs_job(tmp_path)
    assert main(["saxs", str(job), "-q"]) == 0
    err = _err_lines(capsys)
    assert err[:1] == [f"clusterdynamicsml: no reusable run: no saved run named 'example' in {tmp_path / 'runs'}; computing"]
    (first,) = list((tmp_path / "runs").iterdir())
    before = _snapshot(first)

    def not_again(*args, **kwargs):
        raise AssertionError("a reused run computed a stage before SAXS")

    with monkeypatch.context() as m:  # the reused stages are not computed
        for name in ("open_frames", "analyze_dynamics", "write_library", "predict_clusters", "run_structures_step"):
            m.setattr(workflow, name, not_again)
        assert main(["saxs", str(job), "-q"]) == 0, _err_lines(capsys)
    err = _err_lines(capsys)
    assert err[0] == f"clusterdynamicsml: reusing saved run {first} (same inputs and settings)", err
    second = max((tmp_path / "runs").iterdir())
    assert _snapshot(first) == before  # the saved run is not touched (its files are hard-linked, never edited)
    steps = {line.split()[0]: line for line in (second / "summary.txt").read_text().splitlines()[2:10]}
    assert all(f"reused from {first.name}: " in steps[s] for s in ("frames", "dynamics", "library", "predict",
                                                                  "structures")), steps
    assert "saxs          done" in steps["saxs"] and "reused" not in steps["saxs"]
    # the same SAXS as the full run, to the byte (exact coordinates of the built structures)
    for name in ("example_saxs.csv", "example_saxs_components.csv", "example_saxs_fit.json",
                 "example_dynamics_lifetime.csv", "example_predictions.csv"):
        assert (second / name).read_bytes() == (first / name).read_bytes(), name
    assert sorted(p.name for p in (second / "saxs_components").iterdir()) == sorted(
        p.name for p in (first / "saxs_components").iterdir())
    assert str(first) not in (second / "example_prediction.json").read_text()  # its paths point into itself
    back = workflow.load_run(second)
    assert back.info["reused_from"] == str(first) and back.prediction.candidates
    n_files = sum(1 for p in second.rglob("*") if p.is_file())
    assert f"files written: {n_files} (" in (second / "summary.txt").read_text()

    # what is not reused: --recompute, a changed setting, a changed input file (the run stops at
    # the first computed stage here, which shows it recomputes)
    def computing(*args, **kwargs):
        raise RuntimeError("computing the dynamics")

    monkeypatch.setattr(workflow, "analyze_dynamics", computing)
    assert main(["saxs", str(job), "-q", "--recompute"]) == 1
    assert _err_lines(capsys) == ["clusterdynamicsml: --recompute: computing the whole run",
                                  "clusterdynamicsml: error: computing the dynamics"]
    cfg.replace("predict", candidates_per_size=2).write_toml(tmp_path / "other.toml")
    assert main(["saxs", str(tmp_path / "other.toml"), "-q"]) == 1
    err = _err_lines(capsys)
    assert err[0] == (f"clusterdynamicsml: no reusable run: the newest saved run {second.name}: settings differ: "
                      "predict.candidates_per_size = 3 then, 2 now; computing"), err
    cfg.replace("saxs", q_points=30).replace("report", html=False).write_toml(tmp_path / "saxs_only.toml")
    assert main(["saxs", str(tmp_path / "saxs_only.toml"), "-q"]) == 0  # SAXS and report settings do not matter
    assert _err_lines(capsys)[0].startswith("clusterdynamicsml: reusing saved run ")
    energy = tmp_path / "pbi2_solvent_langevin.ener"
    energy.write_text(energy.read_text().replace("1", "2", 1))
    assert main(["saxs", str(job), "-q"]) == 1
    err = _err_lines(capsys)
    assert err[0].startswith("clusterdynamicsml: no reusable run: the newest saved run ") and (
        f"frames.energy_file: {energy} changed since the saved run read it; computing") in err[0], err
    # an unfinished or damaged saved run is never reused
    from clusterdynamicsml.pipeline.reuse import reuse_problem

    (tmp_path / "runs" / (second.name + ".partial")).mkdir()
    assert reuse_problem(cfg, tmp_path / "runs" / (second.name + ".partial")) == f"{second.name}.partial is not a finished run"
    dataset = second / "example_dataset.json"
    dataset.write_text(dataset.read_text().replace('"status": "done"', '"status": "failed"', 2))
    assert reuse_problem(cfg, second).startswith("its frames step is failed (reused from ")
