"""Ensemble mode of the Debye kernels: one C++ call returns the weighted-mean partial sums of a
set of structures (saxs/ensemble.py). Checked against the brute-force reference, the mean of
the one-structure exact sums, for mixed and differing compositions, damping, weights, moments,
thread counts, the documented histogram error bound, and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml import _core
from clusterdynamicsml.saxs import average_component, farthest_point_sampling, structure_descriptors
from clusterdynamicsml.saxs.debye import debye_partials, histogram_error_per_pair
from clusterdynamicsml.saxs.ensemble import EnsemblePartials, debye_partials_ensemble

Q = np.linspace(0.02, 2.0, 120)
SIGMA = {("I", "Pb"): 0.09, ("O", "Pb"): 0.05, ("I", "I"): 0.2}


def _ensemble(seed: int, n_structures: int = 24, differing: bool = True):
    """Clusters of 3..70 atoms; with ``differing`` some lack O or Pb (elements absent in members)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_structures):
        elements = ["Pb", "I", "O"]
        if differing and k % 3 == 1:
            elements = ["Pb", "I"]
        if differing and k % 5 == 2:
            elements = ["I", "O"]
        n = int(rng.integers(3, 70))
        syms = [elements[t] for t in rng.integers(0, len(elements), n)]
        out.append((syms, rng.normal(size=(n, 3)) * 3.5))
    return out


def _traces(structs, sigma=None):
    return np.array([debye_partials(p, s, Q).intensity(sigma) for s, p in structs])


@pytest.mark.parametrize("differing", [False, True])
def test_exact_ensemble_is_the_mean_of_single_exact_sums(differing):
    structs = _ensemble(1, differing=differing)
    e = debye_partials_ensemble(structs, Q, method="exact", moments=True)
    assert isinstance(e, EnsemblePartials) and e.method == "exact" and not e.pooled
    for sigma in (None, SIGMA):
        X = _traces(structs, sigma)
        np.testing.assert_allclose(e.intensity(sigma), X.mean(0), rtol=1e-12)
        np.testing.assert_allclose(e.intensity_std(sigma), X.std(0), rtol=1e-9, atol=1e-9 * X.mean(0).max())
    # counts are means over the ensemble (an element absent from a member counts 0 there)
    counts = np.array([[s.count(el) for el in e.elements] for s, _ in structs])
    np.testing.assert_allclose(e.counts, counts.mean(0), rtol=1e-15)
    pairs = np.array([[np.sum(np.equal.outer(np.array(s) == a, np.array(s) == b) & (np.array(s) == a)[:, None]
                              & (np.array(s) == b)[None, :]) for a, b in e.pairs] for s, _ in structs], float)
    pairs = np.array([[c if a != b else c - s.count(a) for c, (a, b) in zip(row, e.pairs)]
                      for row, (s, _) in zip(pairs, structs)])
    pairs[:, [a == b for a, b in e.pairs]] /= 2  # unordered pairs i < j
    np.testing.assert_allclose(e.pair_counts, pairs.mean(0), rtol=1e-14)
    e0 = debye_partials_ensemble(structs, [0.0, 0.5], method="exact")
    np.testing.assert_allclose(e0.s[:, 0], e.pair_counts, rtol=1e-14)  # S(0) = mean pair count


def test_damping_after_averaging_equals_averaging_damped_traces():
    """mean_k [sum_a n_ka f_a^2 + 2 sum f_a f_b D_ab S_kab] = sum_a mean(n_a) f_a^2 + 2 sum f_a f_b D_ab mean(S_ab):
    the damped mean computed from the averaged partials equals the mean of damped single traces,
    for the exact and the pooled histogram partials, and is not the undamped mean."""
    structs = _ensemble(2)
    sigma = {("I", "Pb"): 0.3, ("O", "Pb"): 0.2, ("I", "I"): 0.4}
    damped = _traces(structs, sigma).mean(0)
    for method in ("exact", "histogram"):
        e = debye_partials_ensemble(structs, Q, method=method)
        got = e.intensity(sigma)
        tol = 1e-12 * damped if method == "exact" else e.histogram_error_bound()
        assert np.all(np.abs(got - damped) <= tol + 1e-12 * damped), method
        assert (np.abs(got - _traces(structs).mean(0)) / damped).max() > 2e-3  # the damping is seen


