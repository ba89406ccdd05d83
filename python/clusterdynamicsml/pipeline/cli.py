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
    clusterdynamicsml saxs RUNFILE [--recompute]         SAXS of a run (reusing its saved run when one matches)
    clusterdynamicsml saxs STRUCTURE...                  Debye profiles of structure files
    clusterdynamicsml report DATASET [-o DIR]            figures, HTML and PowerPoint from a saved run
    clusterdynamicsml batch-run RUNFILE... [--workers N] [--scheduler ADDRESS]
    clusterdynamicsml runs list DIR | runs compare RUN_A RUN_B
    clusterdynamicsml --version                          version, OpenMP on/off, threads

Exit codes: 0 success, 1 error (bad input, failed run), 2 bad command line.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path

from .cli_parser import (  # noqa: F401  (re-exported: the CLI's public and test-facing names)
    PROG,
    CLIError,
    _config_from_flags,
    _log_factory,
    _parse_cutoff,
    _Parser,
    _threads,
    _UsageError,
    _version_text,
    build_parser,
)


def _print_result(result, args) -> None:
    text = result.summary_text()
    if not args.quiet:  # the warnings are in the summary and the reports too
        for w in result.warnings:
            print(f"{PROG}: warning: {w}", file=sys.stderr)
        # the step lines were printed as the steps finished: print them once
        steps = tuple(f"  {s.name:<13s} {s.status:<8s}" for s in result.steps)
        text = "\n".join(line for line in text.splitlines() if not line.startswith(steps))
    print(text)
    for key, what in (("report_html", "HTML report"), ("report_pptx", "PowerPoint"), ("dataset", "dataset")):
        if key in result.outputs:
            print(f"{what}: {result.run_dir / result.outputs[key]}")
    print(f"results: {result.run_dir}")


def _run_job(cfg, args, *, steps=None, reuse_from=None):
    from ..pipeline.workflow import run

    result = run(cfg, output_dir=getattr(args, "output", None), threads=_threads(args),
                 progress=False if args.quiet else None, keep_failed=args.debug, steps=steps,
                 log=_log_factory(args), reuse_from=reuse_from)
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
        from ..pipeline.config import scheduler_problem

        why = scheduler_problem(args.scheduler)
        if why is not None:
            raise CLIError(f"--scheduler: {why}")
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
    from ..library.write import write_library
    from ..pipeline.checks import check_frames
    from ..pipeline.config import ConfigError
    from ..pipeline.inputs import open_frames
    from ..pipeline.workflow import _rules

    cfg = _config_from_flags(args, frames=args.frames)
    try:
        if args.frame_stride is not None:
            cfg = cfg.replace("library", frame_stride=args.frame_stride)
        if args.format is not None:
            cfg = cfg.replace("library", format=args.format)
    except ConfigError as exc:
        raise CLIError(str(exc).replace(f"{cfg.source}: ", "command line: ", 1)) from None
    cfg.check_paths()
    cfg.check_clusters()
    with set_num_threads(_threads(args) or None):
        frames = open_frames(cfg)
        check_frames(cfg, frames, need_time=False)  # the library does not depend on the time axis
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


def _cmd_validate(args) -> int:
    import json

    from ..predict.validate import validate_extrapolation

    targets = None
    if args.targets:
        try:
            a, _, b = args.targets.partition("-")
            targets = list(range(int(a), int(b or a) + 1))
        except ValueError:
            raise _UsageError(
                f"{PROG} validate: --targets must be A-B or A (node counts), got {args.targets!r}") from None
    report = validate_extrapolation(args.runfile, args.train_max_nodes, targets, population_model=args.model,
                                    n_bootstrap=args.bootstrap)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report.to_dict(), fh, indent=1)
    if args.figure:
        from ..plot.predict import plot_size_extrapolation

        plot_size_extrapolation(report, args.figure)
    if not args.quiet:
        print(report.table())
    return 0


def _cmd_saxs(args) -> int:
    from ..pipeline.config import RunConfig

    if len(args.inputs) == 1 and args.inputs[0].endswith(".toml"):
        from ..pipeline.reuse import find_reusable_run

        cfg = RunConfig.from_toml(args.inputs[0]).replace("saxs", enabled=True)
        cfg.check_paths(need_frames=True)  # a missing input is its own error, not a reason to recompute
        saved = None
        if args.recompute:
            print(f"{PROG}: --recompute: computing the whole run", file=sys.stderr)
        else:
            saved, why = find_reusable_run(cfg, args.output)
            print(f"{PROG}: reusing saved run {saved} ({why})" if saved is not None else
                  f"{PROG}: no reusable run: {why}; computing", file=sys.stderr)
        _run_job(cfg, args, reuse_from=saved)
        return 0
    if args.recompute:
        raise _UsageError(f"{PROG} saxs: --recompute goes with a run file (saxs RUNFILE --recompute)")
    return _saxs_structures(args)


