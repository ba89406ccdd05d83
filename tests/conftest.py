"""Shared test fixtures. Tests that read ../shared/data (or $CDML_SHARED_DATA) use the
``shared_data`` fixture and carry the ``shared_data`` marker (added here when missing, and
checked by test_conftest.py). Locally they skip when the data are absent; in CI (``CI=true``)
a missing data folder fails them, so CI never passes without running them."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CDML_SHARED_DATA", REPO.parent / "shared" / "data"))


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()) and item.get_closest_marker("shared_data") is None:
            item.add_marker(pytest.mark.shared_data)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data ($CDML_SHARED_DATA); skips the test when it is not there, or
    fails it in CI (CI=true)."""
    if not SHARED_DATA.is_dir():
        message = f"shared data not found at {SHARED_DATA} (set CDML_SHARED_DATA to its folder)"
        if in_ci():
            pytest.fail(message + "; CI=true: the shared-data tests must run in CI")
        pytest.skip(message)
    return SHARED_DATA
