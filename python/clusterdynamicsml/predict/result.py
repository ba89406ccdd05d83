"""The result of ``predict_clusters``: ``PredictionResult`` (JSON and CSV round trips) and
``assemble_result``, the one place both prediction paths (the reference ridge in ``core.py``
and the size-resolved laws in ``sized.py``) build it.

Units: counts per frame, fractions, fs, 1/ps, angstrom.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._io import atomic_write, to_jsonable
from .._io import write_csv as _write_csv
from ..library.read import LIFETIME_FIELDS, TrainingRow, parse_label_counts
from .candidates import PREDICTED_FIELDS, Candidate
from .uncertainty import SIZE_KEYS

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


def run_settings(library, candidates_per_size, share_threshold, dt, n_bootstrap, seed, observed_targets, bond,
                 box_lengths, model_settings: dict) -> dict:
    """The settings record every ``PredictionResult`` carries (both paths); ``model_settings``
    (the population model and its own settings) go after ``library``."""
    return {
        "candidates_per_size": int(candidates_per_size),
        "share_threshold": share_threshold,
        "timestep_fs": dt,
        "n_bootstrap": int(n_bootstrap),
        "seed": int(seed),
        "observed_targets": observed_targets,
        "library": library.root,
        **model_settings,
        "bond_length": bond,
        "box_lengths": None if box_lengths is None else [float(v) for v in box_lengths],
    }


def assemble_result(library, types, rows, table, cands, targets, max_obs, ok, dt, settings, warnings, validation,
                    debye_waller, dw_bootstrap, seed, **path_fields) -> PredictionResult:
    """The ``PredictionResult`` of either path: the fields both share, the Debye-Waller table
    (when ``debye_waller``) and the path's own fields (``non_node_elements``, ``rejected``,
    ``pruned``, ``mass``, ``bootstrap``, ``population_model``, ``population_choice``, ...).
    ``ok``: node counts of the candidates that count as predicted."""
    dw_rows = []
    if debye_waller:
        from . import debye_waller as dwmod

        dw_rows = dwmod.debye_waller_table(library, rows, cands, types, n_bootstrap=dw_bootstrap, seed=seed)
    return PredictionResult(
        node_elements=list(types.node_elements),
        label_elements=list(types.label_elements),
        training_rows=rows,
        lifetime_table=list(table.values()),
        candidates=cands,
        target_node_counts=targets,
        max_observed_node_count=max_obs,
        max_predicted_node_count=max(ok) if ok else None,
        timestep_fs=dt,
        settings=settings,
        warnings=warnings,
        validation=validation,
        debye_waller=dw_rows,
        **path_fields,
    )
