"""Command-line interface: ``clusterdynamicsml`` (also ``python -m clusterdynamicsml``).

``main(argv) -> int`` is the testable entry point; errors go to stderr as one line with a
non-zero exit code and no traceback unless ``--debug`` is given.

Commands::

    clusterdynamicsml run RUNFILE [-o DIR] [-j N]        the whole job, settings from a TOML run file
    clusterdynamicsml run --write-template FILE          write a run file with every setting and its default
    clusterdynamicsml example [-o DIR]                   the whole job on the bundled example
    clusterdynamicsml extract FRAMES -o LIBRARY          write the structure library
    clusterdynamicsml dynamics FRAMES [-o DIR]           clusters and dynamics only (dataset, CSVs, figures)
    clusterdynamicsml predict RUNFILE [-o DIR]           dynamics and prediction, no SAXS
    clusterdynamicsml saxs RUNFILE | STRUCTURE...        SAXS of a run, or Debye profiles of structure files
    clusterdynamicsml report DATASET [-o DIR]            figures, HTML and PowerPoint from a saved run
    clusterdynamicsml batch-run RUNFILE... [--workers N] [--scheduler ADDRESS]
    clusterdynamicsml runs list DIR | runs compare RUN_A RUN_B
    clusterdynamicsml --version                          version, OpenMP on/off, threads

Exit codes: 0 success, 1 error (bad input, failed run), 2 bad command line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

PROG = "clusterdynamicsml"


class CLIError(Exception):
    """An error whose message is shown as is."""


def _version_text() -> str:
    from .. import __version__, get_num_threads, openmp_enabled

    return (
        f"clusterdynamicsml {__version__} (OpenMP {'on' if openmp_enabled() else 'off'}, "
        f"{get_num_threads()} threads)"
    )


# ---------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no usage dump
        raise _UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


class _UsageError(Exception):
    pass


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-j", "--threads", type=int, default=None, metavar="N",
                   help="threads for the C++ kernels (default: run file, else all available)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or step lines")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors; keep failed run folders")


def _cluster_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("clusters and frames (override the run file given with --config)")
    g.add_argument("--config", metavar="RUNFILE", help="take settings from this run file")
    g.add_argument("--node", action="append", metavar="EL[:RES]", help="node element (repeatable)")
    g.add_argument("--linker", action="append", metavar="EL[:RES]", help="linker element (repeatable)")
    g.add_argument("--shell", action="append", metavar="EL[:RES]", help="shell element (repeatable; --shell '' for none)")
    g.add_argument("--cutoff", action="append", metavar="A-B=D",
                   help="pair cutoff in angstrom, A-B=D or A-B=LEVEL:D (repeatable; replaces the run file's)")
    g.add_argument("--default-cutoff", type=float, metavar="D", help="cutoff for pairs not listed (angstrom)")
    g.add_argument("--box", type=float, nargs="+", metavar="L", help="box: 3 lengths, 6 parameters or 9 values")
    g.add_argument("--timestep-fs", type=float, metavar="DT", help="time between frames (fs)")
    g.add_argument("--no-pbc", action="store_true", help="ignore periodic boundaries")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Clusters, cluster dynamics, predicted larger clusters and Debye "
                     "SAXS from MD frames. Units: angstrom, fs, rates per ps, q in 1/angstrom.")
    parser.add_argument("--version", action="store_true", help="print version, OpenMP status and threads")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("-j", "--threads", type=int, default=None, dest="global_threads", metavar="N",
                        help="threads for the C++ kernels")
    parser.add_argument("-q", "--quiet", action="store_true", dest="global_quiet",
                        help="no progress bars or step lines")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("run", help="run the whole job from a TOML run file")
    p.add_argument("runfile", nargs="?", help="the TOML run file")
    p.add_argument("-o", "--output", metavar="DIR", help="parent folder of the run folder (default: [run] output_dir)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address for the frame chunks")
    p.add_argument("--write-template", metavar="FILE", help="write a run file with every setting and its default")
    p.add_argument("--force", action="store_true", help="with --write-template: overwrite FILE")
    _common(p)

    p = sub.add_parser("example", help="run the whole job on the bundled example")
    p.add_argument("-o", "--output", metavar="DIR", default="cdml_example",
                   help="parent folder of the run folder (default: cdml_example)")
    p.add_argument("--write-runfile", metavar="FILE", help="only write the example's resolved run file")
    _common(p)

    p = sub.add_parser("extract", help="write the structure library (<LABEL>/<frame>_<id>.xyz) from frames")
    p.add_argument("frames", help="frames folder or multi-frame file")
    p.add_argument("-o", "--output", metavar="LIBRARY", required=True, help="library folder to write")
    p.add_argument("--frame-stride", type=int, metavar="K", help="use every K-th frame")
    p.add_argument("--format", choices=("xyz", "pdb"), help="structure file format (default xyz)")
    _cluster_flags(p)
    _common(p)

    p = sub.add_parser("dynamics", help="clusters and dynamics of frames (dataset, CSVs, heatmap, reports)")
    p.add_argument("frames", nargs="?", help="frames folder or file (default: [frames] path of --config)")
    p.add_argument("-o", "--output", metavar="DIR", help="parent folder of the run folder")
    p.add_argument("--frames-per-bin", type=int, metavar="K", help="frames per time bin")
    p.add_argument("--energy", metavar="FILE", help="CP2K .ener file for the energy subplot")
    _cluster_flags(p)
    _common(p)

    p = sub.add_parser("predict", help="dynamics, library and predicted larger clusters (no SAXS)")
    p.add_argument("runfile", help="the TOML run file")
    p.add_argument("-o", "--output", metavar="DIR", help="parent folder of the run folder")
    _common(p)

    p = sub.add_parser("saxs", help="the SAXS part of a run, or Debye profiles of structure files")
    p.add_argument("inputs", nargs="+", help="a TOML run file, or structure files (.xyz/.pdb)")
    p.add_argument("-o", "--output", metavar="DIR", help="output folder (structure mode: the CSV file's folder)")
    p.add_argument("--q-min", type=float, default=0.02, help="smallest q (1/angstrom), structure mode")
    p.add_argument("--q-max", type=float, default=1.2, help="largest q (1/angstrom), structure mode")
    p.add_argument("--q-points", type=int, default=250, help="q points, structure mode")
    _common(p)

    p = sub.add_parser("report", help="figures, HTML and PowerPoint from a saved run (dataset JSON or run folder)")
    p.add_argument("dataset", help="<name>_dataset.json or a run folder")
    p.add_argument("-o", "--output", metavar="DIR", help="parent folder of the report folder (default: the run folder)")
    p.add_argument("--formats", nargs="+", choices=("png", "svg", "pdf"), help="figure formats")
    _common(p)

    p = sub.add_parser("batch-run", help="run several run files (local processes or a Dask cluster)")
    p.add_argument("runfiles", nargs="+", help="TOML run files")
    p.add_argument("--workers", type=int, default=1, help="runs at the same time (local processes)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address: run on that cluster")
    p.add_argument("--keep-going", action="store_true", help="continue after a failed run")
    p.add_argument("-o", "--output", metavar="DIR", help="parent folder of the run folders (default: each run file's)")
    _common(p)

    p = sub.add_parser("runs", help="list earlier runs, or compare two runs side by side")
    rs = p.add_subparsers(dest="runs_command", parser_class=_Parser, metavar="list|compare")
    q = rs.add_parser("list", help="list the runs in a folder")
    q.add_argument("folder", help="folder holding run folders (a run file's output_dir)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q = rs.add_parser("compare", help="settings and predictions of two runs side by side")
    q.add_argument("run_a", help="run folder or dataset JSON")
    q.add_argument("run_b", help="run folder or dataset JSON")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    _common(p)
    return parser


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _log_factory(args):
    if args.quiet:
        return None

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return log


def _threads(args) -> int | None:
    t = getattr(args, "threads", None)
    if t is None:
        t = getattr(args, "global_threads", None)
    if t is not None and t < 0:
        raise CLIError(f"-j/--threads: expected a number >= 0, got {t}")
    return t


def _parse_cutoff(text: str):
    if "=" in text:
        pair, dist = text.split("=", 1)
        level = "0"
        if ":" in dist:
            level, dist = dist.split(":", 1)
    else:
        parts = text.split(":")
        if len(parts) == 3:
            pair, level, dist = f"{parts[0]}-{parts[1]}", "0", parts[2]
        elif len(parts) == 4:
            pair, level, dist = f"{parts[0]}-{parts[1]}", parts[2], parts[3]
        else:
            raise CLIError(f"--cutoff {text!r}: expected A-B=D, A-B=LEVEL:D or A:B:D")
    try:
        return pair.strip(), int(level), float(dist)
    except ValueError:
        raise CLIError(f"--cutoff {text!r}: expected A-B=D with D a distance in angstrom") from None


def _config_from_flags(args, frames: str | None = None):
    from ..pipeline.config import ConfigError, RunConfig

    cfg = RunConfig.from_toml(args.config) if getattr(args, "config", None) else RunConfig(
        base_dir=str(Path.cwd()), source="command line")
    cfg = RunConfig.from_dict(cfg.to_dict(), base_dir=cfg.base_dir, source=cfg.source)
    clusters = {}
    for key in ("node", "linker", "shell"):
        if getattr(args, key, None) is not None:  # --shell "" means no shell elements
            clusters[key] = [v for v in getattr(args, key) if v.strip()]
    if getattr(args, "cutoff", None):
        table: dict = {}
        for text in args.cutoff:
            pair, level, dist = _parse_cutoff(text)
            table.setdefault(pair, {})[str(level)] = dist
        clusters["cutoffs"] = table
    if getattr(args, "default_cutoff", None) is not None:
        clusters["default_cutoff"] = args.default_cutoff
    if getattr(args, "no_pbc", False):
        clusters["pbc"] = False
    try:
        if clusters:
            cfg = cfg.replace("clusters", **clusters)
        frames_kw = {}
        if frames is not None:
            frames_kw["path"] = str(Path(frames).resolve())
            if not getattr(args, "config", None):
                cfg = cfg.replace("run", name=Path(frames).stem or "cdml")
        if getattr(args, "box", None):
            frames_kw["box"] = list(args.box)
        if getattr(args, "timestep_fs", None) is not None:
            frames_kw["timestep_fs"] = args.timestep_fs
        if getattr(args, "energy", None):
            frames_kw["energy_file"] = str(Path(args.energy).resolve())
        if frames_kw:
            cfg = cfg.replace("frames", **frames_kw)
        if getattr(args, "frames_per_bin", None) is not None:
            cfg = cfg.replace("dynamics", frames_per_bin=args.frames_per_bin)
    except ConfigError as exc:
        # name the command-line flag rather than the run-file key
        raise CLIError(str(exc).replace(f"{cfg.source}: ", "command line: ", 1)) from None
    return cfg


def _print_result(result, args) -> None:
    print(result.summary_text())
    for key, what in (("report_html", "HTML report"), ("report_pptx", "PowerPoint"), ("dataset", "dataset")):
        if key in result.outputs:
            print(f"{what}: {result.run_dir / result.outputs[key]}")
    print(f"results: {result.run_dir}")


def _run_job(cfg, args, *, steps=None):
    from ..pipeline.workflow import run

    result = run(cfg, output_dir=getattr(args, "output", None), threads=_threads(args),
                 progress=False if args.quiet else None, keep_failed=args.debug, steps=steps,
                 log=_log_factory(args))
    _print_result(result, args)
    return result


# ---------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------
def _cmd_run(args) -> int:
    from ..pipeline.config import RunConfig

    if args.write_template:
        target = Path(args.write_template)
        if target.exists() and not args.force:
            raise CLIError(f"{target}: already exists (use --force to overwrite)")
        RunConfig().write_toml(target, template=True)
        print(f"wrote {target}")
        return 0
    if not args.runfile:
        raise _UsageError(f"{PROG} run: give a RUNFILE or --write-template FILE (see {PROG} run --help)")
    cfg = RunConfig.from_toml(args.runfile)
    if args.scheduler:
        cfg = cfg.replace("dynamics", scheduler=args.scheduler)
    _run_job(cfg, args)
    return 0


def _cmd_example(args) -> int:
    from ..example import example_config

    cfg = example_config(args.output)
    if args.write_runfile:
        cfg.resolved().write_toml(args.write_runfile)
        print(f"wrote {args.write_runfile}")
        return 0
    t0 = time.perf_counter()
    _run_job(cfg, args)
    if not args.quiet:
        print(f"example finished in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


def _cmd_extract(args) -> int:
    from .. import set_num_threads
    from ..pipeline.config import ConfigError
    from ..pipeline.workflow import StageUnavailable, _frames_kwargs, _rules, _stage

    cfg = _config_from_flags(args, frames=args.frames)
    try:
        if args.frame_stride is not None:
            cfg = cfg.replace("library", frame_stride=args.frame_stride)
        if args.format is not None:
            cfg = cfg.replace("library", format=args.format)
    except ConfigError as exc:
        raise CLIError(str(exc).replace(f"{cfg.source}: ", "command line: ", 1)) from None
    cfg.check_paths()
    try:
        read_frames = _stage("io.frames", "read_frames")
        write_library = _stage("library.write", "write_library")
    except StageUnavailable as exc:
        raise CLIError(f"extract: {exc}") from None
    with set_num_threads(_threads(args) or None):
        frames = read_frames(str(cfg.resolve_path(cfg.frames.path)), **_frames_kwargs(cfg))
        frames = frames[::cfg.library.frame_stride]  # a FrameSource slice: still streamed
        rules = _rules(cfg)
        progress = not args.quiet and sys.stderr.isatty()
        info = write_library(frames, rules, Path(args.output), fmt=cfg.library.format, progress=progress,
                             max_files_per_label=cfg.library.max_files_per_label)
    labels = sorted(p.name for p in Path(args.output).iterdir() if p.is_dir())
    print(f"wrote the structure library {args.output}: {len(labels)} labels ({', '.join(labels[:12])}"
          f"{', ...' if len(labels) > 12 else ''})")
    files = getattr(info, "files_written", None) or getattr(info, "n_files", None)
    if files is not None:
        print(f"  {files} structure files")
    perc = getattr(info, "percolating", None) or {}
    if perc:
        print("  percolating clusters (spanning the periodic box, not written): "
              + ", ".join(f"{label} x{n}" for label, n in sorted(perc.items())))
    return 0


def _cmd_dynamics(args) -> int:
    if args.frames is None and not args.config:
        raise _UsageError(f"{PROG} dynamics: give FRAMES or --config RUNFILE")
    cfg = _config_from_flags(args, frames=args.frames)
    _run_job(cfg, args, steps=("frames", "dynamics", "figures", "reports"))
    return 0


def _cmd_predict(args) -> int:
    from ..pipeline.config import RunConfig

    cfg = RunConfig.from_toml(args.runfile).replace("saxs", enabled=False)
    _run_job(cfg, args, steps=("frames", "dynamics", "library", "predict", "structures", "figures", "reports"))
    return 0


def _cmd_saxs(args) -> int:
    from ..pipeline.config import RunConfig

    if len(args.inputs) == 1 and args.inputs[0].endswith(".toml"):
        cfg = RunConfig.from_toml(args.inputs[0]).replace("saxs", enabled=True)
        _run_job(cfg, args)
        return 0
    return _saxs_structures(args)


def _saxs_structures(args) -> int:
    """Debye intensity (absolute units, electrons^2) of each structure file into one CSV."""
    import numpy as np

    from .. import set_num_threads
    from ..pipeline.workflow import StageUnavailable, _stage

    paths = [Path(p) for p in args.inputs]
    for p in paths:
        if not p.is_file():
            raise CLIError(f"{p}: not found")
    if not (0 <= args.q_min < args.q_max) or args.q_points < 2:
        raise CLIError(f"--q-min/--q-max/--q-points: need 0 <= q_min < q_max and q_points >= 2, got "
                       f"{args.q_min}, {args.q_max}, {args.q_points}")
    try:
        debye_intensity = _stage("saxs.debye", "debye_intensity")
        read_frames = _stage("io.frames", "read_frames")
    except StageUnavailable as exc:
        raise CLIError(f"saxs: {exc}") from None
    q = np.linspace(args.q_min, args.q_max, args.q_points)
    columns = {"q": q}
    with set_num_threads(_threads(args) or None):
        for p in paths:
            frame = next(iter(read_frames(str(p))))
            columns[p.stem] = np.asarray(debye_intensity(frame.positions, frame.symbols, q), dtype=float)
    out_dir = Path(args.output) if args.output else Path.cwd()
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "debye_profiles.csv"
    if out.exists():
        out = out_dir / f"debye_profiles_{time.strftime('%Y%m%d_%H%M%S')}.csv"
    header = ",".join(["q_inv_angstrom"] + [f"I_{k}_e2" for k in list(columns)[1:]])
    np.savetxt(out, np.column_stack(list(columns.values())), delimiter=",", header=header, comments="",
               fmt="%.17g")
    print(f"wrote {out} ({len(paths)} profiles, {len(q)} q points)")
    return 0


def _cmd_report(args) -> int:
    from ..pipeline.report import report

    folder = report(args.dataset, args.output, formats=tuple(args.formats) if args.formats else None)
    print(f"report written to {folder}")
    for p in sorted(folder.glob("*")):
        print(f"  {p.name}")
    return 0


def _batch_one(runfile: str, output: str | None, threads: int | None) -> dict:
    """Run one run file (in a worker process or on a Dask worker); never raises."""
    from ..pipeline.workflow import run

    t0 = time.perf_counter()
    try:
        result = run(runfile, output_dir=output, threads=threads, progress=False)
        return {"runfile": runfile, "ok": True, "run_dir": str(result.run_dir),
                "seconds": time.perf_counter() - t0}
    except Exception as exc:  # noqa: BLE001 - reported per run
        return {"runfile": runfile, "ok": False, "error": str(exc), "seconds": time.perf_counter() - t0}


def _cmd_batch(args) -> int:
    from ..pipeline.config import RunConfig

    for rf in args.runfiles:
        RunConfig.from_toml(rf).check_paths()  # fail fast on a bad run file
    if args.workers < 1:
        raise CLIError(f"--workers: expected a number >= 1, got {args.workers}")
    out = str(Path(args.output).resolve()) if args.output else None
    threads = _threads(args)
    results = []
    if args.scheduler:
        try:
            from dask.distributed import Client
        except ImportError:
            raise CLIError("--scheduler needs dask[distributed]: pip install 'clusterdynamicsml[dask]'") from None
        with Client(args.scheduler) as client:
            futures = [client.submit(_batch_one, str(Path(rf).resolve()), out, threads, pure=False)
                       for rf in args.runfiles]
            for fut in futures:
                results.append(fut.result())
                _report_batch(results[-1])
                if not results[-1]["ok"] and not args.keep_going:
                    break
    elif args.workers == 1:
        for rf in args.runfiles:
            results.append(_batch_one(str(Path(rf).resolve()), out, threads))
            _report_batch(results[-1])
            if not results[-1]["ok"] and not args.keep_going:
                break
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=args.workers, mp_context=mp.get_context("spawn")) as ex:
            futs = [ex.submit(_batch_one, str(Path(rf).resolve()), out, threads) for rf in args.runfiles]
            for fut in futs:
                results.append(fut.result())
                _report_batch(results[-1])
    failed = [r for r in results if not r["ok"]]
    print(f"batch: {len(results) - len(failed)} of {len(args.runfiles)} runs finished"
          + (f", {len(failed)} failed" if failed else ""))
    return 1 if failed or len(results) < len(args.runfiles) else 0


def _report_batch(r: dict) -> None:
    if r["ok"]:
        print(f"ok     {r['runfile']} -> {r['run_dir']} ({r['seconds']:.1f} s)")
    else:
        print(f"FAILED {r['runfile']}: {r['error']}", file=sys.stderr)


def _cmd_runs(args) -> int:
    from ..pipeline.workflow import compare_runs, list_runs

    if args.runs_command == "list":
        runs = list_runs(args.folder)
        if args.json:
            print(json.dumps(runs, indent=1))
            return 0
        if not runs:
            print(f"no finished runs in {args.folder}")
            return 0
        print(f"{'run':<44s} {'seconds':>8s} {'thr':>4s} {'labels':>6s} {'pred':>5s}  predicted labels")
        for r in runs:
            s = r["summary"] or {}
            labels = ", ".join(str(x) for x in (s.get("predicted_labels") or [])[:6])
            print(f"{r['name']:<44s} {r['wall_seconds'] or 0:8.1f} {r['threads'] or 0:4d} "
                  f"{s.get('labels', ''):>6} {s.get('predictions', ''):>5}  {labels}")
        return 0
    if args.runs_command == "compare":
        cmp = compare_runs(args.run_a, args.run_b)
        if args.json:
            print(json.dumps(cmp, indent=1, default=str))
            return 0
        print(cmp["text"])
        return 0
    raise _UsageError(f"{PROG} runs: give 'list DIR' or 'compare RUN_A RUN_B'")


_COMMANDS = {
    "run": _cmd_run, "example": _cmd_example, "extract": _cmd_extract, "dynamics": _cmd_dynamics,
    "predict": _cmd_predict, "saxs": _cmd_saxs, "report": _cmd_report, "batch-run": _cmd_batch,
    "runs": _cmd_runs,
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 error, 2 bad command line)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help
            return int(exc.code or 0)
        if args.version:
            from .. import set_num_threads

            with set_num_threads(args.global_threads or None):
                print(_version_text())
            return 0
        if args.command is None:
            parser.print_help()
            return 2
        debug = debug or getattr(args, "debug", False)
        if args.global_quiet:
            args.quiet = True
        return _COMMANDS[args.command](args)
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line unless --debug
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    from ..pipeline.config import ConfigError

    text = str(exc).strip() or exc.__class__.__name__
    if isinstance(exc, (ConfigError, CLIError)):
        return text.splitlines()[0]
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"{exc.filename}: not found"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or text}"
    first = text.splitlines()[0]
    if isinstance(exc, (ValueError, RuntimeError, OSError)):
        return first
    return f"{exc.__class__.__name__}: {first}"


def entry_point() -> None:
    sys.exit(main())