@pytest.mark.parametrize("width", [0.001, 0.01, 0.05])
def test_pooled_histogram_within_the_documented_bound(width):
    structs = _ensemble(3, n_structures=40)
    e = debye_partials_ensemble(structs, Q, method="histogram", bin_width=width)
    assert e.pooled and e.method == "histogram" and e.n_histogram == 40 and e.bin_width == width
    ref = _traces(structs).mean(0)
    bound = e.histogram_error_bound()
    err = np.abs(e.intensity() - ref)
    assert np.all(err <= bound), (err / bound).max()
    assert bound.max() <= histogram_share(width) * ref[0]
    if width == 0.05:
        assert err.max() > 1e-3 * bound.max()  # the bound is not vacuous: the binning error is seen
    e0 = debye_partials_ensemble(structs, [0.0, 1.0], method="histogram", bin_width=width)
    np.testing.assert_allclose(e0.s[:, 0], e.pair_counts, rtol=1e-14)  # every pair binned once


def histogram_share(width):
    """e(q_max) from the module docstring (fraction of I(0)), with r_max <= 100 A."""
    w = width + 2e-12 * 100
    return (2.0 * w) ** 2 / 24 + 2.0 * (2.0**-17 * width + 1e-12 * 100) / 2


def test_auto_pools_when_pairs_outnumber_bins_and_matches_exact():
    rng = np.random.default_rng(4)
    big = [(["Pb", "I"] * 40, rng.normal(size=(80, 3)) * 2.0) for _ in range(60)]  # 60 x 3160 pairs
    e = debye_partials_ensemble(big, Q, bin_width=0.01)
    assert e.pooled and e.method == "histogram"
    ex = debye_partials_ensemble(big, Q, method="exact")
    assert np.all(np.abs(e.intensity() - ex.intensity()) <= e.histogram_error_bound())
    small = debye_partials_ensemble(big[:2], Q, bin_width=0.001)  # few pairs, many bins: exact
    assert not small.pooled and small.method == "exact"
    # non-integer weights cannot be pooled: auto falls back to the per-structure rule
    frac = debye_partials_ensemble(big, Q, bin_width=0.01, weights=np.full(60, 0.5))
    assert not frac.pooled
    np.testing.assert_allclose(frac.intensity(), ex.intensity(), rtol=1e-12)


def test_weights_are_a_weighted_mean_and_multiplicities_in_the_histogram():
    structs = _ensemble(5)
    rng = np.random.default_rng(5)
    w = rng.integers(0, 6, len(structs)).astype(float)
    w[0] = 3.0
    X = _traces(structs, SIGMA)
    ref = (w / w.sum()) @ X
    hist = debye_partials_ensemble(structs, Q, method="histogram", weights=w)
    assert np.all(np.abs(hist.intensity(SIGMA) - ref) <= hist.histogram_error_bound())
    # a structure listed twice == multiplicity 2
    twice = [s for s, m in zip(structs, w) for _ in range(int(m))]
    np.testing.assert_array_equal(debye_partials_ensemble(twice, Q, method="histogram").s, hist.s)
    wf = w + 0.25
    ex = debye_partials_ensemble(structs, Q, method="exact", weights=wf, moments=True)
    p = wf / wf.sum()
    np.testing.assert_allclose(ex.intensity(SIGMA), p @ X, rtol=1e-12)
    np.testing.assert_allclose(ex.intensity_std(SIGMA), np.sqrt(p @ (X - p @ X) ** 2), rtol=1e-9)


@pytest.mark.parametrize("method", ["exact", "histogram", "auto"])
@pytest.mark.parametrize("moments", [False, True])
def test_identical_for_one_two_three_threads(method, moments):
    structs = _ensemble(6, n_structures=150)  # more than one chunk of 64 structures
    runs = [debye_partials_ensemble(structs, Q, method=method, moments=moments, num_threads=t) for t in (1, 2, 3)]
    for r in runs[1:]:
        assert np.array_equal(r.s, runs[0].s) and np.array_equal(r.counts, runs[0].counts)
        if moments:
            assert np.array_equal(r.cov, runs[0].cov)


def test_histogram_moments_use_each_structures_own_histogram():
    structs = _ensemble(7)
    e = debye_partials_ensemble(structs, Q, method="histogram", bin_width=0.01, moments=True)
    assert not e.pooled and e.n_histogram == len(structs)
    singles = np.array([debye_partials(p, s, Q, method="histogram", bin_width=0.01).intensity() for s, p in structs])
    np.testing.assert_allclose(e.intensity(), singles.mean(0), rtol=1e-12)
    np.testing.assert_allclose(e.intensity_std(), singles.std(0), rtol=1e-8, atol=1e-9 * singles.max())


