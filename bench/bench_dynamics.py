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

A second bench records the peak traced Python memory (tracemalloc) for N and 10 N frames:
flat, because frames are streamed and only the per-frame label counts are kept.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

import clusterdynamicsml as cdml
from clusterdynamicsml.dynamics.analyze import analyze_dynamics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
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


_RSS_SCRIPT = """
import resource, sys
sys.path.insert(0, {tests!r})
from _dynamics_standin import RULES, SyntheticTrajectory, half_box_counter
from clusterdynamicsml.dynamics.analyze import analyze_dynamics
traj = SyntheticTrajectory(n_atoms={n_atoms}, n_frames=int(sys.argv[1]), seed=1, density={density})
r = analyze_dynamics(traj, RULES, timestep_fs=10.0, counter=half_box_counter, chunk_size=16)
assert r.n_frames == int(sys.argv[1])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_streaming_peak_rss_is_flat(benchmark):
    """Peak resident set size (kB, a fresh process each) for N and 10 N frames of 10k-atom frames."""
    script = _RSS_SCRIPT.format(tests=str(Path(__file__).resolve().parents[1] / "tests"), n_atoms=10_000,
                                density=DENSITY)

    def rss(n_frames):
        out = subprocess.run([sys.executable, "-c", script, str(n_frames)], capture_output=True, text=True, check=True)
        return int(out.stdout.split()[-1])

    small, large = benchmark.pedantic(lambda: (rss(20), rss(200)), rounds=1, iterations=1)
    benchmark.extra_info.update(peak_rss_kb_20_frames=small, peak_rss_kb_200_frames=large)
    # 180 more frames of 10k atoms would be 43 MB if they were kept
    assert large - small < 10_000, (small, large)


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
