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
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_write, to_jsonable
from .._io import write_csv as _write_csv
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
from ..predict.candidates import (
    PREDICTED_FIELDS,
    Candidate,
    composition_distance,
    predict_candidates,
    share_weight,
    tail_anchored_mass,
)
from ..predict.models import ClusterPropertyModel

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
HISTOGRAM_COLUMNS = ("label", "source", "node_count", "mean_lifetime_fs", "mean_count_per_frame", "mean_max_radius", "raw_weight", "normalized_weight")
_PERCENTILES = (5, 50, 95)


def _summary(values) -> dict:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "std": None, "p05": None, "p50": None, "p95": None, "n": 0}
    p = np.percentile(v, _PERCENTILES)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0, "p05": float(p[0]), "p50": float(p[1]), "p95": float(p[2]), "n": int(v.size)}


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


def resolve_target_node_counts(max_observed: int, target_node_counts=None, max_node_count=None, observed_targets: str = "error", warnings=None) -> list:
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
            raise ValueError(f"max_node_count must exceed the largest observed node count {max_observed}, got {max_node_count}")
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
        msg = f"target node counts {low} are at or below the largest observed node count {max_observed}; only larger sizes are predicted"
        if observed_targets == "error":
            raise ValueError(msg + " (pass observed_targets='warn' to drop them)")
        if warnings is not None:
            warnings.append(msg + "; they were dropped")
    sizes = [s for s in sizes if s > max_observed]
    if not sizes:
        raise ValueError(f"no target node count above the largest observed node count {max_observed} remains, got {list(target_node_counts)!r}")
    return sizes


def _fit_and_predict(rows, types, sizes, dt, k, threshold, population_transform="reference"):
    model = ClusterPropertyModel(types.node_elements, dt, population_transform=population_transform).fit(rows)
    return model, predict_candidates(rows, model, types, sizes, dt, k, threshold)


def bootstrap_uncertainty(rows, types: AtomTypes, candidates, target_sizes, timestep_fs: float, n_bootstrap: int = 200, seed: int = 0, candidates_per_size: int = 3, share_threshold: float = 0.02, population_transform: str = "reference") -> dict:
    """Bootstrap over training rows (resampled with replacement, ``numpy.random.default_rng(seed)``).

    Each replicate refits every model, re-predicts every target of each retained candidate
    (fixed compositions), recomputes shares over that candidate set and the tail-anchored
    weights, and reruns the whole candidate pipeline to count how often each label is retained.
    Sets ``candidate.uncertainty`` to ``{quantity: summary}`` and returns
    ``{"n_bootstrap", "seed", "failed_replicates"}``.
    """
    rows = list(rows)
    rng = np.random.default_rng(seed)
    samples = {id(c): {} for c in candidates}
    retained_counts = {(c.node_count, c.label): 0 for c in candidates}
    failed = 0
    done = 0
    for _ in range(int(n_bootstrap)):
        idx = rng.integers(0, len(rows), len(rows))
        sample = [rows[i] for i in idx]
        try:
            model, out = _fit_and_predict(sample, types, target_sizes, timestep_fs, candidates_per_size, share_threshold, population_transform)
        except (ValueError, np.linalg.LinAlgError):
            failed += 1
            continue
        done += 1
        for c in out["candidates"]:
            key = (c.node_count, c.label)
            if key in retained_counts:
                retained_counts[key] += 1
        preds = [model.predict(c.counts) for c in candidates]
        counts = [model.predict_counts(c.counts) for c in candidates]
        sw = [share_weight(p, timestep_fs) for p in preds]
        total = max(sum(sw), 1e-12)
        base = [max(p["mean_count_per_frame"], 0.0) * max(p["occupancy_fraction"], 0.05) for p in preds]
        mass = tail_anchored_mass(sample, sorted({c.node_count for c in candidates}), base)["weight"]
        for c, p, cnt, w in zip(candidates, preds, counts, sw):
            s = samples[id(c)]
            for key in PREDICTED_FIELDS:
                s.setdefault(key, []).append(p[key])
            for el, v in cnt.items():
                s.setdefault(f"count_{el}", []).append(v)
            s.setdefault("share", []).append(w / total)
            s.setdefault("weight", []).append(w / total * mass)
    for c in candidates:
        c.uncertainty = {k: _summary(v) for k, v in samples[id(c)].items()}
        c.uncertainty["selection_frequency"] = retained_counts[(c.node_count, c.label)] / done if done else None
    return {"n_bootstrap": int(n_bootstrap), "seed": int(seed), "failed_replicates": failed}


