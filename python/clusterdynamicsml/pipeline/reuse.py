"""Reuse of a saved run: ``clusterdynamicsml saxs RUNFILE`` computes only SAXS (and redraws the
figures and reports) when a finished run of the same run file already holds the dynamics, the
library, the prediction and the predicted structures.

A saved run is reused only when

* it is finished (a run folder ``<stamp>_<name>`` with a readable dataset, not ``.partial``),
  made by this version of the package, and its steps frames, dynamics and library are done and
  predict and structures done or skipped for a reason the same settings give again;
* its settings equal the run file's in every key the stages before SAXS read (the keys of
  :data:`IGNORED` only change where and how fast a run goes, or what SAXS and the reports do);
* its input files are the same: every run records :func:`input_fingerprints` (size, mtime and
  SHA-256 of the frames, topology, energy file and shell templates; names, sizes and mtimes of
  an external library's files) in ``run_info.json`` and the dataset (``inputs``);
* the files it wrote for those stages are all there.

Otherwise the whole run is computed, and the reason is said. The reused run writes a new run
folder (earlier runs are never touched): the saved stage files are hard-linked (copied across
file systems) into it, the saved results are reloaded, and the steps say ``reused from ...``.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

from .config import RunConfig, flatten
from .outputs import repoint_json

__all__ = ["REUSED_STEPS", "IGNORED", "input_fingerprints", "reuse_problem", "find_reusable_run", "reuse_step"]

#: the steps a reused run takes from the saved run (SAXS, figures and reports are computed)
REUSED_STEPS = ("frames", "dynamics", "library", "predict", "structures")

#: settings that do not change the results of :data:`REUSED_STEPS`
IGNORED = ("run.name", "run.output_dir", "run.threads", "run.progress", "dynamics.workers", "dynamics.chunk_size",
           "dynamics.scheduler", "dynamics.checkpoint", "saxs.", "report.")

_INPUT_KEYS = (("frames", "path"), ("frames", "topology"), ("frames", "energy_file"), ("library", "path"))


# ---------------------------------------------------------------------------------------
# what a run records
# ---------------------------------------------------------------------------------------
def _tree_listing(folder: Path) -> dict:
    """A folder of many small files (a structure library): SHA-256 of its file names, sizes and
    mtimes (the contents are not read)."""
    h = hashlib.sha256()
    n = 0
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        st = p.stat()
        h.update(f"{p.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        n += 1
    return {"path": str(folder), "files": n, "listing_sha256": h.hexdigest()}


def input_fingerprints(cfg: RunConfig) -> dict:
    """{setting key: fingerprints} of the input files of a resolved run file: a file gets
    ``file_fingerprint`` (size, mtime, SHA-256 of the file or of 64 sampled blocks), a frames
    folder one per file in it, a library folder :func:`_tree_listing`."""
    from ..dynamics.checkpoint import file_fingerprint

    out: dict = {}
    for section, key in _INPUT_KEYS:
        value = getattr(getattr(cfg, section), key)
        if value is None:
            continue
        p = cfg.resolve_path(value)
        if section == "library":
            out[f"{section}.{key}"] = _tree_listing(p) if p.is_dir() else {"path": str(p), "missing": True}
        elif p.is_dir():
            out[f"{section}.{key}"] = [file_fingerprint(f) for f in sorted(p.iterdir()) if f.is_file()]
        elif p.is_file():
            out[f"{section}.{key}"] = [file_fingerprint(p)]
        else:
            out[f"{section}.{key}"] = [{"path": str(p), "missing": True}]
    templates = [file_fingerprint(cfg.resolve_path(path)) for _, path in cfg.predict.shell_templates
                 if cfg.resolve_path(path).is_file()]
    if templates:
        out["predict.shell_templates"] = templates
    return out


def _same_file(old: dict, new: dict) -> bool:
    keys = ("path", "size", "sha256", "hashed", "missing", "files", "listing_sha256")
    if any(old.get(k) != new.get(k) for k in keys):
        return False
    # a hash of sampled blocks does not see every byte: the modification time must agree too
    return old.get("hashed") in (None, "whole") or old.get("mtime_ns") == new.get("mtime_ns")


def _input_change(old: dict, new: dict) -> str | None:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a is None or b is None:
            return f"{key} is {'set' if b is not None else 'unset'} now and was not then"
        a_list, b_list = (a if isinstance(a, list) else [a]), (b if isinstance(b, list) else [b])
        if len(a_list) != len(b_list):
            return f"{key}: {len(b_list)} files now, {len(a_list)} then"
        for x, y in zip(a_list, b_list):
            if not (isinstance(x, dict) and isinstance(y, dict) and _same_file(x, y)):
                where = y.get("path") if isinstance(y, dict) else key
                return f"{key}: {where} changed since the saved run read it"
    return None


def _compared_settings(settings: dict) -> dict:
    flat = flatten(settings)
    return {k: v for k, v in flat.items() if not any(k == i or (i.endswith(".") and k.startswith(i))
                                                     for i in IGNORED)}


# ---------------------------------------------------------------------------------------
# can a saved run be reused?
# ---------------------------------------------------------------------------------------
def reuse_problem(cfg: RunConfig, run_dir: str | os.PathLike, inputs: dict | None = None) -> str | None:
    """Why the finished run in ``run_dir`` cannot stand in for the stages before SAXS of the
    resolved run file ``cfg`` (None: it can). ``inputs``: :func:`input_fingerprints` of ``cfg``
    when already computed."""
    from .. import __version__
    from .runs import _read_payload

    run_dir = Path(run_dir)
    if run_dir.name.endswith((".partial", ".failed")):
        return f"{run_dir.name} is not a finished run"
    try:
        path, payload = _read_payload(run_dir)
    except (OSError, ValueError) as exc:
        return f"its dataset cannot be read ({exc})"
    env: dict = payload["environment"] if isinstance(payload.get("environment"), dict) else {}
    made_by = (env.get("versions") or {}).get("clusterdynamicsml")
    if made_by != __version__:
        return f"it was made by clusterdynamicsml {made_by} (this is {__version__})"
    steps: dict[str, dict] = {s["name"]: s for s in payload.get("steps", []) if isinstance(s, dict) and "name" in s}
    why = _steps_problem(steps) or _settings_problem(cfg, payload, run_dir, path.name)
    if why is not None:
        return why
    recorded = env.get("inputs")
    if not isinstance(recorded, dict):
        return "it records no fingerprints of its input files (made before runs recorded them)"
    try:
        current = input_fingerprints(cfg) if inputs is None else inputs
    except OSError as exc:
        return f"the input files cannot be read ({exc})"
    return _input_change(recorded, current) or _files_problem(run_dir, payload, steps)


def _steps_problem(steps: dict[str, dict]) -> str | None:
    for name in REUSED_STEPS:
        s = steps.get(name) or {}
        status, message = s.get("status"), s.get("message")
        if status == "done" or (status == "skipped" and name in ("predict", "structures")
                                and message != "not requested"):
            continue
        return f"its {name} step is {status or 'missing'}" + (f" ({message})" if message else "")
    return None


def _settings_problem(cfg: RunConfig, payload: dict, run_dir: Path, source: str) -> str | None:
    import json

    try:
        saved = RunConfig.from_dict(payload.get("settings"), base_dir=run_dir, source=source)
    except ValueError as exc:
        return f"its settings cannot be read ({exc})"
    now = json.loads(json.dumps(_compared_settings(cfg.to_dict())))
    then = json.loads(json.dumps(_compared_settings(saved.to_dict())))
    differ = [k for k in sorted(set(now) | set(then)) if now.get(k) != then.get(k)]
    if not differ:
        return None
    k = differ[0]
    more = f" and {len(differ) - 1} more" if len(differ) > 1 else ""
    return f"settings differ: {k} = {then.get(k)!r} then, {now.get(k)!r} now{more}"


def _files_problem(run_dir: Path, payload: dict, steps: dict[str, dict]) -> str | None:
    outputs = payload.get("outputs") or {}
    for name in REUSED_STEPS:
        for rel in steps[name].get("outputs") or []:
            if not (run_dir / rel).exists():
                return f"its file {rel} is missing"
    if steps["dynamics"].get("status") == "done" and not outputs.get("dynamics_dataset"):
        return "it saved no dynamics dataset"
    if steps["predict"].get("status") == "done" and not outputs.get("prediction_dataset"):
        return "it saved no prediction dataset"
    if steps["structures"].get("status") == "done" and "structure_quality" not in payload:
        return "it saved no table of its predicted structures"
    if payload.get("structure_quality") and not outputs.get("built_structures_json"):
        return "it saved no exact coordinates of its built structures (made before runs saved them)"
    return None


def _saved_runs(cfg: RunConfig) -> list[Path]:
    """Finished run folders of this run file's name under its output folder, newest first."""
    from .._paths import safe_name

    root = Path(cfg.run.output_dir)
    if not root.is_dir():
        return []
    pattern = re.compile(r"^\d{8}_\d{6}_\d{6}_" + re.escape(safe_name(cfg.run.name)) + "$")
    return sorted((p for p in root.iterdir() if p.is_dir() and pattern.match(p.name)), reverse=True)


