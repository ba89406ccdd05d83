"""Throughput of the whole dynamics stage (pytest-benchmark): frames per second.

Run:   python -m pytest bench/bench_dynamics.py --benchmark-only -q
Large: CDML_BENCH_LARGE=1 python -m pytest bench/bench_dynamics.py --benchmark-only -q
       (10,000 atoms x 5,000 frames, or CDML_BENCH_FRAMES frames; the default is 2,000 atoms
       x 200 frames).

The trajectory is synthetic and generated on the fly, frame by frame (an A/B "molten salt"
whose atoms oscillate about random sites, so clusters form and break over time; nothing is
stored), and goes through everything ``analyze_dynamics`` does: reading each frame,
clustering it, streaming the label counts back, bins, matrices and lifetimes. It runs at
1 and 2 kernel threads (serial) and with 1, 2 and 4 local worker processes (1 thread each). Every run
asserts that its result is identical to the 1-thread run. ``extra_info`` records frames/s,
sizes, threads/workers, the counter used, the git revision and whether OpenMP is on.

Two more record memory: the peak RSS of a fresh child per run (1k-atom frames, 1,000 and
CDML_BENCH_RSS_FRAMES = 20,000 frames, API and CLI; within 10 %), and the peak traced Python
memory (tracemalloc) for N and 10 N frames.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

import clusterdynamicsml as cdml
from clusterdynamicsml.dynamics.analyze import analyze_dynamics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import trajectory as trajectory_runner  # noqa: E402

from _dynamics_standin import RULES, SyntheticTrajectory, half_box_counter, standin_count_labels  # noqa: E402

LARGE = os.environ.get("CDML_BENCH_LARGE", "") not in ("", "0")
N_ATOMS, N_FRAMES = (10_000, int(os.environ.get("CDML_BENCH_FRAMES", "5000"))) if LARGE else (2_000, 200)
DENSITY = 0.02  # atoms per cubic angstrom (molten NaCl at 1400 K: 0.028)


def _counter_and_rules():
    """The package's default counter (clusters.summarize_frame) when it is available, else the
    test stand-in counter."""
    try:
        from clusterdynamicsml.clusters.extract import ClusterRules
    except ImportError:
        return standin_count_labels, RULES, "tests._dynamics_standin.standin_count_labels"
    rules = ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6})
    return None, rules, "clusterdynamicsml.clusters.extract.summarize_frame"


COUNTER, BENCH_RULES, COUNTER_NAME = _counter_and_rules()


def _git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@pytest.fixture(scope="module")
def trajectory():
    return SyntheticTrajectory(n_atoms=N_ATOMS, n_frames=N_FRAMES, seed=2026, density=DENSITY)


@pytest.fixture(scope="module")
def reference(trajectory):
    return analyze_dynamics(trajectory, BENCH_RULES, timestep_fs=10.0, frames_per_bin=10, counter=COUNTER,
                            num_threads=1)


@pytest.mark.parametrize("mode", ["serial-1-thread", "serial-2-threads", "1-worker", "2-workers", "4-workers"])
def test_dynamics_frames_per_second(benchmark, trajectory, reference, mode):
    kw = dict(timestep_fs=10.0, frames_per_bin=10, counter=COUNTER)
    if mode == "serial-1-thread":
        kw["num_threads"] = 1
    elif mode == "serial-2-threads":
        kw["num_threads"] = 2
    else:  # "<k>-worker(s)": a local process pool of k workers, one kernel thread each
        kw.update(workers=int(mode.split("-")[0]), num_threads=1)
    rounds = 1 if LARGE else 3
    result = benchmark.pedantic(lambda: analyze_dynamics(trajectory, BENCH_RULES, **kw), rounds=rounds, iterations=1)
    assert result.differences(reference) in ([], ["settings"])
    assert result.n_frames == N_FRAMES and len(result.labels) > 1
    median = benchmark.stats.stats.median
    benchmark.extra_info.update(
        frames_per_s=N_FRAMES / median, n_atoms=N_ATOMS, n_frames=N_FRAMES, mode=mode, counter=COUNTER_NAME,
        git=_git_revision(), openmp=cdml.openmp_enabled(), labels=len(result.labels),
    )


_RSS_CHILD = """
import json, sys
sys.path.insert(0, {bench!r})
import trajgen
from clusterdynamicsml.dynamics.analyze import analyze_dynamics
from clusterdynamicsml.io.frames import read_frames
n = int(sys.argv[1])
r = analyze_dynamics(read_frames(trajgen.trajectory(1000, {n_max}))[:n], trajgen.rules(), timestep_fs=10.0)
assert r.n_frames == n
arrays = {{id(v): v.nbytes for v in vars(r).values() if hasattr(v, "nbytes")}}  # shared arrays once
print(json.dumps({{"result_bytes": sum(arrays.values()), "labels": len(r.labels)}}))
"""


def child_peak_rss(n_frames: int, n_max: int) -> dict:
    """Run analyze_dynamics over the first n_frames of the cached 1000-atom trajectory in a
    fresh child behind a small launcher (``bench/trajectory.py::measure_child``) and return its
    own peak RSS (kB, from os.wait4: nothing of pytest or of another child is counted) and the
    bytes of the result's arrays."""
    script = _RSS_CHILD.format(bench=str(Path(__file__).resolve().parent), n_max=n_max)
    out, _err, maxrss_kb, _cpu = trajectory_runner.measure_child([sys.executable, "-c", script, str(n_frames)])
    info = json.loads(out.splitlines()[-1])
    info["peak_rss_kb"] = maxrss_kb
    return info


