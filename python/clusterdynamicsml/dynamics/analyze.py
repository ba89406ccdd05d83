r"""Cluster dynamics: time window, bins, count matrices, lifetimes and rates (ref §3).

Three steps, each usable alone:

1. resolve the frame source (a path read with :func:`clusterdynamicsml.read_frames`, a
   ``FrameSource``, a list of ``Frame``, or any iterable of frames);
2. count the cluster labels of every frame, in fixed chunks of frames mapped over local
   processes or a Dask cluster by :func:`clusterdynamicsml.dynamics.parallel.map_chunks`; only the
   per-frame label counts travel back, never the frames (streaming: memory does not grow
   with the trajectory except for one small integer per frame and label);
3. :func:`dynamics_from_counts`, pure numpy on the (frames x labels) integer count series
   and the frame times: window, bins, matrices and lifetime tables.

:func:`analyze_dynamics` chains the three and returns a :class:`DynamicsResult`.

Definitions (units: femtoseconds, rates per picosecond)
-------------------------------------------------------
Time step and bins (ref §3.1, §3.3). ``dt`` is the frame time step (default 0.5 fs). A bin
holds ``k`` frame steps (``frames_per_bin``, a positive integer) and is ``Delta = k dt``
wide; a bin width given in fs must be an integer multiple of ``dt`` (relative tolerance
1e-9). Window (ref §3.2): ``start`` = the given value or the first frame time; ``stop`` =
the given value or the last frame time + dt; if ``stop <= start`` then ``stop = start + dt``.
Frames with ``t >= start`` are selected, and ``t < stop`` for the default stop but
``t <= stop`` for an explicit (inclusive) stop. Bins: ``n_bins = max(ceil((stop - start) /
Delta), 1)`` (a relative 1e-9 guard keeps rounding noise from adding an empty bin), edges
``start + i Delta``; frame ``t`` goes to bin ``searchsorted(edges, t, "right") - 1`` clipped
to ``[0, n_bins - 1]``, so a frame exactly on an edge belongs to the later bin ("on" within
a relative 1e-9 of the bin width, so float rounding of the edges does not move frames).

Matrices (ref §3.4), labels sorted by (cluster size, label):

.. math::

    R_{lb} = \sum_{f \in b} c_l(f), \quad
    F_{lb} = R_{lb} / \sum_l R_{lb}, \quad
    M_{lb} = R_{lb} / n_b

with 0 where a denominator is 0 (``n_b`` = frames in bin ``b``).

Lifetimes per label (ref §3.5), from the count series ``c[0..F-1]`` at times ``t``, window
``[start, T_obs]`` with ``T_obs = max(stop, t[F-1])``:

* occupancy = #{c > 0} / F; mean count per frame = mean(c);
* association events = sum max(c[f] - c[f-1], 0); dissociation events = sum max(c[f-1] - c[f], 0)
  (the initial count is not an association); rates = events / T, with
  ``T = max((T_obs - start) / 1000, 1e-12)`` ps;
* anonymous instances in a FIFO queue: ``c[0]`` instances born at ``t[0]`` flagged
  left-censored; an increase pushes new instances born at ``t[f]``; a decrease pops the
  oldest, with lifetime ``t[f] - birth`` (window-truncated if left-censored, else completed);
  instances alive at the end are window-truncated with lifetime ``T_obs - birth``;
* ``mean_lifetime_fs``, ``std_lifetime_fs`` (population, ddof=0): completed lifetimes only,
  None when there are none.

Censoring-aware estimates (extra columns; the reference mean ignores truncated lifetimes
and is biased short for long-lived labels, ref N6):

* ``km_mean_lifetime_fs``: the Kaplan-Meier mean of the instances born inside the window,
  completed lifetimes as events and right-truncated ones as censored,
  :math:`\int_0^{t_{max}} \hat S(t)\,dt` with :math:`\hat S(t) = \prod_{u_i \le t}(1 - d_i / n_i)`.
  When the longest observation is censored the curve has not reached 0 and the value is a
  restricted mean, a lower bound (``km_mean_is_restricted`` True).
* ``mle_lifetime_fs``: the exponential (constant hazard) maximum-likelihood lifetime using
  every instance, truncated ones included: total observed exposure / observed deaths,

  .. math:: \hat\tau = \frac{\sum_i \ell_i}{D} = \frac{\int_{t_0}^{T_{obs}} c(t)\,dt}{\text{dissociation events}},

  (``c`` held constant between frames, ``t_0`` the first selected frame) with standard
  error :math:`\hat\tau / \sqrt{D}`. Left-censored instances enter through
  their observed exposure, which the memoryless exponential model allows. It does not depend
  on the FIFO pairing. None when there are no deaths.

Lifetimes by size: the same quantities on the summed series of all labels of one size.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path

import numpy as np

from .._io import atomic_write, to_jsonable
from ..io.energy import EnergyData, read_cp2k_ener

DATASET_FORMAT = "clusterdynamicsml.dynamics.analyze"
#: Version of the JSON dataset written by :meth:`DynamicsResult.save`.
DATASET_VERSION = 1
#: Frame time step used when nothing else gives one (ref §1.2), femtoseconds.
DEFAULT_TIMESTEP_FS = 0.5
#: Frames per chunk when ``chunk_size`` is not given.
DEFAULT_CHUNK_SIZE = 32
DISPLAY_MODES = ("count", "fraction", "mean_count")
_REL_TOL = 1e-9

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


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------
def _finite_float(value, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and out <= 0:
        raise ValueError(f"{name} must be > 0 fs, got {value!r}")
    return out


def resolve_bin_width(
    timestep_fs: float,
    frames_per_bin: int | None = None,
    bin_width_fs: float | None = None,
    *,
    require_integral_ratio: bool = True,
) -> tuple[int, float]:
    """Return ``(frames_per_bin, bin_width_fs)`` as ref §3.1.

    frames_per_bin : positive int (bool rejected); bin_width_fs : femtoseconds.
    Only ``k``: ``Delta = k dt``. Both: they must agree (relative 1e-9). Only ``Delta``: it must
    be an integer multiple of ``dt`` (relative 1e-9) unless ``require_integral_ratio`` is False.
    Neither: ``k = 1``.
    """
    dt = _finite_float(timestep_fs, "timestep_fs", positive=True)
    k = None
    if frames_per_bin is not None:
        if isinstance(frames_per_bin, bool) or not isinstance(frames_per_bin, (int, np.integer)) or frames_per_bin < 1:
            raise ValueError(f"frames_per_bin must be a positive integer, got {frames_per_bin!r}")
        k = int(frames_per_bin)
    if bin_width_fs is None:
        k = 1 if k is None else k
        return k, k * dt
    width = _finite_float(bin_width_fs, "bin_width_fs", positive=True)
    if k is not None:
        if abs(width - k * dt) > _REL_TOL * max(abs(width), k * dt):
            raise ValueError(
                f"bin_width_fs={width} does not match frames_per_bin={k} x timestep_fs={dt} = {k * dt} fs"
            )
        return k, k * dt
    ratio = width / dt
    nearest = round(ratio)
    if nearest < 1 or abs(ratio - nearest) > _REL_TOL * max(abs(ratio), 1.0):
        if require_integral_ratio:
            raise ValueError(
                f"bin_width_fs must be an integer multiple of timestep_fs={dt} fs; got {width} fs "
                f"({ratio:.6g} frame steps)"
            )
        return max(int(nearest), 1), width
    return int(nearest), int(nearest) * dt


@dataclass(frozen=True)
class TimeWindow:
    """The resolved analysis window (femtoseconds) and the selected frames (bool mask)."""

    start_fs: float
    stop_fs: float
    stop_is_explicit: bool
    selected: np.ndarray


def resolve_time_window(times_fs, timestep_fs: float, start_fs=None, stop_fs=None) -> TimeWindow:
    """Resolve the window and select frames as ref §3.2 (see the module docstring).

    Raises ValueError when no frame lies in the window.
    """
    t = np.asarray(times_fs, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"times_fs must be a non-empty 1-D array, got shape {t.shape}")
    dt = _finite_float(timestep_fs, "timestep_fs", positive=True)
    start = float(t[0]) if start_fs is None else _finite_float(start_fs, "start_fs")
    explicit = stop_fs is not None
    stop = float(t[-1]) + dt if stop_fs is None else _finite_float(stop_fs, "stop_fs")
    if stop <= start:
        stop = start + dt
    selected = (t >= start) & ((t <= stop) if explicit else (t < stop))
    if not selected.any():
        raise ValueError(
            f"no frames in the analysis window [{start:g}, {stop:g}{']' if explicit else ')'} fs; "
            f"the frames span {float(t[0]):g} to {float(t[-1]):g} fs"
        )
    return TimeWindow(start, stop, explicit, selected)


def build_bin_edges(start_fs: float, stop_fs: float, bin_width_fs: float) -> np.ndarray:
    """Bin edges ``start + i Delta``, ``i = 0 .. n_bins`` (ref §3.3), femtoseconds."""
    span = (stop_fs - start_fs) / bin_width_fs
    n_bins = max(int(math.ceil(span - _REL_TOL * max(abs(span), 1.0))), 1)
    return start_fs + np.arange(n_bins + 1, dtype=np.float64) * bin_width_fs


def assign_bins(times_fs, edges) -> np.ndarray:
    """Bin index of each time (int64): ``searchsorted(edges, t, "right") - 1`` clipped to the bins.

    A frame on an edge goes to the later bin. "On an edge" allows a relative 1e-9 of the bin
    width, so a time and an edge computed by different float products of the time step
    (``9 x 0.1 = 0.9`` but ``3 x (3 x 0.1) = 0.9000000000000001``) still agree.
    """
    edges = np.asarray(edges, dtype=np.float64)
    width = float(np.min(np.diff(edges))) if edges.size > 1 else 0.0
    t = np.asarray(times_fs, dtype=np.float64)
    idx = np.searchsorted(edges, t + _REL_TOL * width, side="right") - 1
    return np.clip(idx, 0, edges.size - 2).astype(np.int64)


# --------------------------------------------------------------------------------------
# lifetimes
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeriesLifetimes:
    """Per-instance lifetimes (fs) of one count series, by kind (see the module docstring)."""

    completed: np.ndarray  # born and died inside the window
    left_truncated: np.ndarray  # present at the first frame, died inside the window
    right_truncated: np.ndarray  # born inside the window, alive at the end
    spanning: np.ndarray  # present at the first frame and alive at the end

    @property
    def window_truncated(self) -> np.ndarray:
        return np.concatenate([self.left_truncated, self.right_truncated, self.spanning])


def series_lifetimes(counts, times_fs, stop_obs_fs: float) -> SeriesLifetimes:
    """FIFO instance bookkeeping of ref §3.5, vectorised.

    counts : non-negative ints (F,); times_fs : increasing floats (F,);
    stop_obs_fs : end of the observed window (fs), ``>= times_fs[-1]``.

    Since the count never goes negative, the k-th death always pops the k-th birth (FIFO),
    so births and deaths can be paired by rank.
    """
    c = np.asarray(counts, dtype=np.int64)
    t = np.asarray(times_fs, dtype=np.float64)
    if c.size == 0:
        empty = np.zeros(0)
        return SeriesLifetimes(empty, empty, empty, empty)
    delta = np.diff(c)
    births = np.concatenate([np.repeat(t[:1], c[0]), np.repeat(t[1:], np.clip(delta, 0, None))])
    deaths = np.repeat(t[1:], np.clip(-delta, 0, None))
    n_dead = deaths.size
    n_left = int(c[0])
    lived = np.maximum(deaths - births[:n_dead], 0.0)
    alive = stop_obs_fs - births[n_dead:]
    left_dead = min(n_left, n_dead)
    return SeriesLifetimes(
        completed=lived[left_dead:],
        left_truncated=lived[:left_dead],
        right_truncated=alive[max(n_left - n_dead, 0):],
        spanning=alive[: max(n_left - n_dead, 0)],
    )


def kaplan_meier_mean(durations, observed) -> tuple[float | None, bool]:
    """Kaplan-Meier mean of right-censored durations (fs).

    durations : (n,) >= 0; observed : (n,) bool, True for an observed end (event).
    Returns ``(mean, restricted)``: the area under the KM survival curve up to the longest
    duration, and whether the curve was still above 0 there (then the mean is restricted,
    a lower bound). ``(None, False)`` for no durations.
    """
    d = np.asarray(durations, dtype=np.float64)
    e = np.asarray(observed, dtype=bool)
    if d.size == 0:
        return None, False
    order = np.argsort(d, kind="stable")
    d, e = d[order], e[order]
    event_times = np.unique(d[e])
    survival = 1.0
    area = 0.0
    previous = 0.0
    for u in event_times:
        at_risk = d.size - int(np.searchsorted(d, u, side="left"))
        n_events = int(np.count_nonzero(d[e] == u))
        area += survival * (u - previous)
        previous = float(u)
        survival *= 1.0 - n_events / at_risk
    t_max = float(d[-1])
    area += survival * (t_max - previous)
    return float(area), bool(survival > 0.0)


@dataclass(frozen=True)
class LifetimeSummary:
    """Kinetics of one label (``label`` set) or of one cluster size (``label`` None); ref §3.5.

    Times in femtoseconds, rates per picosecond. The four last fields are the
    censoring-aware estimates (see the module docstring).
    """

    label: str | None
    cluster_size: int
    total_observations: int
    occupied_frames: int
    mean_count_per_frame: float
    occupancy_fraction: float
    association_events: int
    dissociation_events: int
    association_rate_per_ps: float
    dissociation_rate_per_ps: float
    completed_lifetime_count: int
    window_truncated_lifetime_count: int
    mean_lifetime_fs: float | None
    std_lifetime_fs: float | None
    km_mean_lifetime_fs: float | None = None
    km_mean_is_restricted: bool = False
    mle_lifetime_fs: float | None = None
    mle_lifetime_stderr_fs: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> LifetimeSummary:
        data = dict(data)
        if "censored_lifetime_count" in data and "window_truncated_lifetime_count" not in data:
            data["window_truncated_lifetime_count"] = data.pop("censored_lifetime_count")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"lifetime row has unknown keys {unknown}")
        return cls(**data)


def summarize_series(
    counts, times_fs, start_fs: float, stop_fs: float, *, label: str | None = None, cluster_size: int = 0
) -> LifetimeSummary:
    """Occupancy, events, rates and lifetimes of one count series (ref §3.5 plus extra columns).

    counts : non-negative ints (F,); times_fs : increasing (F,), femtoseconds;
    start_fs, stop_fs : the analysis window; the observed end is ``max(stop_fs, times_fs[-1])``.
    """
    c = np.asarray(counts, dtype=np.int64)
    t = np.asarray(times_fs, dtype=np.float64)
    if c.ndim != 1 or c.shape != t.shape or c.size == 0:
        raise ValueError(f"counts and times_fs must be non-empty 1-D arrays of equal length, got {c.shape} and {t.shape}")
    if np.any(c < 0):
        raise ValueError("counts must be non-negative")
    stop_obs = max(float(stop_fs), float(t[-1]))
    span_ps = max((stop_obs - float(start_fs)) / 1000.0, 1e-12)
    delta = np.diff(c)
    assoc = int(np.clip(delta, 0, None).sum())
    dissoc = int(np.clip(-delta, 0, None).sum())
    life = series_lifetimes(c, t, stop_obs)
    completed = life.completed
    truncated = life.window_truncated
    mean = float(np.mean(completed)) if completed.size else None
    std = float(np.std(completed)) if completed.size else None
    km_durations = np.concatenate([completed, life.right_truncated])
    km_observed = np.concatenate([np.ones(completed.size, bool), np.zeros(life.right_truncated.size, bool)])
    km_mean, km_restricted = kaplan_meier_mean(km_durations, km_observed)
    exposure = float(completed.sum() + truncated.sum())
    mle = exposure / dissoc if dissoc > 0 else None
    mle_se = mle / math.sqrt(dissoc) if dissoc > 0 else None
    return LifetimeSummary(
        label=label,
        cluster_size=int(cluster_size),
        total_observations=int(c.sum()),
        occupied_frames=int(np.count_nonzero(c > 0)),
        mean_count_per_frame=float(np.mean(c)),
        occupancy_fraction=float(np.count_nonzero(c > 0) / c.size),
        association_events=assoc,
        dissociation_events=dissoc,
        association_rate_per_ps=assoc / span_ps,
        dissociation_rate_per_ps=dissoc / span_ps,
        completed_lifetime_count=int(completed.size),
        window_truncated_lifetime_count=int(truncated.size),
        mean_lifetime_fs=mean,
        std_lifetime_fs=std,
        km_mean_lifetime_fs=km_mean,
        km_mean_is_restricted=km_restricted,
        mle_lifetime_fs=mle,
        mle_lifetime_stderr_fs=mle_se,
    )


def label_size(label: str) -> int:
    """Atoms in a cluster label such as ``Pb2I5`` (7): the sum of the element counts read by
    :func:`clusterdynamicsml.clusters.extract.parse_label` (a count of 1 is omitted in labels)."""
    from ..clusters.extract import parse_label

    try:
        return int(sum(parse_label(label).values()))
    except ValueError as exc:
        raise ValueError(f"cannot read the cluster size from label {label!r}: {exc}") from None


# --------------------------------------------------------------------------------------
# the result
# --------------------------------------------------------------------------------------
_ARRAY_FIELDS = {
    "frame_indices": np.int64, "source_frame_indices": np.int64, "frame_times_fs": np.float64,
    "label_sizes": np.int64, "bin_edges_fs": np.float64, "frames_in_bin": np.int64,
    "total_clusters_per_bin": np.int64, "raw_count_matrix": np.int64, "fraction_matrix": np.float64,
    "mean_count_matrix": np.float64, "frame_count_matrix": np.int64, "total_clusters_per_frame": np.int64,
}


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
    Matrices: ``raw_count_matrix`` int (L, n_bins), ``fraction_matrix`` and
    ``mean_count_matrix`` float (L, n_bins), ``frames_in_bin`` (n_bins,),
    ``total_clusters_per_bin`` (n_bins,), ``frame_count_matrix`` int (L, F),
    ``total_clusters_per_frame`` (F,).
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
    raw_count_matrix: np.ndarray
    fraction_matrix: np.ndarray
    mean_count_matrix: np.ndarray
    frame_count_matrix: np.ndarray
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

    def matrix(self, mode: str = "fraction") -> np.ndarray:
        """The (labels x bins) matrix of a display mode: "count", "fraction" or "mean_count"."""
        if mode == "count":
            return self.raw_count_matrix
        if mode == "fraction":
            return self.fraction_matrix
        if mode == "mean_count":
            return self.mean_count_matrix
        raise ValueError(f"display mode must be one of {DISPLAY_MODES}, got {mode!r}")

    def lifetime_row(self, label: str) -> LifetimeSummary:
        """The lifetime summary of one label (KeyError when the label was never seen)."""
        for row in self.lifetime_by_label:
            if row.label == label:
                return row
        raise KeyError(f"label {label!r} not in this result; labels: {self.labels}")

    def counts(self, label: str) -> np.ndarray:
        """Per-frame count series (F,) of one label."""
        return self.frame_count_matrix[self.labels.index(label)]

    def lifetimes(self, label: str | None = None, size: int | None = None) -> SeriesLifetimes:
        """Per-instance lifetimes (fs) of one label, or of one cluster size, recomputed from the counts."""
        if (label is None) == (size is None):
            raise ValueError("give exactly one of label= or size=")
        if label is not None:
            series = self.counts(label)
        else:
            rows = self.label_sizes == size
            if not rows.any():
                raise KeyError(f"no labels of size {size}; sizes: {sorted(set(self.label_sizes.tolist()))}")
            series = self.frame_count_matrix[rows].sum(axis=0)
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
            f"window: {self.start_fs:g} to {self.stop_fs:g} fs ({'inclusive' if self.stop_is_explicit else 'exclusive'} stop)",
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
            else:
                same = a == b
            if not same:
                out.append(f.name)
        return out

    # ---- persistence ----------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict of the dataset (keys of ref §3.7 where they exist)."""
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
            "raw_count_matrix": self.raw_count_matrix.tolist(),
            "fraction_matrix": self.fraction_matrix.tolist(),
            "mean_count_matrix": self.mean_count_matrix.tolist(),
            "frame_count_matrix": self.frame_count_matrix.tolist(),
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
            raise ValueError(f"{source}: not a clusterdynamicsml dynamics dataset (format {data.get('format')!r}, expected {DATASET_FORMAT!r})")
        if data.get("version") != DATASET_VERSION:
            raise ValueError(f"{source}: unsupported dataset version {data.get('version')!r}; this build reads version {DATASET_VERSION}")
        try:
            preview = data["preview"]
            labels = [str(x) for x in data["cluster_labels"]]
            n_labels = len(labels)

            n_bins = len(data["bin_edges_fs"]) - 1
            n_sel = len(data["frame_results"])

            def arr(key, dtype, columns=None):
                a = np.asarray(data[key], dtype=dtype)
                if columns is not None and a.size == 0:
                    a = a.reshape(n_labels, columns)
                return a

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
                frames_in_bin=arr("frames_per_bin", np.int64),
                total_clusters_per_bin=arr("total_clusters_per_bin", np.int64),
                raw_count_matrix=arr("raw_count_matrix", np.int64, n_bins),
                fraction_matrix=arr("fraction_matrix", np.float64, n_bins),
                mean_count_matrix=arr("mean_count_matrix", np.float64, n_bins),
                frame_count_matrix=arr("frame_count_matrix", np.int64, n_sel),
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
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        written = [_atomic_write(path, text)]
        if write_csv:
            stem = path.with_suffix("") if path.suffix.lower() == ".json" else path
            written.append(_atomic_write(Path(f"{stem}_cluster_distribution.csv"), self.distribution_csv()))
            written.append(_atomic_write(Path(f"{stem}_lifetime.csv"), self.lifetime_csv()))
            if self.energy is not None:
                written.append(_atomic_write(Path(f"{stem}_energy.csv"), self.energy_csv()))
        return written

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
        values = self.matrix(display_mode)
        scale = _time_scale(time_unit)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CLUSTER_DISTRIBUTION_COLUMNS)
        edges = self.bin_edges_fs
        for li, label in enumerate(self.labels):
            for b in range(self.n_bins):
                lo, hi = float(edges[b]), float(edges[b + 1])
                centre = 0.5 * (lo + hi)
                writer.writerow([
                    label, int(self.label_sizes[li]), b, lo, hi, centre, lo / scale, hi / scale, centre / scale,
                    time_unit, display_mode, _plain(values[li, b]), int(self.raw_count_matrix[li, b]),
                    float(self.fraction_matrix[li, b]), float(self.mean_count_matrix[li, b]),
                    int(self.frames_in_bin[b]), int(self.total_clusters_per_bin[b]),
                ])
        return buf.getvalue()

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
            writer.writerow([int(e.step[i]), float(e.time_fs[i]), float(e.kinetic[i]), float(e.temperature[i]), float(e.potential[i])])
        return buf.getvalue()


