"""Per-frame cluster label counts over chunks of a frame source (step 2 of the dynamics).

:func:`count_chunk` counts the labels of the frames ``start .. stop-1`` of a ``FrameSource``
(or any indexable frames) in a worker; only compact integer arrays travel back, never the
frames. :func:`clusterdynamicsml.dynamics.parallel.map_chunks` maps it over local processes or
a Dask cluster.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

#: Frames per chunk when ``chunk_size`` is not given.
DEFAULT_CHUNK_SIZE = 32


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
    Returns a compact dict of arrays (no Python object per frame): ``start``, ``stop``,
    ``time_fs`` float64 (n,), ``source_index`` int64 (n,), ``counted`` bool (n,), ``labels``
    (first-appearance order), ``counts`` (n, n_labels) in the smallest unsigned integer type
    that holds them, and ``percolating``
    (``[frame, {label: count}]`` pairs, frames with percolating clusters only). With the
    default counter each frame is one C++ call (:func:`~clusterdynamicsml.clusters.extract.frame_compositions`)
    and, for a ``FrameSource``, the next frames are parsed on a reader thread meanwhile (both
    release the GIL).
    """
    from .._threads import set_num_threads

    n = stop - start
    times = np.full(n, np.nan)
    sources = np.zeros(n, dtype=np.int64)
    counted = np.zeros(n, dtype=bool)
    rows, cols, vals = [], [], []  # one small int64 array per frame (labels present in it)
    percolating = []
    label_ids: dict[str, int] = {}
    fast = counter is _default_counter
    if fast:
        from ..clusters.extract import frame_compositions
    reader = getattr(view, "chunk", None)  # FrameSource.chunk keeps the file open between frames
    frames = _prefetched(reader(start, stop)) if callable(reader) else (view[k] for k in range(start, stop))
    got = 0
    try:
        with set_num_threads(num_threads):
            for r, frame in enumerate(frames):
                if r >= n:
                    break
                k = start + r
                got += 1
                t = float(frame.time_fs)
                times[r] = t
                sources[r] = int(getattr(frame, "source_index", k))
                if (lo_fs is not None and t < lo_fs) or (hi_fs is not None and t > hi_fs):
                    continue
                counted[r] = True
                if fast:
                    labels, finite, perc = frame_compositions(frame, rules).label_counts()
                    if perc.any():
                        percolating.append([k, {lab: int(c) for lab, c in zip(labels, perc.tolist()) if c}])
                    use = finite + perc if include_percolating else finite
                else:
                    labels, use = _counter_row(counter(frame, rules), k, percolating, include_percolating)
                if labels:
                    ids = np.fromiter((label_ids.setdefault(str(lab), len(label_ids)) for lab in labels),
                                      dtype=np.int64, count=len(labels))
                    nz = use != 0
                    cols.append(ids[nz])
                    vals.append(np.asarray(use, dtype=np.int64)[nz])
                    rows.append(np.full(int(nz.sum()), r, dtype=np.int64))
    finally:
        close = getattr(frames, "close", None)
        if callable(close):
            close()
    if got != n:
        raise ValueError(f"the frame source gave {got} frames for positions {start} to {stop - 1}")
    top = int(max((int(v.max()) for v in vals if v.size), default=0))
    dense = np.zeros((n, len(label_ids)), dtype=np.min_scalar_type(top))  # uint8 for most chunks
    if rows:
        dense[np.concatenate(rows), np.concatenate(cols)] = np.concatenate(vals)
    return {
        "start": start, "stop": stop, "time_fs": times, "source_index": sources, "counted": counted,
        "labels": list(label_ids), "counts": dense, "percolating": percolating,
    }


def _counter_row(found, k: int, percolating: list, include_percolating: bool):
    """(labels, counts array) of a user counter's answer for frame k, validated."""
    if hasattr(found, "counts") and hasattr(found, "percolating"):
        if found.percolating:
            percolating.append([k, {str(lab): int(n) for lab, n in found.percolating.items()}])
        found = (found.counts + found.percolating) if include_percolating else found.counts
    if not isinstance(found, Mapping):
        raise ValueError(f"frame {k}: the counter must return a mapping label -> count, got {type(found).__name__}")
    labels, counts = [], []
    for label, c in found.items():
        if isinstance(c, bool) or int(c) != c or c < 0:
            raise ValueError(
                f"frame {k}: the counter returned a non-integer or negative count {c!r} for label {label!r}"
            )
        if c:
            labels.append(str(label))
            counts.append(int(c))
    return labels, np.asarray(counts, dtype=np.int64)


def _prefetched(frames, depth: int = 2):
    """Iterate ``frames`` on a reader thread, up to ``depth`` frames ahead (the C++ parser
    releases the GIL, so reading overlaps the clustering of the previous frame). Frames come
    in order; an exception of the reader is raised at its place in the sequence."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def run():
        try:
            for frame in frames:
                if not put((True, frame)):
                    break
            else:
                put((True, end))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put((False, exc))
        finally:
            close = getattr(frames, "close", None)
            if callable(close):
                close()

    thread = threading.Thread(target=run, name="cdml-frame-reader", daemon=True)
    thread.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is end:
                return
            yield item
    finally:
        stop.set()
        thread.join()
