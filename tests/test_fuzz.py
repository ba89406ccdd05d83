"""A fast slice of scripts/fuzz_inputs.py (the full run: python scripts/fuzz_inputs.py --cases 2000):
mutated inputs of every reader, the run file, saved datasets and the command line either read
or fail with an error naming the input; never a bare TypeError/KeyError/OverflowError."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import fuzz_inputs  # noqa: E402


@pytest.mark.parametrize("kind", fuzz_inputs.KINDS)
def test_fuzzed_inputs_fail_cleanly(kind):
    selection = [(kind, seed) for seed in range(12)]
    out = fuzz_inputs.run_cases(selection)
    assert out["traceback"] == 0 and out["unnamed"] == 0, out["failures"]


def test_known_bad_cases_stay_fixed():
    # cases the fuzzer found: dataset with a list where a table belongs, a step column beyond int64,
    # a NUL in a saved SAXS curve
    # and an atom count beyond int64 handed to the C++ XYZ parser
    out = fuzz_inputs.run_cases([("dataset", 42), ("dataset", 108), ("dataset", 119), ("ener", 138),
                                 ("dataset", 185), ("dataset", 592), ("folder", 1808), ("structure", 2194)])
    assert out["traceback"] == 0 and out["unnamed"] == 0, out["failures"]
