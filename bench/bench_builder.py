"""Benchmarks of the structure builder and the geometry statistics (pytest-benchmark).

Run:  python -m pytest bench/bench_builder.py --benchmark-only -q
Every bench also asserts its result (composition, no contact shorter than the learned minimum,
bond lengths at the learned medians, statistics equal for 1 and N threads).

Reference point (ref §7.1 P1): the SAXSShell builder needs 170 s for one Pb40 I80 O40 cluster.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import clusterdynamicsml as cdml
from clusterdynamicsml.build.grow import build_structure
from clusterdynamicsml.build.geomstats import geometry_statistics

CUTOFFS = {("Pb", "I"): 3.5, ("Pb", "O"): 3.0}

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_geomstats import pbio_library as library  # noqa: E402  (the synthetic Pb/I/O library of the tests)


@pytest.fixture(scope="module")
def stats():
    return geometry_statistics(library(200), ["Pb"], ["I"], ["O"], CUTOFFS)


def _revision():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=False).stdout.strip()
    except OSError:
        return "unknown"


def _info(benchmark, **extra):
    benchmark.extra_info.update(openmp=cdml.openmp_enabled(), threads=cdml.get_num_threads(),
                                revision=_revision(), **extra)


@pytest.mark.parametrize("n_pb", [4, 16, 40], ids=["Pb4I8O8-20", "Pb16I32O32-80", "Pb40I80O40-160"])
def test_bench_build(benchmark, stats, n_pb):
    counts = {"Pb": n_pb, "I": 2 * n_pb, "O": 2 * n_pb if n_pb < 40 else n_pb}
    _info(benchmark, atoms=sum(counts.values()))
    built = benchmark(build_structure, counts, stats, seed=0)
    assert built.counts == dict(sorted(counts.items()))
    assert built.quality.min_distance_ratio >= 1.0 - 1e-9
    assert built.quality.max_abs_bond_deviation < 0.05


@pytest.mark.parametrize("threads", [1, 2])
def test_bench_geometry_statistics_1000(benchmark, threads):
    lib = library(1000, seed=2, max_pb=6)
    n_atoms = sum(len(s) for s, _ in lib)
    _info(benchmark, structures=len(lib), atoms=n_atoms, kernel_threads=threads)
    st = benchmark(geometry_statistics, lib, ["Pb"], ["I"], ["O"], CUTOFFS, num_threads=threads)
    assert st.n_structures == 1000
    assert abs(st.bond_length_medians["I-Pb"] - 3.2) < 0.02
    assert abs(st.node_bond_length - 6.4) < 0.05
    ref = geometry_statistics(lib[:100], ["Pb"], ["I"], ["O"], CUTOFFS, num_threads=1)
    assert geometry_statistics(lib[:100], ["Pb"], ["I"], ["O"], CUTOFFS, num_threads=threads) == ref
