"""The small public namespace, the deprecated top-level names and the one version source."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import clusterdynamicsml as cdml

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_has_15_to_25_public_names():
    # the exact command of issue 11, in a fresh interpreter
    out = subprocess.run([sys.executable, "-c", "import clusterdynamicsml as cdml; "
                          "print(len([n for n in dir(cdml) if not n.startswith('_')]))"],
                         capture_output=True, text=True, check=True).stdout
    assert 15 <= int(out) <= 25
    for name in ("run", "RunConfig", "read_frames", "Box", "ClusterRules", "extract_clusters", "analyze_dynamics",
                 "read_library", "predict_clusters", "debye_intensity", "fit_saxs", "set_num_threads",
                 "get_num_threads"):
        assert name in dir(cdml)
    assert cdml.ClusterRules is cdml.rules.ClusterRules is cdml.clusters.ClusterRules


def test_subpackages_are_attributes_and_old_names_warn():
    assert cdml.saxs.rank_aligned_sigma is cdml.saxs.debye.rank_aligned_sigma
    with pytest.warns(DeprecationWarning, match="moved to clusterdynamicsml.saxs.debye.rank_aligned_sigma"):
        old = cdml.rank_aligned_sigma
    assert old is cdml.saxs.rank_aligned_sigma
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cdml.nope  # noqa: B018


def test_one_version_source():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    version = re.search(r"project\(clusterdynamicsml VERSION ([0-9.]+)", cmake).group(1)
    assert cdml.__version__ == cdml._core.__version__ == version
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and not re.search(r'^version\s*=', pyproject, re.M)
    assert not re.search(r'__version__\s*=\s*"', (ROOT / "python/clusterdynamicsml/__init__.py").read_text())


def test_core_stub_matches_the_binding():
    import ast

    stub = ast.parse((ROOT / "python/clusterdynamicsml/_core.pyi").read_text())
    defined = {n.name for n in stub.body if isinstance(n, ast.FunctionDef)}
    public = {n for n in dir(cdml._core) if not n.startswith("_") and callable(getattr(cdml._core, n))}
    assert defined == public
    assert (ROOT / "python/clusterdynamicsml/py.typed").is_file()