def _observed_at_sizes(rows_or_table, types: AtomTypes, sizes) -> dict:
    """{size: [{label, weight, counts, props...}]} of observed labels (weight > 0) at ``sizes``."""
    out = {s: [] for s in sizes}
    for r in rows_or_table:
        if isinstance(r, TrainingRow):
            label, counts, props = r.label, r.element_counts, dataclasses.asdict(r)
        else:
            label = r["label"]
            try:
                counts = parse_label_counts(label)
            except ValueError:
                continue
            props = r
        n = sum(counts.get(e, 0) for e in types.node_elements)
        if n not in out:
            continue
        w = max(float(props.get("mean_count_per_frame") or 0), 0.0) * max(float(props.get("occupancy_fraction") or 0), 0.05)
        if w <= 0:
            continue
        out[n].append({"label": label, "weight": w, "counts": {e: int(c) for e, c in counts.items()}, "props": props})
    return out


def compare_with_observed(candidates, observed_rows, types: AtomTypes, predicted_mass: float | None = None) -> dict:
    """Compare predicted candidates with labels actually observed at the same node counts.

    observed_rows : ``TrainingRow`` objects or lifetime-table rows (dicts with label,
        mean_count_per_frame, occupancy_fraction, ...). Observed weight is
        ``max(count, 0) max(occ, 0.05)``, normalised within each size.

    Per size: observed and predicted labels with within-size shares, ``top1_match`` (rank-1
    label is the dominant observed label), ``label_recall`` (observed population fraction whose
    label was predicted), ``label_precision`` (fraction of predicted labels observed),
    ``share_overlap`` (sum of min(predicted, observed) within-size shares; 1 is perfect),
    ``top1_composition_distance`` (to the dominant observed composition), predicted vs observed
    mass, and per matched label the predicted and observed properties with whether the
    observed value lies in the bootstrap 5-95 % interval.
    """
    sizes = sorted({c.node_count for c in candidates})
    observed = _observed_at_sizes(observed_rows, types, sizes)
    per_size = {}
    for s in sizes:
        preds = sorted((c for c in candidates if c.node_count == s), key=lambda c: c.rank)
        ptot = sum(c.share for c in preds) or 1.0
        pshare = {c.label: c.share / ptot for c in preds}
        obs = sorted(observed[s], key=lambda o: (-o["weight"], o["label"]))
        otot = sum(o["weight"] for o in obs)
        oshare = {o["label"]: o["weight"] / otot for o in obs} if otot > 0 else {}
        entry = {
            "node_count": s,
            "observed": [{"label": o["label"], "share": oshare[o["label"]], "weight": o["weight"]} for o in obs],
            "predicted": [{"label": c.label, "rank": c.rank, "share": pshare[c.label], "weight": c.weight} for c in preds],
            "observed_mass": otot,
            "predicted_mass": sum(c.weight for c in preds),
        }
        if obs:
            entry["top1_match"] = bool(preds) and preds[0].label == obs[0]["label"]
            entry["label_recall"] = float(sum(v for k, v in oshare.items() if k in pshare))
            entry["label_precision"] = sum(1 for k in pshare if k in oshare) / len(pshare) if pshare else 0.0
            entry["share_overlap"] = sum(min(pshare.get(k, 0.0), oshare.get(k, 0.0)) for k in set(pshare) | set(oshare))
            entry["top1_composition_distance"] = composition_distance(preds[0].counts, obs[0]["counts"], s) if preds else None
            matched = []
            for c in preds:
                o = next((o for o in obs if o["label"] == c.label), None)
                if o is None:
                    continue
                props = {}
                for key in ("mean_count_per_frame", "occupancy_fraction", "mean_lifetime_fs", "mean_radius_of_gyration", "mean_max_radius"):
                    ov = o["props"].get(key)
                    if ov is None or key not in c.predicted:
                        continue
                    u = c.uncertainty.get(key, {})
                    inside = None if u.get("p05") is None else bool(u["p05"] <= float(ov) <= u["p95"])
                    props[key] = {"predicted": c.predicted[key], "observed": float(ov), "in_interval_05_95": inside}
                matched.append({"label": c.label, "properties": props})
            entry["matched"] = matched
        else:
            entry.update(top1_match=None, label_recall=None, label_precision=None, share_overlap=None, top1_composition_distance=None, matched=[])
        per_size[s] = entry
    return {"sizes": per_size, "predicted_mass_total": predicted_mass}


