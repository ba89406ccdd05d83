"""A new user's first hour (issue 14): mistakes that used to run "successfully" and give
wrong science are errors naming the file and key, or warnings that reach the summary."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clusterdynamicsml.io.frames import read_frames
from clusterdynamicsml.pipeline.cli import main
from clusterdynamicsml.pipeline.config import RunConfig


def _err(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def _nacl(path, n=6, times=False):
    lines = []
    for k in range(n):
        lines += ["4", 'Lattice="12 0 0 0 12 0 0 0 12"' + (f" time={10.0 * k}" if times else ""),
                  "Na 0 0 0", f"Cl {2.5 + 0.1 * (k % 2)} 0 0", "Na 6 6 6", "Cl 6 6 9.5"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cp2k_reftraj(path, n=5):
    with open(path, "w") as fh:
        for k in range(n):  # a CP2K REFTRAJ run writes time = 0 for every frame
            fh.write(f"2\n i =     {k:5d}, time =         0.000, E =   -12.{k}\nPb 0 0 0\nI 3 0 0\n")
    return path


# ------------------------------------------------------------------ elements of the rules
def test_node_and_linker_absent_from_the_frames_is_an_error_naming_the_elements_present(tmp_path, capsys):
    f = _nacl(tmp_path / "NaCl.extxyz", times=True)
    rc = main(["dynamics", str(f), "--node", "Pb", "--linker", "I", "--cutoff", "Pb-I=3", "-o", str(tmp_path / "o"),
               "-q"])
    err = _err(capsys)
    assert rc == 1 and len(err) == 1, err
    assert "[clusters] node: Pb is not in the first frame of" in err[0] and "elements present: Cl, Na" in err[0]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())  # no run folder left


def test_cli_has_no_chemistry_defaults(tmp_path, capsys):
    f = _nacl(tmp_path / "NaCl.extxyz", times=True)
    assert main(["dynamics", str(f), "--node", "Na", "--linker", "Cl", "-o", str(tmp_path / "o"), "-q"]) == 1
    err = _err(capsys)
    assert len(err) == 1 and "no cutoff for Na-Cl" in err[0] and "--cutoff Na-Cl=3.0" in err[0], err
    assert "Pb" not in err[0]
    assert main(["dynamics", str(f), "--node", "Na", "--linker", "Cl", "--cutoff", "Na-Cl=3", "-o",
                 str(tmp_path / "o"), "-q"]) == 0, _err(capsys)
    (run_dir,) = list((tmp_path / "o").iterdir())
    saved = RunConfig.from_toml(run_dir / "run.toml")
    assert saved.clusters.shell == () and saved.clusters.node == ("Na",)
    assert main(["dynamics", str(f), "-o", str(tmp_path / "o"), "-q"]) == 1
    assert "[clusters] node: required" in _err(capsys)[0]


# ------------------------------------------------------------------ time axis
def test_frames_without_times_need_a_timestep(tmp_path, capsys):
    f = _nacl(tmp_path / "NaCl.xyz")
    out = str(tmp_path / "o")
    assert main(["dynamics", str(f), "--node", "Na", "--linker", "Cl", "--cutoff", "Na-Cl=3", "-o", out, "-q"]) == 1
    err = _err(capsys)
    assert len(err) == 1 and "[frames] timestep_fs" in err[0] and "--timestep-fs" in err[0] and "NaCl.xyz" in err[0]
    # with the timestep given, the run works and no "no per-frame times" warning appears
    assert main(["dynamics", str(f), "--node", "Na", "--linker", "Cl", "--cutoff", "Na-Cl=3", "-o", out, "-q",
                 "--timestep-fs", "1000"]) == 0, _err(capsys)
    (run_dir,) = list((tmp_path / "o").iterdir())
    info = json.loads((run_dir / "run_info.json").read_text())
    assert not any("no per-frame times" in w for w in info["warnings"]), info["warnings"]
    rates = (run_dir / "NaCl_dynamics_lifetime.csv").read_text()
    assert rates  # one frame per ps: 1000 fs apart
    assert "per-frame" not in (run_dir / "summary.txt").read_text()


def test_cp2k_all_zero_time_column(tmp_path, capsys):
    p = _cp2k_reftraj(tmp_path / "ref-pos-1.xyz")
    src = read_frames(p)  # the reader keeps them, with a warning naming the file
    assert any("ref-pos-1.xyz are not strictly increasing" in w for w in src.warnings)
    args = ["dynamics", str(p), "--node", "Pb", "--linker", "I", "--cutoff", "Pb-I=3.2", "--box", "20", "20", "20",
            "-o", str(tmp_path / "o"), "-q"]
    assert main(args) == 1
    err = _err(capsys)
    assert len(err) == 1 and "ref-pos-1.xyz: the frame times in the file are not strictly increasing" in err[0], err
    assert "--timestep-fs" in err[0]
    # a user timestep overrides the broken times, with a warning naming the file
    src = read_frames(p, timestep_fs=0.5)
    assert src.time_source == "sequential" and src.times_fs.tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert any("ref-pos-1.xyz" in w and "the given timestep 0.5 fs is used instead" in w for w in src.warnings)
    assert main(args + ["--timestep-fs", "0.5"]) == 0, _err(capsys)
    (run_dir,) = list((tmp_path / "o").iterdir())
    assert any("the given timestep 0.5 fs is used instead" in w
               for w in json.loads((run_dir / "run_info.json").read_text())["warnings"])


# ------------------------------------------------------------------ figures
def test_heatmap_colour_floor_does_not_hide_rare_labels():
    from clusterdynamicsml.dynamics.analyze import dynamics_from_counts
    from clusterdynamicsml.plot.dynamics import plot_heatmap

    n = 40
    counts = np.zeros((n, 3), dtype=np.int64)
    counts[:, 0] = 40
    counts[:, 1] = np.arange(n) % 5 + 20
    counts[7, 2] = 1  # a rare label: fraction ~0.016 in one bin, far below the 5 % colour floor
    r = dynamics_from_counts(np.arange(n) * 10.0, counts, ["PbI2", "Pb2I4", "Pb4I7"], timestep_fs=10.0,
                             frames_per_bin=4)
    image = plot_heatmap(r, mode="fraction").axes[0].get_images()[0]
    rgba = image.to_rgba(image.get_array())
    rare_row = rgba[2]
    lit = [tuple(c) for c, v in zip(rare_row, r.matrix("fraction")[2]) if v > 0]
    dark = [tuple(c) for c, v in zip(rare_row, r.matrix("fraction")[2]) if v == 0]
    assert lit and dark and set(lit).isdisjoint(dark)  # present-but-rare is never drawn as absent
    assert r.matrix("fraction")[2].max() < image.get_clim()[0]


def test_pdf_only_reports_keep_their_figures(tmp_path):
    from clusterdynamicsml.dynamics.analyze import dynamics_from_counts
    from clusterdynamicsml.pipeline.report import make_figures, write_html_report, write_pptx_report
    from clusterdynamicsml.pipeline.runs import RunResult

    counts = np.tile([[3, 1]], (8, 1)).astype(np.int64)
    dyn = dynamics_from_counts(np.arange(8) * 10.0, counts, ["PbI2", "Pb2I4"], timestep_fs=10.0, frames_per_bin=2)
    cfg = RunConfig.from_dict({"report": {"formats": ["pdf"]}})
    warnings = []
    figs = make_figures({"dynamics": dyn}, cfg, tmp_path / "figures", stem="t", warn=warnings.append)
    assert {Path(p).suffix for p in figs["heatmap"]} == {".pdf", ".png"}
    assert any("PNG copies" in w for w in warnings)
    res = RunResult(run_dir=tmp_path, config=cfg, steps=[], outputs={}, warnings=warnings, info={})
    res.figures = figs
    assert "data:image/png;base64," in write_html_report(res, tmp_path / "r.html").read_text()
    from pptx import Presentation

    prs = Presentation(str(write_pptx_report(res, tmp_path / "r.pptx")))
    assert sum(1 for sl in prs.slides for sh in sl.shapes if sh.shape_type == 13) >= 2


def test_saxs_figures_say_what_they_show(tmp_path):
    from clusterdynamicsml.pipeline.report import make_figures

    q = np.linspace(0.02, 1.0, 30)
    comps = [(f"L{k}", q, np.exp(-q * (k + 1))) for k in range(21)]
    rows = [{"source": "observed" if k < 15 else "predicted", "weight": 1.0 + k} for k in range(21)]
    saxs = {"q": q, "components": comps, "component_rows": rows, "observed_intensity": np.exp(-q),
            "combined_intensity": np.exp(-q) * 1.001}
    cfg = RunConfig.from_dict({"report": {"formats": ["svg"]}})
    figs = make_figures({"saxs": saxs}, cfg, tmp_path, stem="t")
    def svg(key):
        return next(Path(p) for p in figs[key] if p.endswith(".svg")).read_text()

    comp_svg = svg("saxs_components")
    assert "the 14 heaviest of 21 shown" in comp_svg
    mix_svg = svg("saxs_mixtures")
    assert "observed only vs observed + predicted" in mix_svg and "differ by at most 0.1 %" in mix_svg


def test_debye_waller_figure_marks_clipped_sigma(tmp_path):
    from clusterdynamicsml.plot.predict import plot_debye_waller_table

    rows = [{"source": "observed", "label": "PbI2", "element_a": "I", "element_b": "Pb", "sigma": 0.08,
             "method": "ensemble", "clipped": False},
            {"source": "predicted", "label": "Pb4I8", "node_count": 4, "candidate_rank": 1, "element_a": "I",
             "element_b": "Pb", "sigma": 0.05, "clipped": True},
            {"source": "predicted", "label": "Pb4I9", "node_count": 4, "candidate_rank": 2, "element_a": "I",
             "element_b": "Pb", "sigma": 0.06, "clipped": False}]
    paths = plot_debye_waller_table(rows, tmp_path / "dw")
    svg = next(Path(p) for p in paths if str(p).endswith(".svg")).read_text()
    assert "clipped to the observed range (1 of 3)" in svg


@pytest.mark.parametrize("token", ["N\u00e4", "N_a"])
def test_odd_atom_names_are_not_read_as_nitrogen(tmp_path, token):
    p = tmp_path / "odd.xyz"
    p.write_text(f"2\n\nNa 0 0 0\n{token} 3 0 0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"odd.xyz, line 4") as err:
        list(read_frames(p, timestep_fs=1.0))
    assert repr(token) in str(err.value)  # the name as written, not replacement characters


# ------------------------------------------------------------------ parity and formats
def _dcd(tmp_path, n=6):
    mda = pytest.importorskip("MDAnalysis")
    top = tmp_path / "top.pdb"
    top.write_text("CRYST1   20.000   20.000   20.000  90.00  90.00  90.00 P 1           1\n"
                   "HETATM    1 PB   PB  A   1       0.000   0.000   0.000  1.00  0.00          PB\n"
                   "HETATM    2 I    I   A   2       2.900   0.000   0.000  1.00  0.00           I\n"
                   "HETATM    3 I    I   A   3      10.000  10.000  10.000  1.00  0.00           I\n"
                   "END\n")
    u = mda.Universe(str(top))
    with mda.Writer(str(tmp_path / "traj.dcd"), n_atoms=3) as w:
        for k in range(n):
            u.atoms.positions = np.array([[0, 0, 0], [2.9 + (k % 2), 0, 0], [10, 10, 10]], dtype=float)
            u.dimensions = [20, 20, 20, 90, 90, 90]
            w.write(u.atoms)
    return top, tmp_path / "traj.dcd"


def test_binary_trajectory_through_mdanalysis_in_the_cli(tmp_path, capsys):
    top, dcd = _dcd(tmp_path)
    base = ["dynamics", str(dcd), "--node", "Pb", "--linker", "I", "--cutoff", "Pb-I=3.2", "--timestep-fs", "10",
            "-o", str(tmp_path / "o"), "-q"]
    assert main(base) == 1
    err = _err(capsys)
    assert len(err) == 1 and "[frames] topology: required for .dcd" in err[0] and "--topology" in err[0], err
    assert main(base + ["--topology", str(top)]) == 0, _err(capsys)
    (run_dir,) = list((tmp_path / "o").iterdir())
    csv = (run_dir / "traj_dynamics_cluster_distribution.csv").read_text()
    assert "PbI" in csv


def test_lammps_dump_reader_warnings_do_not_leak_to_stderr(tmp_path, capsys):
    """MDAnalysis warns (UserWarning) that a LAMMPS dump has no dt although --timestep-fs is
    given: stderr holds only the CLI's own lines."""
    pytest.importorskip("MDAnalysis")
    frames = []
    for step in range(3):
        frames.append(f"ITEM: TIMESTEP\n{step * 10}\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS pp pp pp\n"
                      "0 20\n0 20\n0 20\nITEM: ATOMS id type x y z\n1 1 1.0 1.0 1.0\n2 2 3.5 1.0 1.0\n")
    dump = tmp_path / "t.lammpstrj"
    dump.write_text("".join(frames))
    import warnings

    with warnings.catch_warnings(record=True) as caught:  # what would reach stderr outside pytest
        warnings.simplefilter("always")
        assert main(["dynamics", str(dump), "--element-map", "1=Pb", "--element-map", "2=I", "--node", "Pb",
                     "--linker", "I", "--cutoff", "Pb-I=3.2", "--timestep-fs", "10", "-o", str(tmp_path / "o")]) == 0
    assert not caught, [f"{w.filename}:{w.lineno}: {w.message}" for w in caught]
    err = _err(capsys)
    assert err and all(line.startswith(("clusterdynamicsml: ", "frames ", "dynamics ", "library ", "predict ",
                                        "structures ", "saxs ", "figures ", "reports ")) for line in err), err


