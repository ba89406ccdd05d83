"""Per-frame cluster label counts over chunks of a frame source (step 2 of the dynamics).

:func:`count_chunk` counts the labels of the frames ``start .. stop-1`` of a ``FrameSource``
(or any indexable frames) in a worker; only compact integer arrays travel back, never the
frames. :func:`clusterdynamicsml.dynamics.parallel.map_chunks` maps it over local processes or
a Dask cluster.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from .compact import CountsBuilder, LabelCounts, _Grow

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


class ChunkMerger:
    """Gathers :func:`count_chunk` results (arrays, or a checkpoint file's lists) into per-frame
    arrays and compact counts as they arrive, in any order: a chunk waits only until the chunks
    before it have arrived, then its counts are appended and the chunk result is dropped (no
    Python object per frame is kept). ``n_frames``: frames expected (sizes the buffers), or None."""

    def __init__(self, n_frames: int | None = None):
        self.n_expected = n_frames
        hint = max(int(n_frames or 0), 1024)
        self.times = _Grow(np.float64, hint)
        self.sources = _Grow(np.int64, hint)
        self.counted = _Grow(np.bool_, hint)
        self.builder = CountsBuilder(hint)
        self.label_ids: dict[str, int] = {}
        self.pending: dict[int, Mapping] = {}
        self.next = 0
        self.percolating_frames = 0
        self.percolating_totals: dict[str, int] = {}

    def add(self, part: Mapping) -> None:
        """Take one chunk result (a chunk seen before, e.g. from a retried task, is ignored)."""
        start = int(part["start"])
        if start < self.next:
            return
        self.pending[start] = part
        while self.next in self.pending:
            done = self.pending.pop(self.next)
            self._take(done)
            self.next = int(done["stop"])

    def _take(self, part: Mapping) -> None:
        n = int(part["stop"]) - int(part["start"])
        self.times.extend(np.asarray(part["time_fs"], dtype=np.float64))
        self.sources.extend(np.asarray(part["source_index"], dtype=np.int64))
        self.counted.extend(np.asarray(part["counted"], dtype=bool))
        labels = part["labels"]
        counts = np.asarray(part["counts"]).reshape(n, len(labels))
        if labels:
            ids = np.fromiter((self.label_ids.setdefault(str(lab), len(self.label_ids)) for lab in labels),
                              dtype=np.int64, count=len(labels))
            frame, j = np.nonzero(counts)
            self.builder.add_columns(np.bincount(frame, minlength=n), ids[j], counts[frame, j])
            if self.n_expected and self.builder.n_columns == n:  # first chunk: room for all, estimated
                self.builder.reserve(int(frame.size / max(n, 1) * self.n_expected * 1.1) + 1024)
        else:
            self.builder.add_columns(np.zeros(n, dtype=np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
        for _k, labs in part.get("percolating", []):
            self.percolating_frames += 1
            for lab, c in labs.items():
                self.percolating_totals[lab] = self.percolating_totals.get(lab, 0) + int(c)

    def finish(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, LabelCounts]:
        """``(labels, times_fs, source_index, counted, counts)``: labels in first-appearance
        order, per-frame arrays (F,) and the counts (labels x frames, compact)."""
        if self.pending:
            raise RuntimeError(f"internal error: the chunks before frame {min(self.pending)} never arrived")
        labels = list(self.label_ids)
        return (labels, self.times.take(), self.sources.take(), self.counted.take(),
                self.builder.finish(len(labels)))


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
