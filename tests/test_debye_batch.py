"""The batch Debye entry point (one C++ call for many structures), the automatic method choice
and the reuse of histogram buffers between calls: every result equals the one-structure call
bit for bit, for any thread count and any call order."""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml import _core
from clusterdynamicsml.saxs.batch import auto_method, debye_partials_batch
from clusterdynamicsml.saxs.debye import debye_partials

Q = np.linspace(0.02, 2.0, 200)


def _structures(seed, count=40):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        n = int(rng.integers(1, 120))
        els = np.array(["Pb", "I", "O", "Cs"])[: int(rng.integers(1, 5))]
        out.append((els[rng.integers(0, els.size, n)].tolist(), rng.normal(size=(n, 3)) * 4.0))
    return out


def _same(a, b):
    assert a.elements == b.elements and a.pairs == b.pairs and a.method == b.method
    assert np.array_equal(a.s, b.s) and np.array_equal(a.counts, b.counts)
    assert np.array_equal(a.pair_counts, b.pair_counts) and a.r_max == b.r_max and a.bin_width == b.bin_width


@pytest.mark.parametrize("method", ["exact", "histogram"])
def test_batch_equals_single_calls_for_any_thread_count(method):
    structs = _structures(1)
    singles = [debye_partials(p, s, Q, method=method, bin_width=0.01) for s, p in structs]
    for threads in (1, 2, 3):
        batch = debye_partials_batch(structs, Q, method=method, bin_width=0.01, num_threads=threads)
        assert len(batch) == len(structs)
        for a, b in zip(singles, batch):
            _same(a, b)


def test_auto_picks_exact_for_small_and_histogram_for_large_structures():
    rng = np.random.default_rng(3)
    small = rng.normal(size=(100, 3)) * 4.0
    large = rng.uniform(0, 30.0, size=(3000, 3))
    assert auto_method(small, 3, 0.001) == "exact"
    assert auto_method(large, 2, 0.01) == "histogram"
    structs = [(["Pb"] * 100, small), (["Pb", "I"] * 1500, large)]
    batch = debye_partials_batch(structs, Q, bin_width=0.01)
    assert [b.method for b in batch] == ["exact", "histogram"]
    _same(batch[0], debye_partials(small, ["Pb"] * 100, Q, method="exact"))
    _same(batch[1], debye_partials(large, ["Pb", "I"] * 1500, Q, method="histogram", bin_width=0.01))


def test_histogram_buffers_reused_between_calls_give_identical_results():
    # a large call (its words spill into the wide counters), then small calls, then the large
    # one again: every result equals the first computation of the same structure
    rng = np.random.default_rng(5)
    big = rng.uniform(0, 40.0, size=(4600, 3))
    tb = np.zeros(4600, dtype=np.int32)
    small = rng.normal(size=(60, 3)) * 3.0
    ts = rng.integers(0, 2, 60).astype(np.int32)
    first_small = _core.debye_partials(small, ts, 2, Q, "histogram", 0.002, 1)[0]
    first_big = _core.debye_partials(big, tb, 1, Q, "histogram", 0.002, 1)[0]
    again_small = _core.debye_partials(small, ts, 2, Q, "histogram", 0.002, 1)[0]
    again_big = _core.debye_partials(big, tb, 1, Q, "histogram", 0.002, 1)[0]
    assert np.array_equal(first_small, again_small) and np.array_equal(first_big, again_big)
    # the counts (S at q = 0 would be the pair count): every pair binned once
    s0 = _core.debye_partials(small, ts, 2, np.array([0.0]), "histogram", 0.002, 1)
    assert s0[0][:, 0].tolist() == s0[2].tolist()


def test_batch_errors_name_the_structure():
    structs = _structures(2, 5)
    bad = list(structs)
    bad[3] = (bad[3][0], np.full_like(bad[3][1], np.nan))
    with pytest.raises(ValueError, match=r"structures\[3\]"):
        debye_partials_batch(bad, Q)
    with pytest.raises(ValueError, match="method"):
        debye_partials_batch(structs, Q, method="fast")
    with pytest.raises(ValueError, match=r"structures\[0\]"):
        debye_partials_batch([(["Pb", "I"], np.zeros((3, 3)))], Q)
    with pytest.raises(ValueError, match="structure 1"):
        _core.debye_partials_batch([np.zeros((2, 3)), np.zeros((2, 3))],
                                   [np.zeros(2, np.int32), np.array([0, 7], np.int32)], 2, Q, "exact", 0.01, 1)
    assert debye_partials_batch([], Q) == []