@pytest.mark.parametrize("name,expect", [("t.abc", "unsupported format: .abc; readable formats: a folder of"),
                                         ("t.xyz.gz", "compressed file (.xyz.gz): decompress it first (gunzip"),
                                         ("t.lammpstrj.bz2", "compressed file (.lammpstrj.bz2): decompress it first "
                                                             "(bunzip2"),
                                         ("t_dataset.json", "a JSON file (a saved run's dataset?), not frames")])
def test_unsupported_frame_files_name_the_readable_formats(tmp_path, capsys, name, expect):
    f = tmp_path / name
    f.write_bytes(b"\x1f\x8b\x08\x00T\x00\x00\x00CORD")
    assert main(["dynamics", str(f), "--node", "Pb", "--linker", "I", "--cutoff", "Pb-I=3", "--timestep-fs", "1",
                 "-o", str(tmp_path / "o"), "-q"]) == 1
    err = _err(capsys)
    assert len(err) == 1 and expect in err[0] and ".dcd" in err[0] and "CORD" not in err[0], err


def test_saxs_command_says_what_it_expects(tmp_path, capsys):
    (tmp_path / "run_folder").mkdir()
    (tmp_path / "x_dataset.json").write_text("{}")
    (tmp_path / "s.xyz.gz").write_bytes(b"\x1f\x8b\x08\x00")
    assert main(["saxs", str(tmp_path / "run_folder")]) == 1
    assert "a folder; `clusterdynamicsml saxs` takes a run file (.toml) or structure files" in _err(capsys)[0]
    assert main(["saxs", str(tmp_path / "x_dataset.json")]) == 1
    assert "a JSON file" in _err(capsys)[0]
    assert main(["saxs", str(tmp_path / "s.xyz.gz")]) == 1
    assert "decompress it first" in _err(capsys)[0]


