"""Benchmarks of the structure builder, its validity check and the geometry statistics
(pytest-benchmark).

Run:  python -m pytest bench/bench_builder.py --benchmark-only -q
      (add --benchmark-timer time.process_time for CPU time)
Every bench also asserts its result (composition, no contact shorter than the learned minimum,
one cluster under the rules, bond lengths at the learned medians, statistics equal for 1 and N
threads).

Two sets of statistics: the synthetic Pb/I/O library of the tests, and the statistics learned
from the bundled example's own clusters (every finite cluster of every frame of
``clusterdynamicsml/example``), which make the builder work harder (4 angle modes per
node-linker pair, I mostly terminal, so every I bridge is placed by the connectivity pass).

Before / after in one run: ``python bench/bench_builder.py --baseline OTHER/python`` builds
Pb40 I80 O40 with example-learned statistics alternately with this checkout and with the package
under OTHER/python (e.g. ``git archive main python | tar -x -C /tmp/base``, plus the compiled
``_core*.so``), each in a fresh process, and prints the medians; under pytest the same comparison
runs when ``CDML_BUILDER_BASELINE`` names that folder.

Reference point (ref §7.1 P1): the SAXSShell builder needs 170 s for one Pb40 I80 O40 cluster.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import clusterdynamicsml as cdml
from clusterdynamicsml.build.geomstats import geometry_statistics
from clusterdynamicsml.build.grow import build_structure
from clusterdynamicsml.build.validate import validate_structure
from clusterdynamicsml.clusters import ClusterRules

CUTOFFS = {("Pb", "I"): 3.5, ("Pb", "O"): 3.0}
HERE = Path(__file__).resolve().parent
PYTHON_DIR = HERE.parent / "python"

sys.path.insert(0, str(HERE.parent / "tests"))
from _example_library import example_library  # noqa: E402  (the bundled example's clusters)
from test_geomstats import pbio_library as library  # noqa: E402  (the synthetic Pb/I/O library of the tests)

# learns the example statistics and times builds of one composition; runs in a fresh process with
# the package under test first on sys.path (so that a baseline revision can run the same code)
_TIMER = textwrap.dedent('''
    import json, sys, time
    from clusterdynamicsml.example import example_config
    from clusterdynamicsml.io.frames import read_frames
    from clusterdynamicsml.clusters import ClusterRules, extract_clusters
    from clusterdynamicsml.build.geomstats import geometry_statistics
    from clusterdynamicsml.build.grow import build_structure
    cfg = example_config()
    rules = ClusterRules.from_dict(cfg.cluster_rules_dict())
    lib = []
    for fr in read_frames(str(cfg.resolve_path(cfg.frames.path))):
        for c in extract_clusters(fr, rules):
            if not c.percolating and c.node_count:
                lib.append(([fr.symbols[i] for i in c.atom_indices], c.unwrapped_positions(fr)))
    stats = geometry_statistics(lib, rules=rules)
    counts, repeats = json.loads(sys.argv[1]), int(sys.argv[2])
    build_structure(counts, stats, seed=0)  # warm-up
    cpu, wall = [], []
    for k in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        build_structure(counts, stats, seed=k)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    print(json.dumps({"cpu": cpu, "wall": wall}))
''')


@pytest.fixture(scope="module")
def stats():
    return geometry_statistics(library(200), ["Pb"], ["I"], ["O"], CUTOFFS)


@pytest.fixture(scope="module")
def example():
    lib, rules = example_library()
    return geometry_statistics(lib, rules=rules), rules


def _revision():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=False).stdout.strip()
    except OSError:
        return "unknown"


def _info(benchmark, **extra):
    benchmark.extra_info.update(openmp=cdml.openmp_enabled(), threads=cdml.get_num_threads(),
                                revision=_revision(), **extra)


def _composition(n_pb):
    return {"Pb": n_pb, "I": 2 * n_pb, "O": 2 * n_pb if n_pb < 40 else n_pb}


def _check(built, counts, stats, rules):
    assert built.counts == dict(sorted(counts.items()))
    assert built.quality.min_distance_ratio >= 1.0 - 1e-9
    res = validate_structure(built.symbols, built.positions, rules, counts=counts, stats=stats)
    assert res.passed, res.reasons


@pytest.mark.parametrize("n_pb", [4, 16, 40], ids=["Pb4I8O8-20", "Pb16I32O32-80", "Pb40I80O40-160"])
def test_bench_build(benchmark, stats, n_pb):
    counts = _composition(n_pb)
    _info(benchmark, atoms=sum(counts.values()), statistics="synthetic library of the tests")
    built = benchmark(build_structure, counts, stats, seed=0)
    _check(built, counts, stats, ClusterRules(node=["Pb"], linker=["I"], shell=["O"], cutoffs=CUTOFFS))
    assert built.quality.max_abs_bond_deviation < 0.05


@pytest.mark.parametrize("n_pb", [4, 16, 40], ids=["Pb4I8O8-20", "Pb16I32O32-80", "Pb40I80O40-160"])
def test_bench_build_example_statistics(benchmark, example, n_pb):
    st, rules = example
    counts = _composition(n_pb)
    _info(benchmark, atoms=sum(counts.values()), statistics=f"bundled example, {st.n_structures} clusters")
    built = benchmark(build_structure, counts, st, seed=0, rules=rules)
    _check(built, counts, st, rules)


def test_bench_validate_160(benchmark, example):
    st, rules = example
    counts = _composition(40)
    built = build_structure(counts, st, seed=0, rules=rules)
    _info(benchmark, atoms=built.n_atoms)
    res = benchmark(validate_structure, built.symbols, built.positions, rules, counts=counts, stats=st)
    assert res.passed and res.n_components == 1


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


# ---- before / after in one run --------------------------------------------------------------------

def _time_in_process(python_dir, counts, repeats):
    env = dict(os.environ, PYTHONPATH=str(python_dir), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    out = subprocess.run([sys.executable, "-c", _TIMER, json.dumps(counts), str(repeats)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare_with_baseline(baseline_python, counts=None, rounds=5, repeats=3):
    """Median CPU and wall seconds per build of ``counts`` (default Pb40 I80 O40) for this checkout
    and the baseline, alternating fresh processes (A B A B ...) so that both see the same load."""
    counts = counts or _composition(40)
    times = {"this": {"cpu": [], "wall": []}, "baseline": {"cpu": [], "wall": []}}
    for _ in range(rounds):
        for name, path in (("this", PYTHON_DIR), ("baseline", Path(baseline_python))):
            t = _time_in_process(path, counts, repeats)
            times[name]["cpu"] += t["cpu"]
            times[name]["wall"] += t["wall"]
    med = {name: {k: statistics.median(v) for k, v in d.items()} for name, d in times.items()}
    med["cpu_ratio_baseline_over_this"] = med["baseline"]["cpu"] / med["this"]["cpu"]
    med["builds_each"] = rounds * repeats
    return med


@pytest.mark.skipif(not os.environ.get("CDML_BUILDER_BASELINE"), reason="set CDML_BUILDER_BASELINE=OTHER/python")
def test_bench_build_160_against_baseline(benchmark):
    med = benchmark.pedantic(compare_with_baseline, args=(os.environ["CDML_BUILDER_BASELINE"],), rounds=1,
                             iterations=1)
    _info(benchmark, **{k: v for k, v in med.items() if not isinstance(v, dict)},
          this_cpu_median=med["this"]["cpu"], baseline_cpu_median=med["baseline"]["cpu"],
          this_wall_median=med["this"]["wall"], baseline_wall_median=med["baseline"]["wall"])


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", required=True, help="python/ folder of the baseline revision")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    print(json.dumps(compare_with_baseline(a.baseline, rounds=a.rounds, repeats=a.repeats), indent=1))
