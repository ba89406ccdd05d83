"""Shared helpers of the benchmarks (pytest-benchmark).

Run from the repository root: ``python -m pytest bench`` collects every ``bench_*.py`` (see
``pytest_collect_file`` below), or one file, for example::

    python -m pytest bench/bench_neighbors.py --benchmark-columns=median,iqr,rounds \
        --benchmark-group-by=param:case --benchmark-sort=name
    CDML_BENCH_LARGE=1 python -m pytest bench/bench_neighbors.py ...   # adds the 1M-atom cases

Every benchmark records the git revision, whether OpenMP is on, sizes and threads in
``extra_info``, and asserts that its result is right, so a speed-up can never come from
a wrong answer. Compare only ratios measured in one run: the machine is shared.
"""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import pytest

import clusterdynamicsml as cdml

REPO = Path(__file__).resolve().parents[1]
LARGE = os.environ.get("CDML_BENCH_LARGE", "") not in ("", "0")


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "") if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


_REVISION = git_revision()


@pytest.fixture
def record(benchmark):
    """``record(**info)``: put the standard fields plus ``info`` into the benchmark's extra_info."""

    def _record(**info):
        benchmark.extra_info.update(
            git_revision=_REVISION,
            cdml_version=cdml.__version__,
            openmp=cdml.openmp_enabled(),
            cpu_count=os.cpu_count(),
            machine=platform.machine(),
            **info,
        )

    return _record


def pytest_collect_file(parent, file_path):
    """Collect ``bench_*.py`` (the tests' ``python_files`` only matches ``test_*.py``), so
    ``python -m pytest bench`` runs every benchmark."""
    if file_path.suffix == ".py" and file_path.name.startswith("bench_") and not parent.session.isinitpath(file_path):
        return pytest.Module.from_parent(parent, path=file_path)  # (a file named on the command line is collected anyway)
    return None


def pytest_collection_modifyitems(config, items):
    """Keep the heavy 1M-atom cases out unless CDML_BENCH_LARGE=1."""
    if LARGE:
        return
    skip = pytest.mark.skip(reason="1M-atom case: set CDML_BENCH_LARGE=1")
    for item in items:
        if "1000000" in item.nodeid:
            item.add_marker(skip)