def _saxs_structures(args) -> int:
    """Debye intensity (absolute units, electrons^2) of each structure file into one CSV."""
    import numpy as np

    from .. import set_num_threads
    from ..io.frames import read_frames
    from ..pipeline.inputs import unsupported_message
    from ..saxs.debye import debye_intensity

    paths = [Path(p) for p in args.inputs]
    for p in paths:
        if p.is_dir():
            raise CLIError(f"{p}: a folder; `{PROG} saxs` takes a run file (.toml) or structure files (.xyz, .pdb). "
                           f"A finished run keeps its SAXS in saxs_components/ and <name>_saxs.csv; `{PROG} report "
                           f"{p}` redraws its figures")
        if not p.is_file():
            raise CLIError(f"{p}: not found")
        if p.suffix.lower() not in (".xyz", ".extxyz", ".pdb", ".ent"):
            raise CLIError(unsupported_message(p).replace(
                "readable formats: ", "structure files are .xyz, .extxyz or .pdb; frames: ", 1)
                if p.suffix.lower() != ".toml" else f"{p}: give a run file alone (`{PROG} saxs RUNFILE`)")
    if not (0 <= args.q_min < args.q_max <= 100) or not 2 <= args.q_points <= 100000:
        raise CLIError(f"--q-min/--q-max/--q-points: need 0 <= q_min < q_max <= 100 1/A and 2 <= q_points <= "
                       f"100000, got {args.q_min}, {args.q_max}, {args.q_points}")
    q = np.linspace(args.q_min, args.q_max, args.q_points)
    columns = {"q": q}
    with set_num_threads(_threads(args) or None):
        for p in paths:
            frame = next(iter(read_frames(str(p))))
            try:
                columns[p.stem] = np.asarray(debye_intensity(frame.positions, frame.symbols, q), dtype=float)
            except ValueError as exc:
                raise CLIError(f"{p}: {exc}") from None
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

    if args.scheduler:
        from ..pipeline.config import scheduler_problem

        why = scheduler_problem(args.scheduler)
        if why is not None:
            raise CLIError(f"--scheduler: {why}")
    for rf in args.runfiles:
        RunConfig.from_toml(rf).check_paths()  # fail fast on a bad run file
    if not 1 <= args.workers <= 1024:
        raise CLIError(f"--workers: expected a number from 1 to 1024, got {args.workers}")
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
    from ..pipeline.runs import clean_leftovers, leftover_runs
    from ..pipeline.workflow import compare_runs, list_runs

    if args.runs_command == "clean":
        removed = clean_leftovers(args.folder)
        running = [r["name"] for r in leftover_runs(args.folder)]
        print(f"removed {len(removed)} leftover folder(s) of killed runs"
              + "".join(f"\n  {Path(d).name}" for d in removed)
              + (f"\nstill running (left alone): {', '.join(running)}" if running else ""))
        return 0
    if args.runs_command == "list":
        runs = list_runs(args.folder)
        left = leftover_runs(args.folder)
        if args.json:
            print(json.dumps({"runs": runs, "partial": left}, indent=1))
            return 0
        for r in left:
            state = "still running" if r["running"] else "left by a killed run, not a result"
            print(f"partial: {r['name']} ({state})")
        if any(not r["running"] for r in left):
            print(f"  remove them with: {PROG} runs clean {args.folder}")
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
    raise _UsageError(f"{PROG} runs: give 'list DIR', 'clean DIR' or 'compare RUN_A RUN_B'")


_COMMANDS = {
    "run": _cmd_run, "example": _cmd_example, "extract": _cmd_extract, "dynamics": _cmd_dynamics,
    "predict": _cmd_predict, "validate": _cmd_validate, "saxs": _cmd_saxs, "report": _cmd_report,
    "batch-run": _cmd_batch,
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
        with _terminate_as_interrupt(), warnings.catch_warnings():
            if not debug:  # numerical RuntimeWarnings are not errors: no stray stderr lines
                warnings.simplefilter("ignore", RuntimeWarning)
            return _COMMANDS[args.command](args)
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except _Terminated:
        print(f"{PROG}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `runs list | head`: the reader left; nothing more to say
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - flushing at exit must not fail again
        return 0
    except Exception as exc:  # noqa: BLE001 - one line unless --debug
        if debug:
            raise
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so a run cleans up its ``*.partial`` folder the same way."""


@contextlib.contextmanager
def _terminate_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise _Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _one_line(exc: BaseException) -> str:
    from ..pipeline.checks import for_users
    from ..pipeline.config import ConfigError

    text = for_users(str(exc).strip()) or exc.__class__.__name__
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
