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

The pieces live in :mod:`~clusterdynamicsml.dynamics.binning` (window, bins, matrices,
:func:`dynamics_from_counts`), :mod:`~clusterdynamicsml.dynamics.lifetimes` (lifetimes and
rates), :mod:`~clusterdynamicsml.dynamics.counting` (per-frame counts over chunks) and
:mod:`~clusterdynamicsml.dynamics.result` (:class:`DynamicsResult` and its files); their
public names are re-exported here.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path

import numpy as np

from ..io.energy import EnergyData, read_cp2k_ener
from .binning import (
    DEFAULT_TIMESTEP_FS,
    TimeWindow,
    _check_times,
    _finite_float,
    _from_label_rows,
    _infer_timestep,
    assign_bins,
    build_bin_edges,
    dynamics_from_counts,
    label_size,
    resolve_bin_width,
    resolve_time_window,
)
from .checkpoint import Checkpoint, source_fingerprint
from .counting import DEFAULT_CHUNK_SIZE, ChunkMerger, _default_counter, count_chunk
from .lifetimes import LifetimeSummary, SeriesLifetimes, kaplan_meier_mean, series_lifetimes, summarize_series
from .result import (
    CLUSTER_DISTRIBUTION_COLUMNS,
    DATASET_FORMAT,
    DATASET_VERSION,
    DISPLAY_MODES,
    ENERGY_COLUMNS,
    LIFETIME_COLUMNS,
    LIFETIME_EXTRA_COLUMNS,
    DynamicsResult,
    _json_ready,
)

#: How the settings and checkpoint fingerprints name the default counter. It was written when the
#: counter lived in this module; kept after it moved to ``counting.py``, so that datasets stay
#: byte-identical and checkpoints written before the move still resume.
_DEFAULT_COUNTER_NAME = "clusterdynamicsml.dynamics.analyze._default_counter"


def _json_chunk(result: dict) -> dict:
    """A chunk result with its arrays as lists (the checkpoint file stores JSON)."""
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.items()}


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
            "frames_or_path must be a path, a FrameSource, a list of Frame or an iterable of Frame; "
            f"got {type(source).__name__}"
        )
    time_source = str(getattr(source, "time_source", None) or "frames")
    notes = [str(w) for w in (getattr(source, "warnings", None) or [])]
    return source, random_access, time_source, notes, getattr(source, "timestep_fs", None)


def _checked_counter(counter, rules):
    """``(counter, rules)``: the default counter needs rules (a mapping becomes a ClusterRules)."""
    if counter is None:
        if rules is None:
            raise ValueError("rules must be a ClusterRules (node, linker and shell elements and cutoffs), got None")
        counter = _default_counter
        if isinstance(rules, Mapping):
            from ..clusters.extract import ClusterRules

            rules = ClusterRules.from_dict(rules)
    elif not callable(counter):
        raise ValueError(f"counter must be callable as counter(frame, rules), got {counter!r}")
    return counter, rules


