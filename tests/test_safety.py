"""Names from input and run files never reach a path outside the run or library folder
(issue 14, "report writes outside its folder"), tested with hostile names."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from _workflow_doubles import PBI, fake_steps
from clusterdynamicsml._paths import check_run_name, inside, safe_name
from clusterdynamicsml.pipeline import workflow
from clusterdynamicsml.pipeline.config import ConfigError, RunConfig

HOSTILE = ["/some/abs/ABS", "../../../x/PWNED", "..", ".", "a\x00b", "x" * 400, "Pb\u00e4\u65e5\u672c",
           "\u2215etc\u2215passwd", "C:\\Windows\\x", "~/x", "name\nline", "", " ", "..\\..\\x", "-rf"]


@pytest.mark.parametrize("name", HOSTILE)
def test_safe_name_is_one_plain_path_part(name):
    out = safe_name(name)
    assert out and out not in (".", "..") and ".." not in out
    assert "/" not in out and "\\" not in out and "\x00" not in out
    assert len(out) <= 80 and out.isascii() and out.isprintable()
    assert Path(out).name == out and not Path(out).is_absolute()
    assert safe_name(name) == out  # deterministic


def test_safe_name_keeps_plain_names_and_separates_different_ones():
    for plain in ("nacl", "Pb2I4O3", "run_1.v2", "NaCl-1400K"):
        assert safe_name(plain) == plain
    # two long names with the same start, or two names that clean to the same text, stay apart
    assert safe_name("a" * 300 + "1") != safe_name("a" * 300 + "2")
    assert safe_name("../x") != safe_name("/x")


@pytest.mark.parametrize("name", ["/some/abs/ABS", "../../../x/PWNED", "..", "a/b", "a\\b", "a\x00b", "x\ny", ""])
def test_run_names_that_look_like_paths_are_rejected(name):
    assert check_run_name(name) is not None
    with pytest.raises(ConfigError, match=r"\[run\] name: "):
        RunConfig.from_dict({"run": {"name": name}}, source="run.toml")


def test_run_file_with_a_path_as_name_is_an_error_naming_the_key(tmp_path):
    run = tmp_path / "run.toml"
    run.write_text('[run]\nname = "../../../x/PWNED"\n[frames]\npath = "f.xyz"\n')
    with pytest.raises(ConfigError, match=r"run.toml: \[run\] name: .*path separator"):
        RunConfig.from_toml(run)


def test_inside_refuses_paths_outside_the_folder(tmp_path):
    assert inside(tmp_path, tmp_path / "a" / "b") == (tmp_path / "a" / "b").resolve()
    with pytest.raises(ValueError, match="outside the output folder"):
        inside(tmp_path / "run", tmp_path / "run" / ".." / "x")


@pytest.fixture
def saved_run(tmp_path, monkeypatch):
    (tmp_path / "frames.xyz").write_text("2\n\nPb 0 0 0\nI 3 0 0\n")
    run = tmp_path / "job" / "run.toml"
    run.parent.mkdir()
    run.write_text('[run]\nname = "t"\noutput_dir = "out"\nprogress = false\n[frames]\npath = "../frames.xyz"\n'
                   "[report]\nfigures = false\n" + PBI)
    fake_steps(monkeypatch)
    return workflow.run(run)


@pytest.mark.parametrize("name", ["/ABSOLUTE_TARGET/ABS", "../../../x/PWNED", "../../..", "a\x00b", "y" * 300,
                                  "\u65e5\u672c/../../z"])
def test_report_of_a_dataset_with_a_hostile_run_name_stays_in_its_folder(saved_run, tmp_path, name):
    from clusterdynamicsml.pipeline.report import report

    ds = saved_run.dataset_path
    payload = json.loads(ds.read_text())
    payload["settings"]["run"]["name"] = name
    ds.write_text(json.dumps(payload))
    before = {p for p in tmp_path.rglob("*")}
    folder = report(ds)
    after = {p for p in tmp_path.rglob("*")}
    new = after - before
    assert new and all(saved_run.run_dir.resolve() in p.resolve().parents for p in new), sorted(new)
    assert not Path("/ABSOLUTE_TARGET").exists()
    names = sorted(p.name for p in folder.iterdir())
    plain = safe_name(name)
    assert names == sorted([f"{plain}_report.html", f"{plain}_report.pptx", "figures"])
    # the original name is kept inside the report, the warning says what the files are named
    back = workflow.load_run(ds)
    if check_run_name(name) is None:  # a long but plain name is kept; only its file names are short
        assert back.config.run.name == name
    else:
        assert back.config.run.name == plain and any("not a plain name" in w for w in back.warnings)


def test_library_writer_keeps_hostile_frame_names_inside_the_library(tmp_path):
    from clusterdynamicsml.clusters.extract import ClusterRules
    from clusterdynamicsml.io.frames import Frame
    from clusterdynamicsml.library.write import write_library

    pos = np.array([[0.0, 0.0, 0.0], [2.5, 0.0, 0.0]])
    sources = ["../../../../outside/evil.xyz", "/abs/..\x00.xyz", "\u65e5\u672c" * 100 + ".xyz", "..", "a/../../b.xyz"]
    frames = [Frame(index=k, source_index=k, time_fs=float(k), symbols=["Pb", "I"], positions=pos, source=src)
              for k, src in enumerate(sources)]
    rules = ClusterRules(node=["Pb"], linker=["I"], cutoffs={("Pb", "I"): 3.0}, pbc=False)
    lib = tmp_path / "deep" / "lib"
    summary = write_library(frames, rules, lib)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert all(lib.resolve() in p.resolve().parents for p in files)
    structures = sorted((lib / "PbI").iterdir())
    assert len(structures) == len(sources) == summary.n_files
    assert all(".." not in p.name and len(p.name) < 120 for p in structures)


# --------------------------------------------------------------------------------------
# the dynamics checkpoint is reused only for the same inputs, and only when intact
# --------------------------------------------------------------------------------------
def _traj_text(shift: float) -> str:
    lines = []
    for k in range(12):
        lines += ["2", f"Lattice=\"20 0 0 0 20 0 0 0 20\" time={10.0 * k:.1f}", "Pb 0.00 0.00 0.00",
                  f"I {2.5 + shift * (k % 3):.2f} 0.00 0.00"]
    return "\n".join(lines) + "\n"


def _dyn(path, ckpt):
    from clusterdynamicsml.clusters.extract import ClusterRules
    from clusterdynamicsml.dynamics.analyze import analyze_dynamics
    from clusterdynamicsml.io.frames import read_frames

    rules = ClusterRules(node=["Pb"], linker=["I"], cutoffs={("Pb", "I"): 3.0})
    return analyze_dynamics(read_frames(str(path)), rules, chunk_size=4, num_threads=1, checkpoint=ckpt)


def test_checkpoint_of_a_rewritten_trajectory_is_refused_naming_the_file(tmp_path):
    import os

    traj, ckpt = tmp_path / "traj.xyz", tmp_path / "dyn.ckpt"
    traj.write_text(_traj_text(0.1))
    first = _dyn(traj, ckpt)
    assert first.labels == ["PbI"]
    st = traj.stat()
    # same layout, same size, same time stamp: only the content differs (I moves out of reach)
    traj.write_text(_traj_text(0.3))
    os.utime(traj, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert traj.stat().st_size == st.st_size
    with pytest.raises(ValueError, match=r"the frames file .*traj.xyz changed since this checkpoint was written "
                                         r"\(content differs\)"):
        _dyn(traj, ckpt)
    # the same content with a new time stamp is refused too (the fingerprint says which)
    traj.write_text(_traj_text(0.1))
    os.utime(traj, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match=r"traj.xyz changed .*\(modified "):
        _dyn(traj, ckpt)
    os.utime(traj, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _dyn(traj, ckpt) == first  # back to the original: reused


def test_checkpoint_integrity_is_checked(tmp_path):
    traj, ckpt = tmp_path / "traj.xyz", tmp_path / "dyn.ckpt"
    traj.write_text(_traj_text(0.1))
    _dyn(traj, ckpt)
    lines = ckpt.read_text().splitlines(keepends=True)
    entry = json.loads(lines[1])
    entry["body"]["result"]["counts"][0][0] += 5  # a hand edit that keeps valid JSON
    ckpt.write_text(lines[0] + json.dumps(entry) + "\n" + "".join(lines[2:]))
    with pytest.raises(ValueError, match=r"dyn.ckpt, line 2: checksum mismatch"):
        _dyn(traj, ckpt)
    # a checkpoint of the old format (no input fingerprint) is refused, not trusted
    ckpt.write_text(json.dumps({"kind": "clusterdynamicsml.dynamics.analyze.checkpoint", "version": 1,
                                "fingerprint": {}}) + "\n")
    with pytest.raises(ValueError, match="older clusterdynamicsml"):
        _dyn(traj, ckpt)


# --------------------------------------------------------------------------------------
# a half-written library is not used as a complete one
# --------------------------------------------------------------------------------------
def test_half_written_library_as_library_path_is_refused(tmp_path, monkeypatch):
    from clusterdynamicsml.clusters.extract import ClusterRules
    from clusterdynamicsml.io.frames import Frame
    from clusterdynamicsml.library.write import write_library

    pos = np.array([[0.0, 0.0, 0.0], [2.5, 0.0, 0.0]])
    frames = [Frame(index=k, source_index=k, time_fs=float(k), symbols=["Pb", "I"], positions=pos,
                    source=f"frame_{k:03d}.xyz") for k in range(10)]

    class Killed:  # an extract killed after 4 frames
        def __len__(self):
            return len(frames)

        def __iter__(self):
            for k, f in enumerate(frames):
                if k == 4:
                    raise KeyboardInterrupt
                yield f

    rules = ClusterRules(node=["Pb"], linker=["I"], cutoffs={("Pb", "I"): 3.0}, pbc=False)
    lib = tmp_path / "lib"
    with pytest.raises(KeyboardInterrupt):
        write_library(Killed(), rules, lib)
    (tmp_path / "frames.xyz").write_text("2\n\nPb 0 0 0\nI 3 0 0\n")
    run = tmp_path / "run.toml"
    run.write_text('[run]\nname = "t"\noutput_dir = "out"\nprogress = false\n[frames]\npath = "frames.xyz"\n'
                   '[library]\npath = "lib"\n' + PBI)
    fake_steps(monkeypatch)
    with pytest.raises(ConfigError, match=r"run.toml: \[library\] path: .*lib is a half-written library "
                                          r"\(status 'in_progress', \d of 10 frames extracted.*extract FRAMES -o"):
        workflow.run(run)
    assert not (tmp_path / "out").exists()  # refused before any run folder is made
    write_library(frames, rules, lib)  # resumed to the end: now it is used
    assert workflow.run(run).step("library").status == "done"


# --------------------------------------------------------------------------------------
# far-out coordinates
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("x", [1e20, -1e300, 2e7])
def test_far_out_coordinates_are_an_error_naming_the_atom(x):
    from clusterdynamicsml.geometry.neighbors import neighbor_pairs, neighbor_pairs_typed

    pos = np.array([[0.0, 0.0, 0.0], [x, 1.0, 1.0], [1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"atom 1 at .* more than 1e\+06 box lengths \(13.1 A\)"):
        neighbor_pairs(pos, 3.0, box=[13.1] * 3)
    with pytest.raises(ValueError, match=r"atom 1 at"):
        neighbor_pairs_typed(pos, np.zeros(3, dtype=int), [[3.0]], box=[13.1] * 3)
    i, j, d = neighbor_pairs(pos, 3.0)  # no box: nothing is wrapped, the far atom is just far
    assert i.tolist() == [0] and j.tolist() == [2]
    # just inside the limit the wrapped distance is still right to 1e-9 A
    assert neighbor_pairs(np.array([[1.3e7, 0, 0], [1.3e7 + 1.0, 0, 0]]), 3.0, box=[13.1] * 3)[2] == pytest.approx([1.0], abs=1e-9)


def test_reader_refuses_far_out_coordinates_naming_file_frame_and_atom(tmp_path):
    from clusterdynamicsml.io.frames import read_frames

    f = tmp_path / "far.xyz"
    frame = '3\nLattice="13.1 0 0 0 13.1 0 0 0 13.1"\nPb 0 0 0\nI 2.5 0 0\nI {x} 0 0\n'
    f.write_text(frame.format(x=5.0) + frame.format(x="1e20"))
    src = read_frames(str(f))
    assert src[0].n_atoms == 3
    with pytest.raises(ValueError, match=r"far.xyz: frame 1, atom 3 \(I\) at \[1e\+20, 0.0, 0.0\] A is more than "
                                         r"1e\+06 box lengths"):
        list(src)


# --------------------------------------------------------------------------------------
# unbounded settings are checked up front, with the key in the message
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("section,key,value", [
    ("predict", "target_node_counts", [100000]), ("run", "threads", 2**40), ("saxs", "q_points", 10**9),
    ("report", "dpi", 10**6), ("predict", "bootstrap", 10**9), ("dynamics", "workers", 10**6),
    ("saxs", "q_max", 1e9), ("predict", "candidates_per_size", 10**7), ("dynamics", "chunk_size", 10**12),
])
def test_unbounded_settings_are_refused_naming_the_key(section, key, value):
    with pytest.raises(ConfigError, match=rf"run.toml: \[{section}\] {key}: .*must be <= "):
        RunConfig.from_dict({section: {key: value}}, source="run.toml")


def test_cli_refuses_huge_numbers_naming_the_flag(tmp_path, capsys):
    from clusterdynamicsml.pipeline.cli import main

    s = tmp_path / "s.xyz"
    s.write_text("2\n\nPb 0 0 0\nI 3 0 0\n")
    for argv, flag in ((["saxs", str(s), "--q-points", str(10**9)], "--q-points"),
                       (["saxs", str(s), "-j", str(2**40)], "-j/--threads"),
                       (["batch-run", str(s), "--workers", str(2**40)], "")):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and flag in err[0] and "Error:" not in err[0], err


# --------------------------------------------------------------------------------------
# signals, leftovers, concurrent runs, scheduler addresses, warnings
# --------------------------------------------------------------------------------------
def test_sigterm_cleans_up_like_ctrl_c(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "ex"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "clusterdynamicsml", "example", "-o", str(out), "-q", "-j", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("*.partial")):
        time.sleep(0.05)
    assert list(out.glob("*.partial")), "the run never started"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "clusterdynamicsml: terminated"
    assert not list(out.iterdir())  # no half-written run left


def test_runs_list_shows_leftovers_and_runs_clean_removes_only_them(tmp_path, monkeypatch, capsys):
    from clusterdynamicsml.pipeline.cli import main
    from clusterdynamicsml.pipeline.runs import OWNER_NAME

    (tmp_path / "frames.xyz").write_text("2\n\nPb 0 0 0\nI 3 0 0\n")
    run = tmp_path / "run.toml"
    run.write_text('[run]\nname = "t"\noutput_dir = "out"\nprogress = false\n[frames]\npath = "frames.xyz"\n'
                   "[report]\nfigures = false\npptx = false\nhtml = false\n" + PBI)
    fake_steps(monkeypatch)
    done = workflow.run(run)
    assert not (done.run_dir / OWNER_NAME).exists()
    assert ".partial" not in (done.run_dir / "run_info.json").read_text()
    out = tmp_path / "out"
    killed = out / "20260101_000000_000000_t.partial"  # a run killed with SIGKILL, by an older version
    killed.mkdir()
    (killed / "run.toml").write_text("")
    dead = out / "20260101_000000_000001_t.partial"  # its process is gone
    dead.mkdir()
    (dead / OWNER_NAME).write_text(json.dumps({"pid": 2**22 + 12345, "host": __import__("socket").gethostname()}))
    alive = out / "20260101_000000_000002_t.partial"  # this process: still running
    alive.mkdir()
    (alive / OWNER_NAME).write_text(json.dumps({"pid": __import__("os").getpid(),
                                                "host": __import__("socket").gethostname()}))
    assert main(["runs", "list", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"partial: {killed.name} (left by a killed run" in text and f"partial: {dead.name} (left by" in text
    assert f"partial: {alive.name} (still running)" in text and f"runs clean {out}" in text
    assert main(["runs", "clean", str(out)]) == 0
    assert "removed 2 leftover" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted([done.run_dir.name, alive.name])


def test_two_runs_into_one_folder_at_once_both_finish(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    (tmp_path / "frames.xyz").write_text("2\n\nPb 0 0 0\nI 3 0 0\n")
    run = tmp_path / "run.toml"
    run.write_text('[run]\nname = "t"\noutput_dir = "out"\nprogress = false\n[frames]\npath = "frames.xyz"\n'
                   "[report]\nfigures = false\npptx = false\nhtml = false\n" + PBI)
    fake_steps(monkeypatch)
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda _: workflow.run(run), range(4)))
    dirs = {r.run_dir for r in results}
    assert len(dirs) == 4 and all(d.is_dir() and (d / "run_info.json").is_file() for d in dirs)
    assert not list((tmp_path / "out").glob("*.partial"))


@pytest.mark.parametrize("address,why", [("tcp://127.0.0.1:99999", "port 99999"), ("http://h:80", "protocol 'http'"),
                                         ("tcp://h", "no port"), ("h:8786", "PROTOCOL://HOST:PORT"),
                                         ("tcp://a b:1", "PROTOCOL://HOST:PORT")])
def test_scheduler_addresses_are_checked_before_connecting(tmp_path, capsys, address, why):
    from clusterdynamicsml.pipeline.cli import main

    with pytest.raises(ConfigError, match=rf"\[dynamics\] scheduler: .*{re.escape(why)}"):
        RunConfig.from_dict({"dynamics": {"scheduler": address}}, source="run.toml")
    run = tmp_path / "run.toml"
    run.write_text("[run]\nname = 'x'\n")
    assert main(["batch-run", str(run), "--scheduler", address]) == 1
    assert main(["run", str(run), "--scheduler", address]) == 1
    err = capsys.readouterr().err.splitlines()
    assert all("--scheduler" in line and why in line for line in err[-2:]), err
    assert RunConfig.from_dict({"dynamics": {"scheduler": "tcp://10.0.0.2:8786"}}).dynamics.scheduler


def test_runtime_warnings_do_not_leak_to_stderr(monkeypatch, capsys, tmp_path):
    from clusterdynamicsml.pipeline import cli

    def noisy(args):
        np.log(np.zeros(3))  # RuntimeWarning: divide by zero
        return 0

    monkeypatch.setitem(cli._COMMANDS, "runs", noisy)
    assert cli.main(["runs", "list", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""
