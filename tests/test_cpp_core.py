"""The C++ core builds and works without Python: plain CMake build, the embedding example,
the C++ unit tests, `cmake --install`, and a separate project using find_package.

Skipped when cmake or a C++ compiler is missing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CMAKE = shutil.which("cmake")
CXX = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")

pytestmark = pytest.mark.skipif(not (CMAKE and CXX), reason="needs cmake and a C++ compiler")


def _run(cmd, cwd=None, timeout=300):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def core_build(tmp_path_factory):
    """Configure, build (-j2) and install the core with CDML_BUILD_PYTHON=OFF."""
    root = tmp_path_factory.mktemp("cpp_core")
    build, prefix = root / "build", root / "prefix"
    env_cxx = [f"-DCMAKE_CXX_COMPILER={CXX}"] if CXX else []
    _run([CMAKE, "-S", REPO, "-B", build, "-DCDML_BUILD_PYTHON=OFF", "-DCMAKE_BUILD_TYPE=Release",
          f"-DCMAKE_INSTALL_PREFIX={prefix}", *env_cxx])
    _run([CMAKE, "--build", build, "-j2"])
    _run([CMAKE, "--install", build])
    return build, prefix


def _exe(build: Path, name: str) -> Path:
    for cand in (build / "cpp" / name, build / "cpp" / "Release" / name, build / name):
        if cand.exists():
            return cand
    hits = list(build.rglob(name))
    assert hits, f"{name} was not built under {build}"
    return hits[0]


def test_embed_example_runs(core_build):
    build, _ = core_build
    out = _run([_exe(build, "cdml_embed_example")])
    assert "atoms=512 pairs=1536 components=1" in out


def test_cpp_unit_tests_pass(core_build):
    build, _ = core_build
    out = _run([_exe(build, "cdml_cpp_tests")])
    assert " 0 failures" in out, out


def _consumer_output(build, locate_core: str) -> str:
    """Configure, build and run cpp/examples/find_package_consumer; ``locate_core`` is the -D
    option that tells it where the core is (an install prefix or the source tree)."""
    src = REPO / "cpp" / "examples" / "find_package_consumer"
    _run([CMAKE, "-S", src, "-B", build, locate_core, "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_CXX_COMPILER={CXX}"])
    _run([CMAKE, "--build", build, "-j2"])
    return _run([_exe(build, "consumer")])


def test_installed_package_works_with_find_package(core_build, tmp_path):
    _, prefix = core_build
    assert (prefix / "include" / "clusterdynamicsml" / "neighbors.hpp").exists()
    assert list(prefix.rglob("clusterdynamicsmlConfig.cmake")), "package config file not installed"
    assert "pairs=12 components=2" in _consumer_output(tmp_path / "consumer", f"-DCMAKE_PREFIX_PATH={prefix}")


def test_add_subdirectory_embedding(tmp_path):
    """The same consumer project, pulling the core in from the source tree."""
    assert "pairs=12 components=2" in _consumer_output(tmp_path / "consumer_subdir", f"-DCDML_SOURCE_DIR={REPO}")
