"""What was observed, per label and per node count: the input of the size-resolved models.

``ObservedClusters.from_inputs(lifetime_table, training_rows, types, library=None)`` collects,
for every label with at least one node atom:

* from the dynamics: clusters per frame, clusters observed over all frames
  (``total_observations``), mean lifetime (fs) with its std and number of completed lifetimes,
  association / dissociation rates (1/ps), and, when the dynamics result carries it, the
  per-frame count series (``frame_count_matrix``, used by the block bootstrap);
* from the structure library (labels with structure files): tracked-atom count, Rg, max
  radius, semiaxes (angstrom), their spread over files, the number of files, and the
  non-label (shell) element counts.

``restrict(max_node_count)`` keeps node counts <= K (the validation trains on those only);
``by_size()`` gives the per-size totals that ``population.py`` fits.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from ..library.read import AtomTypes, parse_label_counts


@dataclass
class LabelObservation:
    """One observed label. Counts per frame; lifetimes fs; rates 1/ps; lengths angstrom."""

    label: str
    node_count: int
    counts: dict  # label elements, plus tracked shell elements when the library has files
    count_per_frame: float
    observations: int
    lifetime_fs: float | None = None
    lifetime_std_fs: float | None = None
    completed_lifetimes: int = 0
    association_rate_per_ps: float = 0.0
    dissociation_rate_per_ps: float = 0.0
    atom_count: float | None = None
    rg: float | None = None
    rg_std: float | None = None
    max_radius: float | None = None
    max_radius_std: float | None = None
    semiaxes: tuple | None = None
    files: int = 0
    representative_path: str | None = None


@dataclass
class ObservedClusters:
    """Observed labels (node count >= 1), the frame count series and the time step."""

    labels: list
    timestep_fs: float
    frame_counts: np.ndarray | None = None  # (labels, frames) clusters per frame, label order
    n_frames: int | None = None
    notes: list = field(default_factory=list)

    @classmethod
    def from_inputs(
        cls, lifetime_table, training_rows, types: AtomTypes, timestep_fs: float, dynamics=None, library=None
    ) -> ObservedClusters:
        """Join the lifetime table (``{label: row}``), the training rows (library labels) and,
        if given, a ``DynamicsResult`` (per-frame counts) and a ``StructureLibrary`` (spread of
        Rg and max radius over files)."""
        node = set(types.node_elements)
        label_set = set(types.label_elements)
        rows_by_label = {r.label: r for r in training_rows}
        lib_by_label = {o.label: o for o in library} if library is not None else {}
        out = []
        for label, row in lifetime_table.items():
            try:
                counts = parse_label_counts(label)
            except ValueError:
                continue
            n = sum(v for e, v in counts.items() if e in node)
            if n <= 0:
                continue
            lo = LabelObservation(
                label=label,
                node_count=int(n),
                counts={e: int(v) for e, v in counts.items() if e in label_set or e in node},
                count_per_frame=float(row.get("mean_count_per_frame") or 0.0),
                observations=int(row.get("total_observations") or 0),
                lifetime_fs=row.get("mean_lifetime_fs"),
                lifetime_std_fs=row.get("std_lifetime_fs"),
                completed_lifetimes=int(row.get("completed_lifetime_count") or 0),
                association_rate_per_ps=float(row.get("association_rate_per_ps") or 0.0),
                dissociation_rate_per_ps=float(row.get("dissociation_rate_per_ps") or 0.0),
            )
            tr = rows_by_label.get(label)
            if tr is not None and tr.file_count > 0 and tr.mean_radius_of_gyration is not None:
                if types.label_counts(tr.element_counts) == {e: v for e, v in lo.counts.items() if v > 0}:
                    lo.counts = {e: int(v) for e, v in tr.element_counts.items() if v > 0}  # with shells
                lo.atom_count = float(tr.mean_atom_count)
                lo.rg = float(tr.mean_radius_of_gyration)
                lo.max_radius = float(tr.mean_max_radius)
                lo.semiaxes = (float(tr.mean_semiaxis_a), float(tr.mean_semiaxis_b), float(tr.mean_semiaxis_c))
                lo.files = int(tr.file_count)
                lo.representative_path = tr.representative_path
                ob = lib_by_label.get(label)
                if ob is not None:
                    lo.files = int(ob.readable_count)
                    lo.rg_std = float(ob.std_radius_of_gyration)
                    lo.max_radius_std = float(ob.std_max_radius)
            out.append(lo)
        out.sort(key=lambda o: (o.node_count, o.label))
        obs = cls(out, float(timestep_fs))
        dyn_labels = list(getattr(dynamics, "labels", None) or [])
        count_rows = getattr(dynamics, "count_rows", None)  # a DynamicsResult: the labels' rows only
        matrix = None if callable(count_rows) else getattr(dynamics, "frame_count_matrix", None)
        if callable(count_rows) and getattr(dynamics, "n_frames", 0) > 0:
            if all(o.label in dyn_labels for o in out):
                obs.frame_counts = np.asarray(count_rows([o.label for o in out]), dtype=np.float64)
                obs.n_frames = int(dynamics.n_frames)
        elif matrix is not None and len(dyn_labels) == np.asarray(matrix).shape[0] and np.asarray(matrix).shape[1] > 0:
            m = np.asarray(matrix, dtype=np.float64)
            index = {lab: i for i, lab in enumerate(dyn_labels)}
            if all(o.label in index for o in out):
                obs.frame_counts = np.array([m[index[o.label]] for o in out]) if out else np.zeros((0, m.shape[1]))
                obs.n_frames = int(m.shape[1])
        if obs.frame_counts is None:
            obs.notes.append(
                "no per-frame count series (dynamics given as a table): the bootstrap resamples clusters (Poisson) "
                "instead of time blocks"
            )
        return obs

    # ---- views
    def restrict(self, max_node_count: int) -> ObservedClusters:
        keep = [i for i, o in enumerate(self.labels) if o.node_count <= max_node_count]
        fc = None if self.frame_counts is None else self.frame_counts[keep]
        return dataclasses.replace(self, labels=[self.labels[i] for i in keep], frame_counts=fc, notes=list(self.notes))

    def with_counts(self, counts_per_frame, observations=None) -> ObservedClusters:
        """A copy whose labels carry other counts per frame (bootstrap replicates)."""
        labels = []
        for i, o in enumerate(self.labels):
            n_obs = o.observations if observations is None else int(observations[i])
            labels.append(dataclasses.replace(o, count_per_frame=float(counts_per_frame[i]), observations=n_obs))
        return dataclasses.replace(self, labels=labels)

    @property
    def sizes(self) -> list:
        return sorted({o.node_count for o in self.labels if o.count_per_frame > 0})

    def by_size(self) -> dict:
        """{n: {"count_per_frame", "observations", "labels": [LabelObservation]}} (count > 0)."""
        out: dict = {}
        for o in self.labels:
            if o.count_per_frame <= 0:
                continue
            d = out.setdefault(o.node_count, {"count_per_frame": 0.0, "observations": 0, "labels": []})
            d["count_per_frame"] += o.count_per_frame
            d["observations"] += o.observations
            d["labels"].append(o)
        return dict(sorted(out.items()))

    def shares(self, n: int) -> dict:
        """Within-size label shares at node count ``n`` (sum 1; empty if nothing observed)."""
        labs = [o for o in self.labels if o.node_count == n and o.count_per_frame > 0]
        tot = sum(o.count_per_frame for o in labs)
        return {o.label: o.count_per_frame / tot for o in labs} if tot > 0 else {}

    def size_rg(self, n: int) -> float | None:
        """Count-weighted mean Rg (angstrom) of the labels at node count ``n`` with files."""
        labs = [o for o in self.labels if o.node_count == n and o.rg is not None and o.count_per_frame > 0]
        w = sum(o.count_per_frame for o in labs)
        return sum(o.rg * o.count_per_frame for o in labs) / w if w > 0 else None

    def size_lifetime(self, n: int) -> float | None:
        """Count-weighted mean lifetime (fs) of the labels at node count ``n``."""
        labs = [
            o
            for o in self.labels
            if o.node_count == n
            and o.lifetime_fs is not None
            and math.isfinite(o.lifetime_fs)
            and o.count_per_frame > 0
        ]
        w = sum(o.count_per_frame for o in labs)
        return sum(o.lifetime_fs * o.count_per_frame for o in labs) / w if w > 0 else None