def find_reusable_run(config: RunConfig, output_dir: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """(the newest reusable saved run of this run file, or None; why). ``output_dir`` overrides
    ``[run] output_dir`` as :func:`~clusterdynamicsml.pipeline.workflow.run` does."""
    cfg = config
    if output_dir is not None:
        cfg = cfg.replace("run", output_dir=str(Path(output_dir).resolve()))
    cfg = cfg.resolved()
    runs = _saved_runs(cfg)
    if not runs:
        return None, f"no saved run named {cfg.run.name!r} in {cfg.run.output_dir}"
    try:
        inputs = input_fingerprints(cfg)
    except OSError as exc:
        return None, f"the input files cannot be read ({exc})"
    first = None
    for run_dir in runs:
        why = reuse_problem(cfg, run_dir, inputs)
        if why is None:
            return run_dir, "same inputs and settings"
        first = first or f"the newest saved run {run_dir.name}: {why}"
    return None, first or ""


# ---------------------------------------------------------------------------------------
# the reused steps
# ---------------------------------------------------------------------------------------
def _link_or_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _bring(ctx, saved, name: str) -> None:
    """The files the saved run's step ``name`` wrote, hard-linked into this run, under the same
    output names."""
    keys = {rel: key for key, rel in saved.outputs.items()}
    for rel in saved.step(name).outputs:
        src, dst = saved.run_dir / rel, ctx.dir / rel
        if src.is_dir():
            shutil.copytree(src, dst, copy_function=_link_or_copy, dirs_exist_ok=True)
        else:
            _link_or_copy(src, dst)
            if dst.suffix == ".json":  # its paths into the saved run point into this run
                repoint_json(dst, {str(saved.run_dir): str(ctx.final_dir)})
        ctx.output(keys.get(rel, Path(rel).name), dst)


def _built_structures(ctx, saved, quality: list) -> list[dict]:
    """The built structures of the saved run with their exact coordinates (from
    ``<name>_built_structures.json``; the structure files round them to 8 decimals), matched to
    the prediction's candidates and to the validity in the structures table."""
    from types import SimpleNamespace

    import numpy as np

    from .._io import read_json

    rel = saved.outputs.get("built_structures_json")
    if not rel:
        raise ValueError(f"{saved.run_dir}: the saved run has no built_structures_json (exact coordinates)")
    by_key = {(c.node_count, c.rank, c.label): c for c in saved.prediction.candidates}
    valid = {(r.get("target_node_count"), r.get("rank"), r.get("label")): bool(r.get("valid", True)) for r in quality}
    built = []
    for s in read_json(ctx.dir / rel)["structures"]:
        key = (s["node_count"], s["rank"], s["label"])
        if key not in by_key:
            raise ValueError(f"{saved.run_dir / rel}: structure {key} is not a candidate of the saved prediction")
        st = SimpleNamespace(symbols=list(s["symbols"]), positions=np.asarray(s["positions"], dtype=np.float64))
        built.append({"candidate": by_key[key], "structure": st, "path": str(ctx.dir / s["file"]),
                      "valid": valid.get(key, True), "validity": None})
    return built


def reuse_step(ctx, name: str, saved_dir: Path) -> tuple[str, str]:
    """Step ``name`` of :data:`REUSED_STEPS` from the saved run in ``saved_dir``: its results
    into ``ctx.data``, its files into the run folder. Returns (status, message) as saved."""
    from .checks import cluster_rules
    from .runs import load_run

    if "_reused" not in ctx.data:
        saved = load_run(saved_dir)
        ctx.data["_reused"] = saved
        ctx.data["_info"]["reused_from"] = str(saved.run_dir)
        prefixes = tuple(f"{s}: " for s in REUSED_STEPS)
        for w in saved.warnings:  # the notes of the reused stages stay with their results
            if w.startswith(prefixes):
                ctx.warn(w)
    saved = ctx.data["_reused"]
    rec = saved.step(name)
    if rec.status != "done":
        return rec.status, rec.message
    _bring(ctx, saved, name)
    if name == "dynamics":
        ctx.data["dynamics"] = saved.dynamics
        ctx.data["rules"] = cluster_rules(ctx.cfg)
    elif name == "library":
        ctx.data["library_dir"] = (ctx.dir / saved.outputs["library"] if saved.outputs.get("library")
                                   else ctx.cfg.resolve_path(ctx.cfg.library.path))
    elif name == "predict":
        from ..library.read import read_library

        ctx.data["prediction"] = saved.prediction
        ctx.data["library"] = read_library(str(ctx.data["library_dir"]), ctx.data["rules"],
                                           frame_labels=list(saved.dynamics.labels))
    elif name == "structures":
        from ..build.geomstats import GeometryStatistics

        if saved.outputs.get("geometry_statistics"):
            ctx.data["geometry_statistics"] = GeometryStatistics.from_json(
                ctx.dir / saved.outputs["geometry_statistics"])
        ctx.data["structure_quality"] = saved.structure_quality
        ctx.data["built_structures"] = _built_structures(ctx, saved, saved.structure_quality or [])
    original = re.sub(r"^reused from [^:]+: ", "", rec.message)  # a reused run reused again: one prefix
    return "done", f"reused from {saved.run_dir.name}: {original}"
