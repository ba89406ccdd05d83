"""Prediction of larger clusters: orchestration, bootstrap uncertainty, validation, tables.

``predict_clusters(library, lifetime_table, rules, target_node_counts or max_node_count)``
reads the structure library (ref §4.1), joins it with the dynamics lifetime table (§4.2),
fits the ridge models (§4.3), generates, filters, scores, shares and prunes candidates (§4.4,
§4.5), anchors the predicted mass to the observed size tail (§4.9), estimates Debye-Waller
sigma (§5.3), and adds what the reference lacks:

* uncertainty for every predicted quantity: a bootstrap over training rows (fixed seed),
  refitting every model and re-predicting each retained candidate; mean, std and the 5/50/95
  percentiles, plus how often the full pipeline retains that label (``selection_frequency``);
* a leave-largest-size-out validation: train without the largest observed node count,
  predict it, and compare labels, shares, mass and properties with what was observed;
* requested target sizes at or below the largest observed size raise (or, with
  ``observed_targets="warn"``, are dropped with a warning), never a silent empty result (V1).

Units: counts per frame, fractions, fs, 1/ps, angstrom.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write, to_jsonable
from .._io import write_csv as _write_csv
from ..errors import InsufficientDataError
from ..library.read import (
    LIFETIME_FIELDS,
    AtomTypes,
    StructureLibrary,
    TrainingRow,
    build_training_rows,
    load_lifetime_table,
    parse_label_counts,
    read_library,
)
from ..predict.candidates import PREDICTED_FIELDS, Candidate
from .population import POPULATION_MODELS
from .uncertainty import SIZE_KEYS

#: population model of ``predict_clusters`` and of every run unless configured otherwise
DEFAULT_POPULATION_MODEL = "fisher"
#: why: the measurement behind the default (docs/predict.md, "Measured")
DEFAULT_POPULATION_MODEL_REASON = (
    "default chosen by held-out validation (train on node counts <= 6, predict 7-12, compare with the same "
    "trajectory; docs/predict.md 'Measured'): on nine alkali-halide melts (NaCl, KCl, KBr, NaBr, 1100-1450 K, "
    "1000 and 4000 ions) the Fisher droplet law was within a factor 1.06-1.91 of the observed clusters per frame at "
    "every size, the 3-term law without log n turned upward and its geometric fallback was off by up to 5.3x, "
    "and the reference ridge predicted 0 clusters at every size"
)

RESULT_VERSION = 1

PREDICTIONS_CSV_COLUMNS = (
    "target_node_count",
    "rank",
    "label",
    "predicted_population_share",
    "predicted_mean_count_per_frame",
    "predicted_occupancy_fraction",
    "predicted_mean_lifetime_fs",
    "predicted_association_rate_per_ps",
    "predicted_dissociation_rate_per_ps",
    "predicted_mean_radius_of_gyration",
    "predicted_mean_max_radius",
    "predicted_stability_score",
    "source_label",
    "notes",
)
HISTOGRAM_COLUMNS = (
    "label",
    "source",
    "node_count",
    "mean_lifetime_fs",
    "mean_count_per_frame",
    "mean_max_radius",
    "raw_weight",
    "normalized_weight",
)


def _resolve_timestep(timestep_fs, lifetime_table, warnings) -> float:
    if timestep_fs is None:
        for attr in ("timestep_fs", "frame_timestep_fs"):
            value = getattr(lifetime_table, attr, None)
            if value is not None:
                timestep_fs = value
                break
    if timestep_fs is None:
        warnings.append("frame timestep not given and not found on the lifetime table; using the default 0.5 fs")
        timestep_fs = 0.5
    from .._validate import as_timestep_fs

    return as_timestep_fs(timestep_fs)


def resolve_target_node_counts(
    max_observed: int, target_node_counts=None, max_node_count=None, observed_targets: str = "error", warnings=None
) -> list:
    """Target sizes to predict.

    With ``target_node_counts``: positive integers; sizes <= ``max_observed`` raise ValueError
    (``observed_targets="error"``) or are dropped with a warning (``"warn"``). With
    ``max_node_count``: ``max_observed+1 .. max_node_count``. With neither:
    ``max_observed+1 .. max_observed+2``. An empty result is always an error (ref V1).
    """
    if observed_targets not in ("error", "warn"):
        raise ValueError(f"observed_targets must be 'error' or 'warn', got {observed_targets!r}")
    if target_node_counts is not None and max_node_count is not None:
        raise ValueError("give target_node_counts or max_node_count, not both")
    if target_node_counts is None:
        if max_node_count is None:
            return [max_observed + 1, max_observed + 2]
        if isinstance(max_node_count, bool) or not isinstance(max_node_count, (int, np.integer)):
            raise ValueError(f"max_node_count must be an integer, got {max_node_count!r}")
        if max_node_count <= max_observed:
            raise ValueError(
                f"max_node_count must exceed the largest observed node count {max_observed}, got {max_node_count}"
            )
        return list(range(max_observed + 1, int(max_node_count) + 1))
    if isinstance(target_node_counts, (int, np.integer)):
        target_node_counts = [target_node_counts]
    sizes = []
    for s in target_node_counts:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s <= 0:
            raise ValueError(f"target_node_counts must be positive integers, got {list(target_node_counts)!r}")
        sizes.append(int(s))
    sizes = sorted(set(sizes))
    low = [s for s in sizes if s <= max_observed]
    if low:
        msg = (
            f"target node counts {low} are at or below the largest observed node count {max_observed}; "
            "only larger sizes are predicted"
        )
        if observed_targets == "error":
            raise ValueError(msg + " (pass observed_targets='warn' to drop them)")
        if warnings is not None:
            warnings.append(msg + "; they were dropped")
    sizes = [s for s in sizes if s > max_observed]
    if not sizes:
        raise ValueError(
            f"no target node count above the largest observed node count {max_observed} remains, got "
            f"{list(target_node_counts)!r}"
        )
    return sizes


from .reference import (  # noqa: E402,F401  (moved whole; re-exported here)
    _fit_and_predict,
    bootstrap_uncertainty,
    compare_with_observed,
    leave_largest_size_out,
)


@dataclass
class PredictionResult:
    """Everything ``predict_clusters`` produced; JSON-serialisable via ``to_dict``/``from_dict``.

    candidates : retained predictions (``Candidate``), ordered by size descending then rank.
    training_rows : ``TrainingRow`` objects; lifetime_table : the full dynamics table rows.
    mass : tail-anchoring details; validation : leave-largest-size-out report (or None).
    debye_waller : Debye-Waller table rows (see ``debye_waller.py``).
    """

    node_elements: list
    non_node_elements: list
    label_elements: list
    training_rows: list
    lifetime_table: list
    candidates: list
    rejected: list
    pruned: list
    mass: dict
    target_node_counts: list
    max_observed_node_count: int
    max_predicted_node_count: int | None
    timestep_fs: float
    settings: dict
    warnings: list = field(default_factory=list)
    validation: dict | None = None
    debye_waller: list = field(default_factory=list)
    bootstrap: dict = field(default_factory=dict)
    population_model: str = "reference"
    population_choice: dict = field(default_factory=dict)
    size_predictions: list = field(default_factory=list)
    size_models: dict = field(default_factory=dict)

    # ---- tables
    def predictions_table(self) -> list:
        """Rows with the ref §4.10 predictions CSV columns, then uncertainty columns
        (``<quantity>_std/_p05/_p95``), counts and selection frequency."""
        out = []
        for c in self.candidates:
            values = {
                "target_node_count": c.node_count,
                "rank": c.rank,
                "label": c.label,
                "predicted_population_share": c.share,
                **{f"predicted_{k}": c.predicted.get(k) for k in PREDICTED_FIELDS},
                "predicted_stability_score": c.score,
                "source_label": c.source_label or "",
                "notes": c.notes,
            }
            row = {k: values.pop(k) for k in PREDICTIONS_CSV_COLUMNS}
            row.update(values)  # semiaxes a, b, c
            row.update(
                route=c.route,
                element_counts=" ".join(f"{e}:{n}" for e, n in c.counts.items()),
                predicted_weight=c.weight,
                reference_label=c.reference_label or "",
            )
            for key in (*PREDICTED_FIELDS, "share", "weight"):
                u = c.uncertainty.get(key) or {}
                for stat in ("std", "p05", "p95"):
                    row[f"{key}_{stat}"] = u.get(stat)
            row["selection_frequency"] = c.uncertainty.get("selection_frequency")
            out.append(row)
        return out

    def sizes_table(self) -> list:
        """One row per predicted node count (size-resolved models): total clusters per frame
        with its 5/50/95 % bootstrap percentiles, Rg, max radius, semiaxes (angstrom),
        lifetime (fs, and whether it sits at the frame-spacing floor), rates (1/ps), the most
        probable labels with their within-size shares, flags, and the population law actually
        used (``population_model``; after a fallback the fallback law), the one requested and why."""
        out = []
        choice = self.population_choice or {}
        used = choice.get("used") or self.population_model  # the law actually used (after a fallback)
        for p in self.size_predictions:
            row = {
                "node_count": p["node_count"],
                "population_model": used,
                "population_model_requested": self.population_model,
            }
            for key in SIZE_KEYS:
                row[key] = p.get(key)
                for q in ("p05", "p95"):
                    row[f"{key}_{q}"] = p.get(f"{key}_{q}")
            row["lifetime_at_dt_floor"] = p.get("lifetime_at_dt_floor")
            top = sorted(p.get("shares", {}).items(), key=lambda t: (-t[1], t[0]))[:5]
            row["top_shares"] = " ".join(f"{k}:{v:.4f}" for k, v in top)
            row["flags"] = " ".join(p.get("flags", []))
            row["population_model_reason"] = choice.get("reason")
            out.append(row)
        return out

    def combined_lifetime_table(self) -> list:
        """Observed dynamics rows (``source="observed"``) then predicted rows, with the ref §3.7
        lifetime columns plus source, node_count, rank, predicted_population_share and the
        5/95 % lifetime bounds of predicted rows. Count columns of predicted rows are None."""
        rows = []
        types_nodes = set(self.node_elements)
        for r in self.lifetime_table:
            d = {k: r.get(k) for k in LIFETIME_FIELDS}
            try:
                n = sum(v for e, v in parse_label_counts(r["label"]).items() if e in types_nodes)
            except ValueError:
                n = None
            d.update(
                source="observed",
                node_count=n,
                rank=None,
                predicted_population_share=None,
                mean_lifetime_fs_p05=None,
                mean_lifetime_fs_p95=None,
            )
            rows.append(d)
        label_set = set(self.label_elements)
        for c in self.candidates:
            u = c.uncertainty.get("mean_lifetime_fs") or {}
            d = {k: None for k in LIFETIME_FIELDS}
            d.update(
                label=c.label,
                cluster_size=int(sum(v for e, v in c.counts.items() if e in label_set)),
                mean_lifetime_fs=c.predicted["mean_lifetime_fs"],
                association_rate_per_ps=c.predicted["association_rate_per_ps"],
                dissociation_rate_per_ps=c.predicted["dissociation_rate_per_ps"],
                occupancy_fraction=c.predicted["occupancy_fraction"],
                mean_count_per_frame=c.predicted["mean_count_per_frame"],
                source="predicted",
                node_count=c.node_count,
                rank=c.rank,
                predicted_population_share=c.share,
                mean_lifetime_fs_p05=u.get("p05"),
                mean_lifetime_fs_p95=u.get("p95"),
            )
            rows.append(d)
        return rows

    def histogram_tables(self) -> dict:
        """``{"observed": rows, "observed_plus_predicted": rows}`` with the ref §4.10 histogram
        columns; weights from ref §4.9; rows with weight <= 0 dropped."""
        obs = [
            {
                "label": r.label,
                "source": "observed",
                "node_count": r.node_count,
                "mean_lifetime_fs": r.mean_lifetime_fs,
                "mean_count_per_frame": r.mean_count_per_frame,
                "mean_max_radius": r.mean_max_radius,
                "raw_weight": r.observed_weight,
            }
            for r in self.training_rows
            if r.observed_weight > 0
        ]
        pred = [
            {
                "label": c.label,
                "source": "predicted",
                "node_count": c.node_count,
                "mean_lifetime_fs": c.predicted["mean_lifetime_fs"],
                "mean_count_per_frame": c.predicted["mean_count_per_frame"],
                "mean_max_radius": c.predicted["mean_max_radius"],
                "raw_weight": c.weight,
            }
            for c in self.candidates
            if c.weight > 0
        ]

        def norm(rows):
            total = sum(r["raw_weight"] for r in rows)
            return [dict(r, normalized_weight=r["raw_weight"] / total if total > 0 else 0.0) for r in rows]

        return {
            "observed": norm([dict(r) for r in obs]),
            "observed_plus_predicted": norm([dict(r) for r in obs] + pred),
        }

    # ---- serialisation
    def to_dict(self) -> dict:
        d = {"version": RESULT_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "training_rows":
                value = [r.to_dict() for r in value]
            elif f.name == "candidates" or f.name == "pruned":
                value = [c.to_dict() for c in value]
            d[f.name] = value
        return to_jsonable(d, nan_as_null=False)

    @classmethod
    def from_dict(cls, data: Mapping) -> PredictionResult:
        if data.get("version") != RESULT_VERSION:
            raise ValueError(f"prediction result version {RESULT_VERSION} expected, got {data.get('version')!r}")
        kw: dict[str, Any] = {f.name: data.get(f.name) for f in dataclasses.fields(cls) if f.name in data}
        kw["training_rows"] = [TrainingRow.from_dict(r) for r in data["training_rows"]]
        kw["candidates"] = [Candidate.from_dict(c) for c in data["candidates"]]
        kw["pruned"] = [Candidate.from_dict(c) for c in data.get("pruned", [])]
        mass = dict(kw.get("mass") or {})
        mass["mass_by_size"] = {int(k): v for k, v in (mass.get("mass_by_size") or {}).items()}
        kw["mass"] = mass
        if kw.get("validation") and isinstance(kw["validation"].get("sizes"), dict):
            kw["validation"]["sizes"] = {int(k): v for k, v in kw["validation"]["sizes"].items()}
        return cls(**kw)

    def to_pandas(self):
        """The predictions table (one row per candidate, the ``*_predictions.csv`` columns) as a
        ``pandas.DataFrame`` (pandas is optional)."""
        from .._io import to_pandas

        return to_pandas(self.predictions_table())

    def save(self, out_dir, stem: str = "prediction") -> dict:
        """Write ``<stem>.json``, ``<stem>_predictions.csv``, ``<stem>_lifetime_combined.csv``,
        ``<stem>_observed_histogram.csv``, ``<stem>_observed_plus_predicted_structures_histogram.csv``
        and ``<stem>_debye_waller.csv`` into ``out_dir``; returns {kind: path}."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": out / f"{stem}.json"}
        atomic_write(paths["json"], json.dumps(self.to_dict(), indent=1))
        hist = self.histogram_tables()
        tables = {
            "predictions": (self.predictions_table(), None),
            "lifetime_combined": (self.combined_lifetime_table(), None),
            "observed_histogram": (hist["observed"], HISTOGRAM_COLUMNS),
            "observed_plus_predicted_structures_histogram": (hist["observed_plus_predicted"], HISTOGRAM_COLUMNS),
            "debye_waller": (self.debye_waller, None),
        }
        if self.size_predictions:
            tables["sizes"] = (self.sizes_table(), None)
        for kind, (rows, cols) in tables.items():
            path = out / f"{stem}_{kind}.csv"
            write_csv(path, rows, cols)
            paths[kind] = path
        return paths

    @classmethod
    def load(cls, path) -> PredictionResult:
        return cls.from_dict(json.loads(Path(path).read_text()))