def test_average_component_is_one_ensemble_call_with_the_same_answer():
    structs = _ensemble(8, n_structures=12)
    X = _traces(structs, SIGMA)
    c = average_component("L", structs, Q, sigma=SIGMA)
    np.testing.assert_allclose(c.intensity, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(c.std, X.std(0), rtol=1e-9)
    np.testing.assert_allclose(c.se, X.std(0) / np.sqrt(12), rtol=1e-9)
    # farthest-point-sampled subset: the sampled structures weighted by their nearest-neighbour counts
    sub = average_component("L", structs, Q, sigma=SIGMA, max_structures=5)
    idx = farthest_point_sampling(structure_descriptors(structs), 5)
    p = sub.weights / sub.weights.sum()
    assert sub.source == "fps_average" and sub.weights.sum() == 12
    np.testing.assert_allclose(sub.intensity, p @ X[idx], rtol=1e-12)
    np.testing.assert_allclose(sub.std, np.sqrt(p @ (X[idx] - p @ X[idx]) ** 2), rtol=1e-9)


def test_bad_input_names_the_structure():
    structs = _ensemble(9, n_structures=6)
    bad = list(structs)
    bad[4] = (bad[4][0], np.where(np.arange(bad[4][1].size).reshape(-1, 3) == 0, np.nan, bad[4][1]))
    with pytest.raises(ValueError, match=r"structures\[4\]"):
        debye_partials_ensemble(bad, Q)
    bad[4] = (bad[4][0][:-1], structs[4][1])
    with pytest.raises(ValueError, match=r"structures\[4\]"):
        debye_partials_ensemble(bad, Q)
    # the C++ core names the structure too
    pos = [np.ascontiguousarray(p) for _, p in structs]
    types = [np.zeros(len(s), np.int32) for s, _ in structs]
    types[3] = types[3].copy()
    types[3][1] = 7
    with pytest.raises(ValueError, match="structure 3: type of atom 1"):
        _core.debye_partials_ensemble(pos, types, 1, Q, "histogram", 0.01, None, False, 2)
    far = [(s, p * 1e7) if k == 2 else (s, p) for k, (s, p) in enumerate(structs)]
    with pytest.raises(ValueError, match="structure 2: q_max"):
        debye_partials_ensemble(far, Q)
    with pytest.raises(ValueError, match="at least one structure"):
        debye_partials_ensemble([], Q)
    with pytest.raises(ValueError, match="structure 1: weight"):
        debye_partials_ensemble(structs, Q, weights=[1, -1, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="sum to zero"):
        debye_partials_ensemble(structs, Q, weights=np.zeros(6))
    with pytest.raises(ValueError, match="integers"):
        debye_partials_ensemble(structs, Q, method="histogram", weights=np.full(6, 0.5))
    with pytest.raises(ValueError, match="shape"):
        debye_partials_ensemble(structs, Q, weights=[1, 2])
    with pytest.raises(ValueError, match="method"):
        debye_partials_ensemble(structs, Q, method="fast")
    with pytest.raises(ValueError, match="moments=True"):
        debye_partials_ensemble(structs, Q).intensity_std()


def test_large_multiplicities_spill_and_stay_exact():
    """Multiplicity 30000 on a structure whose 90000 cross pairs all share one bin: 2.7e9 weighted
    pairs in one histogram word's bin, far beyond the packed words' 2^23 (spills into wide
    counters, one row of partners per pass). Known answer: 300 atoms at the origin and 300 at
    3 A give S(q) = 2 x 44850 coincident pairs + 90000 sinc(3 q); one structure gives the same
    mean whatever its multiplicity; mixed with another structure, the weighted mean of the exact
    sums within the bound."""
    pos = np.zeros((600, 3))
    pos[300:, 0] = 3.0
    a = (["Pb"] * 600, pos)
    known = 2 * 44850 + 90000 * np.sinc(3.0 * Q / np.pi)
    one = debye_partials_ensemble([a], Q, method="histogram")
    many = debye_partials_ensemble([a], Q, method="histogram", weights=[30000])
    for e in (one, many):
        assert np.all(np.abs(e.s[0] - known) <= 179700 * histogram_error_per_pair(Q, 0.001, e.r_max))
    np.testing.assert_allclose(many.s, one.s, rtol=1e-13, atol=1e-14 * 179700)
    b = (["Pb", "I"] * 10, np.random.default_rng(12).normal(size=(20, 3)) * 3.0)
    mix = debye_partials_ensemble([a, b], Q, method="histogram", weights=[30000, 1])
    X = _traces([a, b])
    ref = (30000 * X[0] + X[1]) / 30001
    assert np.all(np.abs(mix.intensity() - ref) <= mix.histogram_error_bound())
    with pytest.raises(ValueError, match="integers"):
        debye_partials_ensemble([a, b], Q, method="histogram", weights=[40000, 1])
