"""Map a function over contiguous chunks of a frame source, serially, on local processes or on Dask.

``map_chunks(func, source, chunk_size, workers=None, scheduler=None)`` splits the items
``0 .. len(source)-1`` into fixed chunks ``[0, c), [c, 2c), ...`` and returns
``[func(view, start, stop) for each chunk]`` **in chunk order**, whatever order the chunks
finish in. ``view`` supports ``view[k]`` for every global index ``start <= k < stop``:

* a random-access source (a picklable ``FrameSource`` holding paths and byte offsets) is
  sent to the worker as is, and the worker reads its own frames;
* a list or tuple (frames already in memory) is sliced, so a worker receives only its chunk.

Because the chunk boundaries depend only on ``chunk_size`` and the results are assembled
by chunk index, the output is identical, bit for bit, to a serial run for any number of
workers (provided ``func`` is deterministic, as every stage of this package is).

Back ends
---------
* ``workers`` None or 1 and no ``scheduler``: serial, in this process.
* ``workers`` >= 2: a ``concurrent.futures.ProcessPoolExecutor`` with the ``forkserver``
  start method (``spawn`` where there is no forkserver); both are safe with OpenMP. ``func``
  must be a picklable top-level function or a ``functools.partial`` of one. A worker that dies
  (killed, out of memory, ``os._exit``) breaks the pool; the pool is restarted and the
  unfinished chunks resubmitted, up to ``retries`` times. An exception raised *by* ``func``
  is not retried: it is re-raised.
* ``scheduler="local"``: a ``dask.distributed.LocalCluster`` with ``workers`` processes
  (default 2), one thread each, closed afterwards. ``scheduler="tcp://host:port"``: an
  existing Dask scheduler. ``scheduler=<distributed.Client>``: that client. Tasks are
  submitted with ``retries=retries``; Dask reschedules the tasks of a lost worker itself.
  ``dask.distributed`` is imported only on this path.
"""
from __future__ import annotations

import math
import multiprocessing
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool


def chunk_bounds(n_items: int, chunk_size: int) -> list[tuple[int, int]]:
    """Fixed chunk boundaries ``[(0, c), (c, 2c), ..., (k c, n_items)]``."""
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 0:
        raise ValueError(f"n_items must be a non-negative integer, got {n_items!r}")
    size = _positive_int(chunk_size, "chunk_size")
    return [(s, min(s + size, n_items)) for s in range(0, n_items, size)]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class ChunkView:
    """Picklable view of ``items`` under global indices ``offset .. offset+len(items)-1``."""

    __slots__ = ("items", "offset")

    def __init__(self, items: Sequence, offset: int):
        self.items = items
        self.offset = offset

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int):
        i = k - self.offset
        if not 0 <= i < len(self.items):
            raise IndexError(f"index {k} is outside this chunk [{self.offset}, {self.offset + len(self.items)})")
        return self.items[i]

    def __getstate__(self):
        return (list(self.items), self.offset)

    def __setstate__(self, state):
        self.items, self.offset = state


def _payload(source, start: int, stop: int):
    if isinstance(source, (list, tuple)):
        return ChunkView(source[start:stop], start)
    return source


def run_chunk(func: Callable, payload, start: int, stop: int):
    """The task a worker runs (top level, so it pickles by reference)."""
    return func(payload, start, stop)