def write_csv(path, rows, columns=None) -> None:
    """Write dict rows to CSV (None -> empty cell, floats with 12 significant digits, CRLF rows
    as before): :func:`clusterdynamicsml._io.write_csv`."""
    _write_csv(path, rows, columns, float_format="%.12g", lineterminator="\r\n")


def _checked_share_threshold(candidates_per_size, share_threshold, n_bootstrap) -> float:
    """Validate ``predict_clusters``' counts (candidates per size >= 1, bootstrap replicates
    >= 0) and share threshold (in [0, 1]); returns the threshold as a float."""
    if (
        isinstance(candidates_per_size, bool)
        or not isinstance(candidates_per_size, (int, np.integer))
        or candidates_per_size < 1
    ):
        raise ValueError(f"candidates_per_size must be an integer >= 1, got {candidates_per_size!r}")
    try:
        threshold = float(share_threshold)
    except (TypeError, ValueError):
        raise ValueError(f"share_threshold must be a number in [0, 1], got {share_threshold!r}") from None
    if not (0.0 <= threshold <= 1.0):
        raise ValueError(f"share_threshold must be a number in [0, 1], got {share_threshold!r}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be an integer >= 0, got {n_bootstrap!r}")
    return threshold


def predict_clusters(
    library,
    lifetime_table,
    rules,
    target_node_counts=None,
    max_node_count=None,
    *,
    candidates_per_size: int = 3,
    share_threshold: float = 0.02,
    timestep_fs: float | None = None,
    n_bootstrap: int = 200,
    seed: int = 0,
    validate: bool = True,
    observed_targets: str = "error",
    debye_waller: bool = True,
    dw_bootstrap: int | None = None,
    population_transform: str = "reference",
    population_model: str | None = None,
    box_lengths=None,
    model_error: dict | None = None,
) -> PredictionResult:
    """Predict larger clusters from a structure library and a dynamics lifetime table.

    library : library folder path or ``StructureLibrary`` (``read_library``).
    lifetime_table : ``DynamicsResult``, lifetime rows, ``{label: row}`` or a ``*_lifetime.csv``.
    rules : ``ClusterRules`` (node / linker / shell elements, cutoffs, shells_in_label).
    target_node_counts / max_node_count : sizes to predict (see ``resolve_target_node_counts``).
    candidates_per_size : top-k per size (>= 1, default 3).
    share_threshold : pruning threshold on population shares (>= 0, default 0.02).
    timestep_fs : frame timestep (fs), the lower bound of predicted lifetimes; default from the
        lifetime table (``timestep_fs`` attribute) or 0.5 fs with a warning.
    n_bootstrap, seed : bootstrap replicates (0 disables) and the RNG seed.
    validate : run the leave-largest-size-out validation.
    debye_waller : estimate observed and predicted Debye-Waller sigma (needs
        ``saxs.rank_aligned_sigma``; skipped with a warning when it is missing).
    dw_bootstrap : bootstrap replicates of the sigma models (default: n_bootstrap).
    population_transform : "reference" (ref §4.3: log1p counts, identity occupancy) or "log"
        (log(y + 1e-4) for both; see ``ClusterPropertyModel``). The validation report tells
        which extrapolates better on a given data set (only with population_model="reference").
    population_model : "fisher" (default, ``DEFAULT_POPULATION_MODEL``), "cnt", "geometric"
        (size-resolved laws: ``population.py``, ``composition.py``, ``scaling.py``) or
        "reference" (the reference ridge, the same numbers as the reference tool path).
    box_lengths : box edge widths of the source trajectory (angstrom); predicted clusters whose
        max radius exceeds half the shortest are flagged.
    model_error : ``{"count_per_frame": k, "rg": k}``, the model-form error per node count
        beyond the observed sizes (log units) added to the bootstrap intervals of the
        size-resolved models; default ``predict.uncertainty.MODEL_ERROR_PER_NODE``, measured
        on held-out sizes of real trajectories (docs/predict.md). Zeros give the sampling
        uncertainty alone.

    With a size-resolved model the validation is the extrapolation validation of
    ``validate.py`` on ``validate.default_split`` (train on the small sizes, predict the
    largest well-observed ones, every model side by side); with "reference" it is the
    leave-largest-size-out report. ``population_choice`` records the model and why.

    Raises ValueError for bad parameters, fewer than 2 distinct observed node counts, or
    target sizes that leave nothing to predict.
    """
    threshold = _checked_share_threshold(candidates_per_size, share_threshold, n_bootstrap)
    warnings: list = []
    dt = _resolve_timestep(timestep_fs, lifetime_table, warnings)
    table = load_lifetime_table(lifetime_table)
    types = AtomTypes.from_rules(rules)
    if not isinstance(library, StructureLibrary):
        library = read_library(library, types, frame_labels=table.keys())
    warnings.extend(library.warnings)
    rows, join_warnings = build_training_rows(library, table)
    warnings.extend(w for w in join_warnings if w not in warnings)
    if not rows:
        raise InsufficientDataError("no training rows: the structure library has no label with node atoms")
    sizes_obs = sorted({r.node_count for r in rows})
    if len(sizes_obs) < 2:
        raise InsufficientDataError(
            f"at least 2 distinct observed node counts are needed to extrapolate, got {sizes_obs}"
        )
    max_obs = sizes_obs[-1]
    if population_transform not in ("reference", "log"):
        raise ValueError(f"population_transform must be 'reference' or 'log', got {population_transform!r}")
    population_model = DEFAULT_POPULATION_MODEL if population_model is None else population_model
    if population_model not in POPULATION_MODELS:
        raise ValueError(f"population_model must be one of {POPULATION_MODELS}, got {population_model!r}")
    if population_model != "reference":
        from .sized import predict_sized

        return predict_sized(
            library,
            lifetime_table,
            table,
            rows,
            rules,
            types,
            dt,
            warnings,
            target_node_counts=target_node_counts,
            max_node_count=max_node_count,
            observed_targets=observed_targets,
            candidates_per_size=int(candidates_per_size),
            share_threshold=threshold,
            n_bootstrap=int(n_bootstrap),
            seed=int(seed),
            validate=validate,
            debye_waller=debye_waller,
            dw_bootstrap=dw_bootstrap,
            population_model=population_model,
            model_reason=DEFAULT_POPULATION_MODEL_REASON
            if population_model == DEFAULT_POPULATION_MODEL
            else (
                "set by the user (population_model / [predict] population_model); "
                f"the default is {DEFAULT_POPULATION_MODEL!r}: {DEFAULT_POPULATION_MODEL_REASON}"
            ),
            box_lengths=box_lengths,
            model_error=model_error,
        )
    targets = resolve_target_node_counts(max_obs, target_node_counts, max_node_count, observed_targets, warnings)
    model, out = _fit_and_predict(rows, types, targets, dt, candidates_per_size, threshold, population_transform)
    cands = out["candidates"]
    for n in targets:
        if not any(c.node_count == n for c in cands):
            warnings.append(f"no candidate survived the filters at node count {n}")
    # the reference numbers stay as the reference tool gives them; the physical checks of the
    # size-resolved models (half box, chain / compact limits) still apply, as notes and warnings
    from .charges import check_candidate_charges
    from .scaling import check_candidate_shapes, learned_bond_length

    bond = learned_bond_length(library, types)
    warnings.extend(
        w for w in check_candidate_shapes(cands, bond, box_lengths, types.tracked_elements) if w not in warnings
    )
    warnings.extend(w for w in check_candidate_charges(cands, table, types) if w not in warnings)
    boot = {}
    if n_bootstrap and cands:
        boot = bootstrap_uncertainty(
            rows, types, cands, targets, dt, n_bootstrap, seed, candidates_per_size, threshold, population_transform
        )
    ok = [c.node_count for c in cands if c.share >= threshold and c.predicted["mean_lifetime_fs"] >= dt]
    validation = None
    if validate:
        validation = leave_largest_size_out(
            rows, types, dt, candidates_per_size, threshold, min(n_bootstrap, 50), seed, population_transform
        )
    dw_rows = []
    if debye_waller:
        from ..predict import debye_waller as dwmod

        dw_rows = dwmod.debye_waller_table(
            library, rows, cands, types, n_bootstrap=n_bootstrap if dw_bootstrap is None else dw_bootstrap, seed=seed
        )
    settings = {
        "candidates_per_size": int(candidates_per_size),
        "share_threshold": threshold,
        "timestep_fs": dt,
        "n_bootstrap": int(n_bootstrap),
        "seed": int(seed),
        "observed_targets": observed_targets,
        "library": library.root,
        "ridge_lambda": 1e-6,
        "population_transform": population_transform,
        "population_model": "reference",
        "bond_length": bond,
        "box_lengths": None if box_lengths is None else [float(v) for v in box_lengths],
    }
    return PredictionResult(
        node_elements=list(types.node_elements),
        non_node_elements=list(model.non_node_elements_),
        label_elements=list(types.label_elements),
        training_rows=rows,
        lifetime_table=list(table.values()),
        candidates=cands,
        rejected=out["rejected"],
        pruned=out["pruned"],
        mass=out["mass"],
        target_node_counts=targets,
        max_observed_node_count=max_obs,
        max_predicted_node_count=max(ok) if ok else None,
        timestep_fs=dt,
        settings=settings,
        warnings=warnings,
        validation=validation,
        debye_waller=dw_rows,
        bootstrap=boot,
        population_model="reference",
        population_choice={
            "model": "reference",
            "reason": "requested (population_model='reference': the reference tool's ridge)",
        },
    )
