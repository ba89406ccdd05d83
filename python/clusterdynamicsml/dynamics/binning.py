r"""Time axis of the dynamics: window, bins and the (labels x bins) matrices (ref §3.1 to §3.4).

:func:`dynamics_from_counts` (step 3 of :mod:`clusterdynamicsml.dynamics.analyze`) is pure numpy
on the (frames x labels) integer count series and the frame times: window, bins, matrices and
the lifetime tables of :mod:`clusterdynamicsml.dynamics.lifetimes`, returned as a
:class:`~clusterdynamicsml.dynamics.result.DynamicsResult`.

Definitions (units: femtoseconds)
---------------------------------
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
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..io.energy import EnergyData
from .compact import LabelCounts
from .lifetimes import summarize_series
from .result import DynamicsResult, _json_ready

#: Frame time step used when nothing else gives one (ref §1.2), femtoseconds.
DEFAULT_TIMESTEP_FS = 0.5
_REL_TOL = 1e-9


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


def label_size(label: str) -> int:
    """Atoms in a cluster label such as ``Pb2I5`` (7): the sum of the element counts read by
    :func:`clusterdynamicsml.clusters.extract.parse_label` (a count of 1 is omitted in labels)."""
    from ..clusters.extract import parse_label

    try:
        return int(sum(parse_label(label).values()))
    except ValueError as exc:
        raise ValueError(f"cannot read the cluster size from label {label!r}: {exc}") from None


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
    t = _check_times(np.asarray(times_fs, dtype=np.float64))
    labels = [str(x) for x in labels]
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct, got {labels}")
    c = np.asarray(counts)
    if c.size == 0:
        c = c.reshape(t.size, len(labels))
    if c.shape != (t.size, len(labels)):
        raise ValueError(f"counts must have shape (frames, labels) = ({t.size}, {len(labels)}), got {c.shape}")
    if c.dtype.kind not in "iub" and (not np.all(np.isfinite(c)) or not np.all(c == np.round(c))):
        raise ValueError(f"counts must be integers, got dtype {c.dtype}")
    c = c.astype(np.int64, copy=False)
    if np.any(c < 0):
        raise ValueError("counts must be non-negative")
    return _from_label_rows(
        t, LabelCounts.from_dense(c.T), labels, timestep_fs=timestep_fs, frames_per_bin=frames_per_bin,
        bin_width_fs=bin_width_fs,
        start_fs=start_fs, stop_fs=stop_fs, label_sizes=label_sizes, frame_indices=frame_indices,
        source_frame_indices=source_frame_indices, time_source=time_source, time_warnings=time_warnings,
        warnings=warnings, energy=energy, settings=settings, n_frames_total=n_frames_total)


def _check_times(t: np.ndarray) -> np.ndarray:
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"times_fs must be a non-empty 1-D array of frame times (fs), got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("times_fs must be finite")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        k = int(np.argmax(np.diff(t) <= 0))
        raise ValueError(
            f"frame times must be strictly increasing; frame {k + 1} has time {t[k + 1]:g} fs after {t[k]:g} fs"
        )
    return t


def _from_label_rows(t, rows, labels, *, timestep_fs, frames_per_bin, bin_width_fs, start_fs, stop_fs, label_sizes,
                     frame_indices, source_frame_indices, time_source, time_warnings, warnings, energy, settings,
                     n_frames_total) -> DynamicsResult:
    """:func:`dynamics_from_counts` on validated input: ``rows`` a
    :class:`~clusterdynamicsml.dynamics.compact.LabelCounts` (L, F), one row per label in any
    order; it is consumed (its arrays are reused for the result's ``frame_counts``). No dense
    labels x frames matrix is made; with one frame per bin the bin counts are the frame counts."""
    notes = [str(w) for w in time_warnings]
    dt = _infer_timestep(t, notes) if timestep_fs is None else _finite_float(timestep_fs, "timestep_fs", positive=True)
    k, width = resolve_bin_width(dt, frames_per_bin, bin_width_fs)
    window = resolve_time_window(t, dt, start_fs, stop_fs)
    sel = window.selected
    all_selected = bool(sel.all())
    inside = np.flatnonzero(sel)
    first, last = int(inside[0]), int(inside[-1]) + 1
    if not all_selected and inside.size != last - first:  # cannot happen: times increase
        raise RuntimeError("internal error: the analysis window selects frames that are not consecutive")
    ts = t if all_selected else t[first:last]
    cs = rows if all_selected else rows.columns(first, last)
    del rows
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

    present = cs.row_entries() > 0
    order = sorted((j for j in range(len(labels)) if present[j]), key=lambda j: (int(sizes[j]), labels[j]))
    labels_sorted = [labels[j] for j in order]
    sizes_sorted = sizes[order] if order else np.zeros(0, dtype=np.int64)
    frame_counts = cs.take_rows(order, inplace=True)
    del cs

    edges = build_bin_edges(window.start_fs, window.stop_fs, width)
    n_bins = edges.size - 1
    bins = assign_bins(ts, edges)
    if n_bins == ts.size and np.array_equal(bins, np.arange(n_bins)):
        bin_counts = frame_counts  # one frame per bin: the bin counts are the frame counts
    else:  # frame times increase, so each bin is a run of consecutive frames
        bin_counts = frame_counts.sum_column_runs(bins, n_bins)
    frames_in_bin = np.bincount(bins, minlength=n_bins).astype(np.int64)
    total_bin = bin_counts.column_sums()
    total_frame = frame_counts.column_sums()

    by_label = []
    by_size = []
    size_sum = None
    for i, series in frame_counts.rows():  # one dense (F,) series at a time, in result order
        lab, s = labels_sorted[i], int(sizes_sorted[i])
        by_label.append(summarize_series(series, ts, window.start_fs, window.stop_fs, label=lab, cluster_size=s))
        size_sum = series if size_sum is None else size_sum + series
        if i + 1 == len(labels_sorted) or int(sizes_sorted[i + 1]) != s:  # labels of a size are consecutive
            by_size.append(summarize_series(size_sum, ts, window.start_fs, window.stop_fs, label=None,
                                            cluster_size=s))
            size_sum = None

    n_total = t.size if n_frames_total is None else int(n_frames_total)
    fi = np.arange(n_total, dtype=np.int64) if frame_indices is None else np.asarray(frame_indices, dtype=np.int64)
    si = fi if source_frame_indices is None else np.asarray(source_frame_indices, dtype=np.int64)
    if fi.shape != t.shape or si.shape != t.shape:
        raise ValueError(
            f"frame_indices and source_frame_indices must have shape {t.shape}, got {fi.shape} and {si.shape}"
        )

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
        bin_counts=bin_counts,
        frame_counts=frame_counts,
        total_clusters_per_frame=total_frame,
        lifetime_by_label=by_label,
        lifetime_by_size=by_size,
        time_source=str(time_source),
        time_warnings=notes,
        warnings=[str(w) for w in warnings],
        energy=energy,
        settings=_json_ready(dict(settings or {})),
    )