def test_run_file_settings_have_cli_flags(tmp_path):
    from clusterdynamicsml.pipeline.cli import _config_from_flags, build_parser

    f = _nacl(tmp_path / "NaCl.xyz")
    args = build_parser().parse_args([
        "dynamics", str(f), "--node", "Na", "--linker", "Cl", "--cutoff", "Na-Cl=3", "--include-percolating",
        "--element-map", "OW=O", "--element-map", "1=Na", "--start-time-fs", "100", "--timestep-fs", "2",
        "--box", "12", "12", "12", "--frames-per-bin", "3", "--stride", "2", "--skip-bad-frames", "--checkpoint",
        str(tmp_path / "c.ckpt"), "--shell-level", "1"])
    cfg = _config_from_flags(args, frames=args.frames)
    assert cfg.dynamics.include_percolating and cfg.dynamics.frames_per_bin == 3
    assert cfg.frames.element_map == ("OW=O", "1=Na") and cfg.frames.start_time_fs == 100.0
    assert cfg.frames.timestep_fs == 2.0 and cfg.frames.box == (12.0, 12.0, 12.0) and cfg.frames.stride == 2
    assert cfg.frames.skip_bad_frames and cfg.dynamics.checkpoint.endswith("c.ckpt")
    assert cfg.clusters.shell_levels == (1,)


