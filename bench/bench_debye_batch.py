"""A label's ensemble in one call: 1000 random 100-atom Pb/I/O clusters x 500 q (0.02..2 1/A).

Cases, in one run (compare their medians; the machine is shared):
* 1000 single ``debye_partials`` calls, exact; and 1000 single ``method="auto"`` calls (one-
  structure ``debye_partials_batch``, which picks exact at this size);
* one per-structure batch call (``debye_partials_batch``, exact and auto): 1000 results;
* one ensemble call (``debye_partials_ensemble``): the mean partials of the 1000 structures,
  "auto" (pools every pair into one histogram per element pair at bin 0.001 A), "exact"
  (per-structure exact sums reduced in order) and "exact" with moments (adds the covariance for
  the std over the structures).

Every case checks its result: singles and batches against the exact sums of structure 0, the
ensembles against the mean of the 1000 exact single sums (the exact ones to 1e-12, the pooled
histogram within its documented bound ``histogram_error_bound``).

    python -m pytest bench/bench_debye_batch.py --benchmark-columns=median,rounds -q
"""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml.saxs.batch import debye_partials_batch
from clusterdynamicsml.saxs.debye import debye_partials
from clusterdynamicsml.saxs.ensemble import debye_partials_ensemble

Q = np.linspace(0.02, 2.0, 500)
RNG = np.random.default_rng(11)
STRUCTS = [(np.array(["Pb", "I", "O"])[RNG.integers(0, 3, 100)].tolist(), RNG.normal(size=(100, 3)) * 4.0)
           for _ in range(1000)]


@pytest.fixture(scope="module")
def exact_singles():
    return [debye_partials(p, s, Q, method="exact") for s, p in STRUCTS]


@pytest.fixture(scope="module")
def exact_mean(exact_singles):
    """Mean trace (electrons^2) of the 1000 exact single sums: the brute-force reference."""
    return np.mean([d.intensity() for d in exact_singles], axis=0)


@pytest.mark.parametrize("method", ["exact", "auto"])
def test_thousand_single_calls(benchmark, record, exact_singles, method):
    if method == "exact":
        out = benchmark.pedantic(lambda: [debye_partials(p, s, Q, method="exact") for s, p in STRUCTS], rounds=3,
                                 iterations=1)
    else:
        out = benchmark.pedantic(lambda: [debye_partials_batch([st], Q)[0] for st in STRUCTS], rounds=3, iterations=1)
    assert len(out) == 1000 and np.array_equal(out[0].s, exact_singles[0].s)
    record(case=f"1000 single calls ({method})", structures=1000, n_atoms=100, n_q=Q.size)


@pytest.mark.parametrize("method", ["exact", "auto"])
def test_per_structure_batch(benchmark, record, exact_singles, method):
    out = benchmark.pedantic(lambda: debye_partials_batch(STRUCTS, Q, method=method), rounds=3, iterations=1)
    assert len(out) == 1000 and np.array_equal(out[0].s, exact_singles[0].s)
    record(case=f"one per-structure batch call ({method})", structures=1000, n_atoms=100, n_q=Q.size)


@pytest.mark.parametrize("method,moments", [("auto", False), ("exact", False), ("exact", True)])
def test_ensemble_call(benchmark, record, exact_mean, method, moments):
    ens = benchmark.pedantic(lambda: debye_partials_ensemble(STRUCTS, Q, method=method, moments=moments), rounds=3,
                             iterations=1)
    got = ens.intensity()
    err = np.abs(got - exact_mean)
    if method == "auto":
        assert ens.pooled and np.all(err <= ens.histogram_error_bound())
    else:
        np.testing.assert_allclose(got, exact_mean, rtol=1e-12)
    if moments:
        assert ens.cov is not None and np.all(ens.intensity_std() > 0)
    record(case=f"one ensemble call ({method}{', moments' if moments else ''})", structures=1000, n_atoms=100,
           n_q=Q.size, pooled=bool(ens.pooled), max_rel_error=float((err / exact_mean).max()),
           bound_rel=float((ens.histogram_error_bound() / exact_mean).max()))
