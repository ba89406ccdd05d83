"""The shared-data tests: every one carries the marker, and CI (CI=true) fails rather than
skips them when the data folder is missing."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_every_test_taking_shared_data_carries_the_marker():
    missing = []
    for path in sorted(HERE.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            if "shared_data" not in [a.arg for a in node.args.args]:
                continue
            marks = [ast.unparse(d) for d in node.decorator_list]
            if not any("mark.shared_data" in m for m in marks):
                missing.append(f"{path.name}::{node.name}")
    assert not missing, missing


def _run_probe(tmp_path, ci: bool):
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text("def test_reads(shared_data):\n    assert shared_data.is_dir()\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(CDML_SHARED_DATA=str(tmp_path / "no_such_folder"), PYTHONDONTWRITEBYTECODE="1")
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_missing_shared_data_skips_locally_and_fails_in_ci(tmp_path):
    local = _run_probe(tmp_path, ci=False)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    ci = _run_probe(tmp_path, ci=True)
    assert ci.returncode == 1 and "1 error" in ci.stdout and "CI=true" in ci.stdout, ci.stdout
