"""Run folders and their results: the typed :class:`RunResult`, the saved dataset, and the
history tools ``load_run``, ``list_runs`` and ``compare_runs`` (in compare.py, re-exported here).

A run folder ``<output_dir>/<YYYYmmdd_HHMMSS_ffffff>_<name>/`` holds ``run.toml`` (resolved
settings), ``run_info.json`` (versions, threads, timings, warnings, summary numbers),
``<name>_dataset.json`` (format :data:`DATASET_FORMAT`, version :data:`DATASET_VERSION`: what
``load_run`` reads back), ``summary.txt`` and the stage outputs. It is built as
``<...>.partial`` and renamed when the run succeeded (see :func:`new_run_dir`).

This module imports no stage code at import time and neither ``workflow`` nor ``report``:
both import it, which breaks their former import circle.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import importlib
import json
import os
import platform
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._io import read_json, to_jsonable, write_json
from .._paths import check_run_name
from .._paths import safe_name as _safe_name
from .config import RunConfig

__all__ = ["RunResult", "StepRecord", "STAGE_FIELDS", "DATASET_FORMAT", "DATASET_VERSION", "environment_info",
           "saxs_verdict", "new_run_dir", "load_run", "list_runs", "compare_runs", "write_dataset"]

DATASET_FORMAT = "clusterdynamicsml.run"
DATASET_VERSION = 1


@dataclasses.dataclass
class StepRecord:
    """One step of a run: status ``done | skipped | failed | pending``, wall seconds, a one-line
    message and the output paths (relative to the run folder) it wrote."""

    name: str
    status: str = "pending"
    seconds: float = 0.0
    message: str = ""
    outputs: list = dataclasses.field(default_factory=list)


#: the stage results a run can hold, one field each on :class:`RunResult`
STAGE_FIELDS = ("frames", "rules", "dynamics", "library_dir", "library_info", "library", "prediction",
                "geometry_statistics", "built_structures", "structure_quality", "saxs", "figures")


@dataclasses.dataclass
class RunResult:
    """What a run produced: one field per stage result (None when the stage did not run).

    frames : list of ``Frame`` (live runs only). rules : the ``ClusterRules`` used.
    dynamics : ``DynamicsResult``. library_dir : the structure-library folder; library_info :
    what ``write_library`` reported; library : the ``StructureLibrary`` read back.
    prediction : ``PredictionResult`` (a plain dict when reloaded from a dataset that only
    embedded it). geometry_statistics : ``GeometryStatistics``. built_structures : one dict
    per built structure (label, path, ...); structure_quality : one row per built structure.
    saxs : dict with ``q``, ``components``, mixture intensities, ``experimental``, ``fit``.
    figures : {figure name: [paths]}.
    ``outputs`` maps output names to paths relative to ``run_dir``.
    """

    run_dir: Path
    config: RunConfig
    steps: list = dataclasses.field(default_factory=list)
    outputs: dict = dataclasses.field(default_factory=dict)
    warnings: list = dataclasses.field(default_factory=list)
    info: dict = dataclasses.field(default_factory=dict)
    frames: Any = None
    rules: Any = None
    dynamics: Any = None
    library_dir: Path | None = None
    library_info: Any = None
    library: Any = None
    prediction: Any = None
    geometry_statistics: Any = None
    built_structures: list | None = None
    structure_quality: list | None = None
    saxs: dict | None = None
    figures: dict | None = None

    @classmethod
    def from_data(cls, run_dir, config: RunConfig, data: Mapping[str, Any], **kw) -> RunResult:
        """A result from the workflow's stage-data dict (keys of :data:`STAGE_FIELDS`; keys
        starting with ``_`` are private to the workflow and ignored). An unknown key is an
        error, so a new stage output gets a typed field here instead of hiding in a dict."""
        unknown = [k for k in data if not k.startswith("_") and k not in STAGE_FIELDS]
        if unknown:
            raise ValueError(f"RunResult has no field for stage data {sorted(unknown)}; known: {list(STAGE_FIELDS)}")
        return cls(run_dir=Path(run_dir), config=config, **{k: v for k, v in data.items() if k in STAGE_FIELDS}, **kw)

    @property
    def data(self) -> Mapping[str, Any]:
        """Read-only {stage field: value} of the stage results that are present."""
        from types import MappingProxyType

        return MappingProxyType({k: getattr(self, k) for k in STAGE_FIELDS if getattr(self, k) is not None})

    @property
    def dataset_path(self) -> Path:
        return self.run_dir / self.outputs["dataset"]

    def step(self, name: str) -> StepRecord | None:
        return next((s for s in self.steps if s.name == name), None)

    def summary_numbers(self) -> dict:
        """Counts and fit quality of the run (JSON-ready): frames, labels, time bins,
        predictions, SAXS fit figures of merit, wall seconds."""
        return _summary_numbers(self)

    def summary_text(self, list_files: bool = False) -> str:
        """The summary (``summary.txt``); ``list_files`` adds one line per output below the
        files-written count."""
        return _summary_text(self, list_files)


# ---------------------------------------------------------------------------------------
# run folders and environment
# ---------------------------------------------------------------------------------------
def safe_name(text: str) -> str:
    """``text`` as one plain file-name part (see :func:`clusterdynamicsml._paths.safe_name`)."""
    return _safe_name(text)


def timestamp() -> str:
    """Local time ``YYYYmmdd_HHMMSS_ffffff`` (run folder names)."""
    return _dt.datetime.now().strftime("%Y%m%d_%H%M%S_%f")


def new_run_dir(parent: Path, name: str) -> tuple[Path, Path]:
    """(final, partial) folders of a new run: ``partial`` is created, ``final`` does not exist."""
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        final = parent / f"{timestamp()}_{safe_name(name)}"
        partial = final.with_name(final.name + ".partial")
        if final.exists() or partial.exists():
            time.sleep(1e-3)
            continue
        try:
            partial.mkdir()
        except FileExistsError:
            continue
        # who builds this folder: ``runs list`` tells a running run from a leftover of a killed one
        (partial / OWNER_NAME).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n",
                                          encoding="utf-8")
        return final, partial


#: file in a ``*.partial`` run folder naming the process that builds it (removed when it finishes)
OWNER_NAME = ".cdml_owner.json"


def _alive(owner: dict) -> bool:
    if owner.get("host") != socket.gethostname():
        return True  # another machine's run: cannot tell, never touched
    try:
        pid = int(str(owner.get("pid")))
        os.kill(pid, 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def leftover_runs(folder: str | os.PathLike) -> list[dict]:
    """``*.partial`` folders under ``folder``: {dir, name, running}. ``running`` is False for a
    leftover of a killed run (its process is gone, or it records none), True while its run is
    alive (or runs on another machine)."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    out = []
    for d in sorted(p for p in root.glob("*.partial") if p.is_dir()):
        try:
            owner = json.loads((d / OWNER_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            owner = {}
        running = isinstance(owner, dict) and bool(owner) and _alive(owner)
        out.append({"dir": str(d), "name": d.name, "running": running})
    return out


def clean_leftovers(folder: str | os.PathLike) -> list[str]:
    """Remove the ``*.partial`` folders of killed runs under ``folder`` (never a running one,
    never a finished run). Returns the removed folders."""
    import shutil

    removed = []
    for rec in leftover_runs(folder):
        if not rec["running"]:
            shutil.rmtree(rec["dir"])
            removed.append(rec["dir"])
    return removed


def environment_info(threads: int | None = None) -> dict:
    """Versions, OpenMP and threads (saved with every run, printed by ``--version``)."""
    from .. import __version__, get_num_threads, openmp_enabled

    versions: dict[str, str | None] = {"clusterdynamicsml": __version__, "python": platform.python_version()}
    for mod in ("numpy", "scipy", "matplotlib", "xraydb", "pptx", "tqdm", "dask"):
        try:
            m = sys.modules.get(mod) or importlib.import_module(mod)
            versions[mod] = getattr(m, "__version__", "?")
        except Exception:  # optional packages
            versions[mod] = None
    return {
        "versions": versions,
        "openmp": openmp_enabled(),
        "threads": threads if threads is not None else get_num_threads(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "command": " ".join(sys.argv) if sys.argv else "",
    }


# ---------------------------------------------------------------------------------------
# dataset
# ---------------------------------------------------------------------------------------
def write_dataset(result: RunResult, folder: Path | None = None) -> Path:
    """Write ``<name>_dataset.json`` into ``folder`` (default ``result.run_dir``); records it
    in ``result.outputs["dataset"]``. Returns the path."""
    folder = Path(result.run_dir if folder is None else folder)
    payload: dict[str, Any] = {
        "format": DATASET_FORMAT,
        "version": DATASET_VERSION,
        "settings": result.config.to_dict(),
        "environment": result.info,
        "steps": [dataclasses.asdict(s) for s in result.steps],
        "warnings": result.warnings,
        "outputs": dict(result.outputs),
        "summary": _summary_numbers(result),
    }
    if result.prediction is not None and not result.outputs.get("prediction_dataset"):
        payload["prediction"] = result.prediction
    if result.structure_quality:
        payload["structure_quality"] = result.structure_quality
    if result.saxs is not None:
        payload["saxs"] = _saxs_payload(result.saxs)
    name = f"{safe_name(result.config.run.name)}_dataset.json"
    result.outputs["dataset"] = name
    payload["outputs"]["dataset"] = name
    return write_json(folder / name, payload)


def load_run(path: str | os.PathLike) -> RunResult:
    """Reload a run from its dataset JSON or its run folder (nothing is recomputed). A dataset
    that is not what this build writes (edited by hand, damaged) is a ValueError naming the
    file and the part that could not be read."""
    p, payload = _read_payload(path)
    try:
        return _load_payload(p, payload)
    except (TypeError, KeyError, AttributeError, IndexError, OverflowError, ValueError) as exc:
        if isinstance(exc, ValueError) and (p.name in str(exc) or str(p) in str(exc)):
            raise  # already names the file (a ConfigError of the saved settings, a stage's load)
        what = f"key {exc.args[0]!r} missing" if isinstance(exc, KeyError) and exc.args else str(exc)
        raise ValueError(f"{p}: malformed dataset ({exc.__class__.__name__}: {what}); it was edited or damaged "
                         "after the run wrote it") from None


def _load_payload(p: Path, payload: dict) -> RunResult:
    if payload.get("version") != DATASET_VERSION:
        raise ValueError(f"{p}: dataset version {payload.get('version')!r} is not supported "
                         f"(this build reads version {DATASET_VERSION})")
    run_dir = p.parent
    settings, renamed = _plain_run_name(payload.get("settings"), p)
    cfg = RunConfig.from_dict(settings, base_dir=run_dir, source=p.name)
    outputs = payload.get("outputs", {})
    from ..dynamics.analyze import DynamicsResult
    from ..predict.core import PredictionResult

    warnings = list(payload.get("warnings", [])) + ([renamed] if renamed else [])
    result = RunResult(run_dir=run_dir, config=cfg, steps=[StepRecord(**s) for s in payload.get("steps", [])],
                       outputs=outputs, warnings=warnings, info=payload.get("environment", {}))
    name = outputs.get("dynamics_dataset")
    if name and (run_dir / name).is_file():
        result.dynamics = DynamicsResult.load(run_dir / name)
    name = outputs.get("prediction_dataset")
    if name and (run_dir / name).is_file():
        result.prediction = PredictionResult.load(run_dir / name)
    elif "prediction" in payload:
        result.prediction = payload["prediction"]
    if "structure_quality" in payload:
        result.structure_quality = payload["structure_quality"]
    if isinstance(payload.get("saxs"), dict):
        result.saxs = _saxs_from_payload(payload["saxs"])
    if outputs.get("library"):
        result.library_dir = run_dir / outputs["library"]
    return result


def _plain_run_name(settings, path: Path) -> tuple[dict, str | None]:
    """The saved settings with a run name that can be part of a file name. A dataset written
    by hand (or by an older version) may hold a name such as ``"../../x"``: it is replaced by
    its :func:`~clusterdynamicsml._paths.safe_name` (with a warning naming both), so nothing
    made from the reloaded run can land outside its folder."""
    if not isinstance(settings, dict):
        raise ValueError(f"{path}: 'settings' must be a table of run-file sections, got {type(settings).__name__}")
    run = settings.get("run")
    if not isinstance(run, dict) or "name" not in run or check_run_name(run["name"]) is None:
        return settings, None
    original = run["name"]
    plain = _safe_name(original if isinstance(original, str) else repr(original))
    out = dict(settings, run=dict(run, name=plain))
    return out, f"{path.name}: run name {original!r} is not a plain name; files are named {plain!r}"


def _saxs_payload(saxs) -> dict:
    """JSON-ready SAXS results (components with their traces, mixtures, experimental data, fits)."""
    if not isinstance(saxs, dict) or "components" not in saxs:
        return to_jsonable(saxs)
    comps = []
    for c in saxs["components"]:
        if isinstance(c, dict):
            comps.append(c)
            continue
        comps.append({"label": c.label, "source": c.source, "n_structures": c.n_structures,
                      "n_library": c.n_library, "k": c.k, "intensity": c.intensity, "std": c.std, "se": c.se,
                      "sampling_error": c.sampling_error, "sigma": None if not c.sigma else
                      {f"{a}-{b}": v for (a, b), v in c.sigma.items()}, "dw_pairs": c.dw_pairs})
    out = {"q": saxs["q"], "observed_intensity": saxs.get("observed_intensity"),
           "combined_intensity": saxs.get("combined_intensity"), "components": comps,
           "component_rows": saxs.get("component_rows", [])}
    if saxs.get("experimental") is not None:
        out["experimental"] = _fields(saxs["experimental"])
    if saxs.get("fit"):
        out["fit"] = {name: _fields(f) for name, f in saxs["fit"].items()}
        out["fit_q_range"] = saxs.get("fit_q_range")
    for key in ("evidence", "all_rows", "mixture_weights"):  # issue 13: evidence and the full component list
        if saxs.get(key) is not None:
            out[key] = saxs[key]
    return to_jsonable(out)


def _fields(obj) -> dict:
    """Every dataclass field (arrays included), for an exact reload with :func:`_from_fields`."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return obj


def _from_fields(cls, d: dict):
    import numpy as np

    names = {f.name for f in dataclasses.fields(cls)}
    kw = {}
    for k, v in d.items():
        if k not in names:
            continue
        if isinstance(v, list) and v and all(isinstance(x, (int, float)) or x is None for x in v):
            v = np.asarray([np.nan if x is None else x for x in v], dtype=np.float64)
        elif isinstance(v, list) and v and all(isinstance(x, list) for x in v):
            v = np.asarray(v, dtype=np.float64)
        elif isinstance(v, list) and k in ("q_range", "scale_factors", "segments", "notes"):
            v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        kw[k] = v
    return cls(**kw)


def _saxs_from_payload(p: dict) -> dict:
    """The SAXS results of a saved run as live objects."""
    import numpy as np

    from ..saxs.components import SaxsComponent
    from ..saxs.expdata import SaxsData
    from ..saxs.fit import SaxsFitResult

    out = dict(p)
    for key in ("q", "observed_intensity", "combined_intensity"):
        if out.get(key) is not None:
            out[key] = np.asarray(out[key], dtype=np.float64)
    comps = []
    for c in p.get("components", []):
        sigma = c.get("sigma")
        comps.append(SaxsComponent(
            label=c["label"], q=out["q"], intensity=np.asarray(c["intensity"], float),
            std=np.asarray(c["std"], float), se=np.asarray(c["se"], float), source=c.get("source", "average"),
            n_structures=c.get("n_structures", 1), n_library=c.get("n_library", 1), k=c.get("k"),
            sampling_error=None if c.get("sampling_error") is None else np.asarray(c["sampling_error"], float),
            sigma=None if not sigma else {tuple(k.split("-")): v for k, v in sigma.items()},
            dw_pairs=c.get("dw_pairs", "all")))
    out["components"] = comps
    if p.get("experimental"):
        out["experimental"] = _from_fields(SaxsData, p["experimental"])
    if p.get("fit"):
        out["fit"] = {name: _from_fields(SaxsFitResult, f) for name, f in p["fit"].items()}
    return out


# ---------------------------------------------------------------------------------------
# summary and history
# ---------------------------------------------------------------------------------------
def _item(obj, name: str, default=None):
    """``obj[name]`` for a dict (a reloaded or hand-made stage result), else ``obj.name``."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _summary_numbers(result: RunResult) -> dict:
    out: dict[str, Any] = {}
    if result.frames is not None:
        out["frames"] = len(result.frames)
    dyn = result.dynamics
    if dyn is not None:
        out["labels"] = len(_item(dyn, "labels") or [])
        edges = _item(dyn, "bin_edges_fs")
        if edges is not None:
            out["time_bins"] = max(len(edges) - 1, 0)
        n_frames = _item(dyn, "n_frames")
        if n_frames is not None:
            out["frames_analysed"] = int(n_frames)
    pred = result.prediction
    if pred is not None:
        # a PredictionResult has candidates; its saved table form has "predictions" rows
        preds = _item(pred, "candidates")
        if preds is None:
            preds = _item(pred, "predictions", [])
        out["predictions"] = len(preds)
        out["predicted_labels"] = [_item(p, "label") for p in preds]
        out["max_observed_node_count"] = _item(pred, "max_observed_node_count")
        out["max_predicted_node_count"] = _item(pred, "max_predicted_node_count")
        choice = _item(pred, "population_choice") or {}
        out["population_model"] = choice.get("used") or choice.get("model") or _item(pred, "population_model")
        out["population_model_reason"] = choice.get("reason")
        val = _item(pred, "validation") or {}
        if isinstance(val, dict) and val.get("summary"):
            out["validation"] = {"train_max_node_count": val.get("train_max_node_count"),
                                 "target_node_counts": val.get("target_node_counts"), **val["summary"],
                                 "comparison": {m: c.get("summary") for m, c in (val.get("comparison") or {}).items()}}
        elif isinstance(val, dict) and val.get("skipped"):
            out["validation"] = {"skipped": val["skipped"]}
    saxs = result.saxs
    if isinstance(saxs, dict):
        out["saxs_components"] = len(saxs.get("components") or [])
        for name, f in (saxs.get("fit") or {}).items():
            for key in ("chi2_reduced", "rmse", "pearson"):
                val = _item(f, key)
                if val is not None:
                    out[f"saxs_{name}_{key}"] = val
    out["wall_seconds"] = result.info.get("wall_seconds")
    return to_jsonable(out)


def _validation_line(v: dict, population_model: str) -> str:
    """The summary line of the extrapolation validation ``v`` (worst count factor per model)."""
    def factor(c) -> str:
        if (c or {}).get("sizes_predicted_zero"):
            return "inf (predicts 0)"
        return f"{(c or {}).get('max_count_factor') or float('nan'):.3g}"

    worst = ", ".join(f"{m} " + factor(c) for m, c in (v.get("comparison") or {}).items())
    return (f"  extrapolation validation (train n <= {v['train_max_node_count']}, "
            f"predict {v['target_node_counts']}): worst count factor {worst}"
            f"; {population_model}: 90% interval covers {v.get('count_coverage_90')}/{v.get('count_intervals')}, "
            f"mean share TV {v.get('mean_share_total_variation') or float('nan'):.3g}")


def _summary_text(result: RunResult, list_files: bool = False) -> str:
    info = result.info
    lines = [f"clusterdynamicsml run {result.config.run.name!r}: {result.run_dir}",
             f"  version {info.get('versions', {}).get('clusterdynamicsml')}, OpenMP "
             f"{'on' if info.get('openmp') else 'off'}, {info.get('threads')} threads, "
             f"{info.get('wall_seconds', 0) or 0:.1f} s"]
    for s in result.steps:
        lines.append(f"  {s.name:<13s} {s.status:<8s} {s.seconds:7.2f} s  {s.message}")
    nums = _summary_numbers(result)
    for key in ("frames", "frames_analysed", "time_bins", "labels", "predictions"):
        if key in nums:
            lines.append(f"  {key.replace('_', ' ')}: {nums[key]}")
    if nums.get("population_model"):
        lines.append(f"  population model: {nums['population_model']} ({nums.get('population_model_reason')})")
        v = nums.get("validation") or {}
        if v.get("skipped"):
            lines.append(f"  extrapolation validation skipped: {v['skipped']}")
        elif v:
            lines.append(_validation_line(v, nums["population_model"]))
    from .outputs import file_entries, files_line, listing_of

    listing = listing_of(result)  # the count and list the reports state too
    lines.append(f"  {files_line(listing)}")
    if list_files:
        lines += [f"    {e}" for e in file_entries(listing)]
    for w in result.warnings:
        lines.append(f"  warning: {w}")
    return "\n".join(lines)


def list_runs(folder: str | os.PathLike) -> list[dict]:
    """Finished runs under ``folder`` (newest last): one dict per run folder with its name,
    time, settings and summary, read from ``run_info.json`` and the dataset."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    runs = []
    for info_path in sorted(root.glob("*/run_info.json")):
        run_dir = info_path.parent
        if run_dir.name.endswith((".partial", ".failed")):
            continue
        try:
            info = read_json(info_path)
        except (OSError, ValueError):
            continue
        runs.append({"dir": str(run_dir), "name": run_dir.name, "started": info.get("started"),
                     "wall_seconds": info.get("wall_seconds"), "threads": info.get("threads"),
                     "version": (info.get("versions") or {}).get("clusterdynamicsml"),
                     "summary": info.get("summary", {}),
                     "steps": {s["name"]: s["status"] for s in info.get("steps", [])}})
    return runs


def _read_payload(path) -> tuple[Path, dict]:
    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob("*_dataset.json"))
        if not found:
            raise FileNotFoundError(f"{p}: no *_dataset.json in this folder (not a run folder?)")
        p = found[0]
    if not p.is_file():
        raise FileNotFoundError(f"{p}: dataset not found")
    try:
        payload = read_json(p)
    except ValueError as exc:
        raise ValueError(f"{p}: not a clusterdynamicsml dataset (invalid JSON: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != DATASET_FORMAT:
        raise ValueError(f"{p}: not a clusterdynamicsml run dataset (no format={DATASET_FORMAT!r})")
    return p, payload


# compare_runs and saxs_verdict live in compare.py (imported last: it reads datasets through this module)
from .compare import compare_runs, saxs_verdict  # noqa: E402
