"""The whole job: frames -> clusters -> dynamics -> library -> model -> candidates ->
structures -> Debye-Waller -> SAXS components -> mixtures -> fit -> outputs.

``run(config)`` takes a :class:`~clusterdynamicsml.pipeline.config.RunConfig` (or a path to a TOML run
file) and returns a :class:`RunResult`. This module only wires the stage modules together;
each stage lives in its own module and is importable and testable alone.

Every run writes into its own folder ``<output_dir>/<YYYYmmdd_HHMMSS_ffffff>_<name>/`` and
never overwrites an earlier one. The folder is built as ``<...>.partial`` and renamed only
when the run succeeded, so a crash or an error never leaves a half-written run folder
behind (it is removed, or kept as ``<...>.failed`` with ``keep_failed=True``).

Saved with the results: ``run.toml`` (the resolved settings, absolute paths, so the run can
be repeated), ``run_info.json`` (versions, OpenMP, threads, timings per step, warnings),
``<name>_dataset.json`` (the versioned dataset ``load_run`` reads back) and ``summary.txt``.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._io import write_json
from ..build.stage import run_structures_step
from ..dynamics.analyze import analyze_dynamics
from ..errors import InsufficientDataError
from ..library.read import read_library
from ..library.write import write_library
from ..pipeline.config import ConfigError, RunConfig  # noqa: F401  (ConfigError: re-exported for callers)
from ..predict.core import predict_clusters
from ..predict.validate import model_error_setting
from ..saxs.stage import SaxsSkipped, run_saxs_step
from .checks import check_frames, cluster_rules, energy_for_frames, for_users, preflight
from .inputs import frames_kwargs as _frames_kwargs  # noqa: F401  (kept for callers)
from .inputs import open_frames
from .outputs import repoint_json
from .reuse import REUSED_STEPS, input_fingerprints, reuse_problem, reuse_step
from .runs import (
    DATASET_FORMAT,
    DATASET_VERSION,
    OWNER_NAME,
    RunResult,
    StepRecord,
    _summary_numbers,
    _summary_text,
    compare_runs,
    environment_info,
    list_runs,
    load_run,
    write_dataset,
)
from .runs import new_run_dir as _new_run_dir
from .runs import safe_name as _safe_name

__all__ = ["run", "RunResult", "StepRecord", "load_run", "list_runs",
           "DATASET_FORMAT", "DATASET_VERSION", "environment_info", "STEPS", "compare_runs"]

#: the steps of a run, in order (name, description)
STEPS = (
    ("frames", "read frames"),
    ("dynamics", "clusters and dynamics"),
    ("library", "structure library"),
    ("predict", "model, candidates, Debye-Waller"),
    ("structures", "predicted structures"),
    ("saxs", "SAXS components, mixtures and fit"),
    ("figures", "figures"),
    ("reports", "PowerPoint and HTML reports"),
)


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _show_progress(ctx) -> bool:
    """Progress bars only when asked for and stderr is a terminal (no bar spam in logs)."""
    return bool(ctx.progress) and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


class _Context:
    """State shared by the steps of one run."""

    def __init__(self, cfg: RunConfig, work_dir: Path, stem: str, progress: bool):
        self.cfg = cfg
        self.dir = work_dir
        self.stem = stem
        self.progress = progress
        self.data: dict[str, Any] = {}
        self.outputs: dict[str, str] = {}
        self.warnings: list[str] = []
        self.step: StepRecord | None = None
        self.records: list[StepRecord] = []
        self.final_dir: Path = work_dir
        self.t_start = time.perf_counter()

    def warn(self, message: str) -> None:
        message = for_users(message)  # run-file keys and CLI flags, not Python keywords
        body = message.split(": ", 1)[-1]
        if not any(w.split(": ", 1)[-1] == body for w in self.warnings):
            self.warnings.append(message)

    def path(self, *parts: str) -> Path:
        p = self.dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def output(self, key: str, path: Path) -> Path:
        rel = os.path.relpath(path, self.dir)
        self.outputs[key] = rel
        if self.step is not None:
            self.step.outputs.append(rel)
        return path

    def bar(self, total: int | None, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=f"{desc:<28s}", disable=not _show_progress(self), leave=True,
                    unit="it", dynamic_ncols=True, file=sys.stderr)


# ---------------------------------------------------------------------------------------
# steps
# ---------------------------------------------------------------------------------------
def _step_frames(ctx: _Context):
    cfg = ctx.cfg
    frames = open_frames(cfg)
    ctx.data["frames"] = frames
    for w in getattr(frames, "warnings", None) or []:
        ctx.warn(f"frames: {w}")
    check_frames(cfg, frames, warn=ctx.warn)
    skipped = getattr(frames, "skipped", None) or []
    for sk in skipped:
        ctx.warn(f"frames: skipped {sk}")
    n = len(frames) if hasattr(frames, "__len__") else None
    text = f"{n} frames" if n is not None else "streaming frames"
    dt = getattr(frames, "timestep_fs", None)
    if dt is not None:
        text += f", {dt:g} fs apart"
    return text + (f", {len(skipped)} skipped" if skipped else "")


def _rules(ctx_or_cfg):
    """ClusterRules from [clusters]; a bad rule is a ConfigError naming [clusters]."""
    return cluster_rules(ctx_or_cfg.cfg if isinstance(ctx_or_cfg, _Context) else ctx_or_cfg)


def _step_dynamics(ctx: _Context):
    cfg = ctx.cfg
    rules = ctx.data.get("rules") or _rules(ctx)
    ctx.data["rules"] = rules
    frames = ctx.data["frames"]
    energy = energy_for_frames(cfg, frames, warn=ctx.warn)  # on the frames' time axis
    workers = cfg.dynamics.workers or (os.cpu_count() or 1)
    result = analyze_dynamics(
        frames, rules,
        frames_per_bin=cfg.dynamics.frames_per_bin, timestep_fs=cfg.frames.timestep_fs,
        start_fs=cfg.dynamics.start_fs, stop_fs=cfg.dynamics.stop_fs,
        energy_file=energy,
        workers=None if workers == 1 else workers, scheduler=cfg.dynamics.scheduler,
        chunk_size=cfg.dynamics.chunk_size, progress=_show_progress(ctx),
        include_percolating=cfg.dynamics.include_percolating,
        checkpoint=str(cfg.resolve_path(cfg.dynamics.checkpoint)) if cfg.dynamics.checkpoint else None,
    )
    ctx.data["dynamics"] = result
    seen = set()
    for w in [*(getattr(result, "time_warnings", None) or []), *(getattr(result, "warnings", None) or [])]:
        if str(w) not in seen:  # time notes and other notes (percolating clusters, ...), once each
            seen.add(str(w))
            ctx.warn(f"dynamics: {w}")
    # the dynamics stage's own dataset and the CSVs of ref 3.7 (X.json -> X_*.csv)
    if hasattr(result, "save"):
        target = ctx.path(f"{ctx.stem}_dynamics.json")
        written = result.save(target)
        ctx.output("dynamics_dataset", target)
        for p in written or []:
            p = Path(p)
            if p != target:
                ctx.output(p.name.replace(f"{ctx.stem}_dynamics_", "").replace(".", "_"), p)
    labels = list(getattr(result, "labels", None) or [])
    nb = getattr(result, "n_bins", None)
    return f"{len(labels)} labels" + (f", {nb} time bins" if nb is not None else "")


def _step_library(ctx: _Context):
    cfg = ctx.cfg
    if not cfg.predict.enabled and not cfg.saxs.enabled:
        raise _Skip("prediction and SAXS are off")
    if cfg.library.path is not None:
        ctx.data["library_dir"] = cfg.resolve_path(cfg.library.path)
        return f"using {ctx.data['library_dir']}"
    out = ctx.path("library", "x").parent
    frames = ctx.data["frames"][::cfg.library.frame_stride]  # a FrameSource slice: still streamed
    info = write_library(frames, ctx.data.get("rules") or _rules(ctx), out, fmt=cfg.library.format,
                         progress=_show_progress(ctx), max_files_per_label=cfg.library.max_files_per_label)
    ctx.data["library_dir"] = out
    ctx.data["library_info"] = info
    ctx.output("library", out)
    labels = [p for p in out.iterdir() if p.is_dir()]
    return f"{len(labels)} labels written"


def _box_widths(frames):
    from ..predict.validate import _box_lengths

    return _box_lengths(frames)


def _step_predict(ctx: _Context):
    cfg = ctx.cfg
    if not cfg.predict.enabled:
        raise _Skip("[predict] enabled = false")
    dyn = ctx.data["dynamics"]
    rules = ctx.data["rules"]
    try:
        library = read_library(str(ctx.data["library_dir"]), rules,
                               frame_labels=list(getattr(dyn, "labels", []) or []))
    except InsufficientDataError:
        raise _Skip(_not_enough(ctx, "the structure library holds no cluster with node atoms")) from None
    ctx.data["library"] = library
    for w in getattr(library, "warnings", None) or []:
        ctx.warn(f"library: {w}")
    try:
        pred = _predict(ctx, library, dyn, rules)
    except InsufficientDataError as exc:
        raise _Skip(_not_enough(ctx, str(exc))) from None
    ctx.data["prediction"] = pred
    for w in getattr(pred, "warnings", None) or []:
        ctx.warn(f"predict: {w}")
    _save_prediction(ctx, pred)
    cands = list(getattr(pred, "candidates", []) or [])
    sizes = sorted({getattr(c, "node_count", 0) for c in cands})
    return f"{len(cands)} predicted candidates" + (f" at node counts {sizes}" if sizes else "")


def _not_enough(ctx: _Context, what: str) -> str:
    """Warn and return the skip message when the observed clusters are too few to predict from."""
    hint = ""
    if "node atoms" in what:
        hint = (" (clusters that span the box are left out of the library: [dynamics] include_percolating "
                "or --include-percolating keeps them, a shorter cutoff splits them)")
    ctx.warn(f"predict: skipped: {what}{hint}; the dynamics results are complete")
    return f"not enough observed clusters to predict from: {what}"


def _predict(ctx: _Context, library, dyn, rules):
    cfg = ctx.cfg
    return predict_clusters(
        library, dyn, rules,
        target_node_counts=list(cfg.predict.target_node_counts) or None,
        candidates_per_size=cfg.predict.candidates_per_size, share_threshold=cfg.predict.share_threshold,
        timestep_fs=getattr(dyn, "timestep_fs", None), n_bootstrap=cfg.predict.bootstrap, seed=cfg.run.seed,
        validate=cfg.predict.validate, observed_targets=cfg.predict.observed_targets,
        population_transform=cfg.predict.population_transform,
        population_model=cfg.predict.population_model, box_lengths=_box_widths(ctx.data.get("frames")),
        model_error=model_error_setting(cfg.predict),
    )


def _save_prediction(ctx: _Context, pred) -> None:
    if hasattr(pred, "save"):
        written = pred.save(ctx.dir, stem=ctx.stem)
        for kind, path in (written or {}).items():
            path = Path(path)
            if kind == "json":  # X.json would read as the run's dataset: name it for what it is
                target = path.with_name(f"{ctx.stem}_prediction.json")
                path.replace(target)
                path = target
                kind = "prediction_dataset"
            ctx.output(kind if kind.endswith(("_dataset", "_csv")) else f"{kind}_csv", path)


def _step_structures(ctx: _Context):
    cfg = ctx.cfg
    if not (cfg.predict.enabled and cfg.predict.build_structures):
        raise _Skip("[predict] build_structures = false")
    pred = ctx.data.get("prediction")
    if pred is None:
        raise _Skip("no prediction")
    message = run_structures_step(ctx)
    built = ctx.data.get("built_structures") or []
    if built:  # exact coordinates (the structure files round them): what a reused run's SAXS reads
        ctx.output("built_structures_json", write_json(ctx.path(f"{ctx.stem}_built_structures.json"), {
            "units": "angstrom", "structures": [
                {"node_count": b["candidate"].node_count, "rank": b["candidate"].rank, "label": b["candidate"].label,
                 "file": os.path.relpath(b["path"], ctx.dir), "symbols": list(b["structure"].symbols),
                 "positions": b["structure"].positions} for b in built]}))
    return message


def _step_saxs(ctx: _Context):
    if not ctx.cfg.saxs.enabled:
        raise _Skip("[saxs] enabled = false")
    try:
        return run_saxs_step(ctx)
    except SaxsSkipped as exc:
        raise _Skip(str(exc)) from None


def _step_figures(ctx: _Context):
    if not ctx.cfg.report.figures:
        raise _Skip("[report] figures = false")
    from ..pipeline.report import make_figures

    figs = make_figures(ctx.data, ctx.cfg, ctx.path("figures"), stem=ctx.stem, warn=ctx.warn)
    for key, paths in figs.items():
        for p in paths:
            ctx.output(f"figure_{key}_{Path(p).suffix[1:]}", Path(p))
    ctx.data["figures"] = figs
    return f"{len(figs)} figures"


def _step_reports(ctx: _Context):
    rc = ctx.cfg.report
    if not (rc.pptx or rc.html):
        raise _Skip("[report] pptx and html are off")
    from ..pipeline.report import write_html_report, write_pptx_report

    done = []
    what = " and ".join(w for w, on in (("HTML", rc.html), ("PowerPoint", rc.pptx)) if on)
    html_path, pptx_path = ctx.path(f"{ctx.stem}_report.html"), ctx.path(f"{ctx.stem}_report.pptx")
    if rc.html:
        ctx.output("report_html", html_path)
    if rc.pptx:
        ctx.output("report_pptx", pptx_path)
    _plan_outputs(ctx)  # every file the run will write, the reports included: what they state
    # the reports show this step as the summary will: done, once they are written
    steps = [dataclasses.replace(r, status="done", message=what) if r is ctx.step else r
             for r in ctx.records if r.status != "pending" or r is ctx.step]
    state = _result_from_ctx(ctx, steps=steps)
    state.run_dir = ctx.final_dir
    state.info = dict(ctx.data.get("_info", {}), wall_seconds=round(time.perf_counter() - ctx.t_start, 1))
    if rc.html:
        write_html_report(state, html_path)
        done.append("HTML")
    if rc.pptx:
        write_pptx_report(state, pptx_path)
        done.append("PowerPoint")
    return " and ".join(done)


def _plan_outputs(ctx: _Context) -> None:
    """Register the files the run writes after its steps (dataset, run_info.json, summary.txt)
    and save the listing of every output in ``info["files_written"]``: the summary, the HTML
    and the PowerPoint report all state this count and list (see :mod:`.outputs`)."""
    from .outputs import output_listing

    ctx.outputs.update(dataset=f"{ctx.stem}_dataset.json", run_info="run_info.json", summary="summary.txt")
    ctx.data.setdefault("_info", {})["files_written"] = output_listing(ctx.dir, ctx.outputs)


class _Skip(Exception):
    pass


_STEP_FUNCS = {
    "frames": _step_frames,
    "dynamics": _step_dynamics,
    "library": _step_library,
    "predict": _step_predict,
    "structures": _step_structures,
    "saxs": _step_saxs,
    "figures": _step_figures,
    "reports": _step_reports,
}


def _result_from_ctx(ctx: _Context, steps) -> RunResult:
    return RunResult.from_data(ctx.dir, ctx.cfg, ctx.data, steps=steps, outputs=ctx.outputs,
                               warnings=ctx.warnings, info=ctx.data.get("_info", {}))


# ---------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------
def _repoint_json(work_dir: Path, final_dir: Path) -> None:
    """Paths into ``<run>.partial`` saved by the stages (e.g. the training rows' structure
    files in the prediction dataset) point into the final run folder: every string of the run
    folder's JSON files that starts with the work folder's path is rewritten."""
    for path in sorted(work_dir.glob("*.json")):
        repoint_json(path, {str(work_dir): str(final_dir)})


def _run_config(config: RunConfig | str | os.PathLike, *, output_dir, threads, progress, steps) -> RunConfig:
    """The checked, resolved settings of :func:`run` (its arguments override the run file)."""
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_toml(config)
    if output_dir is not None:
        cfg = cfg.replace("run", output_dir=str(Path(output_dir).resolve()))
    if threads is not None:
        cfg = cfg.replace("run", threads=int(threads))
    if progress is not None:
        cfg = cfg.replace("run", progress=bool(progress))
    cfg.check_paths(need_frames=True)
    if steps is not None:
        unknown = [s for s in steps if s not in _STEP_FUNCS]
        if unknown:
            raise ValueError(f"unknown step(s) {unknown}; known: {list(_STEP_FUNCS)}")
    return cfg.resolved()


def _reused(name: str, saved_dir: Path):
    """Step ``name`` taken from the saved run in ``saved_dir`` (see :mod:`.reuse`)."""
    def step(ctx: _Context):
        status, message = reuse_step(ctx, name, saved_dir)
        if status != "done":
            raise _Skip(message)
        return message

    return step


def run(config: RunConfig | str | os.PathLike, *, output_dir: str | os.PathLike | None = None,
        threads: int | None = None, progress: bool | None = None, keep_failed: bool = False,
        steps: tuple[str, ...] | None = None, log: Callable[[str], None] | None = None,
        reuse_from: str | os.PathLike | None = None) -> RunResult:
    """Run the whole job and return a :class:`RunResult`.

    config : RunConfig or path of a TOML run file (relative paths resolve against its folder).
    output_dir : parent folder of the run folder (default: ``[run] output_dir``).
    threads : C++ kernel threads (default ``[run] threads``; 0 = all available).
    progress : progress bars on stderr (default ``[run] progress``).
    steps : run only these steps (names of :data:`STEPS`); the others are recorded as skipped.
    log : called with one line per finished step (the CLI prints them).
    reuse_from : a finished run of the same inputs and settings (see
        :func:`~clusterdynamicsml.pipeline.reuse.find_reusable_run`): its frames, dynamics, library,
        predict and structures results are reloaded instead of computed; a run that does not
        qualify is a ValueError saying why.
    """
    from .. import set_num_threads

    resolved = _run_config(config, output_dir=output_dir, threads=threads, progress=progress, steps=steps)
    inputs = input_fingerprints(resolved)  # saved with the run: what `saxs RUNFILE` compares
    funcs = dict(_STEP_FUNCS)
    if reuse_from is not None:
        why = reuse_problem(resolved, reuse_from, inputs)
        if why is not None:
            raise ValueError(f"{reuse_from}: cannot be reused: {why}")
        funcs.update({name: _reused(name, Path(reuse_from)) for name in REUSED_STEPS})
    preflight(resolved, steps)
    final_dir, work_dir = _new_run_dir(Path(resolved.run.output_dir), resolved.run.name)
    stem = _safe_name(resolved.run.name)
    ctx = _Context(resolved, work_dir, stem, resolved.run.progress)
    records = [StepRecord(name) for name, _ in STEPS]
    ctx.records, ctx.final_dir = records, final_dir
    n_threads = resolved.run.threads or None
    started = _dt.datetime.now().astimezone()
    t_start = time.perf_counter()
    ctx.t_start = t_start
    try:
        with set_num_threads(n_threads):
            info = environment_info()
            info["started"] = started.isoformat(timespec="seconds")
            info["inputs"] = inputs
            ctx.data["_info"] = info
            resolved.write_toml(work_dir / "run.toml", template=False)
            ctx.outputs["run_file"] = "run.toml"
            for rec in records:
                ctx.step = rec
                func = funcs[rec.name]
                t0 = time.perf_counter()
                if steps is not None and rec.name not in steps:
                    rec.status, rec.message = "skipped", "not requested"
                else:
                    try:
                        rec.message = func(ctx) or ""
                        rec.status = "done"
                    except _Skip as why:
                        rec.status, rec.message = "skipped", str(why)
                rec.seconds = time.perf_counter() - t0
                if log is not None:
                    log(f"{rec.name:<13s} {rec.status:<8s} {rec.seconds:7.2f} s  {rec.message}")
            ctx.step = None
            if "files_written" not in info or ctx.records[-1].status != "done":  # no reports step: list now
                _plan_outputs(ctx)
            wall = time.perf_counter() - t_start
            info.update(started=started.isoformat(timespec="seconds"),
                        finished=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                        wall_seconds=round(wall, 3), run_dir=str(final_dir))
            result = _result_from_ctx(ctx, records)
            result.info = info
            write_dataset(result)
            result.run_dir = final_dir  # the summary names the folder the run ends up in
            write_json(work_dir / "run_info.json", {
                "format": "clusterdynamicsml.run_info", "version": 1, **info,
                "steps": [dataclasses.asdict(r) for r in records], "warnings": ctx.warnings,
                "outputs": ctx.outputs, "summary": _summary_numbers(result)})
            (work_dir / "summary.txt").write_text(_summary_text(result, list_files=True) + "\n", encoding="utf-8")
        _repoint_json(work_dir, final_dir)
        (work_dir / OWNER_NAME).unlink(missing_ok=True)
        work_dir.rename(final_dir)
    except BaseException:
        if keep_failed:
            failed = final_dir.with_name(final_dir.name + ".failed")
            work_dir.rename(failed)
            (failed / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
        raise
    result.run_dir = final_dir

    def moved(path: str) -> str:
        rel = os.path.relpath(path, work_dir)
        return path if rel.startswith("..") else str(final_dir / rel)

    if isinstance(result.figures, dict):
        result.figures = {k: [moved(p) for p in v] for k, v in result.figures.items()}
    for b in result.built_structures or []:
        b["path"] = moved(b["path"])
    if result.library_dir is not None:
        result.library_dir = Path(moved(str(result.library_dir)))
    return result