def leave_largest_size_out(rows, types: AtomTypes, timestep_fs: float, candidates_per_size: int = 3, share_threshold: float = 0.02, n_bootstrap: int = 50, seed: int = 0, population_transform: str = "reference") -> dict:
    """Train without the largest observed node count, predict it, compare with what was observed.

    Needs at least three distinct observed node counts (two remain for training); otherwise
    returns ``{"skipped": reason}``.
    """
    rows = list(rows)
    sizes = sorted({r.node_count for r in rows})
    if len(sizes) < 3:
        return {"skipped": f"needs at least 3 distinct observed node counts, got {sizes}"}
    held = sizes[-1]
    train = [r for r in rows if r.node_count < held]
    test = [r for r in rows if r.node_count == held]
    try:
        _, out = _fit_and_predict(train, types, [held], timestep_fs, candidates_per_size, share_threshold, population_transform)
    except ValueError as exc:
        return {"skipped": f"could not fit without node count {held}: {exc}"}
    cands = out["candidates"]
    if n_bootstrap:
        bootstrap_uncertainty(train, types, cands, [held], timestep_fs, n_bootstrap, seed, candidates_per_size, share_threshold, population_transform)
    cmp = compare_with_observed(cands, test, types, out["mass"]["weight"])
    report = {"held_out_node_count": held, "train_node_counts": sizes[:-1], "train_labels": [r.label for r in train]}
    report.update(cmp["sizes"][held])
    report["observed_mass"] = sum(r.observed_weight for r in test)
    report["predicted_mass"] = out["mass"]["weight"]
    report["rejected"] = out["rejected"]
    return report


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
            d.update(source="observed", node_count=n, rank=None, predicted_population_share=None, mean_lifetime_fs_p05=None, mean_lifetime_fs_p95=None)
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
            {"label": r.label, "source": "observed", "node_count": r.node_count, "mean_lifetime_fs": r.mean_lifetime_fs, "mean_count_per_frame": r.mean_count_per_frame, "mean_max_radius": r.mean_max_radius, "raw_weight": r.observed_weight}
            for r in self.training_rows
            if r.observed_weight > 0
        ]
        pred = [
            {"label": c.label, "source": "predicted", "node_count": c.node_count, "mean_lifetime_fs": c.predicted["mean_lifetime_fs"], "mean_count_per_frame": c.predicted["mean_count_per_frame"], "mean_max_radius": c.predicted["mean_max_radius"], "raw_weight": c.weight}
            for c in self.candidates
            if c.weight > 0
        ]

        def norm(rows):
            total = sum(r["raw_weight"] for r in rows)
            return [dict(r, normalized_weight=r["raw_weight"] / total if total > 0 else 0.0) for r in rows]

        return {"observed": norm([dict(r) for r in obs]), "observed_plus_predicted": norm([dict(r) for r in obs] + pred)}

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
        kw = {f.name: data.get(f.name) for f in dataclasses.fields(cls) if f.name in data}
        kw["training_rows"] = [TrainingRow.from_dict(r) for r in data["training_rows"]]
        kw["candidates"] = [Candidate.from_dict(c) for c in data["candidates"]]
        kw["pruned"] = [Candidate.from_dict(c) for c in data.get("pruned", [])]
        mass = dict(kw.get("mass") or {})
        mass["mass_by_size"] = {int(k): v for k, v in (mass.get("mass_by_size") or {}).items()}
        kw["mass"] = mass
        if kw.get("validation") and "sizes" in kw["validation"]:
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
        which extrapolates better on a given data set.

    Raises ValueError for bad parameters, fewer than 2 distinct observed node counts, or
    target sizes that leave nothing to predict.
    """
    if isinstance(candidates_per_size, bool) or not isinstance(candidates_per_size, (int, np.integer)) or candidates_per_size < 1:
        raise ValueError(f"candidates_per_size must be an integer >= 1, got {candidates_per_size!r}")
    try:
        threshold = float(share_threshold)
    except (TypeError, ValueError):
        raise ValueError(f"share_threshold must be a number in [0, 1], got {share_threshold!r}") from None
    if not (0.0 <= threshold <= 1.0):
        raise ValueError(f"share_threshold must be a number in [0, 1], got {share_threshold!r}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be an integer >= 0, got {n_bootstrap!r}")
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
        raise ValueError("no training rows: the structure library has no label with node atoms")
    sizes_obs = sorted({r.node_count for r in rows})
    if len(sizes_obs) < 2:
        raise ValueError(f"at least 2 distinct observed node counts are needed to extrapolate, got {sizes_obs}")
    max_obs = sizes_obs[-1]
    targets = resolve_target_node_counts(max_obs, target_node_counts, max_node_count, observed_targets, warnings)
    if population_transform not in ("reference", "log"):
        raise ValueError(f"population_transform must be 'reference' or 'log', got {population_transform!r}")
    model, out = _fit_and_predict(rows, types, targets, dt, candidates_per_size, threshold, population_transform)
    cands = out["candidates"]
    for n in targets:
        if not any(c.node_count == n for c in cands):
            warnings.append(f"no candidate survived the filters at node count {n}")
    boot = {}
    if n_bootstrap and cands:
        boot = bootstrap_uncertainty(rows, types, cands, targets, dt, n_bootstrap, seed, candidates_per_size, threshold, population_transform)
    ok = [c.node_count for c in cands if c.share >= threshold and c.predicted["mean_lifetime_fs"] >= dt]
    validation = None
    if validate:
        validation = leave_largest_size_out(rows, types, dt, candidates_per_size, threshold, min(n_bootstrap, 50), seed, population_transform)
    dw_rows = []
    if debye_waller:
        from ..predict import debye_waller as dwmod

        dw_rows = dwmod.debye_waller_table(library, rows, cands, types, n_bootstrap=n_bootstrap if dw_bootstrap is None else dw_bootstrap, seed=seed)
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
    )
