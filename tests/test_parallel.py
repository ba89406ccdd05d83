"""Frame chunks over local processes and Dask (SPEC §9): order, identity with serial runs,
lost workers, retries and bad input."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from _dynamics_standin import (
    RULES,
    SyntheticTrajectory,
    always_exit_chunk,
    crashing_counter,
    exit_once_chunk,
    raising_chunk,
    square_chunk,
    standin_count_labels,
)
from clusterdynamicsml.dynamics.analyze import analyze_dynamics
from clusterdynamicsml.dynamics.parallel import ChunkView, chunk_bounds, map_chunks


def test_chunk_bounds():
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_bounds(0, 3) == []
    assert chunk_bounds(3, 5) == [(0, 3)]
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        chunk_bounds(3, 0)
    with pytest.raises(ValueError, match="n_items must be a non-negative integer"):
        chunk_bounds(-1, 2)


def test_chunk_view_uses_global_indices():
    view = ChunkView([10, 11, 12], 5)
    assert (view[5], view[7], len(view)) == (10, 12, 3)
    with pytest.raises(IndexError, match=r"outside this chunk \[5, 8\)"):
        view[8]


def test_serial_order_subset_and_callback():
    items = list(range(23))
    seen = []
    out = map_chunks(square_chunk, items, 5, on_result=lambda c, r: seen.append(c))
    assert [r[:3] for r in out] == [(s, e, sum(k * k for k in range(s, e))) for s, e in chunk_bounds(23, 5)]
    assert seen == [0, 1, 2, 3, 4]
    sub = map_chunks(square_chunk, items, 5, chunks=[3, 1])
    assert [r[0] for r in sub] == [5, 15]
    with pytest.raises(ValueError, match=r"chunks must be in \[0, 5\)"):
        map_chunks(square_chunk, items, 5, chunks=[5])


def test_process_pool_matches_serial_in_chunk_order():
    items = tuple(range(40))
    serial = map_chunks(square_chunk, items, 3)
    seen = []
    pooled = map_chunks(square_chunk, items, 3, workers=2, on_result=lambda c, r: seen.append(c))
    assert [r[:3] for r in pooled] == [r[:3] for r in serial]
    assert sorted(seen) == list(range(len(serial)))
    assert {r[3] for r in pooled} - {os.getpid()}  # really ran elsewhere


def test_process_pool_survives_a_killed_worker(tmp_path):
    from functools import partial

    items = list(range(30))
    func = partial(exit_once_chunk, marker=str(tmp_path / "died"))
    out = map_chunks(func, items, 4, workers=2, retries=2)
    assert (tmp_path / "died").exists()  # a worker really died
    assert out == [r[:3] for r in map_chunks(square_chunk, items, 4)]


def test_process_pool_gives_up_after_retries():
    with pytest.raises(RuntimeError, match="worker process died 1 times"):
        map_chunks(always_exit_chunk, list(range(4)), 2, workers=2, retries=0)


def test_errors_raised_by_the_function_propagate_unchanged():
    with pytest.raises(ValueError, match="bad frame 4"):
        map_chunks(raising_chunk, list(range(10)), 2, workers=2)
    with pytest.raises(ValueError, match="bad frame 4"):
        map_chunks(raising_chunk, list(range(10)), 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        map_chunks(square_chunk, [1], 1, workers=0)
    with pytest.raises(ValueError, match="source must have a length and random access"):
        map_chunks(square_chunk, iter([1]), 1)
    with pytest.raises(ValueError, match="retries must be a non-negative integer"):
        map_chunks(square_chunk, [1], 1, retries=-1)
    with pytest.raises(ValueError, match="scheduler must be None, 'local', a Dask scheduler address"):
        map_chunks(square_chunk, [1], 1, scheduler=3)


def test_analyze_dynamics_local_processes_match_serial(tmp_path):
    traj = SyntheticTrajectory(n_atoms=100, n_frames=24, seed=11)
    kw = dict(timestep_fs=10.0, frames_per_bin=2, counter=standin_count_labels, chunk_size=5)
    serial = analyze_dynamics(traj, RULES, num_threads=1, **kw)
    pooled = analyze_dynamics(traj, RULES, workers=2, **kw)
    assert pooled.differences(serial) == ["settings"]
    # a worker dies in the middle of a checkpointed run: the result is still complete and identical,
    # every chunk is in the checkpoint exactly once, and a rerun reloads it without clustering
    rules = dict(RULES, crash_frame=13, marker=str(tmp_path / "died"))
    ckpt = tmp_path / "counts.ckpt"
    crashed = analyze_dynamics(traj, rules, workers=2, checkpoint=ckpt, **dict(kw, counter=crashing_counter))
    assert (tmp_path / "died").exists()
    chunks = [json.loads(line)["chunk"] for line in ckpt.read_text().splitlines()[1:]]
    assert sorted(chunks) == [0, 1, 2, 3, 4]
    again = analyze_dynamics(traj, rules, checkpoint=ckpt, **dict(kw, counter=crashing_counter))
    assert again.differences(crashed) == ["settings"]
    for name in ("frame_count_matrix", "raw_count_matrix", "frame_times_fs"):
        assert np.array_equal(getattr(crashed, name), getattr(serial, name))
    assert crashed.lifetime_by_label == serial.lifetime_by_label


# --------------------------------------------------------------------------------------
# Dask (a LocalCluster of 2 worker processes)
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    yield cluster
    cluster.close()


def test_dask_matches_serial(dask_cluster):
    import distributed

    items = list(range(37))
    with distributed.Client(dask_cluster) as client:  # a Client object
        out = map_chunks(square_chunk, items, 4, scheduler=client)
    assert [r[:3] for r in out] == [r[:3] for r in map_chunks(square_chunk, items, 4)]
    assert len({r[3] for r in out}) == 2  # both workers took part
    traj = SyntheticTrajectory(n_atoms=100, n_frames=20, seed=12)
    kw = dict(timestep_fs=10.0, counter=standin_count_labels, chunk_size=3)
    serial = analyze_dynamics(traj, RULES, num_threads=1, **kw)
    on_dask = analyze_dynamics(traj, RULES, scheduler=dask_cluster.scheduler_address, **kw)  # an address
    assert on_dask.differences(serial) == ["settings"]
    assert on_dask.settings["scheduler"].startswith("tcp://")


def test_dask_survives_a_killed_worker(dask_cluster, tmp_path):
    traj = SyntheticTrajectory(n_atoms=100, n_frames=20, seed=13)
    kw = dict(timestep_fs=10.0, chunk_size=3)
    serial = analyze_dynamics(traj, RULES, num_threads=1, counter=standin_count_labels, **kw)
    rules = dict(RULES, crash_frame=7, marker=str(tmp_path / "died"))
    on_dask = analyze_dynamics(traj, rules, scheduler=dask_cluster.scheduler_address, counter=crashing_counter, **kw)
    assert (tmp_path / "died").exists()
    assert np.array_equal(on_dask.frame_count_matrix, serial.frame_count_matrix)
    assert on_dask.lifetime_by_label == serial.lifetime_by_label and on_dask.labels == serial.labels
