"""Trajectory throughput beside the peers, in one run: frames/s, MB/s and the peak RSS of a
fresh child process per case (``bench/trajectory.py`` does the measuring; pytest-benchmark only
records). Default: 1k and 10k atoms x 200 frames; CDML_BENCH_LARGE=1: 1k, 10k and 100k atoms x
1,000 and 5,000 frames (files of up to 17 GB are written once under $CDML_BENCH_DATA).

Modes: ``read`` (iterate read_frames), ``api`` (analyze_dynamics, one node and one linker type,
3.5 A), ``cli`` (``clusterdynamicsml dynamics``, LARGE only), and the peers reading the same
extended-XYZ file when installed: ``mdanalysis`` (MDAnalysis XYZ reader), ``ase`` (ase.io.iread).

    python -m pytest bench/bench_trajectory.py --benchmark-columns=median -q
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trajectory  # noqa: E402
import trajgen  # noqa: E402

LARGE = os.environ.get("CDML_BENCH_LARGE", "") not in ("", "0")
ATOMS = [1000, 10_000, 100_000] if LARGE else [1000, 10_000]
FRAMES = [1000, 5000] if LARGE else [200]
MODES = ["read", "api", "mdanalysis", "ase"] + (["cli"] if LARGE else [])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n_frames", FRAMES)
@pytest.mark.parametrize("n_atoms", ATOMS)
def test_trajectory_throughput(benchmark, record, tmp_path, n_atoms, n_frames, mode):
    if not trajectory.available(mode):
        pytest.skip(f"{mode} is not installed")
    path = trajgen.trajectory(n_atoms, n_frames)
    row = benchmark.pedantic(lambda: trajectory.run_case(mode, path, n_frames, tmp_path), rounds=1, iterations=1)
    assert row["frames_per_s"] > 0 and row["peak_rss_mb"] > 0
    record(mode=mode, n_atoms=n_atoms, n_frames=n_frames, frames_per_s=row["frames_per_s"],
           frames_per_cpu_s=row["frames_per_cpu_s"], mb_per_s=row["mb_per_s"], peak_rss_mb=row["peak_rss_mb"],
           child_seconds=row["seconds"])


SHARED = Path(os.environ.get("CDML_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DCD = SHARED / "lipf6_bn_fec_lammps" / "bn_fec_short_wrap.dcd"
TOPOLOGY = SHARED / "lipf6_bn_fec_lammps" / "bn_fec.data"


@pytest.mark.parametrize("reader", ["read_frames", "mdanalysis"])
def test_binary_trajectory_through_mdanalysis(benchmark, record, reader):
    """A binary trajectory (LAMMPS DCD of the shared LiPF6 electrolyte, 7,118 atoms x 10 frames)
    through ``read_frames(Universe)`` beside MDAnalysis iterating the same Universe."""
    mda = pytest.importorskip("MDAnalysis")
    if not DCD.exists():
        pytest.skip(f"shared data not found at {DCD}")
    import warnings

    from clusterdynamicsml.io.frames import read_frames

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        u = mda.Universe(str(TOPOLOGY), str(DCD))
    u.add_TopologyAttr("elements", (DCD.parent / "bn_fec_elements.csv").read_text().split())

    src = read_frames(u)  # the Universe's topology is read once, outside the timing

    def run():
        if reader == "read_frames":
            return sum(f.positions.shape[0] for f in src)
        return sum(ts.positions.shape[0] for ts in u.trajectory)

    atoms = benchmark.pedantic(run, rounds=5, iterations=1)
    assert atoms == 10 * 7118
    record(reader=reader, frames=10, n_atoms=7118)
