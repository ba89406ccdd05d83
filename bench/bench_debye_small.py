"""Small-structure Debye calls (a run computes thousands of small-cluster profiles): one
100-atom Pb/I/O cluster x 500 q by the exact sum, the histogram (forced, bin 0.001 A) and
``method="auto"``; and 1000 such structures as 1000 single calls beside one batch call
(``saxs.batch.debye_partials_batch``). Every case checks its answer against the exact sums.

    python -m pytest bench/bench_debye_small.py --benchmark-columns=median,rounds -q
"""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml.saxs.batch import debye_partials_batch
from clusterdynamicsml.saxs.debye import debye_partials

Q = np.linspace(0.02, 2.0, 500)
RNG = np.random.default_rng(11)
STRUCTS = [(np.array(["Pb", "I", "O"])[RNG.integers(0, 3, 100)].tolist(), RNG.normal(size=(100, 3)) * 4.0)
           for _ in range(1000)]
EXACT0 = debye_partials(STRUCTS[0][1], STRUCTS[0][0], Q, method="exact")


@pytest.mark.parametrize("method", ["exact", "histogram"])
def test_one_small_structure(benchmark, record, method):
    syms, pos = STRUCTS[0]
    res = benchmark.pedantic(lambda: debye_partials(pos, syms, Q, method=method), rounds=30, iterations=1,
                             warmup_rounds=2)
    err = np.abs(res.s - EXACT0.s).max()
    assert err <= (1e-12 if method == "exact" else 1e-3), err
    record(method=method, n_atoms=100, n_q=Q.size, max_abs_error=float(err))


def test_one_small_structure_auto(benchmark, record):
    res = benchmark.pedantic(lambda: debye_partials_batch(STRUCTS[:1], Q)[0], rounds=30, iterations=1, warmup_rounds=2)
    assert res.method == "exact" and np.array_equal(res.s, EXACT0.s)
    record(method="auto", n_atoms=100, n_q=Q.size)


@pytest.mark.parametrize("how", ["1000 single calls", "one batch call"])
def test_thousand_small_structures(benchmark, record, how):
    if how == "one batch call":
        out = benchmark.pedantic(lambda: debye_partials_batch(STRUCTS, Q, method="exact"), rounds=3, iterations=1)
    else:
        out = benchmark.pedantic(lambda: [debye_partials(p, s, Q, method="exact") for s, p in STRUCTS], rounds=3,
                                 iterations=1)
    assert np.array_equal(out[0].s, EXACT0.s) and len(out) == 1000
    record(how=how, structures=1000, n_atoms=100, n_q=Q.size)