def test_messages_name_run_file_keys_and_flags_not_python_keywords(tmp_path):
    from clusterdynamicsml.pipeline import workflow

    ctx = workflow._Context(RunConfig(), tmp_path, "t", progress=False)
    ctx.warn("dynamics: percolating clusters in 2 of 500 frames, left out of the counts "
             "(include_percolating=True counts them): Na5Cl5 x1")
    ctx.warn("frames: the trajectory has no time step; MDAnalysis assumed 1 ps per frame (pass timestep_fs to set it)")
    assert "--include-percolating" in ctx.warnings[0] and "=True" not in ctx.warnings[0]
    assert "--timestep-fs" in ctx.warnings[1] and "pass timestep_fs" not in ctx.warnings[1]


def test_finished_run_json_does_not_point_into_the_partial_folder(tmp_path):
    """The full example at a small size: no saved JSON names the `.partial` folder it was built in."""
    from clusterdynamicsml.example import example_config
    from clusterdynamicsml.pipeline.workflow import run

    cfg = example_config(tmp_path / "runs").replace("frames", stride=4).replace("predict", bootstrap=0, validate=False)
    cfg = cfg.replace("saxs", q_points=20, max_structures_per_label=2).replace("report", figures=False, pptx=False)
    res = run(cfg, threads=1, progress=False)
    for p in res.run_dir.glob("*.json"):
        assert ".partial" not in p.read_text(), p.name
    pred = json.loads((res.run_dir / "example_prediction.json").read_text())
    paths = [r["representative_path"] for r in pred.get("training_rows", []) if r.get("representative_path")]
    assert paths and all(Path(p).is_file() for p in paths)


