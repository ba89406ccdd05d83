"""The result of a dynamics analysis: :class:`DynamicsResult`, its JSON dataset and CSV files (ref §3.7).

Times in femtoseconds, rates per picosecond. :meth:`DynamicsResult.save` writes ``X.json`` and
``X_cluster_distribution.csv``, ``X_lifetime.csv`` and (with energy data) ``X_energy.csv``;
:meth:`DynamicsResult.load` reads the dataset back without recomputing anything.
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .._io import atomic_write, to_jsonable
from ..io.energy import EnergyData
from .compact import LabelCounts
from .lifetimes import LifetimeSummary, SeriesLifetimes, series_lifetimes

DATASET_FORMAT = "clusterdynamicsml.dynamics.analyze"
#: Version of the JSON dataset written by :meth:`DynamicsResult.save`.
DATASET_VERSION = 1
DISPLAY_MODES = ("count", "fraction", "mean_count")

CLUSTER_DISTRIBUTION_COLUMNS = (
    "label", "cluster_size", "bin_index", "bin_start_fs", "bin_stop_fs", "bin_center_fs",
    "bin_start_time", "bin_stop_time", "bin_center_time", "time_unit", "display_mode",
    "colormap_value", "raw_count", "fraction", "mean_count_per_frame", "frames_in_bin",
    "total_clusters_in_bin",
)
LIFETIME_COLUMNS = (
    "label", "cluster_size", "mean_lifetime_fs", "std_lifetime_fs", "completed_lifetime_count",
    "window_truncated_lifetime_count", "association_rate_per_ps", "dissociation_rate_per_ps",
    "occupancy_fraction", "mean_count_per_frame", "total_observations", "occupied_frames",
    "association_events", "dissociation_events",
)
#: Columns appended after the reference ones in ``*_lifetime.csv``.
LIFETIME_EXTRA_COLUMNS = (
    "km_mean_lifetime_fs", "km_mean_is_restricted", "mle_lifetime_fs", "mle_lifetime_stderr_fs",
)
ENERGY_COLUMNS = ("step", "time_fs", "kinetic", "temperature", "potential")


_ARRAY_FIELDS = {
    "frame_indices": np.int64, "source_frame_indices": np.int64, "frame_times_fs": np.float64,
    "label_sizes": np.int64, "bin_edges_fs": np.float64, "frames_in_bin": np.int64,
    "total_clusters_per_bin": np.int64, "total_clusters_per_frame": np.int64,
}
#: The dense (labels x columns) matrices of the dataset: (JSON key, kind, columns).
_MATRICES = (
    ("raw_count_matrix", "count", "bins"), ("fraction_matrix", "fraction", "bins"),
    ("mean_count_matrix", "mean_count", "bins"), ("frame_count_matrix", "frame", "frames"),
)


@dataclass(eq=False)
class DynamicsResult:
    """Everything :func:`analyze_dynamics` computes (ref §3.2 to §3.5). Times in fs.

    Time axis: ``timestep_fs``, ``time_source`` (how frame times were known), ``time_warnings``.
    Window: ``start_fs``, ``stop_fs`` (resolved), ``stop_is_explicit``, ``observed_stop_fs``
    (``max(stop, last selected time)``, the end used for truncated lifetimes and rates).
    Bins: ``frames_per_bin`` (int k), ``bin_width_fs`` (k dt), ``bin_edges_fs`` (n_bins + 1,).
    Frames: ``n_frames_total`` (frames read), ``frame_indices`` (positions of the selected
    frames in the source), ``source_frame_indices``, ``frame_times_fs`` (F,).
    Labels: ``labels`` (L,) sorted by (size, label), ``label_sizes`` (L,) atoms per cluster.
    Counts, stored compactly (:class:`~clusterdynamicsml.dynamics.compact.LabelCounts`, a few
    bytes per label present in a frame, never a dense labels x frames matrix):
    ``frame_counts`` (L, F) per frame and ``bin_counts`` (L, n_bins) per bin (the same object
    when every bin holds one frame); ``frames_in_bin`` (n_bins,), ``total_clusters_per_bin``
    (n_bins,), ``total_clusters_per_frame`` (F,).
    Dense views, computed on each access (they materialise L x F or L x n_bins numbers, 8
    bytes each: use ``frame_counts`` / ``bin_counts``, :meth:`counts` or :meth:`matrix_rows`
    for long trajectories): ``frame_count_matrix`` int64 (L, F), ``raw_count_matrix`` int64
    (L, n_bins), ``fraction_matrix`` and ``mean_count_matrix`` float64 (L, n_bins).
    Lifetimes: ``lifetime_by_label`` (one :class:`LifetimeSummary` per label, in label
    order) and ``lifetime_by_size`` (one per size, ``label`` None).
    ``warnings``: other notes (percolating clusters left out of the counts, ...).
    ``energy``: :class:`~clusterdynamicsml.io.energy.EnergyData` or None.
    ``settings``: the analysis settings (JSON-ready dict).
    """

    timestep_fs: float
    frames_per_bin: int
    bin_width_fs: float
    start_fs: float
    stop_fs: float
    stop_is_explicit: bool
    observed_stop_fs: float
    n_frames_total: int
    frame_indices: np.ndarray
    source_frame_indices: np.ndarray
    frame_times_fs: np.ndarray
    labels: list[str]
    label_sizes: np.ndarray
    bin_edges_fs: np.ndarray
    frames_in_bin: np.ndarray
    total_clusters_per_bin: np.ndarray
    bin_counts: LabelCounts
    frame_counts: LabelCounts
    total_clusters_per_frame: np.ndarray
    lifetime_by_label: list[LifetimeSummary]
    lifetime_by_size: list[LifetimeSummary]
    time_source: str = "frames"
    time_warnings: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    energy: EnergyData | None = None
    settings: dict = field(default_factory=dict)

    # ---- convenience --------------------------------------------------------------
    @property
    def n_bins(self) -> int:
        return int(self.bin_edges_fs.size - 1)

    @property
    def n_frames(self) -> int:
        """Selected frames."""
        return int(self.frame_times_fs.size)

    @property
    def bin_centers_fs(self) -> np.ndarray:
        return 0.5 * (self.bin_edges_fs[:-1] + self.bin_edges_fs[1:])

    @property
    def frame_count_matrix(self) -> np.ndarray:
        """Dense int64 (L, F) per-frame counts, made from ``frame_counts`` on each access
        (materialises L x F)."""
        return self.frame_counts.toarray()

    @property
    def raw_count_matrix(self) -> np.ndarray:
        """Dense int64 (L, n_bins) counts per bin, made from ``bin_counts`` on each access."""
        return self.bin_counts.toarray()

    @property
    def fraction_matrix(self) -> np.ndarray:
        """Dense float64 (L, n_bins): counts / clusters in the bin (0 for an empty bin), made on each access."""
        return _safe_divide(self.bin_counts.toarray(), self.total_clusters_per_bin)

    @property
    def mean_count_matrix(self) -> np.ndarray:
        """Dense float64 (L, n_bins): counts / frames in the bin (0 for a bin without frames), made on each access."""
        return _safe_divide(self.bin_counts.toarray(), self.frames_in_bin)

    def matrix(self, mode: str = "fraction") -> np.ndarray:
        """The dense (labels x bins) matrix of a display mode: "count", "fraction" or
        "mean_count" (materialises L x n_bins; :meth:`matrix_rows` gives it row by row)."""
        _check_mode(mode)
        if mode == "count":
            return self.raw_count_matrix
        if mode == "fraction":
            return self.fraction_matrix
        return self.mean_count_matrix

    def matrix_rows(self, mode: str = "fraction", which=None):
        """``(row, values (n_bins,))`` of the (labels x bins) matrix of a display mode, one label
        at a time (int64 for "count", else float64; the same numbers as :meth:`matrix`).
        ``which``: row numbers (default all)."""
        _check_mode(mode)
        for i, raw in self.bin_counts.rows(which):
            yield i, _row_values(raw, mode, self.total_clusters_per_bin, self.frames_in_bin)

    def lifetime_row(self, label: str) -> LifetimeSummary:
        """The lifetime summary of one label (KeyError when the label was never seen)."""
        for row in self.lifetime_by_label:
            if row.label == label:
                return row
        raise KeyError(f"label {label!r} not in this result; labels: {self.labels}")

    def counts(self, label: str) -> np.ndarray:
        """Per-frame count series (F,) of one label, int64."""
        if label not in self.labels:
            raise KeyError(f"label {label!r} not in this result; labels: {self.labels}")
        return self.frame_counts.row(self.labels.index(label))

    def count_rows(self, labels) -> np.ndarray:
        """Dense int64 (len(labels), F) per-frame counts of the given labels (KeyError for an unknown one)."""
        missing = [lab for lab in labels if lab not in self.labels]
        if missing:
            raise KeyError(f"labels {missing} not in this result; labels: {self.labels}")
        index = {lab: i for i, lab in enumerate(self.labels)}
        rows = [index[lab] for lab in labels]
        out = np.zeros((len(rows), self.n_frames), dtype=np.int64)
        where: dict[int, list[int]] = {}
        for k, i in enumerate(rows):
            where.setdefault(i, []).append(k)
        for i, series in self.frame_counts.rows(rows):
            out[where[i]] = series
        return out

    def lifetimes(self, label: str | None = None, size: int | None = None) -> SeriesLifetimes:
        """Per-instance lifetimes (fs) of one label, or of one cluster size, recomputed from the counts."""
        if (label is None) == (size is None):
            raise ValueError("give exactly one of label= or size=")
        if label is not None:
            series = self.counts(label)
        else:
            rows = np.flatnonzero(self.label_sizes == size)
            if not rows.size:
                raise KeyError(f"no labels of size {size}; sizes: {sorted(set(self.label_sizes.tolist()))}")
            series = np.zeros(self.n_frames, dtype=np.int64)
            for _, row in self.frame_counts.rows(rows):
                series += row
        return series_lifetimes(series, self.frame_times_fs, self.observed_stop_fs)

    def energy_series(self, quantity: str = "temperature"):
        """``(time_fs, values)`` of an energy quantity within the bin edges (ref §1.9), or None."""
        if self.energy is None:
            return None
        return self.energy.series(quantity, float(self.bin_edges_fs[0]), float(self.bin_edges_fs[-1]))

    def summary(self) -> str:
        """Plain-text summary (as the reference CLI prints it): frames, window, bins, labels, lifetime rows, notes."""
        lines = [
            f"frames analysed: {self.n_frames} of {self.n_frames_total} (times from {self.time_source}, "
            f"time step {self.timestep_fs:g} fs)",
            f"window: {self.start_fs:g} to {self.stop_fs:g} fs "
            f"({'inclusive' if self.stop_is_explicit else 'exclusive'} stop)",
            f"time bins: {self.n_bins} of {self.bin_width_fs:g} fs ({self.frames_per_bin} frame steps)",
            f"labels: {len(self.labels)}; lifetime rows: {len(self.lifetime_by_label)} by label, "
            f"{len(self.lifetime_by_size)} by size",
        ]
        if self.energy is not None:
            lines.append(f"energy: {len(self.energy)} samples from {self.energy.filepath}")
        lines += [f"note: {w}" for w in [*self.time_warnings, *self.warnings]]
        return "\n".join(lines)

    def export(self, out_dir: str | os.PathLike, stem: str = "cluster_dynamics", *, figures: bool = True,
               time_unit: str = "fs") -> list[Path]:
        """Write everything a run produces into ``out_dir``: ``<stem>.json`` and its CSVs
        (:meth:`save`) and, with ``figures``, ``<stem>_heatmap.png/.svg`` (fraction mode, with a
        temperature panel when energy data are present) and ``<stem>_lifetimes.png/.svg``.
        Returns the paths written."""
        out = Path(out_dir)
        written = self.save(out / f"{stem}.json")
        if figures:
            from ..plot.dynamics import plot_heatmap, plot_lifetimes, save_figure

            energy = "temperature" if self.energy is not None else None
            written += save_figure(plot_heatmap(self, time_unit=time_unit, energy=energy), out / f"{stem}_heatmap")
            written += save_figure(plot_lifetimes(self, time_unit=time_unit), out / f"{stem}_lifetimes")
        return written

    # ---- equality -------------------------------------------------------------------
    def __eq__(self, other) -> bool:
        if not isinstance(other, DynamicsResult):
            return NotImplemented
        return not self.differences(other)

    def differences(self, other: DynamicsResult) -> list[str]:
        """Names of the fields that differ (empty when equal)."""
        out = []
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name in _ARRAY_FIELDS:
                same = a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
            elif isinstance(a, LabelCounts):
                same = isinstance(b, LabelCounts) and a == b
            else:
                same = a == b
            if not same:
                out.append(f.name)
        return out

    # ---- persistence ----------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict of the dataset (keys of ref §3.7 where they exist)."""
        return self._dict(matrices=True)

    def _dict(self, matrices: bool) -> dict:
        """:meth:`to_dict`; without ``matrices`` the four (L, n) matrices are left as their
        field names (a :class:`_Streamed`), for :meth:`save` to write row by row."""
        def mat(name):
            return getattr(self, name).tolist() if matrices else _Streamed(name)


        return {
            "format": DATASET_FORMAT,
            "version": DATASET_VERSION,
            "analysis_settings": self.settings,
            "preview": {
                "total_frames": self.n_frames_total,
                "selected_frames": self.n_frames,
                "frame_timestep_fs": self.timestep_fs,
                "frames_per_colormap_timestep": self.frames_per_bin,
                "colormap_timestep_fs": self.bin_width_fs,
                "analysis_start_fs": self.start_fs,
                "analysis_stop_fs": self.stop_fs,
                "analysis_stop_is_explicit": self.stop_is_explicit,
                "observed_stop_fs": self.observed_stop_fs,
                "time_source_label": self.time_source,
                "time_warnings": list(self.time_warnings),
                "bin_count": self.n_bins,
                "energy_file": None if self.energy is None else self.energy.filepath,
                # derived, for readers of the reference layout (ignored on load)
                "first_selected_time_fs": float(self.frame_times_fs[0]) if self.n_frames else None,
                "last_selected_time_fs": float(self.frame_times_fs[-1]) if self.n_frames else None,
                "first_selected_frame": int(self.frame_indices[0]) if self.n_frames else None,
                "last_selected_frame": int(self.frame_indices[-1]) if self.n_frames else None,
                "first_selected_source_frame_index": int(self.source_frame_indices[0]) if self.n_frames else None,
                "last_selected_source_frame_index": int(self.source_frame_indices[-1]) if self.n_frames else None,
            },
            "selected_frame_indices": self.frame_indices.tolist(),
            "selected_source_frame_indices": self.source_frame_indices.tolist(),
            "frame_results": [
                {"frame_index": int(i), "time_fs": float(t)}
                for i, t in zip(self.frame_indices, self.frame_times_fs)
            ],
            "cluster_labels": list(self.labels),
            "cluster_sizes": {lab: int(s) for lab, s in zip(self.labels, self.label_sizes)},
            "bin_edges_fs": self.bin_edges_fs.tolist(),
            "frames_per_bin": self.frames_in_bin.tolist(),
            "total_clusters_per_bin": self.total_clusters_per_bin.tolist(),
            "raw_count_matrix": mat("raw_count_matrix"),
            "fraction_matrix": mat("fraction_matrix"),
            "mean_count_matrix": mat("mean_count_matrix"),
            "frame_count_matrix": mat("frame_count_matrix"),
            "total_clusters_per_frame": self.total_clusters_per_frame.tolist(),
            "lifetime_by_label": [r.to_dict() for r in self.lifetime_by_label],
            "lifetime_by_size": [r.to_dict() for r in self.lifetime_by_size],
            "warnings": list(self.warnings),
            "energy_data": None if self.energy is None else self.energy.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping, *, source: str = "dataset") -> DynamicsResult:
        """Rebuild a result from :meth:`to_dict` output without recomputing anything."""
        if not isinstance(data, Mapping):
            raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != DATASET_FORMAT:
            raise ValueError(
                f"{source}: not a clusterdynamicsml dynamics dataset (format {data.get('format')!r}, "
                f"expected {DATASET_FORMAT!r})"
            )
        if data.get("version") != DATASET_VERSION:
            raise ValueError(
                f"{source}: unsupported dataset version {data.get('version')!r}; "
                f"this build reads version {DATASET_VERSION}"
            )
        try:
            preview = data["preview"]
            labels = [str(x) for x in data["cluster_labels"]]
            n_labels = len(labels)

            n_bins = len(data["bin_edges_fs"]) - 1
            n_sel = len(data["frame_results"])

            def arr(key, dtype):
                return np.asarray(data[key], dtype=dtype)

            frame_counts = _counts_from_rows(data["frame_count_matrix"], n_labels, n_sel, "frame_count_matrix")
            bin_counts = _counts_from_rows(data["raw_count_matrix"], n_labels, n_bins, "raw_count_matrix")
            if bin_counts == frame_counts:
                bin_counts = frame_counts  # one frame per bin, as analyze_dynamics returns it
            total_bin = arr("total_clusters_per_bin", np.int64)
            frames_in_bin = arr("frames_per_bin", np.int64)
            for key, mode in (("fraction_matrix", "fraction"), ("mean_count_matrix", "mean_count")):
                _check_derived(data[key], bin_counts, mode, total_bin, frames_in_bin, labels, key)

            sizes = data["cluster_sizes"]
            energy = data.get("energy_data")
            return cls(
                timestep_fs=float(preview["frame_timestep_fs"]),
                frames_per_bin=int(preview["frames_per_colormap_timestep"]),
                bin_width_fs=float(preview["colormap_timestep_fs"]),
                start_fs=float(preview["analysis_start_fs"]),
                stop_fs=float(preview["analysis_stop_fs"]),
                stop_is_explicit=bool(preview["analysis_stop_is_explicit"]),
                observed_stop_fs=float(preview["observed_stop_fs"]),
                n_frames_total=int(preview["total_frames"]),
                frame_indices=arr("selected_frame_indices", np.int64),
                source_frame_indices=arr("selected_source_frame_indices", np.int64),
                frame_times_fs=np.asarray([r["time_fs"] for r in data["frame_results"]], dtype=np.float64),
                labels=labels,
                label_sizes=np.asarray([sizes[lab] for lab in labels], dtype=np.int64),
                bin_edges_fs=arr("bin_edges_fs", np.float64),
                frames_in_bin=frames_in_bin,
                total_clusters_per_bin=total_bin,
                bin_counts=bin_counts,
                frame_counts=frame_counts,
                total_clusters_per_frame=arr("total_clusters_per_frame", np.int64),
                lifetime_by_label=[LifetimeSummary.from_dict(r) for r in data["lifetime_by_label"]],
                lifetime_by_size=[LifetimeSummary.from_dict(r) for r in data["lifetime_by_size"]],
                time_source=str(preview["time_source_label"]),
                time_warnings=[str(w) for w in preview["time_warnings"]],
                warnings=[str(w) for w in data.get("warnings", [])],
                energy=None if energy is None else EnergyData.from_dict(energy),
                settings=dict(data.get("analysis_settings") or {}),
            )
        except KeyError as exc:
            raise ValueError(f"{source}: dataset is missing the key {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: malformed dataset: {exc}") from None

    def to_pandas(self):
        """The lifetime table (one row per label, the ``*_lifetime.csv`` fields) as a
        ``pandas.DataFrame`` (pandas is optional)."""
        from .._io import to_pandas

        return to_pandas([r.to_dict() for r in self.lifetime_by_label])

    def save(self, path: str | os.PathLike, *, write_csv: bool = True) -> list[Path]:
        """Write the JSON dataset to ``path`` and, with ``write_csv``, its CSVs beside it.

        ``X.json`` gives ``X_cluster_distribution.csv``, ``X_lifetime.csv`` and (when an
        energy file was loaded) ``X_energy.csv`` (ref §3.7). Each file is written to a
        temporary name and renamed, so an interruption never leaves a half-written file.
        Returns the paths written.
        """
        path = Path(path)
        written = [atomic_write(path, self._json_chunks())]
        if write_csv:
            stem = path.with_suffix("") if path.suffix.lower() == ".json" else path
            written.append(atomic_write(Path(f"{stem}_cluster_distribution.csv"), self._distribution_chunks()))
            written.append(atomic_write(Path(f"{stem}_lifetime.csv"), self.lifetime_csv()))
            if self.energy is not None:
                written.append(atomic_write(Path(f"{stem}_energy.csv"), self.energy_csv()))
        return written

    def _json_chunks(self):
        """The JSON text of :meth:`to_dict` in pieces: the (L, n) matrices one row at a time,
        so that saving a long trajectory never holds the whole text or a list per entry."""
        yield "{"
        for k, (key, value) in enumerate(self._dict(matrices=False).items()):
            yield ("\n " if k == 0 else ",\n ") + json.dumps(key) + ": "
            if isinstance(value, _Streamed):
                n_rows = len(self.labels)
                yield "[" if n_rows else "[]"
                for i, row in self._named_rows(value.name):
                    yield ("\n  " if i == 0 else ",\n  ") + json.dumps(row.tolist(), allow_nan=False)
                if n_rows:
                    yield "\n ]"
            else:
                yield json.dumps(value, indent=1, allow_nan=False).replace("\n", "\n ")
        yield "\n}\n"

    def _named_rows(self, name: str):
        """Rows of a dataset matrix (``_MATRICES`` key), one label at a time."""
        if name == "frame_count_matrix":
            return self.frame_counts.rows()
        return self.matrix_rows({"raw_count_matrix": "count", "fraction_matrix": "fraction",
                                 "mean_count_matrix": "mean_count"}[name])

    @classmethod
    def load(cls, path: str | os.PathLike) -> DynamicsResult:
        """Read a dataset written by :meth:`save` (no recomputation)."""
        path = Path(path)
        with open(path, encoding="utf-8") as handle:
            try:
                data = json.load(handle)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}, line {exc.lineno}: invalid JSON: {exc.msg}") from None
        return cls.from_dict(data, source=str(path))

    # ---- CSV --------------------------------------------------------------------------
    def distribution_csv(self, display_mode: str = "fraction", time_unit: str = "fs") -> str:
        """Text of ``*_cluster_distribution.csv``: one row per label x bin (ref §3.7)."""
        return "".join(self._distribution_chunks(display_mode, time_unit))

    def _distribution_chunks(self, display_mode: str = "fraction", time_unit: str = "fs", block: int = 4096):
        """:meth:`distribution_csv` in pieces of at most ``block`` rows: one label at a time,
        from the compact counts (no labels x bins matrix, no Python object per bin kept)."""
        _check_mode(display_mode)
        scale = _time_scale(time_unit)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")

        def cells(*values) -> str:  # csv-formatted text cells (quoted as the writer quotes them)
            buf.seek(0)
            buf.truncate()
            writer.writerow(values)
            return buf.getvalue()[:-1]

        yield cells(*CLUSTER_DISTRIBUTION_COLUMNS) + "\n"
        modes = cells(time_unit, display_mode)
        edges, n_bins = self.bin_edges_fs, self.n_bins
        total, per_bin = self.total_clusters_per_bin, self.frames_in_bin
        for li, raw in self.bin_counts.rows():
            head = cells(self.labels[li], int(self.label_sizes[li]))
            fraction = _row_values(raw, "fraction", total, per_bin)
            mean = _row_values(raw, "mean_count", total, per_bin)
            value = {"count": raw, "fraction": fraction, "mean_count": mean}[display_mode]
            for a in range(0, n_bins, block):
                b = min(a + block, n_bins)
                lo, hi = edges[a:b], edges[a + 1:b + 1]
                centre = 0.5 * (lo + hi)
                yield "".join(
                    f"{head},{k},{lo_},{hi_},{c},{lo_ / scale},{hi_ / scale},{c / scale},{modes},{v},{r},{f},{m},"
                    f"{n},{t}\n"
                    for k, lo_, hi_, c, v, r, f, m, n, t in zip(
                        range(a, b), lo.tolist(), hi.tolist(), centre.tolist(), value[a:b].tolist(),
                        raw[a:b].tolist(), fraction[a:b].tolist(), mean[a:b].tolist(), per_bin[a:b].tolist(),
                        total[a:b].tolist())
                )

    def lifetime_csv(self) -> str:
        """Text of ``*_lifetime.csv`` (ref §3.7 columns, then the censoring-aware extras)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(LIFETIME_COLUMNS + LIFETIME_EXTRA_COLUMNS)
        for r in self.lifetime_by_label:
            writer.writerow([
                r.label, r.cluster_size, _g12(r.mean_lifetime_fs), _g12(r.std_lifetime_fs),
                r.completed_lifetime_count, r.window_truncated_lifetime_count, r.association_rate_per_ps,
                r.dissociation_rate_per_ps, r.occupancy_fraction, r.mean_count_per_frame, r.total_observations,
                r.occupied_frames, r.association_events, r.dissociation_events,
                _g12(r.km_mean_lifetime_fs), r.km_mean_is_restricted, _g12(r.mle_lifetime_fs),
                _g12(r.mle_lifetime_stderr_fs),
            ])
        return buf.getvalue()

    def energy_csv(self) -> str:
        """Text of ``*_energy.csv`` (step, time_fs, kinetic, temperature, potential)."""
        if self.energy is None:
            raise ValueError("this result has no energy data (pass energy_file= to analyze_dynamics)")
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(ENERGY_COLUMNS)
        e = self.energy
        for i in range(len(e)):
            writer.writerow([int(e.step[i]), float(e.time_fs[i]), float(e.kinetic[i]), float(e.temperature[i]),
                             float(e.potential[i])])
        return buf.getvalue()


def _check_mode(mode: str) -> None:
    if mode not in DISPLAY_MODES:
        raise ValueError(f"display mode must be one of {DISPLAY_MODES}, got {mode!r}")


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator as float64, 0 where the denominator is 0 (no other temporary
    array of the numerator's size)."""
    out = np.zeros(np.shape(numerator), dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    np.divide(numerator, den, out=out, where=den != 0)
    return out


def _row_values(raw: np.ndarray, mode: str, total_clusters_per_bin, frames_in_bin) -> np.ndarray:
    """One label's row of a display mode from its int64 counts per bin (as :meth:`DynamicsResult.matrix`)."""
    if mode == "count":
        return raw
    return _safe_divide(raw, total_clusters_per_bin if mode == "fraction" else frames_in_bin)


def _counts_from_rows(rows, n_labels: int, n_columns: int, key: str) -> LabelCounts:
    """A dataset's (labels x columns) count matrix (lists) as compact counts, row by row."""
    if not isinstance(rows, list) or len(rows) != n_labels:
        raise ValueError(f"{key} must hold one row per label ({n_labels}), got "
                         f"{len(rows) if isinstance(rows, list) else type(rows).__name__}")
    try:
        return LabelCounts.from_rows((np.asarray(r, dtype=np.int64) for r in rows), n_columns)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _check_derived(rows, counts: LabelCounts, mode: str, total_bin, frames_in_bin, labels, key: str) -> None:
    """The stored fraction / mean-count matrix must be the one the counts give (it is derived on load)."""
    if not isinstance(rows, list) or len(rows) != len(labels):
        raise ValueError(f"{key} must hold one row per label ({len(labels)})")
    for i, raw in counts.rows():
        stored = np.asarray(rows[i], dtype=np.float64)
        if not np.array_equal(stored, _row_values(raw, mode, total_bin, frames_in_bin)):
            raise ValueError(f"{key}, label {labels[i]!r}: the values are not raw_count_matrix divided by "
                             f"{'total_clusters_per_bin' if mode == 'fraction' else 'frames_per_bin'} "
                             "(an edited or inconsistent dataset)")


def _time_scale(unit: str) -> float:
    if unit == "fs":
        return 1.0
    if unit == "ps":
        return 1000.0
    raise ValueError(f"time unit must be 'fs' or 'ps', got {unit!r}")


def _g12(value) -> str:
    return "" if value is None else f"{value:.12g}"


class _Streamed:
    """Placeholder for a matrix that :meth:`DynamicsResult.save` writes row by row."""

    def __init__(self, name: str):
        self.name = name


def _json_ready(value):
    """Settings to plain JSON types (unknown objects become their repr)."""
    return to_jsonable(value, nan_as_null=False, fallback=repr)