def cli_peak_rss(n_frames: int) -> float:
    """Peak RSS (kB) of ``clusterdynamicsml dynamics`` (dataset, CSVs, figures, reports) on the
    cached 1000-atom trajectory of ``n_frames`` frames, in a fresh child behind the launcher."""
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        path = trajectory_runner.trajgen.trajectory(1000, n_frames)
        row = trajectory_runner.run_case("cli", path, n_frames, Path(out))
    return row["peak_rss_mb"] * 1024.0


def test_streaming_peak_rss_is_flat(benchmark):
    """Peak RSS of a whole dynamics pass on 1k-atom frames, N = 1,000 and 20,000 frames
    (CDML_BENCH_RSS_FRAMES), each in a fresh child, through the API and the CLI: within 10 % of
    the 1,000-frame peak (issue 15). Frames are streamed and the per-frame counts are compact
    (a few bytes per label present in a frame), so the peak may grow only by them.

    Without compact counts the 20,000-frame peaks were 4x (API) and 1.5x (CLI) the 1,000-frame
    ones (dense labels x frames matrices; the CLI also read the whole dataset JSON back)."""
    n_small, n_large = 1000, int(os.environ.get("CDML_BENCH_RSS_FRAMES", "20000"))
    small, large = benchmark.pedantic(lambda: (child_peak_rss(n_small, n_large), child_peak_rss(n_large, n_large)),
                                      rounds=1, iterations=1)
    cli_small, cli_large = cli_peak_rss(n_small), cli_peak_rss(n_large)
    benchmark.extra_info.update(frames=[n_small, n_large], peak_rss_kb=[small["peak_rss_kb"], large["peak_rss_kb"]],
                                cli_peak_rss_kb=[cli_small, cli_large],
                                result_bytes=[small["result_bytes"], large["result_bytes"]],
                                labels=[small["labels"], large["labels"]])
    assert large["peak_rss_kb"] <= 1.10 * small["peak_rss_kb"], (small, large)
    assert cli_large <= 1.10 * cli_small, (cli_small, cli_large)


def test_streaming_memory_is_flat(benchmark):
    """Peak traced memory (bytes) for N and 10 N frames of 10k-atom frames."""
    n_atoms = 10_000

    def peak(n_frames):
        traj = SyntheticTrajectory(n_atoms=n_atoms, n_frames=n_frames, seed=1, density=DENSITY)
        tracemalloc.start()
        analyze_dynamics(traj, RULES, timestep_fs=10.0, counter=half_box_counter, chunk_size=16)
        top = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return top

    small, large = benchmark.pedantic(lambda: (peak(20), peak(200)), rounds=1, iterations=1)
    frame_bytes = n_atoms * 3 * 8
    benchmark.extra_info.update(peak_bytes_20_frames=small, peak_bytes_200_frames=large, frame_bytes=frame_bytes)
    assert large - small < frame_bytes