def test_cp2k_reftraj_energy_follows_the_frames_time_axis(tmp_path, capsys):
    p = tmp_path / "ref-pos-1.xyz"
    with open(p, "w") as fh:
        for k in range(5):  # frames every 10 MD steps, time column 0 (REFTRAJ)
            fh.write(f"2\n i =     {10 * k:5d}, time =         0.000, E =   -12.{k}\nPb 0 0 0\nI {2.9 + 0.4 * (k % 2)} 0 0\n")
    ener = tmp_path / "ref.ener"
    ener.write_text("# step time kin temp pot\n" + "".join(f"{5 * k} 0.0 0.1 300 {-1 - 0.01 * k}\n" for k in range(9)))
    args = ["dynamics", str(p), "--node", "Pb", "--linker", "I", "--cutoff", "Pb-I=3.1", "--box", "20", "20", "20",
            "--energy", str(ener), "-o", str(tmp_path / "o"), "-q"]
    assert main(args) == 1
    err = _err(capsys)
    assert len(err) == 1 and "ref.ener: the time column is not strictly increasing" in err[0], err
    assert main(args + ["--timestep-fs", "5"]) == 0, _err(capsys)
    (run_dir,) = list((tmp_path / "o").iterdir())
    from clusterdynamicsml.dynamics.analyze import DynamicsResult

    dyn = DynamicsResult.load(run_dir / "ref-pos-1_dynamics.json")
    np.testing.assert_allclose(dyn.frame_times_fs, [0, 5, 10, 15, 20])
    t, _ = dyn.energy_series("potential")
    np.testing.assert_allclose(t, 2.5 * np.arange(9))  # step 5k at 0.5 fs per step (10 steps per 5 fs frame)
    warnings = json.loads((run_dir / "run_info.json").read_text())["warnings"]
    assert any("ref.ener" in w and "follow the frames' time axis" in w for w in warnings), warnings