def map_chunks(
    func: Callable,
    source,
    chunk_size: int,
    workers: int | None = None,
    scheduler=None,
    *,
    chunks: Iterable[int] | None = None,
    on_result: Callable[[int, object], None] | None = None,
    retries: int = 2,
    progress: bool = False,
    progress_label: str = "chunks",
    collect: bool = True,
) -> list:
    """Apply ``func(view, start, stop)`` to each chunk of ``source`` and return the results in chunk order.

    Parameters
    ----------
    func : callable ``(view, start, stop) -> result``; top level (picklable) for parallel runs.
    source : a list/tuple, or a picklable random-access object with ``len()`` and ``source[k]``.
    chunk_size : positive int, items per chunk.
    workers : None or 1 (serial), or the number of local processes; with ``scheduler="local"``
        the number of Dask worker processes (default 2).
    scheduler : None, "local", a Dask scheduler address, or a ``distributed.Client``.
    chunks : indices of the chunks to compute (default all); the result list follows this
        order (sorted ascending). Used to resume from a checkpoint.
    on_result : called in this process as ``on_result(chunk_index, result)`` when a chunk
        finishes (in completion order), e.g. to append it to a checkpoint file.
    retries : how many times lost work is resubmitted (pool restarts locally, task retries on Dask).
    progress : show a tqdm progress bar in items.
    collect : keep the results and return them; False hands each result to ``on_result``
        only and returns an empty list (memory then does not grow with the number of chunks).

    Returns
    -------
    list of results, one per requested chunk, in ascending chunk order (empty without ``collect``).
    """
    if not callable(func):
        raise ValueError(f"func must be callable, got {func!r}")
    try:
        n_items = len(source)
    except TypeError:
        raise ValueError(
            f"source must have a length and random access (a list, tuple or FrameSource), got {type(source).__name__}"
        ) from None
    bounds = chunk_bounds(int(n_items), chunk_size)
    if chunks is None:
        wanted = list(range(len(bounds)))
    else:
        wanted = sorted(set(int(c) for c in chunks))
        bad = [c for c in wanted if not 0 <= c < len(bounds)]
        if bad:
            raise ValueError(f"chunks must be in [0, {len(bounds)}), got {bad[:5]}")
    if workers is not None:
        workers = _positive_int(workers, "workers")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be a non-negative integer, got {retries!r}")

    bar = _progress_bar(progress, sum(bounds[c][1] - bounds[c][0] for c in wanted), progress_label)
    results: dict[int, object] = {}

    def accept(index: int, result) -> None:
        if collect:
            results[index] = result
        if on_result is not None:
            on_result(index, result)
        if bar is not None:
            bar.update(bounds[index][1] - bounds[index][0])

    try:
        if scheduler is not None:
            _run_dask(func, source, bounds, wanted, workers, scheduler, retries, accept)
        elif workers is None or workers == 1:
            for c in wanted:
                start, stop = bounds[c]
                accept(c, run_chunk(func, _payload(source, start, stop), start, stop))
        else:
            _run_process_pool(func, source, bounds, wanted, workers, retries, accept)
    finally:
        if bar is not None:
            bar.close()
    return [results[c] for c in wanted] if collect else []


def _progress_bar(enabled: bool, total: int, label: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, unit=label, desc="clusterdynamicsml")


#: Imported once by the forkserver, so each worker starts with them loaded (a missing one is skipped).
_PRELOAD = ["numpy", "scipy.sparse", "scipy.sparse.csgraph", "clusterdynamicsml", "clusterdynamicsml.io.frames",
            "clusterdynamicsml.clusters.extract", "clusterdynamicsml.dynamics.analyze"]


def _process_context():
    """``forkserver`` where available (a clean, single-threaded server process forks the workers,
    so OpenMP state is never inherited, and later pools start fast), else ``spawn``."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return multiprocessing.get_context("spawn")


def _run_process_pool(func, source, bounds, wanted, workers, retries, accept) -> None:
    ctx = _process_context()
    pending = list(wanted)
    restarts = 0
    while pending:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=ctx)
        broken = False
        try:
            futures = {
                pool.submit(run_chunk, func, _payload(source, *bounds[c]), *bounds[c]): c for c in pending
            }
            not_done = set(futures)
            while not_done:
                done, not_done = wait(not_done, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: futures[f]):
                    try:
                        result = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    c = futures[fut]
                    accept(c, result)
                    pending.remove(c)
                if broken:
                    break
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True, cancel_futures=True)
        if broken:
            restarts += 1
            if restarts > retries:
                raise RuntimeError(
                    f"a worker process died {restarts} times while computing chunks; "
                    f"{len(pending)} chunks unfinished (retries={retries})"
                )


def _dask_client(scheduler, workers):
    """Return (client, closers) for the scheduler argument."""
    try:
        import distributed
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "scheduler= needs dask.distributed; install it with pip install 'clusterdynamicsml[dask]'"
        ) from None
    if isinstance(scheduler, distributed.Client):
        return scheduler, []
    if scheduler == "local":
        cluster = distributed.LocalCluster(
            n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(cluster)
        return client, [client, cluster]
    if isinstance(scheduler, str) and scheduler:
        client = distributed.Client(scheduler)
        return client, [client]
    raise ValueError(
        f"scheduler must be None, 'local', a Dask scheduler address such as 'tcp://host:8786', "
        f"or a distributed.Client; got {scheduler!r}"
    )


def _run_dask(func, source, bounds, wanted, workers, scheduler, retries, accept) -> None:
    client, closers = _dask_client(scheduler, workers)
    try:
        import distributed

        token = uuid.uuid4().hex[:12]
        futures = []
        index_of = {}
        for c in wanted:
            start, stop = bounds[c]
            fut = client.submit(
                run_chunk, func, _payload(source, start, stop), start, stop,
                key=f"cdml-chunk-{token}-{c}", retries=retries, pure=False,
            )
            futures.append(fut)
            index_of[fut.key] = c
        try:
            for fut in distributed.as_completed(futures):
                accept(index_of[fut.key], fut.result())
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        for obj in closers:
            obj.close()


def default_threads_per_worker(workers: int | None) -> int | None:
    """Kernel threads for each worker so that ``workers`` processes do not oversubscribe the CPUs."""
    if workers is None or workers <= 1:
        return None
    from .._threads import get_num_threads

    return max(1, math.floor(get_num_threads() / workers))
