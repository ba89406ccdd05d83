"""Components, mixtures, the weighted fit and its plots, including the real PbI2/DMF data."""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml.saxs.debye import (
    average_component,
    farthest_point_sampling,
    mix_components,
    single_component,
    structure_descriptors,
)
from clusterdynamicsml.saxs.expdata import SaxsData, stitch_saxs
from clusterdynamicsml.saxs.fit import fit_saxs, pearson

Q = np.linspace(0.02, 1.0, 120)


def toy_structures(seed, count, n=8):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        pos = rng.normal(scale=2.0, size=(n, 3))
        out.append((["Pb"] + ["I"] * (n - 1), pos))
    return out


def test_average_component_mean_std_se():
    structs = toy_structures(1, 5)
    c = average_component("PbI7", structs, Q)
    from clusterdynamicsml import debye_intensity

    X = np.array([debye_intensity(p, s, Q) for s, p in structs])
    np.testing.assert_allclose(c.intensity, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(c.std, X.std(0), rtol=1e-9)
    np.testing.assert_allclose(c.se, X.std(0) / np.sqrt(5), rtol=1e-9)
    assert c.n_structures == 5 and c.source == "average"


def test_fps_subset_records_k_and_sampling_error():
    structs = toy_structures(2, 30)
    full = average_component("L", structs, Q)
    sub = average_component("L", structs, Q, max_structures=8)
    assert sub.source == "fps_average" and sub.k == 8 and sub.n_structures == 8 and sub.n_library == 30
    assert sub.weights.sum() == 30
    assert np.all(sub.sampling_error > 0)
    # the sampled mean is close to the full mean, within a few estimated sampling errors
    assert np.max(np.abs(sub.intensity - full.intensity) / full.intensity) < 0.05
    idx = farthest_point_sampling(structure_descriptors(structs), 8)
    assert len(set(idx.tolist())) == 8
    np.testing.assert_array_equal(idx, farthest_point_sampling(structure_descriptors(structs), 8))


def test_fps_covers_the_extremes():
    X = np.array([[0.0], [0.1], [0.2], [5.0], [10.0]])
    # first the row nearest the mean (5.0), then the farthest (0.0; ties -> lowest index), then 10.0
    assert farthest_point_sampling(X, 3).tolist() == [3, 0, 4]
    assert farthest_point_sampling(X, 99).size == 5
    with pytest.raises(ValueError, match="positive integer"):
        farthest_point_sampling(X, 0)


def test_mixture_normalises_weights_and_checks_grids():
    a = single_component("A", toy_structures(3, 1)[0], Q)
    b = single_component("B", toy_structures(4, 1)[0], Q)
    I, om = mix_components([a, b], [2.0, 6.0])
    np.testing.assert_allclose(om, [0.25, 0.75])
    np.testing.assert_allclose(I, 0.25 * a.intensity + 0.75 * b.intensity)
    with pytest.raises(ValueError, match="weights must be finite"):
        mix_components([a, b], [-1, 2])
    c = single_component("C", toy_structures(5, 1)[0], Q[:50])
    with pytest.raises(ValueError, match="different q grid"):
        mix_components([a, c], [1, 1])


def synthetic_data(components, omega, scale, bg, noise, seed=0):
    X = np.array([c.intensity for c in components])
    clean = scale * (np.asarray(omega) @ X) + bg
    sig = noise * clean
    y = clean + np.random.default_rng(seed).normal(size=clean.shape) * sig
    return SaxsData(Q.copy(), y, sig, "synthetic"), clean


@pytest.fixture(scope="module")
def three_components():
    return [single_component(f"C{k}", toy_structures(10 + k, 1, n=6 + 3 * k)[0], Q, sigma={("I", "Pb"): 0.1})
            for k in range(3)]


def test_fixed_weights_recover_scale_and_background(three_components):
    data, clean = synthetic_data(three_components, [0.2, 0.3, 0.5], 2e-5, 0.03, 1e-4)
    r = fit_saxs(data, three_components, weights=[0.2, 0.3, 0.5])
    assert r.scale == pytest.approx(2e-5, rel=1e-3) and r.background == pytest.approx(0.03, rel=1e-2)
    assert 0.5 < r.chi2_reduced < 1.6 and r.pearson > 0.9999
    assert r.rmse == pytest.approx(np.sqrt(np.mean((data.intensity - r.fitted) ** 2)))
    np.testing.assert_allclose(r.residuals, data.intensity - r.fitted)


@pytest.mark.parametrize("method", ["nnls", "pearson"])
def test_refit_weights_recovers_the_mixture(three_components, method):
    data, _ = synthetic_data(three_components, [0.6, 0.0, 0.4], 1e-4, 0.01, 1e-5, seed=1)
    r = fit_saxs(data, three_components, refit_weights=method)
    assert r.weights.sum() == pytest.approx(1.0) and np.all(r.weights >= 0)
    np.testing.assert_allclose(r.weights, [0.6, 0.0, 0.4], atol=0.03)
    assert r.pearson > 0.9999


def test_non_negative_scale_and_solvent_term(three_components):
    solvent = 1e-3 * Q**3
    data, _ = synthetic_data(three_components, [1, 0, 0], 1e-5, 0.0, 1e-5)
    data = SaxsData(data.q, data.intensity + 0.7 * solvent, data.sigma, "with solvent")
    r = fit_saxs(data, three_components[:1], solvent=(Q, solvent), q_range=(0.1, 0.9))
    assert r.solvent_scale == pytest.approx(0.7, rel=0.02) and r.q_range[0] >= 0.1 and r.q_range[1] <= 0.9
    flipped = SaxsData(data.q, -data.intensity, data.sigma, "negative")
    assert fit_saxs(flipped, three_components[:1]).scale == 0.0  # never negative


def test_sigma_scale_refinement_recovers_common_factor():
    comp = single_component("D", toy_structures(20, 1, n=10)[0], Q, sigma={("I", "Pb"): 0.1, ("I", "I"): 0.2})
    truth = comp.intensity_at(1.7)
    sig = 1e-4 * truth
    data = SaxsData(Q.copy(), 3e-5 * truth + 0.01, 3e-5 * sig, "dw")
    r = fit_saxs(data, [comp], refine_sigma_scale=True, sigma_scale_bounds=(0.0, 3.0))
    assert r.sigma_scale == pytest.approx(1.7, abs=5e-3)


def test_fit_rejects_bad_input(three_components):
    data, _ = synthetic_data(three_components, [1, 0, 0], 1e-5, 0.0, 1e-3)
    with pytest.raises(ValueError, match="refit_weights must be one of"):
        fit_saxs(data, three_components, refit_weights="magic")
    with pytest.raises(ValueError, match="weights must be 3 finite"):
        fit_saxs(data, three_components, weights=[1, 2])
    with pytest.raises(ValueError, match="covers q"):
        fit_saxs(data, [("short", Q[:10], np.ones(10))])
    with pytest.raises(ValueError, match="no data points"):
        fit_saxs(data, three_components, q_range=(5, 6))
    with pytest.raises(ValueError, match="refine_sigma_scale needs"):
        fit_saxs(data, [("plain", Q, np.ones_like(Q))], refine_sigma_scale=True)


def test_pearson_helper():
    x = np.linspace(0, 1, 10)
    assert pearson(x, 3 * x + 1) == pytest.approx(1.0)
    assert pearson(x, np.ones_like(x)) == 0.0


@pytest.mark.shared_data
def test_real_pbi2_dmf_fit_with_real_fragments(shared_data, tmp_path):
    data = stitch_saxs(sorted((shared_data / "saxs_pbi2_dmf_aps5idd").glob("*.txt")))
    ref = shared_data / "saxshell_reference_structures"
    sel = data.select(0.02, 0.8)  # above the beam-stop upturn; below the DMF liquid peak
    comps = [single_component(n, ref / f"{n}.pdb", sel.q, sigma={("I", "Pb"): 0.1}) for n in ("pbi3", "cspbi2", "cspbi3")]
    r = fit_saxs(data, comps, q_range=(0.02, 0.8), refit_weights="nnls", background_degree=2)
    assert r.n_points > 800 and np.isfinite(r.chi2_reduced) and r.chi2_reduced > 0
    assert r.pearson > 0.99 and r.rmse < 1e-3
    assert r.scale > 0 and r.weights.sum() == pytest.approx(1.0)
    assert r.residuals.shape == r.q.shape == r.normalized_residuals.shape
    report = r.summary()
    for word in ("chi2_reduced", "RMSE", "Pearson"):
        assert word in report
    # fixed equal weights and the Pearson refit also run on the real data
    r_fixed = fit_saxs(sel, comps, background_degree=2)
    r_cc = fit_saxs(sel, comps, refit_weights="pearson", background_degree=2)
    assert r_cc.pearson >= r_fixed.pearson - 1e-9
    from clusterdynamicsml.plot.saxs import plot_saxs_fit, plot_saxs_traces

    paths = plot_saxs_fit(r, tmp_path / "fit") + plot_saxs_traces(comps, tmp_path / "traces")
    assert [p.suffix for p in paths] == [".png", ".svg", ".png", ".svg"]
    assert all(p.stat().st_size > 1000 for p in paths)