def _time_scale(unit: str) -> float:
    if unit == "fs":
        return 1.0
    if unit == "ps":
        return 1000.0
    raise ValueError(f"time unit must be 'fs' or 'ps', got {unit!r}")


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _g12(value) -> str:
    return "" if value is None else "%.12g" % value


_atomic_write = atomic_write


# --------------------------------------------------------------------------------------
# step 3: pure aggregation
# --------------------------------------------------------------------------------------
def _infer_timestep(times: np.ndarray, notes: list[str]) -> float:
    steps = np.diff(times)
    if steps.size:
        spacing = float(np.median(steps))
        notes.append(f"timestep_fs not given: using the median frame spacing {spacing:g} fs")
        return spacing
    notes.append(f"timestep_fs not given: using the default {DEFAULT_TIMESTEP_FS} fs")
    return DEFAULT_TIMESTEP_FS


def dynamics_from_counts(
    times_fs,
    counts,
    labels: Sequence[str],
    *,
    timestep_fs: float | None = None,
    frames_per_bin: int | None = None,
    bin_width_fs: float | None = None,
    start_fs: float | None = None,
    stop_fs: float | None = None,
    label_sizes: Mapping[str, int] | Sequence[int] | None = None,
    frame_indices=None,
    source_frame_indices=None,
    time_source: str = "frames",
    time_warnings: Iterable[str] = (),
    warnings: Iterable[str] = (),
    energy: EnergyData | None = None,
    settings: Mapping | None = None,
    n_frames_total: int | None = None,
) -> DynamicsResult:
    """Window, bins, matrices and lifetimes from per-frame label counts (pure numpy).

    times_fs : (F,) strictly increasing frame times, femtoseconds.
    counts : (F, L) non-negative integer counts, column j for ``labels[j]``.
    labels : (L,) distinct label strings.
    timestep_fs : frame time step dt (fs); None uses the median frame spacing (with a note in
        ``time_warnings``), or 0.5 fs for a single frame.
    frames_per_bin, bin_width_fs : see :func:`resolve_bin_width`.
    start_fs, stop_fs : analysis window (see :func:`resolve_time_window`).
    label_sizes : atoms per cluster for each label (mapping or sequence aligned with labels);
        default: read from the label (:func:`label_size`).
    frame_indices, source_frame_indices : (F,) ints recorded for the selected frames
        (default 0 .. F-1).
    n_frames_total : frames in the whole source, when only a part of it is given (default F).
    Labels never seen in the selected frames are dropped.
    """
    t = np.asarray(times_fs, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"times_fs must be a non-empty 1-D array of frame times (fs), got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("times_fs must be finite")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        k = int(np.argmax(np.diff(t) <= 0))
        raise ValueError(
            f"frame times must be strictly increasing; frame {k + 1} has time {t[k + 1]:g} fs after {t[k]:g} fs"
        )
    labels = [str(x) for x in labels]
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct, got {labels}")
    c = np.asarray(counts)
    if c.size == 0:
        c = c.reshape(t.size, len(labels))
    if c.shape != (t.size, len(labels)):
        raise ValueError(f"counts must have shape (frames, labels) = ({t.size}, {len(labels)}), got {c.shape}")
    if c.dtype.kind not in "iub":
        if not np.all(np.isfinite(c)) or not np.all(c == np.round(c)):
            raise ValueError(f"counts must be integers, got dtype {c.dtype}")
    c = c.astype(np.int64)
    if np.any(c < 0):
        raise ValueError("counts must be non-negative")

    notes = [str(w) for w in time_warnings]
    if timestep_fs is None:
        dt = _infer_timestep(t, notes)
    else:
        dt = _finite_float(timestep_fs, "timestep_fs", positive=True)
    k, width = resolve_bin_width(dt, frames_per_bin, bin_width_fs)
    window = resolve_time_window(t, dt, start_fs, stop_fs)
    sel = window.selected
    ts = t[sel]
    cs = c[sel]
    if ts.size > 1:
        spacing = float(np.min(np.diff(ts)))
        if spacing > width * (1 + _REL_TOL):
            notes.append(
                f"bin width {width:g} fs is smaller than the frame spacing {spacing:g} fs: some bins hold no frames"
            )

    if label_sizes is None:
        sizes = np.array([label_size(lab) for lab in labels], dtype=np.int64)
    elif isinstance(label_sizes, Mapping):
        missing = [lab for lab in labels if lab not in label_sizes]
        if missing:
            raise ValueError(f"label_sizes has no size for labels {missing}")
        sizes = np.array([int(label_sizes[lab]) for lab in labels], dtype=np.int64)
    else:
        sizes = np.asarray(label_sizes, dtype=np.int64)
        if sizes.shape != (len(labels),):
            raise ValueError(f"label_sizes must have one entry per label ({len(labels)}), got shape {sizes.shape}")

    present = cs.sum(axis=0) > 0
    order = sorted((j for j in range(len(labels)) if present[j]), key=lambda j: (int(sizes[j]), labels[j]))
    labels_sorted = [labels[j] for j in order]
    sizes_sorted = sizes[order] if order else np.zeros(0, dtype=np.int64)
    frame_matrix = np.ascontiguousarray(cs[:, order].T) if order else np.zeros((0, ts.size), dtype=np.int64)

    edges = build_bin_edges(window.start_fs, window.stop_fs, width)
    n_bins = edges.size - 1
    bins = assign_bins(ts, edges)
    raw_t = np.zeros((n_bins, len(order)), dtype=np.int64)
    np.add.at(raw_t, bins, frame_matrix.T)
    raw = np.ascontiguousarray(raw_t.T)
    frames_in_bin = np.bincount(bins, minlength=n_bins).astype(np.int64)
    total_bin = raw.sum(axis=0).astype(np.int64) if order else np.zeros(n_bins, dtype=np.int64)
    fraction = _safe_divide(raw, total_bin)
    mean_count = _safe_divide(raw, frames_in_bin)
    total_frame = frame_matrix.sum(axis=0).astype(np.int64) if order else np.zeros(ts.size, dtype=np.int64)

    by_label = [
        summarize_series(frame_matrix[i], ts, window.start_fs, window.stop_fs, label=lab, cluster_size=int(sizes_sorted[i]))
        for i, lab in enumerate(labels_sorted)
    ]
    by_size = [
        summarize_series(frame_matrix[sizes_sorted == s].sum(axis=0), ts, window.start_fs, window.stop_fs, label=None, cluster_size=int(s))
        for s in sorted(set(sizes_sorted.tolist()))
    ]

    n_total = t.size if n_frames_total is None else int(n_frames_total)
    fi = np.arange(n_total, dtype=np.int64) if frame_indices is None else np.asarray(frame_indices, dtype=np.int64)
    si = fi if source_frame_indices is None else np.asarray(source_frame_indices, dtype=np.int64)
    if fi.shape != t.shape or si.shape != t.shape:
        raise ValueError(f"frame_indices and source_frame_indices must have shape {t.shape}, got {fi.shape} and {si.shape}")

    return DynamicsResult(
        timestep_fs=dt,
        frames_per_bin=k,
        bin_width_fs=width,
        start_fs=window.start_fs,
        stop_fs=window.stop_fs,
        stop_is_explicit=window.stop_is_explicit,
        observed_stop_fs=max(window.stop_fs, float(ts[-1])),
        n_frames_total=int(n_total),
        frame_indices=fi[sel].copy(),
        source_frame_indices=si[sel].copy(),
        frame_times_fs=ts.copy(),
        labels=labels_sorted,
        label_sizes=np.asarray(sizes_sorted, dtype=np.int64),
        bin_edges_fs=edges,
        frames_in_bin=frames_in_bin,
        total_clusters_per_bin=total_bin,
        raw_count_matrix=raw,
        fraction_matrix=fraction,
        mean_count_matrix=mean_count,
        frame_count_matrix=frame_matrix,
        total_clusters_per_frame=total_frame,
        lifetime_by_label=by_label,
        lifetime_by_size=by_size,
        time_source=str(time_source),
        time_warnings=notes,
        warnings=[str(w) for w in warnings],
        energy=energy,
        settings=_json_ready(dict(settings or {})),
    )


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    num = numerator.astype(np.float64)
    den = np.broadcast_to(denominator.astype(np.float64), num.shape)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _json_ready(value):
    """Settings to plain JSON types (unknown objects become their repr)."""
    return to_jsonable(value, nan_as_null=False, fallback=repr)


# --------------------------------------------------------------------------------------
# step 2: per-frame counts over chunks
# --------------------------------------------------------------------------------------
def _default_counter(frame, rules):
    """:func:`clusterdynamicsml.clusters.extract.summarize_frame`: finite-cluster counts plus the
    percolating clusters, which :func:`count_chunk` keeps apart."""
    from ..clusters.extract import summarize_frame

    return summarize_frame(frame, rules)


def count_chunk(view, start: int, stop: int, *, counter: Callable, rules, lo_fs=None, hi_fs=None, num_threads=None,
                include_percolating: bool = False) -> dict:
    """Label counts of the frames ``start .. stop-1`` of ``view`` (runs in a worker).

    ``counter(frame, rules)`` returns a mapping label -> count, or a frame summary with
    ``counts`` and ``percolating`` counters (clusters spanning the periodic box); those are
    added to the counts only with ``include_percolating`` and are always reported.
    Frames with ``time_fs < lo_fs`` or ``time_fs > hi_fs`` are read but not clustered.
    Returns a compact JSON-ready dict: ``start``, ``stop``, ``time_fs``, ``source_index``,
    ``counted`` (bool per frame), ``labels`` (first-appearance order), ``counts`` (per frame,
    one int per chunk label) and ``percolating`` (``[frame, {label: count}]`` pairs).
    """
    from .._threads import set_num_threads

    times, sources, counted, rows, percolating = [], [], [], [], []
    label_ids: dict[str, int] = {}
    reader = getattr(view, "chunk", None)  # FrameSource.chunk keeps the file open between frames
    frames = reader(start, stop) if callable(reader) else (view[k] for k in range(start, stop))
    with set_num_threads(num_threads):
        for k, frame in zip(range(start, stop), frames):
            t = float(frame.time_fs)
            times.append(t)
            sources.append(int(getattr(frame, "source_index", k)))
            if (lo_fs is not None and t < lo_fs) or (hi_fs is not None and t > hi_fs):
                counted.append(False)
                rows.append({})
                continue
            found = counter(frame, rules)
            if hasattr(found, "counts") and hasattr(found, "percolating"):
                if found.percolating:
                    percolating.append([k, {str(lab): int(n) for lab, n in found.percolating.items()}])
                found = (found.counts + found.percolating) if include_percolating else found.counts
            if not isinstance(found, Mapping):
                raise ValueError(f"frame {k}: the counter must return a mapping label -> count, got {type(found).__name__}")
            row = {}
            for label, n in found.items():
                if isinstance(n, bool) or int(n) != n or n < 0:
                    raise ValueError(f"frame {k}: the counter returned a non-integer or negative count {n!r} for label {label!r}")
                if n:
                    row[label_ids.setdefault(str(label), len(label_ids))] = int(n)
            counted.append(True)
            rows.append(row)
    if len(times) != stop - start:
        raise ValueError(f"the frame source gave {len(times)} frames for positions {start} to {stop - 1}")
    n_lab = len(label_ids)
    dense = [[row.get(j, 0) for j in range(n_lab)] for row in rows]
    return {
        "start": start, "stop": stop, "time_fs": times, "source_index": sources, "counted": counted,
        "labels": list(label_ids), "counts": dense, "percolating": percolating,
    }


class _Checkpoint:
    """Append-only JSON-lines file of per-chunk counts; the first line fingerprints the run."""

    KIND = "clusterdynamicsml.dynamics.analyze.checkpoint"

    def __init__(self, path: Path, fingerprint: dict, bounds: list[tuple[int, int]]):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.bounds = bounds
        self.done: dict[int, dict] = {}
        good_bytes = 0
        if self.path.exists():
            good_bytes = self._read()
        if good_bytes == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", encoding="utf-8") as handle:
                handle.write(json.dumps({"kind": self.KIND, "version": 1, "fingerprint": fingerprint}) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        else:
            with open(self.path, "r+b") as handle:  # drop a partly written last line
                handle.truncate(good_bytes)

    def _read(self) -> int:
        with open(self.path, "rb") as handle:
            data = handle.read()
        lines = data.split(b"\n")
        if len(lines) == 1:  # the header itself was cut short: start again
            return 0
        try:
            header = json.loads(lines[0])
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError(f"{self.path}, line 1: not a clusterdynamicsml checkpoint header") from None
        if not isinstance(header, dict) or header.get("kind") != self.KIND:
            raise ValueError(f"{self.path}, line 1: not a clusterdynamicsml dynamics checkpoint")
        if header.get("fingerprint") != self.fingerprint:
            diff = sorted(
                k for k in set(self.fingerprint) | set(header.get("fingerprint") or {})
                if (header.get("fingerprint") or {}).get(k) != self.fingerprint.get(k)
            )
            raise ValueError(
                f"{self.path}: this checkpoint was written for another run (differs in {diff}); "
                f"delete it or pass another checkpoint path"
            )
        good = len(lines[0]) + 1
        # only newline-terminated lines are complete; the text after the last newline is a
        # partly written entry from an interrupted run and is dropped
        for lineno, raw in enumerate(lines[1:-1], start=2):
            try:
                entry = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ValueError(f"{self.path}, line {lineno}: corrupt checkpoint entry") from None
            c = entry.get("chunk") if isinstance(entry, dict) else None
            res = entry.get("result") if isinstance(entry, dict) else None
            if not isinstance(c, int) or not 0 <= c < len(self.bounds) or not isinstance(res, dict) or (
                (res.get("start"), res.get("stop")) != self.bounds[c]
            ):
                raise ValueError(f"{self.path}, line {lineno}: chunk entry does not match the chunk layout of this run")
            self.done[c] = res
            good += len(raw) + 1
        return good

    def append(self, chunk: int, result: dict) -> None:
        line = json.dumps({"chunk": chunk, "result": result}, allow_nan=False) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.done[chunk] = result


def _source_fingerprint(frames_or_path, source) -> dict:
    if isinstance(frames_or_path, (str, os.PathLike)):
        p = Path(frames_or_path)
        st = p.stat()
        return {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if isinstance(source, (list, tuple)):
        h = hashlib.sha256()
        for fr in source:
            h.update(np.float64(fr.time_fs).tobytes())
            h.update(np.ascontiguousarray(fr.positions, dtype=np.float64).tobytes())
            h.update("|".join(fr.symbols).encode())
        return {"frames_sha256": h.hexdigest()}
    try:
        return {"source_sha256": hashlib.sha256(pickle.dumps(source)).hexdigest()}
    except Exception as exc:  # noqa: BLE001 - any pickling failure means we cannot fingerprint
        raise ValueError(f"checkpoint= needs a picklable frame source, got {type(source).__name__}: {exc}") from None


def _known_times(source) -> np.ndarray | None:
    """Frame times (fs) known without reading frames (FrameSource.times_fs, or frames in memory),
    when strictly increasing; else None."""
    times = getattr(source, "times_fs", None)
    if times is None and isinstance(source, (list, tuple)):
        try:
            times = [float(f.time_fs) for f in source]
        except (AttributeError, TypeError, ValueError):
            return None
    if times is None or callable(times):
        return None
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or t.size != len(source) or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        return None
    return t


def _rules_description(rules):
    to_dict = getattr(rules, "to_dict", None)
    if callable(to_dict):
        return _json_ready(to_dict())
    return _json_ready(rules) if isinstance(rules, (Mapping, list, tuple)) else repr(rules)


def _resolve_source(frames_or_path, box, timestep_fs):
    """Return (source, random_access, time_source, warnings, source_timestep)."""
    if isinstance(frames_or_path, (str, os.PathLike)):
        from ..io.frames import read_frames

        kwargs = {"box": box}
        if timestep_fs is not None:
            kwargs["timestep_fs"] = timestep_fs
        source = read_frames(frames_or_path, **kwargs)
    else:
        source = frames_or_path
        if box is not None:
            raise ValueError("box= applies only when frames are read from a path; Frame objects carry their own box")
    random_access = hasattr(source, "__getitem__") and hasattr(source, "__len__")
    if not random_access and not isinstance(source, Iterable):
        raise ValueError(
            f"frames_or_path must be a path, a FrameSource, a list of Frame or an iterable of Frame; got {type(source).__name__}"
        )
    time_source = str(getattr(source, "time_source", None) or "frames")
    notes = [str(w) for w in (getattr(source, "warnings", None) or [])]
    return source, random_access, time_source, notes, getattr(source, "timestep_fs", None)


def analyze_dynamics(
    frames_or_path,
    rules=None,
    frames_per_bin: int | None = None,
    timestep_fs: float | None = None,
    start_fs: float | None = None,
    stop_fs: float | None = None,
    energy_file: str | os.PathLike | None = None,
    workers: int | None = None,
    scheduler=None,
    progress: bool = False,
    *,
    bin_width_fs: float | None = None,
    box=None,
    chunk_size: int | None = None,
    num_threads: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    counter: Callable | None = None,
    retries: int = 2,
    include_percolating: bool = False,
) -> DynamicsResult:
    """Cluster populations over time, lifetimes and rates of an MD trajectory (ref §3).

    Parameters
    ----------
    frames_or_path : a path (file or folder, read with :func:`clusterdynamicsml.read_frames`),
        a ``FrameSource``, a list of ``Frame``, or any iterable of ``Frame`` (read serially).
    rules : :class:`clusterdynamicsml.ClusterRules` passed to the counter.
    frames_per_bin : frame steps per time bin (positive int; default 1, or from ``bin_width_fs``).
    timestep_fs : frame time step (fs). Default: the source's ``timestep_fs`` (``read_frames``
        defaults to 0.5 fs as ref §1.2), else the median spacing of the frame times.
    start_fs, stop_fs : analysis window (fs); an explicit stop is inclusive (ref §3.2).
    energy_file : CP2K ``.ener`` file overlaid on the same time axis (ref §1.9).
    workers : None/1 serial; N >= 2 local processes; with ``scheduler="local"`` the number of
        Dask workers.
    scheduler : None, "local" (start a Dask LocalCluster), a Dask scheduler address, or a
        ``distributed.Client``.
    progress : show a progress bar over frames.
    bin_width_fs : bin width (fs), an integer multiple of the time step.
    box : box for frames read from a path (see ``read_frames``).
    chunk_size : frames per parallel task (default 32). The result does not depend on it.
    num_threads : kernel threads per worker (default: all threads when serial, the threads
        divided among local workers otherwise). The result does not depend on it.
    checkpoint : optional file of per-chunk counts. An interrupted run restarted with the same
        inputs and checkpoint recomputes only the missing chunks (no frame lost or counted twice).
    counter : ``counter(frame, rules) -> Mapping[label, int]`` (top-level function for parallel
        runs); default :func:`clusterdynamicsml.clusters.extract.count_labels`.
    retries : resubmissions of chunks lost with a worker.
    include_percolating : count clusters that span the periodic box (percolating networks)
        under their labels. By default they are left out of the counts; either way the frames
        that hold them are reported in ``result.warnings``.

    Returns
    -------
    DynamicsResult. The same result, bit for bit, for any workers, scheduler, chunk size and
    thread count.
    """
    if counter is None:
        if rules is None:
            raise ValueError("rules must be a ClusterRules (node, linker and shell elements and cutoffs), got None")
        counter = _default_counter
        if isinstance(rules, Mapping):
            from ..clusters.extract import ClusterRules

            rules = ClusterRules.from_dict(rules)
    elif not callable(counter):
        raise ValueError(f"counter must be callable as counter(frame, rules), got {counter!r}")
    if progress not in (True, False):
        raise ValueError(f"progress must be True or False, got {progress!r}")
    if timestep_fs is not None:
        timestep_fs = _finite_float(timestep_fs, "timestep_fs", positive=True)
    lo = None if start_fs is None else _finite_float(start_fs, "start_fs")
    hi_given = None if stop_fs is None else _finite_float(stop_fs, "stop_fs")
    chunk = DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    from ..dynamics.parallel import chunk_bounds, default_threads_per_worker, map_chunks

    # validate the binning settings before the expensive pass (the time step may come later)
    if timestep_fs is not None:
        resolve_bin_width(timestep_fs, frames_per_bin, bin_width_fs)
    elif frames_per_bin is not None:
        resolve_bin_width(1.0, frames_per_bin)
    energy = read_cp2k_ener(energy_file) if energy_file is not None else None

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1):
        raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")

    source, random_access, time_source, notes, source_dt = _resolve_source(frames_or_path, box, timestep_fs)
    dt = timestep_fs if timestep_fs is not None else source_dt
    known = _known_times(source) if random_access else None
    if dt is None and known is not None:
        dt = _infer_timestep(known, notes)
    if dt is not None:  # all binning settings are checked before the expensive pass
        resolve_bin_width(dt, frames_per_bin, bin_width_fs)
    if num_threads is not None:
        threads = num_threads
    elif scheduler is None:
        threads = default_threads_per_worker(workers)
    elif scheduler == "local":
        threads = default_threads_per_worker(workers or 2)
    else:
        threads = None  # a remote Dask worker uses its own default

    counter_name = f"{getattr(counter, '__module__', '')}.{getattr(counter, '__qualname__', repr(counter))}"
    rules_desc = _rules_description(rules)
    offset = 0
    if random_access:
        n_total = len(source)
        if n_total == 0:
            raise ValueError(f"no frames in {frames_or_path!r}")
        work = source
        lo_f = hi_f = None
        if known is not None:
            # the frame times are known without reading frames: resolve the window now and
            # read only the frames inside it
            window = resolve_time_window(known, dt, start_fs, stop_fs)
            inside = np.flatnonzero(window.selected)
            offset, end = int(inside[0]), int(inside[-1]) + 1
            if (offset, end) != (0, n_total):
                work = source[offset:end]
        else:
            # times unknown until frames are read: frames are read, and those surely outside
            # the window are not clustered (an explicit stop after the start bounds the window)
            lo_f = lo
            first_t = float(source[0].time_fs) if lo is None else lo
            hi_f = hi_given if (hi_given is not None and hi_given > first_t) else None
        func = partial(count_chunk, counter=counter, rules=rules, lo_fs=lo_f, hi_fs=hi_f, num_threads=threads,
                       include_percolating=include_percolating)
        bounds = chunk_bounds(len(work), chunk)
        ckpt = None
        todo = None
        if checkpoint is not None:
            fingerprint = _json_ready({
                "source": _source_fingerprint(frames_or_path, source), "n_frames": n_total, "chunk_size": chunk,
                "first_frame": offset, "n_counted": len(work), "lo_fs": lo_f, "hi_fs": hi_f,
                "counter": counter_name, "rules": rules_desc, "include_percolating": include_percolating,
            })
            ckpt = _Checkpoint(Path(checkpoint), fingerprint, bounds)
            todo = [c for c in range(len(bounds)) if c not in ckpt.done]
        fresh = map_chunks(
            func, work, chunk, workers=workers, scheduler=scheduler, chunks=todo,
            on_result=None if ckpt is None else ckpt.append, retries=retries, progress=progress,
            progress_label="frames",
        )
        parts = [ckpt.done[c] for c in range(len(bounds))] if ckpt is not None else fresh
        n_frames = len(work)
    else:
        if checkpoint is not None:
            raise ValueError("checkpoint= needs a path, a FrameSource or a list of frames, not a one-pass iterator")
        if workers not in (None, 1) or scheduler is not None:
            raise ValueError("parallel workers need a path, a FrameSource or a list of frames, not a one-pass iterator")
        hi_iter = hi_given if (lo is not None and hi_given is not None and hi_given > lo) else None
        parts = []
        buffer: list = []
        n_frames = 0
        from ..dynamics.parallel import ChunkView

        def flush():
            nonlocal n_frames
            if buffer:
                parts.append(count_chunk(ChunkView(buffer, n_frames), n_frames, n_frames + len(buffer), counter=counter,
                                         rules=rules, lo_fs=lo, hi_fs=hi_iter, num_threads=threads,
                                         include_percolating=include_percolating))
                n_frames += len(buffer)
                buffer.clear()

        for frame in source:
            buffer.append(frame)
            if len(buffer) == chunk:
                flush()
        flush()
        if not parts:
            raise ValueError("no frames in the frame iterator")
        n_total = n_frames

    times, src_idx, counted, all_labels, label_index = [], [], [], [], {}
    for part in parts:
        times.extend(part["time_fs"])
        src_idx.extend(part["source_index"])
        counted.extend(part["counted"])
        for lab in part["labels"]:
            if lab not in label_index:
                label_index[lab] = len(all_labels)
                all_labels.append(lab)
    counts = np.zeros((n_frames, len(all_labels)), dtype=np.int64)
    for part in parts:
        if part["labels"]:
            cols = [label_index[lab] for lab in part["labels"]]
            counts[part["start"]:part["stop"], cols] = np.asarray(part["counts"], dtype=np.int64).reshape(-1, len(cols))
    times_arr = np.asarray(times, dtype=np.float64)
    perc_frames: dict[int, dict] = {}
    for part in parts:
        for k, labs in part.get("percolating", []):
            perc_frames[int(k)] = labs
    # frames skipped by the lo/hi pre-filter are never inside the window, so they carry no counts
    settings = {
        "source": os.fspath(frames_or_path) if isinstance(frames_or_path, (str, os.PathLike)) else type(source).__name__,
        "rules": rules_desc,
        "frames_per_bin": frames_per_bin,
        "bin_width_fs": bin_width_fs,
        "timestep_fs": timestep_fs,
        "start_fs": start_fs,
        "stop_fs": stop_fs,
        "energy_file": None if energy_file is None else os.fspath(energy_file),
        "workers": workers,
        "scheduler": scheduler if (scheduler is None or isinstance(scheduler, str)) else type(scheduler).__name__,
        "chunk_size": chunk,
        "counter": counter_name,
        "include_percolating": include_percolating,
    }
    extra_notes = []
    if perc_frames:
        totals: dict[str, int] = {}
        for labs in perc_frames.values():
            for lab, n in labs.items():
                totals[lab] = totals.get(lab, 0) + n
        what = "counted under their labels" if include_percolating else "left out of the counts (include_percolating=True counts them)"
        extra_notes.append(
            f"percolating clusters (spanning the periodic box) in {len(perc_frames)} of {sum(counted)} clustered frames, {what}: "
            + ", ".join(f"{lab} x{n}" for lab, n in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:8])
        )
    result = dynamics_from_counts(
        times_arr, counts, all_labels, timestep_fs=dt, frames_per_bin=frames_per_bin, bin_width_fs=bin_width_fs,
        start_fs=start_fs, stop_fs=stop_fs, frame_indices=offset + np.arange(n_frames), source_frame_indices=src_idx,
        time_source=time_source, time_warnings=notes, warnings=extra_notes, energy=energy, settings=settings,
        n_frames_total=n_total,
    )
    not_counted = ~np.asarray(counted, dtype=bool)[result.frame_indices - offset]
    if not_counted.any():  # cannot happen: the pre-filter is conservative
        raise RuntimeError("internal error: a frame inside the analysis window was not clustered")
    return result


__all__ = [
    "DynamicsResult", "LifetimeSummary", "SeriesLifetimes", "TimeWindow", "analyze_dynamics", "assign_bins",
    "build_bin_edges", "count_chunk", "dynamics_from_counts", "kaplan_meier_mean", "label_size",
    "resolve_bin_width", "resolve_time_window", "series_lifetimes", "summarize_series",
]
