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
import importlib
import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._io import atomic_path, write_csv, write_json
from .._io import to_jsonable as _jsonable
from ..pipeline.config import ConfigError, RunConfig
from .runs import (
    DATASET_FORMAT,
    DATASET_VERSION,
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

__all__ = ["run", "RunResult", "StepRecord", "StageUnavailable", "load_run", "list_runs",
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


class StageUnavailable(RuntimeError):
    """A pipeline stage whose module is not part of this build (the step is skipped)."""


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _stage(module: str, *names: str):
    """Import names from a stage module or raise StageUnavailable naming the module."""
    try:
        mod = importlib.import_module(f"clusterdynamicsml.{module}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("clusterdynamicsml"):
            raise StageUnavailable(f"stage module clusterdynamicsml.{module} is not in this build") from None
        raise
    out = []
    for name in names:
        if not hasattr(mod, name):
            raise StageUnavailable(f"clusterdynamicsml.{module} has no {name} yet")
        out.append(getattr(mod, name))
    return out[0] if len(out) == 1 else tuple(out)


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
def _frames_kwargs(cfg: RunConfig) -> dict:
    f = cfg.frames
    kw = dict(box=cfg.box_value(), timestep_fs=f.timestep_fs, start_time_fs=f.start_time_fs)
    # settings at their neutral value are not passed (a stage without them behaves the same)
    if f.stride != 1:
        kw["stride"] = f.stride
    if f.allow_box_from_extent:
        kw["allow_box_from_extent"] = True
    if f.skip_bad_frames:
        kw["skip_bad_frames"] = True
    if f.element_map:
        kw["element_map"] = cfg.element_map_dict()
    return kw


def _step_frames(ctx: _Context):
    read_frames = _stage("io.frames", "read_frames")
    cfg = ctx.cfg
    frames = read_frames(str(cfg.resolve_path(cfg.frames.path)), **_frames_kwargs(cfg))
    ctx.data["frames"] = frames
    for w in getattr(frames, "warnings", None) or []:
        ctx.warn(f"frames: {w}")
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
    cfg = ctx_or_cfg.cfg if isinstance(ctx_or_cfg, _Context) else ctx_or_cfg
    ClusterRules = _stage("clusters.extract", "ClusterRules")
    try:
        return ClusterRules.from_dict(cfg.cluster_rules_dict())
    except ValueError as exc:
        raise ConfigError(cfg.source, "clusters", None, str(exc)) from None


def _step_dynamics(ctx: _Context):
    analyze_dynamics = _stage("dynamics.analyze", "analyze_dynamics")
    cfg = ctx.cfg
    rules = ctx.data.get("rules") or _rules(ctx)
    ctx.data["rules"] = rules
    frames = ctx.data["frames"]
    energy = cfg.resolve_path(cfg.frames.energy_file)
    workers = cfg.dynamics.workers or (os.cpu_count() or 1)
    result = analyze_dynamics(
        frames, rules,
        frames_per_bin=cfg.dynamics.frames_per_bin, timestep_fs=cfg.frames.timestep_fs,
        start_fs=cfg.dynamics.start_fs, stop_fs=cfg.dynamics.stop_fs,
        energy_file=None if energy is None else str(energy),
        workers=None if workers == 1 else workers, scheduler=cfg.dynamics.scheduler,
        chunk_size=cfg.dynamics.chunk_size, progress=_show_progress(ctx),
        **({"checkpoint": str(cfg.resolve_path(cfg.dynamics.checkpoint))} if cfg.dynamics.checkpoint else {}),
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
    write_library = _stage("library.write", "write_library")
    out = ctx.path("library", "x").parent
    frames = ctx.data["frames"][::cfg.library.frame_stride]  # a FrameSource slice: still streamed
    info = write_library(frames, ctx.data.get("rules") or _rules(ctx), out, fmt=cfg.library.format,
                         progress=_show_progress(ctx), max_files_per_label=cfg.library.max_files_per_label)
    ctx.data["library_dir"] = out
    ctx.data["library_info"] = info
    ctx.output("library", out)
    labels = [p for p in out.iterdir() if p.is_dir()]
    return f"{len(labels)} labels written"


def _step_predict(ctx: _Context):
    cfg = ctx.cfg
    if not cfg.predict.enabled:
        raise _Skip("[predict] enabled = false")
    read_library = _stage("library.read", "read_library")
    predict_clusters = _stage("predict.core", "predict_clusters")
    dyn = ctx.data["dynamics"]
    rules = ctx.data["rules"]
    library = read_library(str(ctx.data["library_dir"]), rules, frame_labels=list(getattr(dyn, "labels", []) or []))
    ctx.data["library"] = library
    for w in getattr(library, "warnings", None) or []:
        ctx.warn(f"library: {w}")
    pred = predict_clusters(
        library, dyn, rules,
        target_node_counts=list(cfg.predict.target_node_counts) or None,
        candidates_per_size=cfg.predict.candidates_per_size, share_threshold=cfg.predict.share_threshold,
        timestep_fs=getattr(dyn, "timestep_fs", None), n_bootstrap=cfg.predict.bootstrap, seed=cfg.run.seed,
        validate=cfg.predict.validate, observed_targets=cfg.predict.observed_targets,
        population_transform=cfg.predict.population_transform,
    )
    ctx.data["prediction"] = pred
    for w in getattr(pred, "warnings", None) or []:
        ctx.warn(f"predict: {w}")
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
    cands = list(getattr(pred, "candidates", []) or [])
    sizes = sorted({getattr(c, "node_count", 0) for c in cands})
    return f"{len(cands)} predicted candidates" + (f" at node counts {sizes}" if sizes else "")


def _representative(library, candidate):
    """(symbols, positions) of the observed structure whose geometry seeds the build."""
    ref = getattr(candidate, "reference_label", None) or getattr(candidate, "source_label", None)
    if ref is None:
        return None
    try:
        obs = library[ref]
    except (KeyError, TypeError):
        return None
    rep = getattr(obs, "representative_path", None)
    files = [str(f) for f in getattr(obs, "files", [])]
    structures = library.structures(ref)
    if rep is not None and str(rep) in files and len(structures) == len(files):
        return structures[files.index(str(rep))]
    return structures[0] if structures else None


def _step_structures(ctx: _Context):
    cfg = ctx.cfg
    if not (cfg.predict.enabled and cfg.predict.build_structures):
        raise _Skip("[predict] build_structures = false")
    pred = ctx.data.get("prediction")
    if pred is None:
        raise _Skip("no prediction")
    geometry_statistics = _stage("build.geomstats", "geometry_statistics")
    write_built_structure = _stage("build.grow", "write_built_structure")
    build_valid_structure, rg_interval_of = _stage("build.validate", "build_valid_structure", "rg_interval_of")
    library = ctx.data["library"]
    structures, labels = [], []
    for label in library.labels:
        for st in library.structures(label):
            structures.append(st)
            labels.append(label)
    rules = ctx.data["rules"]
    stats = geometry_statistics(
        structures, node_elements=list(rules.role_elements("node")),
        linker_elements=list(rules.role_elements("linker")), shell_elements=list(rules.role_elements("shell")),
        pair_cutoffs={(c.a, c.b): c.distance for c in cfg.clusters.cutoffs if c.level == 0}, labels=labels)
    ctx.data["geometry_statistics"] = stats
    if hasattr(stats, "to_json"):
        path = ctx.path(f"{ctx.stem}_geometry_statistics.json")
        text = stats.to_json()
        path.write_text(text if isinstance(text, str) else json.dumps(_jsonable(text), indent=1))
        ctx.output("geometry_statistics", path)
    out_dir = ctx.path("predicted_structures", "x").parent
    built, quality = [], []
    cands = list(getattr(pred, "candidates", []) or [])
    # PDB mode (ref 4.8 step 6): whole shell molecules from one-molecule templates
    templates = {el: str(cfg.resolve_path(p)) for el, p in getattr(cfg.predict, "shell_templates", ())}
    write_kw = {"shell_templates": templates} if templates else {}
    with ctx.bar(len(cands), "predicted structures") as bar:
        for c in cands:
            # built for the run's own rules, checked with its own cluster extraction, rebuilt with other
            # seeds when it fails; a structure that still fails is written, flagged and kept out of SAXS
            try:
                st, validity, attempts = build_valid_structure(
                    c.counts, stats, rules, representative=_representative(library, c), label=c.label,
                    seed=cfg.run.seed, rg_interval=rg_interval_of(c), on_crowding="relax")
            except ValueError as exc:
                st, exc_text = None, str(exc)
            else:
                exc_text = "no attempt could place every atom"
            if st is None:
                ctx.warn(f"structures: {c.label} (node count {c.node_count}) not built: {exc_text}")
                bar.update(1)
                continue
            path = write_built_structure(out_dir, st, target_node_count=c.node_count, rank=c.rank,
                                         source_label=c.source_label, **write_kw)
            valid = validity is None or bool(validity.passed)
            built.append({"candidate": c, "structure": st, "path": str(path), "valid": valid, "validity": validity})
            if not valid:
                ctx.warn(f"structures: {c.label} (node count {c.node_count}) is not a valid cluster after {attempts} "
                         f"builds: {validity.summary()}; kept out of the SAXS mixture")
            q = st.quality.to_dict() if hasattr(st.quality, "to_dict") else dict(st.quality)
            if q.get("relaxed_atoms"):
                ctx.warn(f"structures: {c.label} (node count {c.node_count}) is too crowded for the learned "
                         f"geometry: {q['relaxed_atoms']} atoms placed by the relaxed mode (see "
                         "relaxed_atoms in the predicted-structures CSV)")
            quality.append({"target_node_count": c.node_count, "rank": c.rank, "label": c.label,
                            "file": os.path.relpath(path, ctx.dir), "n_atoms": st.n_atoms,
                            "shortest_contact": q.get("shortest_contact"),
                            "shortest_contact_pair": q.get("shortest_contact_pair"),
                            "min_distance_ratio": q.get("min_distance_ratio"),
                            "max_abs_bond_deviation": q.get("max_abs_bond_deviation"),
                            "relaxed_atoms": q.get("relaxed_atoms"),
                            "bond_length_deviations": _compact(q.get("bond_length_deviations")),
                            "node_coordination_deviations": _compact(q.get("node_coordination_deviations")),
                            "valid": valid, "build_attempts": attempts,
                            "n_components": getattr(validity, "n_components", None),
                            "radius_of_gyration": getattr(validity, "rg", None),
                            "invalid_reasons": "; ".join(getattr(validity, "reasons", ()) or ()) or None})
            bar.update(1)
    ctx.data["built_structures"] = built
    ctx.data["structure_quality"] = quality
    ctx.output("predicted_structures", out_dir)
    if quality:
        path = ctx.path(f"{ctx.stem}_predicted_structures.csv")
        _write_csv(path, quality)
        ctx.output("predicted_structures_csv", path)
    n_valid = sum(1 for b in built if b["valid"])
    return f"{len(built)} of {len(cands)} structures built, {n_valid} valid"


def _compact(value):
    """A dict of deviations as one CSV cell: 'Pb-I=+0.012;Pb-O=-0.030' (None stays None)."""
    if not isinstance(value, dict):
        return value
    return ";".join(f"{k}={v:+.4g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in sorted(value.items()))


def _write_csv(path: Path, rows: list[dict]) -> Path:
    return write_csv(path, rows)


def _sigma_tables(pred) -> tuple[dict, dict]:
    """Debye-Waller sigma (angstrom) per label and element pair from the prediction's table:
    ({observed label: {(a, b): sigma}}, {(node count, rank, label): {(a, b): sigma}})."""
    observed: dict = {}
    predicted: dict = {}
    for r in getattr(pred, "debye_waller", None) or []:
        sigma = r.get("sigma")
        if sigma is None:
            continue
        pair = (r["element_a"], r["element_b"])
        if r.get("source") == "predicted":
            key = (r.get("node_count"), r.get("candidate_rank"), r.get("label"))
            predicted.setdefault(key, {})[pair] = float(sigma)
        else:
            observed.setdefault(r.get("label"), {})[pair] = float(sigma)
    return observed, predicted


def _write_profile(path: Path, comp, source: str) -> Path:
    """Component profile as ref 4.10: '# Source', '# Columns: q, S(q)_avg, S(q)_std, S(q)_se', %.8f."""
    import numpy as np

    header = (f"Source: {source}\nLabel: {comp.label}\nStructures used: {comp.n_structures} of "
              f"{comp.n_library} ({comp.source})\nUnits: q in 1/angstrom, S(q) in electrons^2\n"
              "Columns: q, S(q)_avg, S(q)_std, S(q)_se")
    with atomic_path(path) as tmp:
        np.savetxt(tmp, np.column_stack([comp.q, comp.intensity, comp.std, comp.se]), fmt="%.8f", header=header)
    return path


def _step_saxs(ctx: _Context):
    import numpy as np

    cfg = ctx.cfg
    sc = cfg.saxs
    if not sc.enabled:
        raise _Skip("[saxs] enabled = false")
    pred = ctx.data.get("prediction")
    if pred is None:
        raise _Skip("no prediction (the mixture weights come from it)")
    average_component, single_component, mix_components = _stage(
        "saxs", "average_component", "single_component", "mix_components")
    library = ctx.data["library"]
    q = np.linspace(sc.q_min, sc.q_max, sc.q_points)
    sig_obs, sig_pred = _sigma_tables(pred)
    hist = pred.histogram_tables()
    cutoffs = {f"{c.a}-{c.b}": c.distance for c in cfg.clusters.cutoffs if c.level == 0}
    nodes = list(getattr(pred, "node_elements", []) or [])
    comp_dir = ctx.path("saxs_components", "x").parent
    components, sources, weights, rows = [], [], [], []
    observed_rows = [r for r in hist["observed"] if r["raw_weight"] > 0]
    built = {(b["candidate"].node_count, b["candidate"].rank, b["candidate"].label): b
             for b in ctx.data.get("built_structures", [])}
    predicted = [c for c in getattr(pred, "candidates", []) if c.weight > 0]
    with ctx.bar(len(observed_rows) + len(predicted), "SAXS components") as bar:
        for r in observed_rows:
            label = r["label"]
            if sc.observed_components == "average":
                comp = average_component(label, library.structures(label), q,
                                         max_structures=sc.max_structures_per_label or None, method=sc.method,
                                         bin_width=sc.bin_width)
            else:
                rep = _representative_of_label(library, label)
                comp = single_component(label, rep, q, sigma=sig_obs.get(label), dw_pairs=sc.dw_pairs,
                                        cutoffs=cutoffs, node_elements=nodes, method=sc.method,
                                        bin_width=sc.bin_width)
            path = _write_profile(comp_dir / f"observed_{_safe_name(label)}.txt", comp,
                                  f"observed label {label} ({comp.source})")
            components.append(comp)
            sources.append("observed")
            weights.append(float(r["raw_weight"]))
            rows.append({"label": label, "source": "observed", "kind": comp.source, "weight": float(r["raw_weight"]),
                         "n_structures": comp.n_structures, "n_library": comp.n_library,
                         "profile": os.path.relpath(path, ctx.dir)})
            bar.update(1)
        for c in predicted:
            key = (c.node_count, c.rank, c.label)
            b = built.get(key)
            if b is None or not b.get("valid", True):  # a structure that failed validation never enters
                why = "has no built structure" if b is None else "is not a valid cluster (see the structures step)"
                ctx.warn(f"saxs: predicted {c.label} {why}; left out of the mixture")
                bar.update(1)
                continue
            st = b["structure"]
            comp = single_component(c.label, (st.symbols, st.positions), q, sigma=sig_pred.get(key),
                                    dw_pairs=sc.dw_pairs, cutoffs=cutoffs, node_elements=nodes, method=sc.method,
                                    bin_width=sc.bin_width)
            stem = Path(b["path"]).stem
            path = _write_profile(comp_dir / f"predicted_{stem}.txt", comp,
                                  f"predicted structure {os.path.relpath(b['path'], ctx.dir)}")
            components.append(comp)
            sources.append("predicted")
            weights.append(float(c.weight))
            rows.append({"label": c.label, "source": "predicted", "kind": comp.source, "weight": float(c.weight),
                         "n_structures": 1, "n_library": 1, "profile": os.path.relpath(path, ctx.dir),
                         "structure": os.path.relpath(b["path"], ctx.dir)})
            bar.update(1)
    if not components:
        raise _Skip("no component with a positive population weight")
    ctx.output("saxs_components", comp_dir)
    obs_idx = [k for k, s in enumerate(sources) if s == "observed"]
    saxs: dict = {"q": q, "components": components, "component_rows": rows}
    if obs_idx:
        saxs["observed_intensity"], w_obs = mix_components([components[k] for k in obs_idx],
                                                          [weights[k] for k in obs_idx])
        for k, w in zip(obs_idx, w_obs):
            rows[k]["observed_only_weight"] = float(w)
    saxs["combined_intensity"], w_all = mix_components(components, weights)
    for k, w in enumerate(w_all):
        rows[k]["combined_weight"] = float(w)
    _write_csv(ctx.path(f"{ctx.stem}_saxs_components.csv"), rows)
    ctx.output("saxs_components_csv", ctx.dir / f"{ctx.stem}_saxs_components.csv")
    text = f"{len(obs_idx)} observed and {len(components) - len(obs_idx)} predicted components"
    if sc.experimental:
        try:
            text += "; " + _fit_experimental(ctx, saxs, components, weights, obs_idx)
        except StageUnavailable as exc:
            ctx.warn(f"saxs: fit to the experimental data skipped: {exc}")
            text += "; fit skipped"
    columns = {"q": q, "observed_raw_model_intensity": saxs.get("observed_intensity"),
               "raw_model_intensity": saxs["combined_intensity"],
               "observed_fitted_model_intensity": saxs.get("observed_fitted_on_grid"),
               "fitted_model_intensity": saxs.get("combined_fitted_on_grid")}
    exp = saxs.get("experimental_on_grid")
    if exp is not None:
        columns["experimental_intensity"] = exp
        if "fitted_model_intensity" in columns:
            columns["residual"] = exp - columns["fitted_model_intensity"]
    _write_csv(ctx.path(f"{ctx.stem}_saxs.csv"), [
        {k: (None if v is None or not np.isfinite(v[i]) else float(v[i])) for k, v in columns.items() if v is not None}
        for i in range(len(q))])
    ctx.output("saxs_csv", ctx.dir / f"{ctx.stem}_saxs.csv")
    ctx.data["saxs"] = saxs
    return text


def _representative_of_label(library, label):
    obs = library[label]
    structures = library.structures(label)
    files = [str(f) for f in getattr(obs, "files", [])]
    rep = getattr(obs, "representative_path", None)
    if rep is not None and str(rep) in files and len(files) == len(structures):
        return structures[files.index(str(rep))]
    return structures[0]


def _fit_experimental(ctx: _Context, saxs: dict, components, weights, observed_idx) -> str:
    """Load (and stitch) the experimental files; fit the observed-only and the combined mixture
    (weighted least squares with the sigma column, non-negative scale, constant background,
    optional solvent curve; mixture weights fixed or refit by NNLS / Pearson)."""
    import numpy as np

    cfg = ctx.cfg
    sc = cfg.saxs
    load_saxs_data, stitch_saxs = _stage("saxs.expdata", "load_saxs_data", "stitch_saxs")
    fit_saxs = _stage("saxs.fit", "fit_saxs")
    unit = {"auto": None, "1/A": "A^-1", "1/nm": "nm^-1"}[sc.q_units]
    files = [str(cfg.resolve_path(p)) for p in sc.experimental]
    datasets = [load_saxs_data(f, q_unit=unit) for f in files]
    data = stitch_saxs(datasets) if len(datasets) > 1 else datasets[0]
    saxs["experimental"] = data
    if len(datasets) > 1:
        factors = ", ".join(f"{Path(f).name} x{x:.4g}" for f, x in zip(files, getattr(data, "scale_factors", ())))
        ctx.warn(f"saxs: stitched {len(files)} experimental files by overlap scaling ({factors})")
    lo = max(sc.fit_q_min if sc.fit_q_min is not None else sc.q_min, float(data.q[0]), sc.q_min)
    hi = min(sc.fit_q_max if sc.fit_q_max is not None else sc.q_max, float(data.q[-1]), sc.q_max)
    if not lo < hi:
        raise ConfigError(cfg.source, "saxs", "fit_q_max", f"the fit range [{lo:g}, {hi:g}] 1/A is empty: the "
                          f"model covers {sc.q_min:g}..{sc.q_max:g} and the data {data.q[0]:.4g}..{data.q[-1]:.4g}")
    solvent = None
    if sc.solvent_file is not None:
        solvent = load_saxs_data(str(cfg.resolve_path(sc.solvent_file)), q_unit=unit)
    refit = None if sc.weights == "population" else sc.weights
    fits = {}
    sets = {"observed": [k for k in observed_idx], "combined": list(range(len(components)))}
    for name, idx in sets.items():
        if not idx:
            continue
        refine = sc.refine_dw_scale and any(getattr(components[k], "sigma", None) for k in idx)
        fits[name] = fit_saxs(data, [components[k] for k in idx], [weights[k] for k in idx], solvent=solvent,
                              q_range=(lo, hi), background=sc.background,
                              background_degree=sc.background_degree, refit_weights=refit,
                              refine_sigma_scale=refine)
    saxs["fit"] = fits
    saxs["fit_q_range"] = (lo, hi)
    # the data on the model grid (inside the data range) for the SAXS CSV
    q = saxs["q"]
    inside = (q >= data.q[0]) & (q <= data.q[-1])
    saxs["experimental_on_grid"] = np.where(inside, np.interp(q, data.q, data.intensity), np.nan)
    for name, f in fits.items():
        on_grid = np.full(q.shape, np.nan)
        m = (q >= f.q[0]) & (q <= f.q[-1])
        on_grid[m] = np.interp(q[m], f.q, f.fitted)
        saxs[f"{name}_fitted_on_grid"] = on_grid
    parts = [f"{name}: chi2_red {f.chi2_reduced:.3g}, Pearson {f.pearson:.4f}" for name, f in fits.items()]
    return f"fit over q {lo:.3g}..{hi:.3g} 1/A (" + "; ".join(parts) + ")"


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
    state = _result_from_ctx(ctx, steps=[r for r in ctx.records if r.status != "pending" or r is ctx.step])
    state.run_dir = ctx.final_dir
    state.info = dict(ctx.data.get("_info", {}), wall_seconds=round(time.perf_counter() - ctx.t_start, 1))
    if rc.html:
        ctx.output("report_html", write_html_report(state, ctx.path(f"{ctx.stem}_report.html")))
        done.append("HTML")
    if rc.pptx:
        ctx.output("report_pptx", write_pptx_report(state, ctx.path(f"{ctx.stem}_report.pptx")))
        done.append("PowerPoint")
    return " and ".join(done)


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

#: steps whose absence makes every later step pointless
_REQUIRED = {"frames", "dynamics"}


def _result_from_ctx(ctx: _Context, steps) -> RunResult:
    return RunResult.from_data(ctx.dir, ctx.cfg, ctx.data, steps=steps, outputs=ctx.outputs,
                               warnings=ctx.warnings, info=ctx.data.get("_info", {}))


# ---------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------
def _preflight(cfg: RunConfig, steps) -> None:
    """Cheap checks of the inputs before any folder is made or anything long runs: the cluster
    rules, the energy file and the experimental SAXS files. A problem is a ConfigError naming
    the run-file key (and the stage's message, which names the file and line)."""
    def wanted(step):
        return steps is None or step in steps

    if wanted("dynamics"):
        try:
            _rules(cfg)
        except StageUnavailable:
            pass
        if cfg.frames.energy_file is not None:
            try:
                read_ener = _stage("io.energy", "read_cp2k_ener")
                read_ener(str(cfg.resolve_path(cfg.frames.energy_file)))
            except StageUnavailable:
                pass
            except (ValueError, OSError) as exc:
                raise ConfigError(cfg.source, "frames", "energy_file", str(exc)) from None
    if wanted("saxs") and cfg.saxs.enabled and cfg.predict.enabled and (cfg.saxs.experimental or cfg.saxs.solvent_file):
        unit = {"auto": None, "1/A": "A^-1", "1/nm": "nm^-1"}[cfg.saxs.q_units]
        try:
            load = _stage("saxs.expdata", "load_saxs_data")
        except StageUnavailable:
            return
        ranges = []
        for key, paths in (("experimental", cfg.saxs.experimental), ("solvent_file", [cfg.saxs.solvent_file])):
            for p in paths:
                if p is None:
                    continue
                try:
                    data = load(str(cfg.resolve_path(p)), q_unit=unit)
                except (ValueError, OSError) as exc:
                    raise ConfigError(cfg.source, "saxs", key, str(exc)) from None
                if key == "experimental":
                    ranges.append((float(data.q[0]), float(data.q[-1])))
        if ranges:
            sc = cfg.saxs
            d_lo, d_hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
            lo = max(sc.fit_q_min if sc.fit_q_min is not None else sc.q_min, sc.q_min, d_lo)
            hi = min(sc.fit_q_max if sc.fit_q_max is not None else sc.q_max, sc.q_max, d_hi)
            if not lo < hi:
                raise ConfigError(cfg.source, "saxs", "fit_q_max" if sc.fit_q_max is not None else "q_max",
                                  f"the fit range [{lo:g}, {hi:g}] 1/A is empty: the model covers "
                                  f"{sc.q_min:g}..{sc.q_max:g} and the data {d_lo:.4g}..{d_hi:.4g} 1/A")


def run(config: RunConfig | str | os.PathLike, *, output_dir: str | os.PathLike | None = None,
        threads: int | None = None, progress: bool | None = None, keep_failed: bool = False,
        steps: tuple[str, ...] | None = None, log: Callable[[str], None] | None = None) -> RunResult:
    """Run the whole job and return a :class:`RunResult`.

    config : RunConfig or path of a TOML run file (relative paths resolve against its folder).
    output_dir : parent folder of the run folder (default: ``[run] output_dir``).
    threads : C++ kernel threads (default ``[run] threads``; 0 = all available).
    progress : progress bars on stderr (default ``[run] progress``).
    steps : run only these steps (names of :data:`STEPS`); the others are recorded as skipped.
    log : called with one line per finished step (the CLI prints them).
    """
    from .. import set_num_threads

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
    resolved = cfg.resolved()
    _preflight(resolved, steps)
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
            ctx.data["_info"] = info
            resolved.write_toml(work_dir / "run.toml", template=False)
            ctx.outputs["run_file"] = "run.toml"
            for rec in records:
                ctx.step = rec
                func = _STEP_FUNCS[rec.name]
                t0 = time.perf_counter()
                if steps is not None and rec.name not in steps:
                    rec.status, rec.message = "skipped", "not requested"
                else:
                    try:
                        rec.message = func(ctx) or ""
                        rec.status = "done"
                    except _Skip as why:
                        rec.status, rec.message = "skipped", str(why)
                    except StageUnavailable as why:
                        if rec.name in _REQUIRED:
                            raise
                        rec.status, rec.message = "skipped", str(why)
                        ctx.warn(f"{rec.name}: {why}")
                rec.seconds = time.perf_counter() - t0
                if log is not None:
                    log(f"{rec.name:<13s} {rec.status:<8s} {rec.seconds:7.2f} s  {rec.message}")
            ctx.step = None
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
            ctx.outputs["run_info"] = "run_info.json"
            (work_dir / "summary.txt").write_text(_summary_text(result) + "\n", encoding="utf-8")
            ctx.outputs["summary"] = "summary.txt"
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
