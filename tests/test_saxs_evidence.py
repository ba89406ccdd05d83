"""Issue 13: complete mixtures, the noise estimate, evidence statistics that tell a right model
from a wrong one, maximum-entropy reweighting and the Pearson weight fit."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from clusterdynamicsml.saxs.components import (
    atom_component,
    compute_components,
    mixture_weights,
)
from clusterdynamicsml.saxs.debye import debye_intensity
from clusterdynamicsml.saxs.evidence import (
    durbin_watson,
    runs_test,
    saxs_evidence,
    sphere_form_factor,
)
from clusterdynamicsml.saxs.expdata import SaxsData, stitch_saxs
from clusterdynamicsml.saxs.formfactors import form_factor
from clusterdynamicsml.saxs.noise import estimate_noise
from clusterdynamicsml.saxs.reweight import maxent_reweight, pearson_weights

Q = np.linspace(0.02, 0.8, 700)


# ----------------------------------------------------------------------------- components
def _lifetime(label, count, occ):
    return SimpleNamespace(label=label, mean_count_per_frame=count, occupancy_fraction=occ)


def test_atom_component_is_the_self_term():
    c = atom_component("Cl", "Cl", Q)
    np.testing.assert_allclose(c.intensity, form_factor("Cl", Q) ** 2, rtol=1e-14)
    np.testing.assert_allclose(c.intensity, debye_intensity(np.zeros((1, 3)), ["Cl"], Q), rtol=1e-12)


def test_mixture_weights_clusters_per_frame_and_reference():
    row = {"mean_count_per_frame": 2.5, "occupancy_fraction": 0.01}
    assert mixture_weights(row) == 2.5
    assert mixture_weights(row, "reference") == pytest.approx(2.5 * 0.05)  # occupancy floored at 0.05
    with pytest.raises(ValueError, match="mixture weights must be one of"):
        mixture_weights(row, "mass")


class _Library:
    """A StructureLibrary stand-in holding node-containing labels only (as read_library does)."""

    def __init__(self, structures):
        self._s = structures
        self.types = None

    def structures(self, label):
        return self._s[label]

    def __getitem__(self, label):
        if label not in self._s:
            raise KeyError(label)
        return SimpleNamespace(files=[], representative_path=None)


def test_every_dynamics_label_gets_a_component_including_free_ions(tmp_path):
    rng = np.random.default_rng(0)
    nacl = [(["Na", "Cl"], np.array([[0, 0, 0], [2.6, 0, 0]]) + rng.normal(scale=0.05, size=(2, 3))) for _ in range(3)]
    lib = _Library({"NaCl": nacl, "Na": [(["Na"], np.zeros((1, 3)))]})
    # a node-free label with structure files in the library folder, and one without any
    folder = tmp_path / "Cl2"
    folder.mkdir()
    (folder / "a.xyz").write_text("2\nx\nCl 0 0 0\nCl 3.5 0 0\n")
    dyn = SimpleNamespace(lifetime_by_label=[_lifetime("NaCl", 3.0, 0.9), _lifetime("Na", 1.0, 0.5),
                                             _lifetime("Cl", 2.0, 1.0), _lifetime("Cl2", 0.5, 0.2),
                                             _lifetime("Cl3", 0.1, 0.1)])
    cs = compute_components(Q, dyn, lib, library_dir=tmp_path, node_elements=["Na"], max_structures=None)
    labels = [c.label for c in cs.components]
    assert labels == ["NaCl", "Na", "Cl", "Cl2"]
    np.testing.assert_allclose(cs.weights, [3.0, 1.0, 2.0, 0.5])  # clusters per frame
    rows = {r["label"]: r for r in cs.rows}
    assert rows["Cl"]["kind"] == "atom" and rows["Cl"]["node_free"] and rows["Cl"]["in_mixture"]
    assert rows["Cl2"]["node_free"] and rows["Cl2"]["kind"] == "average"
    np.testing.assert_allclose(cs.components[3].intensity, debye_intensity(np.array([[0, 0, 0], [3.5, 0, 0.]]),
                                                                            ["Cl", "Cl"], Q), rtol=1e-12)
    assert rows["Cl3"]["kind"] == "missing" and not rows["Cl3"]["in_mixture"]
    assert any("Cl3" in w for w in cs.warnings)
    assert not rows["NaCl"]["node_free"]
    ref = compute_components(Q, dyn, lib, library_dir=tmp_path, node_elements=["Na"], weights="reference")
    np.testing.assert_allclose(ref.weights, [3.0 * 0.9, 1.0 * 0.5, 2.0, 0.5 * 0.2])


# ----------------------------------------------------------------------------- noise
def _segmented(q, clean, noise_sd, file_factor, seed=0):
    rng = np.random.default_rng(seed)
    y = clean + rng.normal(size=q.size) * noise_sd
    return SaxsData(q, y, file_factor * noise_sd, "synthetic")


def test_noise_estimate_recovers_the_scatter_and_flags_inflated_sigma():
    clean = 1e3 * sphere_form_factor(Q, 5.0) + 10.0
    sd = 0.01 * clean
    good = estimate_noise(_segmented(Q, clean, sd, 1.0))
    assert good.used == "file" and good.ratio == pytest.approx(1.0, abs=0.15)
    np.testing.assert_allclose(np.median(good.sigma / sd), 1.0, atol=0.1)
    inflated = estimate_noise(_segmented(Q, clean, sd, 6.0))
    assert inflated.used == "estimate" and inflated.ratio == pytest.approx(6.0, rel=0.15)
    np.testing.assert_allclose(inflated.used_sigma, inflated.sigma)
    assert f"{inflated.ratio:.3g} x" in inflated.note and "use the estimate" in inflated.note


def test_stitching_keeps_each_detectors_noise():
    qa, qb = np.linspace(0.02, 0.3, 300), np.linspace(0.25, 0.8, 300)
    rng = np.random.default_rng(3)
    a = SaxsData(qa, 100 + 0.5 * rng.normal(size=qa.size), np.full(qa.size, 0.5), "a")
    b = SaxsData(qb, 50 + 2.0 * rng.normal(size=qb.size), np.full(qb.size, 2.0), "b")  # 2x the scale, 4x noise
    st = stitch_saxs([a, b])
    ne = estimate_noise(st)
    (_, _, ra, _), (_, _, rb, _) = ne.segment_ratios
    assert ra == pytest.approx(1.0, abs=0.2) and rb == pytest.approx(1.0, abs=0.2)
    # the scaled detector keeps its own (scaled) noise: 2.0 x factor ~ 2 x 2 / 1
    hi = st.q > 0.3
    assert np.median(ne.sigma[hi]) == pytest.approx(2.0 * st.scale_factors[1], rel=0.2)
    assert np.median(ne.sigma[st.q < 0.2]) == pytest.approx(0.5, rel=0.2)


def test_residual_statistics_known_answers():
    assert durbin_watson([1, -1, 1, -1]) == pytest.approx(12 / 4)
    assert durbin_watson(np.ones(10)) == 0.0
    z, p = runs_test(np.r_[np.ones(50), -np.ones(50)])  # 2 runs: far too few
    assert z < -9 and p < 1e-15
    z, p = runs_test(np.random.default_rng(0).normal(size=2000))
    assert abs(z) < 3 and p > 0.003


# ----------------------------------------------------------------------------- evidence
def _cluster(symbols, d, seed, spread=0.05):
    """A compact cluster on a jittered cubic lattice of spacing d (angstrom)."""
    rng = np.random.default_rng(seed)
    n = len(symbols)
    grid = np.array([(i, j, k) for i in range(3) for j in range(3) for k in range(3)], float)[:n] * d
    return symbols, grid + rng.normal(scale=spread, size=grid.shape)


def _trace(symbols, d, seed):
    s, p = _cluster(symbols, d, seed)
    return debye_intensity(p, s, Q)


@pytest.fixture(scope="module")
def right_and_wrong():
    """PbI-like clusters (the truth) and NaCl-like clusters (a wrong system)."""
    right = [("PbI2", _trace(["Pb", "I", "I"], 3.2, 1)), ("Pb4I4", _trace(["Pb", "I"] * 4, 3.2, 2)),
             ("Pb9I18", _trace(["Pb", "I", "I"] * 9, 3.2, 3)), ("I", form_factor("I", Q) ** 2)]
    wrong = [("NaCl", _trace(["Na", "Cl"], 2.6, 4)), ("Na4Cl4", _trace(["Na", "Cl"] * 4, 2.6, 5)),
             ("Na13Cl14", _trace(["Na", "Cl"] * 13 + ["Cl"], 2.6, 6)), ("Cl", form_factor("Cl", Q) ** 2)]
    w_true = np.array([0.4, 0.3, 0.1, 0.2])
    clean = 2e-4 * (w_true @ np.array([c for _, c in right])) + 0.5 + 0.3 * Q + 0.8 * Q**2
    sd = 3e-4 * clean
    y = clean + np.random.default_rng(7).normal(size=Q.size) * sd
    data = SaxsData(Q.copy(), y, 6.0 * sd, "synthetic", segments=((float(Q[0]), float(Q[-1])),))  # sigma 6x too large
    def comps(lst):
        return [(lab, Q, c) for lab, c in lst]

    return data, comps(right), comps(wrong), w_true


def test_evidence_tells_the_right_system_from_a_wrong_one(right_and_wrong):
    data, right, wrong, w = right_and_wrong
    ev_r = saxs_evidence(data, right, w, background_degree=2)
    ev_w = saxs_evidence(data, wrong, w, background_degree=2)
    assert ev_r.noise.used == "estimate" and ev_r.noise.ratio == pytest.approx(6.0, rel=0.2)
    assert ev_r.evidence["supported"], ev_r.evidence["reason"]
    assert not ev_w.evidence["supported"]
    assert ev_r.models["combined"].stats["bic"] < ev_w.models["combined"].stats["bic"] - 100
    assert ev_r.evidence["delta_bic_vs_generic"] > ev_w.evidence["delta_bic_vs_generic"]
    assert ev_r.models["combined"].stats["chi2_red"] == pytest.approx(1.0, abs=0.2)
    assert ev_r.models["combined"].stats["durbin_watson"] > 1.7 > ev_w.models["combined"].stats["durbin_watson"]
    # with the file's (6x inflated) sigma the right model's chi2_red is ~1/36: chi2_red < 1 means nothing
    assert ev_r.models["combined"].stats["chi2_red_file_sigma"] < 0.05
    # and a Pearson r above 0.99 does not make a model right
    assert ev_w.models["combined"].stats["pearson_r"] > 0.99
    d = json.loads(json.dumps(ev_r.to_dict()))
    assert set(d["models"]) >= {"background", "generic", "observed", "combined", "reweighted", "pearson"}
    for m in d["models"].values():
        assert {"chi2_red", "chi2_red_file_sigma", "aic", "bic", "n_params", "durbin_watson", "pearson_r"} <= set(m)
    assert {"q_min", "q_mid", "q_max"} <= set(d["background_share"])
    assert d["noise"]["used"] == "estimate" and "file_sigma_over_estimate" in d["noise"]
    assert set(d["reweighting"]["populations"]["PbI2"]) == {"md", "reweighted"}
    assert ev_r.verdict.startswith("The data support")


def test_generic_form_factor_wins_when_the_clusters_add_nothing():
    clean = 50.0 * sphere_form_factor(Q, 4.0) + 1.0
    sd = 1e-3 * clean
    y = clean + np.random.default_rng(2).normal(size=Q.size) * sd
    data = SaxsData(Q.copy(), y, sd, "sphere")
    comps = [("NaCl", Q, _trace(["Na", "Cl"], 2.6, 4)), ("Na4Cl4", Q, _trace(["Na", "Cl"] * 4, 2.6, 6))]
    ev = saxs_evidence(data, comps, [1.0, 1.0])
    assert ev.models["generic"].params["kind"] == "sphere"
    assert ev.models["generic"].params["size_angstrom"] == pytest.approx(4.0, rel=0.01)
    assert not ev.evidence["supported"] and "generic sphere" in ev.evidence["reason"]
    assert ev.evidence["delta_bic_vs_generic"] < 0


def test_negative_background_is_warned(right_and_wrong):
    data, right, _, w = right_and_wrong
    shifted = SaxsData(data.q, data.intensity - 5.0 * data.intensity.min(), data.sigma, "shifted")
    ev = saxs_evidence(shifted, right, w, background_degree=2)
    assert any("negative" in x for x in ev.warnings)
    assert ev.background_share["negative_background"]
    # the same data without the shift support the model; the overshooting mixture does not
    assert saxs_evidence(data, right, w, background_degree=2).evidence["supported"]
    assert not ev.evidence["supported"] and "negative" in ev.evidence["reason"]
    # reweighted populations from a fit that needs a negative background are said to be unreliable
    assert (ev.models["reweighted"].background < 0).all()
    assert any("negative background at 100 %" in n for n in ev.reweighting.notes)
    assert not any("negative background" in n for n in saxs_evidence(data, right, w, background_degree=2).reweighting.notes)


# ----------------------------------------------------------------------------- reweighting
@pytest.fixture(scope="module")
def six_components():
    rng = np.random.default_rng(11)
    X = []
    for k in range(6):
        n = 2 + 3 * k
        X.append(debye_intensity(rng.normal(scale=1.0 + 0.3 * n, size=(n, 3)), ["Pb"] + ["I"] * (n - 1), Q))
    return np.array(X)


def _tv(a, b):
    return 0.5 * float(np.abs(np.asarray(a) - np.asarray(b)).sum())


def test_reweighting_recovers_perturbed_populations(six_components):
    X = six_components
    w0 = np.array([0.3, 0.25, 0.2, 0.12, 0.08, 0.05])
    w_true = w0 * np.array([0.3, 1.0, 2.5, 1.0, 0.4, 3.0])
    w_true /= w_true.sum()
    B = np.column_stack([np.ones_like(Q), Q, Q**2])
    clean = 1e-4 * w_true @ X + B @ [0.05, 0.01, 0.02]
    sd = 2e-3 * clean
    y = clean + np.random.default_rng(5).normal(size=Q.size) * sd
    r = maxent_reweight(X, y, sd, w0, B, labels=[f"c{k}" for k in range(6)])
    assert _tv(r.weights, w_true) < 0.75 * _tv(w0, w_true)
    assert r.chi2 < 0.05 * r.chi2_prior and 0 < r.effective_sample_size < 1
    assert r.weights.sum() == pytest.approx(1.0) and np.all(r.weights >= 0)
    # the scan runs from w ~ w0 (large theta) to the best fit; chi2 never rises as theta falls
    chis = [s["chi2"] for s in r.scan]
    assert np.all(np.diff(chis) <= 1e-6 * chis[0]) and r.scan[0]["effective_sample_size"] > 0.95
    assert r.table()[0]["label"] == "c0"


def test_reweighting_leaves_md_populations_that_fit(six_components):
    X = six_components
    w0 = np.array([0.3, 0.25, 0.2, 0.12, 0.08, 0.05])
    clean = 1e-4 * w0 @ X + 0.05
    sd = 2e-3 * clean
    y = clean + np.random.default_rng(6).normal(size=Q.size) * sd
    r = maxent_reweight(X, y, sd, w0, np.ones((Q.size, 1)))
    assert _tv(r.weights, w0) < 0.01 and r.effective_sample_size > 0.99


def test_pearson_weight_fit_recovers_a_mixture(six_components):
    X = six_components
    w = np.array([0.5, 0.0, 0.0, 0.3, 0.0, 0.2])
    y = 3e-4 * w @ X + 0.1
    wp, r = pearson_weights(X, y, np.full(6, 1 / 6))
    assert r > 0.999999 and _tv(wp, w) < 0.02


def test_reweighting_rejects_bad_priors(six_components):
    with pytest.raises(ValueError, match="w0 must be"):
        maxent_reweight(six_components, np.ones(Q.size), np.ones(Q.size), [1, -1, 0, 0, 0, 0])


def test_evidence_and_reweighting_figures(right_and_wrong, tmp_path):
    from clusterdynamicsml.plot.saxs import plot_saxs_models, plot_saxs_reweighting

    data, right, _, w = right_and_wrong
    ev = saxs_evidence(data, right, w, background_degree=2)
    paths = plot_saxs_models(ev, tmp_path / "ev")
    assert [(tmp_path / p).suffix for p in paths] == [".png", ".svg"]
    svg = (tmp_path / "ev.svg").read_text()
    for name in ("background", "generic", "combined", "reweighted", "pearson"):
        assert name in svg
    assert "residuals" in svg and "sigma" in svg
    paths = plot_saxs_reweighting(ev.reweighting, tmp_path / "rw")
    assert all((tmp_path / p).stat().st_size > 1000 for p in paths)
    assert "L-curve" in (tmp_path / "rw.svg").read_text()


def test_predicted_candidates_enter_with_their_predicted_clusters_per_frame():
    pos = np.array([[0, 0, 0], [2.6, 0, 0], [0, 2.6, 0.0]])
    st = SimpleNamespace(symbols=["Na", "Cl", "Cl"], positions=pos)
    cands = [SimpleNamespace(node_count=1, rank=1, label="NaCl2", predicted={"mean_count_per_frame": 0.3}, weight=0.02),
             SimpleNamespace(node_count=1, rank=2, label="NaCl3", predicted={"mean_count_per_frame": 0.0}, weight=0.01)]
    built = [{"candidate": cands[0], "structure": st, "path": "a.xyz"},
             {"candidate": cands[1], "structure": st, "path": "b.xyz"}]
    dyn = SimpleNamespace(lifetime_by_label=[_lifetime("Na", 1.0, 0.5)])
    lib = _Library({"Na": [(["Na"], np.zeros((1, 3)))]})
    cs = compute_components(Q, dyn, lib, node_elements=["Na"], prediction=SimpleNamespace(candidates=cands),
                            built_structures=built)
    assert [c.label for c in cs.components] == ["Na", "NaCl2"] and cs.sources == ["observed", "predicted"]
    np.testing.assert_allclose(cs.weights, [1.0, 0.3])
    assert [r["label"] for r in cs.rows if not r["in_mixture"]] == ["NaCl3"] and len(cs.unmixed) == 1
    assert any("zero predicted population" in w and "NaCl3" in w for w in cs.warnings)
    ref = compute_components(Q, dyn, lib, node_elements=["Na"], prediction=SimpleNamespace(candidates=cands),
                             built_structures=built, weights="reference")
    np.testing.assert_allclose(ref.weights, [1.0 * 0.5, 0.02, 0.01])


def test_l_curve_knee_is_the_elbow():
    from clusterdynamicsml.saxs.reweight import _knee

    assert _knee([0, 0.1, 0.2, 0.5, 1.0], [1000, 100, 20, 15, 10]) == 2
    assert _knee([0, 0.05, 0.1, 0.6, 1.0], [1e4, 1e3, 30, 20, 10]) == 2
    assert _knee([0, 0.3, 0.6, 0.62, 1.0], [1e4, 3e3, 1e3, 12, 10]) == 3


def test_reweighting_leaves_a_prior_whose_fitted_scale_is_zero():
    """An MD mixture that anti-correlates with the data once the background is profiled out has
    a fitted scale of 0, where chi2 does not depend on the weights (zero gradient). Reweighting
    must still move to the component the data want, not report 'no significant gain' at w0.
    Found by the example run: its observed+predicted mixture fits with scale 0."""
    rng = np.random.default_rng(3)
    q = np.linspace(0.02, 0.8, 300)
    good = np.exp(-(q * 6.0) ** 2 / 3.0)           # Guinier, Rg 6 A
    bad = 1.5 - np.exp(-(q * 3.0) ** 2 / 3.0)     # with the constant profiled out: anti-correlated
    sigma = np.full(q.size, 0.01)
    y = 0.7 * good + 0.3 + rng.normal(0.0, 0.01, q.size)
    X = np.array([good, bad])
    w0 = np.array([0.05, 0.95])
    bg = np.ones((q.size, 1))
    rw = maxent_reweight(X, y, sigma, w0, bg, labels=["good", "bad"])
    assert rw.chi2 < 0.01 * rw.chi2_prior
    assert rw.weights[0] > 0.9
    assert rw.scale > 0
    assert any("scale 0" in n for n in rw.notes)
    w, r = pearson_weights(X, y, w0, None)
    assert w[0] > 0.9 and r > 0.99