def test_report_tables_fit_and_show_dicts_as_tables(tmp_path):
    from clusterdynamicsml.pipeline.report import _html_table

    text = _html_table([{"label": "Pb4I8", "validation": {"recall": 0.89, "n_held_out": 9}}], ["label", "validation"])
    assert "<div class='tablewrap'>" in text and "<table class='kv'>" in text and "{" not in text
    assert "<td>recall</td><td>0.89</td>" in text


def test_step_lines_print_once(tmp_path, capsys):
    f = _nacl(tmp_path / "NaCl.xyz")
    assert main(["dynamics", str(f), "--node", "Na", "--linker", "Cl", "--cutoff", "Na-Cl=3", "--timestep-fs", "1",
                 "-o", str(tmp_path / "o")]) == 0
    cap = capsys.readouterr()
    both = cap.out + cap.err
    assert both.count("dynamics      done") == 1, both
    (run_dir,) = list((tmp_path / "o").iterdir())
    html = next(run_dir.glob("*_report.html")).read_text()
    assert "running" not in html  # the report shows the reports step as done, as the summary does


# ------------------------------------------------------------------ README
def test_readme_run_file_reads_and_its_figure_counts_match_the_figures():
    """The README's NaCl run file is a valid run file, its paths are relative (no machine paths
    anywhere in the README), and the figure counts it states follow the figures a run draws (the
    example has no size-extrapolation validation: one fewer)."""
    import re
    from pathlib import Path

    from clusterdynamicsml.pipeline.config import RunConfig, tomllib
    from clusterdynamicsml.pipeline.figures import FIGURES

    repo = Path(__file__).resolve().parents[1]
    text = (repo / "README.md").read_text()
    assert not re.search(r"(?<![\w.])/(work|home|tmp|root|Users)/", text)
    block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    cfg = RunConfig.from_dict(tomllib.loads(block), base_dir=repo, source="README.md")
    assert cfg.frames.path.startswith("../shared/data/") and cfg.clusters.node == ("Na",)
    flat = " ".join(text.split())
    assert f"({len(FIGURES) - 1} figures for the example, {len(FIGURES)} for the NaCl run" in flat
    assert f"{len(FIGURES)} figures; files written:" in flat and f"the {len(FIGURES) - 1} figures in PNG" in flat
    # the command list names every command of the CLI
    import argparse

    from clusterdynamicsml.pipeline.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    listed = set(re.findall(r"^clusterdynamicsml ([a-z-]+)", text, re.M))
    assert set(sub.choices) <= listed, sorted(set(sub.choices) - listed)