def _check_positive_int_or_none(value, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


def _read_energy(energy_file) -> EnergyData | None:
    """The energy overlay: None, an ``EnergyData`` already read (and re-timed), or a CP2K ``.ener`` file read."""
    if energy_file is None or isinstance(energy_file, EnergyData):
        return energy_file
    return read_cp2k_ener(energy_file)


def _kernel_threads(num_threads: int | None, workers: int | None, scheduler) -> int | None:
    """Kernel threads per worker: the given number, else the CPUs divided among local workers;
    None (the worker's own default) on a remote Dask scheduler."""
    from ..dynamics.parallel import default_threads_per_worker

    if num_threads is not None:
        return num_threads
    if scheduler is None:
        return default_threads_per_worker(workers)
    if scheduler == "local":
        return default_threads_per_worker(workers or 2)
    return None  # a remote Dask worker uses its own default


def _counter_name(counter) -> str:
    """The counter's name in the settings and the checkpoint fingerprint."""
    if counter is _default_counter:
        return _DEFAULT_COUNTER_NAME
    return f"{getattr(counter, '__module__', '')}.{getattr(counter, '__qualname__', repr(counter))}"


def _frames_to_count(source, known, dt, start_fs, stop_fs, lo, hi_given):
    """``(frames, offset, lo_fs, hi_fs)``: the part of an indexable source to read, its first
    position, and the time bounds (fs) outside which read frames are not clustered."""
    if known is not None:
        # the frame times are known without reading frames: resolve the window now and
        # read only the frames inside it
        window = resolve_time_window(known, dt, start_fs, stop_fs)
        inside = np.flatnonzero(window.selected)
        offset, end = int(inside[0]), int(inside[-1]) + 1
        if (offset, end) != (0, len(source)):
            return source[offset:end], offset, None, None
        return source, offset, None, None
    # times unknown until frames are read: frames are read, and those surely outside
    # the window are not clustered (an explicit stop after the start bounds the window)
    first_t = float(source[0].time_fs) if lo is None else lo
    hi_f = hi_given if (hi_given is not None and hi_given > first_t) else None
    return source, 0, lo, hi_f


def _take_chunk(merger: ChunkMerger, ckpt: Checkpoint | None, chunk: int, result) -> None:
    """``map_chunks``' on_result: append a chunk result to the checkpoint file (if any), then to the merger."""
    if ckpt is not None:
        ckpt.append(chunk, _json_chunk(result), keep=False)
    merger.add(result)


def _count_indexable(count, source, frames_or_path, known, dt, *, start_fs, stop_fs, lo, hi_given, chunk: int,
                     checkpoint, run_desc: dict, workers, scheduler, retries: int, progress: bool):
    """Count the frames of an indexable source in chunks mapped by ``map_chunks`` (with a
    checkpoint, only the chunks it lacks), each chunk merged as it arrives.
    Returns ``(merger, n_counted, n_total, offset)``."""
    from ..dynamics.parallel import chunk_bounds, map_chunks

    n_total = len(source)
    if n_total == 0:
        raise ValueError(f"no frames in {frames_or_path!r}")
    work, offset, lo_f, hi_f = _frames_to_count(source, known, dt, start_fs, stop_fs, lo, hi_given)
    func = partial(count, lo_fs=lo_f, hi_fs=hi_f)
    bounds = chunk_bounds(len(work), chunk)
    ckpt = None
    todo = None
    if checkpoint is not None:
        fingerprint = _json_ready({
            "source": source_fingerprint(frames_or_path, source), "n_frames": n_total, "chunk_size": chunk,
            "first_frame": offset, "n_counted": len(work), "lo_fs": lo_f, "hi_fs": hi_f, **run_desc,
        })
        ckpt = Checkpoint(Path(checkpoint), fingerprint, bounds)
        todo = [c for c in range(len(bounds)) if c not in ckpt.done]
    merger = ChunkMerger(len(work))
    if ckpt is not None:
        for c in sorted(ckpt.done):  # the chunks of an earlier run, read from the checkpoint
            part = ckpt.done.pop(c)
            if part is not None:
                merger.add(part)
    map_chunks(
        func, work, chunk, workers=workers, scheduler=scheduler, chunks=todo,
        on_result=partial(_take_chunk, merger, ckpt), retries=retries, progress=progress,
        progress_label="frames", collect=False,
    )
    return merger, len(work), n_total, offset


def _count_iterator(count, source, chunk: int, lo, hi_given) -> tuple[ChunkMerger, int]:
    """Count a one-pass iterator of frames serially, ``chunk`` frames at a time.
    Returns ``(merger, n_frames)``."""
    from ..dynamics.parallel import ChunkView

    hi_iter = hi_given if (lo is not None and hi_given is not None and hi_given > lo) else None
    merger = ChunkMerger()
    buffer: list = []
    n_frames = 0

    def flush():
        nonlocal n_frames
        if buffer:
            merger.add(count(ChunkView(buffer, n_frames), n_frames, n_frames + len(buffer), lo_fs=lo, hi_fs=hi_iter))
            n_frames += len(buffer)
            buffer.clear()

    for frame in source:
        buffer.append(frame)
        if len(buffer) == chunk:
            flush()
    flush()
    if not n_frames:
        raise ValueError("no frames in the frame iterator")
    return merger, n_frames


def _percolating_notes(merger: ChunkMerger, counted: np.ndarray, include_percolating: bool) -> list[str]:
    """The note on frames with percolating clusters (none when there are none)."""
    if not merger.percolating_frames:
        return []
    totals = merger.percolating_totals
    if include_percolating:
        what = "counted under their labels"
    else:
        what = "left out of the counts (include_percolating=True counts them)"
    top = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    return [
        f"percolating clusters (spanning the periodic box) in {merger.percolating_frames} of {int(counted.sum())} "
        f"clustered frames, {what}: " + ", ".join(f"{lab} x{n}" for lab, n in top)
    ]


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
    energy_file : CP2K ``.ener`` file overlaid on the same time axis (ref §1.9), or its
        ``EnergyData`` already read.
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
    counter, rules = _checked_counter(counter, rules)
    if progress not in (True, False):
        raise ValueError(f"progress must be True or False, got {progress!r}")
    if timestep_fs is not None:
        timestep_fs = _finite_float(timestep_fs, "timestep_fs", positive=True)
    lo = None if start_fs is None else _finite_float(start_fs, "start_fs")
    hi_given = None if stop_fs is None else _finite_float(stop_fs, "stop_fs")
    chunk = DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")

    # validate the binning settings before the expensive pass (the time step may come later)
    if timestep_fs is not None:
        resolve_bin_width(timestep_fs, frames_per_bin, bin_width_fs)
    elif frames_per_bin is not None:
        resolve_bin_width(1.0, frames_per_bin)
    energy = _read_energy(energy_file)
    _check_positive_int_or_none(workers, "workers")
    _check_positive_int_or_none(num_threads, "num_threads")

    source, random_access, time_source, notes, source_dt = _resolve_source(frames_or_path, box, timestep_fs)
    dt = timestep_fs if timestep_fs is not None else source_dt
    known = _known_times(source) if random_access else None
    if dt is None and known is not None:
        dt = _infer_timestep(known, notes)
    if dt is not None:  # all binning settings are checked before the expensive pass
        resolve_bin_width(dt, frames_per_bin, bin_width_fs)
    threads = _kernel_threads(num_threads, workers, scheduler)

    counter_name = _counter_name(counter)
    rules_desc = _rules_description(rules)
    count = partial(count_chunk, counter=counter, rules=rules, num_threads=threads,
                    include_percolating=include_percolating)
    offset = 0
    if random_access:
        run_desc = {"counter": counter_name, "rules": rules_desc, "include_percolating": include_percolating}
        merger, n_frames, n_total, offset = _count_indexable(
            count, source, frames_or_path, known, dt, start_fs=start_fs, stop_fs=stop_fs, lo=lo,
            hi_given=hi_given, chunk=chunk, checkpoint=checkpoint, run_desc=run_desc, workers=workers,
            scheduler=scheduler, retries=retries, progress=progress,
        )
    else:
        if checkpoint is not None:
            raise ValueError("checkpoint= needs a path, a FrameSource or a list of frames, not a one-pass iterator")
        if workers not in (None, 1) or scheduler is not None:
            raise ValueError("parallel workers need a path, a FrameSource or a list of frames, not a one-pass iterator")
        merger, n_frames = _count_iterator(count, source, chunk, lo, hi_given)
        n_total = n_frames

    all_labels, times_arr, src_idx, counted, counts = merger.finish()
    if times_arr.size != n_frames:  # cannot happen: every chunk was merged
        raise RuntimeError(f"internal error: {times_arr.size} frames merged, {n_frames} counted")
    sizes = np.array([label_size(lab) for lab in all_labels], dtype=np.int64)
    # frames skipped by the lo/hi pre-filter are never inside the window, so they carry no counts
    from_path = isinstance(frames_or_path, (str, os.PathLike))
    settings = {
        "source": os.fspath(frames_or_path) if from_path else type(source).__name__,
        "rules": rules_desc,
        "frames_per_bin": frames_per_bin,
        "bin_width_fs": bin_width_fs,
        "timestep_fs": timestep_fs,
        "start_fs": start_fs,
        "stop_fs": stop_fs,
        "energy_file": None if energy is None else energy.filepath,
        "workers": workers,
        "scheduler": scheduler if (scheduler is None or isinstance(scheduler, str)) else type(scheduler).__name__,
        "chunk_size": chunk,
        "counter": counter_name,
        "include_percolating": include_percolating,
    }
    extra_notes = _percolating_notes(merger, counted, include_percolating)
    _check_times(times_arr)
    del merger
    result = _from_label_rows(
        times_arr, counts, all_labels, label_sizes=sizes,
        timestep_fs=dt, frames_per_bin=frames_per_bin, bin_width_fs=bin_width_fs,
        start_fs=start_fs, stop_fs=stop_fs, frame_indices=offset + np.arange(n_frames), source_frame_indices=src_idx,
        time_source=time_source, time_warnings=notes, warnings=extra_notes, energy=energy, settings=settings,
        n_frames_total=n_total,
    )
    not_counted = ~counted[result.frame_indices - offset]
    if not_counted.any():  # cannot happen: the pre-filter is conservative
        raise RuntimeError("internal error: a frame inside the analysis window was not clustered")
    return result


__all__ = [
    "CLUSTER_DISTRIBUTION_COLUMNS", "DATASET_FORMAT", "DATASET_VERSION", "DEFAULT_CHUNK_SIZE", "DEFAULT_TIMESTEP_FS",
    "DISPLAY_MODES", "ENERGY_COLUMNS", "LIFETIME_COLUMNS", "LIFETIME_EXTRA_COLUMNS",
    "DynamicsResult", "LifetimeSummary", "SeriesLifetimes", "TimeWindow", "analyze_dynamics", "assign_bins",
    "build_bin_edges", "count_chunk", "dynamics_from_counts", "kaplan_meier_mean", "label_size",
    "resolve_bin_width", "resolve_time_window", "series_lifetimes", "summarize_series",
]
