"""Size-resolved extrapolation (issue 12): population laws, composition laws, size bounds,
dt floor, bootstrap coverage, the validation JSON and command, and the real-data validation."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from clusterdynamicsml.library.read import AtomTypes
from clusterdynamicsml.predict.composition import CompositionModel, discretised_normal, total_variation
from clusterdynamicsml.predict.extrapolate import fit_size_models, predict_sizes
from clusterdynamicsml.predict.observed import LabelObservation, ObservedClusters
from clusterdynamicsml.predict.population import FISHER_TAU, fit_population, poisson_upper
from clusterdynamicsml.predict.scaling import DynamicsLaws, ShapeLaws, chain_rg, compact_rg
from clusterdynamicsml.predict.uncertainty import bootstrap_sizes

TYPES = AtomTypes.from_rules({"node": ["Na"], "linker": ["Cl"], "cutoffs": {("Na", "Cl"): 2.6}})
EXAMPLE = Path(__file__).resolve().parents[1] / "python" / "clusterdynamicsml" / "example" / "example.toml"


# ---------------------------------------------------------------------------------------------
# population


def test_cnt_law_recovered_exactly():
    a, b, s = 4.0, -1.3, 0.9  # slope b + 2/3 s n^(-1/3) < 0 for n >= 1
    n = np.arange(1, 8)
    c = np.exp(a + b * n + s * n ** (2 / 3))
    fit = fit_population("cnt", n, c, 1000 * c)
    assert fit.model == "cnt" and not fit.flagged and not fit.warnings
    assert fit.coef["a"] == pytest.approx(a, abs=1e-9) and fit.coef["b"] == pytest.approx(b, abs=1e-9) and fit.coef["s"] == pytest.approx(s, abs=1e-9)
    assert fit.free_energy_terms()["bulk_kT_per_node"] == pytest.approx(1.3)
    assert fit.count_per_frame(12) == pytest.approx(math.exp(a + 12 * b + s * 12 ** (2 / 3)), rel=1e-9)


def test_fisher_law_recovered_exactly_and_weights_matter():
    a, b, s = 5.2, -0.6, 0.95
    n = np.arange(1, 7)
    c = np.exp(a + b * n + s * n ** (2 / 3) - FISHER_TAU * np.log(n))
    fit = fit_population("fisher", n, c, 500 * c)
    assert fit.model == "fisher"
    assert [fit.coef[k] for k in "abs"] == pytest.approx([a, b, s], abs=1e-9)
    assert fit.count_per_frame(12) == pytest.approx(math.exp(a + 12 * b + s * 12 ** (2 / 3) - FISHER_TAU * math.log(12)), rel=1e-9)
    # Poisson weights: a wrong point with one observation barely moves the fit, with many it does
    noisy = c.copy()
    noisy[-1] *= 3.0
    light = fit_population("fisher", n, noisy, np.r_[500 * c[:-1], 1.0])
    heavy = fit_population("fisher", n, noisy, np.r_[500 * c[:-1], 1e6])
    assert abs(light.count_per_frame(10) / fit.count_per_frame(10) - 1) < 0.02
    assert abs(heavy.count_per_frame(10) / fit.count_per_frame(10) - 1) > 0.5


def test_population_guards():
    fit = fit_population("cnt", [1, 2], [10.0, 3.0], [1000, 300])
    assert fit.model == "geometric" and "needs >= 3" in fit.warnings[0]
    assert fit.coef["b"] == pytest.approx(math.log(0.3))
    # a 3-term fit that turns upward (b > 0) is flagged and replaced by the geometric tail
    n = np.arange(1, 7)
    c = np.exp(6.0 + 1.3 * n - 4.8 * n ** (2 / 3))
    up = fit_population("cnt", n, c, 1000 * c, max_target=20)
    assert up.model == "geometric" and up.requested == "cnt" and "turns upward" in up.warnings[0]
    assert np.all(up.slope(np.arange(6, 21)) < 0)
    # a population that rises with size is flagged, never silently extrapolated
    rising = fit_population("geometric", [1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0], [100, 200, 300, 400])
    assert rising.flagged and "cannot be extrapolated reliably" in rising.warnings[-1]
    with pytest.raises(ValueError, match="at least 2 observed node counts"):
        fit_population("fisher", [3], [1.0], [10])
    with pytest.raises(ValueError, match="positive integers"):
        fit_population("fisher", [1, 2.5, 3], [1.0, 0.5, 0.2], [10, 5, 2])
    with pytest.raises(ValueError, match="population model must be"):
        fit_population("ridge", [1, 2, 3], [1.0, 0.5, 0.2], [10, 5, 2])


def _cliff(frames=20):
    """Fisher law at n <= 4 (many clusters), then a tail 20x below it at n = 5, 6 (a few)."""
    a, b, s = 5.2, -0.6, 0.95
    law = lambda n: np.exp(a + b * n + s * n ** (2 / 3) - FISHER_TAU * np.log(n))  # noqa: E731
    n = np.arange(1, 7)
    c = law(n)
    c[4:] /= 20.0
    N = np.round(c * frames)
    return n, N / frames, N, law


def test_population_anchored_to_a_cliff_in_the_observed_tail():
    n, c, N, law = _cliff()
    assert list(N[4:]) == [4.0, 2.0]
    fit = fit_population("fisher", n, c, N, max_target=12)
    pred = fit.count_per_frame(np.arange(7, 13))
    # not above the tail, non-increasing beyond it, nonzero
    assert pred[0] <= c[-1] and np.all(np.diff(pred) <= 0) and np.all(pred > 0)
    # while the law fitted on the populous small sizes passes above the few tail clusters
    assert fit.law_log_count(7) > math.log(c[-1] * poisson_upper(N[-1]) / N[-1])
    # the law's shape with the tail's level: A = sum_T N / sum_T F c_law over T = {5, 6}
    A = (N[4] + N[5]) / (20 * float(np.exp(fit.law_log_count(5)) + np.exp(fit.law_log_count(6))))
    assert fit.anchor == pytest.approx(A, rel=1e-12) and fit.anchor < 0.2
    assert pred == pytest.approx(A * np.exp(fit.law_log_count(np.arange(7, 13))), rel=1e-12)
    assert fit.count_per_frame(4) == pytest.approx(float(np.exp(fit.law_log_count(4))))  # observed range: the law
    info = fit.to_dict()
    assert info["anchor"] == fit.anchor and info["anchor_info"]["anchored"] and info["anchor_info"]["tail_node_counts"] == [5, 6]
    assert any("anchored to the observed tail" in w and f"factor {fit.anchor:.3g}" in w for w in fit.warnings)
    # every bootstrap replicate follows the rule: the interval stays at the tail's level
    labels = [LabelObservation(f"Na{k}Cl{k}", int(k), {"Na": int(k), "Cl": int(k)}, float(ck), int(Nk)) for k, ck, Nk in zip(n, c, N)]
    boot = bootstrap_sizes(ObservedClusters(labels, 10.0, n_frames=20), TYPES, "fisher", [7, 8], 10.0, n_bootstrap=60, seed=1,
                           model_error={"count_per_frame": 0.0, "rg": 0.0})
    assert boot["sizes"][7]["count_per_frame"]["p95"] <= c[-1] * poisson_upper(N[-1]) / N[-1]
    assert boot["sizes"][8]["count_per_frame"]["p50"] <= boot["sizes"][7]["count_per_frame"]["p50"]


def test_population_that_follows_the_law_is_not_anchored():
    a, b, s = 5.2, -0.6, 0.95
    n = np.arange(1, 7)
    c = np.exp(a + b * n + s * n ** (2 / 3) - FISHER_TAU * np.log(n))
    for N in (500 * c, np.maximum(np.round(50 * c), 1)):
        fit = fit_population("fisher", n, c, N, max_target=12)
        assert fit.anchor == 1.0 and not fit.anchor_info["anchored"] and not fit.warnings
        assert fit.count_per_frame(np.arange(7, 13)) == pytest.approx(np.exp(fit.law_log_count(np.arange(7, 13))), rel=0)
    assert poisson_upper(0) == pytest.approx(-math.log(0.05)) and poisson_upper(5) == pytest.approx(10.513, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# composition


def _observed_from_law(mu, sd, sizes, total, frames=1000, count=lambda n: 1.0):
    labels = []
    for n in sizes:
        p = discretised_normal(mu(n), sd(n))
        for m, pm in enumerate(p):
            if pm < 1e-6:
                continue
            counts = {"Na": n, "Cl": m} if m else {"Na": n}
            labels.append(LabelObservation(TYPES.format_label(counts), n, counts, count(n) * pm, int(round(total * pm))))
    return ObservedClusters(labels, 10.0, n_frames=frames)


def test_composition_law_recovered():
    mu = lambda n: -0.3 + 0.97 * n  # noqa: E731
    sd = lambda n: 0.5 * n**0.5  # noqa: E731
    obs = _observed_from_law(mu, sd, range(2, 8), total=10000)
    model = CompositionModel.fit(obs, TYPES)
    (law,) = model.laws
    assert law.element == "Cl" and law.in_label
    assert law.alpha == pytest.approx(-0.3, abs=0.01) and law.beta == pytest.approx(0.97, abs=0.002)
    assert law.s == pytest.approx(0.5, rel=0.02) and law.p == pytest.approx(0.5, abs=0.02)
    for n in (12, 20):  # the extrapolated distribution is the true one
        truth = discretised_normal(mu(n), sd(n))
        want = {TYPES.format_label({"Na": n, "Cl": m} if m else {"Na": n}): float(v) for m, v in enumerate(truth) if v >= 1e-4}
        got = model.shares(n)
        assert sum(got.values()) == pytest.approx(1.0)
        assert total_variation(got, want) < 0.01
        assert next(iter(got)) == max(want, key=want.get)  # most probable first, package label


def test_discretised_normal_and_total_variation():
    p = discretised_normal(2.0, 1e-3)
    assert p.argmax() == 2 and p.sum() == pytest.approx(1.0) and p[2] == pytest.approx(1.0)
    q = discretised_normal(-5.0, 0.5)  # all mass below 0 -> truncated to m = 0
    assert q[0] == pytest.approx(1.0)
    assert total_variation({"A": 1.0}, {"B": 1.0}) == 1.0
    assert total_variation({"A": 0.5, "B": 0.5}, {"A": 0.25, "B": 0.75}) == pytest.approx(0.25)


# ---------------------------------------------------------------------------------------------
# sizes, shapes and lifetimes


def test_shape_bounds_and_half_box():
    d = 2.5
    labs = [LabelObservation(f"Na{k}", k, {"Na": k}, 1.0, 100, atom_count=float(k), rg=0.5 * d * k**0.9, max_radius=0.8 * d * k**0.9, semiaxes=(0.4 * k**1.5, 0.2 * k, 0.1 * k), files=10)
            for k in range(2, 7)]
    obs = ObservedClusters(labs, 10.0)
    free = ShapeLaws.fit(obs, None).predict(30.0)
    assert free["rg"] == pytest.approx(0.5 * d * 30**0.9, rel=1e-9) and not free["clipped"]
    bounded = ShapeLaws.fit(obs, d, box_lengths=[40.0, 40.0, 40.0]).predict(30.0)
    assert "rg" in bounded["clipped"] and bounded["rg"] == pytest.approx(chain_rg(30, d))
    assert compact_rg(30, d) <= bounded["rg"] <= chain_rg(30, d)
    assert bounded["semiaxis_a"] ** 2 + bounded["semiaxis_b"] ** 2 + bounded["semiaxis_c"] ** 2 == pytest.approx(bounded["rg"] ** 2)
    assert bounded["max_radius"] > 20.0 and bounded["exceeds_half_box"] is True
    assert ShapeLaws.fit(obs, d, box_lengths=[400.0] * 3).predict(30.0)["exceeds_half_box"] is False


def test_shape_law_fits_the_scaling_regime_with_a_bounded_exponent():
    """P1: small chain-like clusters (nu = 0.8) must not set the large-n law (nu = 0.4, the
    well-observed larger sizes); an exponent beyond the straight-chain limit is bounded to 1."""
    labs = []
    for k in range(1, 7):
        atoms = 2.0 * k
        rg = 0.6 * atoms**0.8 if k <= 3 else 0.6 * 6.0**0.8 * (atoms / 6.0) ** 0.4
        labs.append(LabelObservation(f"Na{k}Cl{k}", k, {"Na": k, "Cl": k}, 2.0 ** -k, int(4000 * 2.0 ** -k), atom_count=atoms, rg=rg,
                                     max_radius=1.6 * rg, semiaxes=(rg * 0.8, rg * 0.5, rg * 0.33), files=100))
    law = ShapeLaws.fit(ObservedClusters(labs, 10.0), None)
    assert law.fit_sizes == [4, 5, 6] and law.laws["rg"][1] == pytest.approx(0.4, abs=1e-9)
    want = 0.6 * 6.0**0.8 * (24.0 / 6.0) ** 0.4  # n = 12 on the large-n law
    assert law.predict(24.0)["rg"] == pytest.approx(want, rel=1e-9)
    steep = [LabelObservation(o.label, o.node_count, o.counts, o.count_per_frame, o.observations, atom_count=o.atom_count, rg=0.3 * o.atom_count**1.4,
                              max_radius=0.5 * o.atom_count**1.4, semiaxes=o.semiaxes, files=100) for o in labs]
    assert ShapeLaws.fit(ObservedClusters(steep, 10.0), None).laws["rg"][1] == 1.0


def test_validation_reports_rg_interval_coverage():
    from clusterdynamicsml.predict.validate import summarize

    base = {"count_ratio": 1.0, "share_total_variation": 0.1, "share_tv_sampling": 0.05, "count_in_interval_90": True}
    rows = [dict(base, rg_relative_error=0.02, rg_in_interval_90=True), dict(base, rg_relative_error=-0.2, rg_in_interval_90=False),
            dict(base, rg_relative_error=None, rg_in_interval_90=None)]
    s = summarize(rows)
    assert (s["rg_coverage_90"], s["rg_intervals"]) == (1, 2) and s["max_rg_relative_error"] == pytest.approx(0.2)


def test_lifetime_power_law_and_dt_floor():
    dt = 13.0
    labs = [LabelObservation(f"Na{k}", k, {"Na": k}, 1.0 / k, 100, lifetime_fs=200.0 * k**-1.5, completed_lifetimes=50, dissociation_rate_per_ps=3.0 / k / (200.0 * k**-1.5)) for k in range(1, 7)]
    laws = DynamicsLaws.fit(ObservedClusters(labs, dt), dt)
    assert laws.lifetime_law[1] == pytest.approx(-1.5) and laws.floor_sizes == [6]  # 200 * 6^-1.5 = 13.6 <= 1.1 dt = 14.3
    assert laws.lifetime_at(4) == (pytest.approx(25.0), False)
    assert laws.lifetime_at(12) == (dt, True)  # below the floor: flagged, set to dt
    assert laws.rate_constant["dissociation_rate_per_ps"] == pytest.approx(3.0)


# ---------------------------------------------------------------------------------------------
# bootstrap coverage on synthetic trajectories that follow the law exactly


def _synthetic_observed(rng, frames=300):
    a, b, s = 2.5, -0.55, 0.9
    sizes = np.arange(1, 7)
    law = lambda n: np.exp(a + b * n + s * n ** (2 / 3) - FISHER_TAU * np.log(n))  # noqa: E731
    fc = rng.poisson(law(sizes)[:, None], size=(sizes.size, frames)).astype(float)
    labels = [LabelObservation(f"Na{n}Cl{n}", int(n), {"Na": int(n), "Cl": int(n)}, float(fc[i].mean()), int(fc[i].sum())) for i, n in enumerate(sizes)]
    return ObservedClusters(labels, 10.0, frame_counts=fc, n_frames=frames), law


@pytest.mark.slow
def test_bootstrap_interval_coverage_is_near_nominal():
    """Synthetic trajectories that follow the law exactly (Poisson counts per frame): the
    time-block bootstrap alone covers the true count at 90 % nominal; adding the resampling
    of node counts (the default) and then the model-form term (the default, for real data)
    are each conservative."""
    rng = np.random.default_rng(11)
    trials = 40
    hits = {mode: {8: 0, 10: 0} for mode in ("blocks", "blocks+sizes", "default")}
    no_model_error = {"count_per_frame": 0.0, "rg": 0.0}
    for k in range(trials):
        obs, law = _synthetic_observed(rng)
        for mode, h in hits.items():
            kw = {} if mode == "default" else {"resampling": mode, "model_error": no_model_error}
            boot = bootstrap_sizes(obs, TYPES, "fisher", [8, 10], 10.0, n_bootstrap=60, seed=k, **kw)
            for n in h:
                s = boot["sizes"][n]["count_per_frame"]
                h[n] += s["p05"] <= law(n) <= s["p95"]
    cover = {mode: {n: v / trials for n, v in h.items()} for mode, h in hits.items()}
    # nominal 0.90; 40 trials give a binomial standard error of 0.05
    assert all(0.78 <= c <= 0.98 for c in cover["blocks"].values()), cover
    assert all(cover["blocks+sizes"][n] >= cover["blocks"][n] for n in (8, 10)), cover
    assert all(cover["default"][n] >= cover["blocks+sizes"][n] for n in (8, 10)), cover
    with pytest.raises(ValueError, match="resampling must be"):
        bootstrap_sizes(obs, TYPES, "fisher", [8], 10.0, n_bootstrap=2, resampling="frames")


def test_predicted_sizes_fall_and_shares_sum_to_one():
    obs, _ = _synthetic_observed(np.random.default_rng(3))
    models = fit_size_models(obs, TYPES, "fisher", 12, 10.0)
    preds = predict_sizes(models, range(7, 13))
    counts = [p["count_per_frame"] for p in preds]
    assert all(x > y > 0 for x, y in zip(counts, counts[1:]))
    for p in preds:
        assert sum(p["shares"].values()) == pytest.approx(1.0)
        assert max(p["shares"], key=p["shares"].get) == f"Na{p['node_count']}Cl{p['node_count']}"


# ---------------------------------------------------------------------------------------------
# validation command and JSON

REQUIRED_SIZE_KEYS = {"node_count", "observed_count_per_frame", "predicted_count_per_frame", "predicted_count_p05", "predicted_count_p95",
                      "observed_shares", "predicted_shares", "share_total_variation", "observed_rg", "predicted_rg"}


@pytest.mark.slow
def test_validate_command_writes_the_issue_json(tmp_path):
    from clusterdynamicsml.pipeline.cli import main

    out = tmp_path / "val.json"
    assert main(["-q", "validate", str(EXAMPLE), "--train-max-nodes", "2", "--targets", "3-4", "--bootstrap", "20", "--json", str(out)]) == 0
    d = json.loads(out.read_text())
    assert d["train_max_node_count"] == 2 and d["population_model"] == "fisher"
    assert [e["node_count"] for e in d["sizes"]] == [3, 4]
    for e in d["sizes"]:
        assert set(e) >= REQUIRED_SIZE_KEYS
        assert sum(e["observed_shares"].values()) == pytest.approx(1.0) and sum(e["predicted_shares"].values()) == pytest.approx(1.0)
        assert e["predicted_count_p05"] <= e["predicted_count_per_frame"] <= e["predicted_count_p95"]
    assert set(d["comparison"]) == {"fisher", "cnt", "geometric", "reference"}
    assert main(["-q", "validate", str(EXAMPLE), "--train-max-nodes", "2", "--targets", "x-y"]) == 2


@pytest.mark.shared_data
@pytest.mark.slow
def test_nacl_1450K_extrapolation_meets_the_issue_thresholds(shared_data, tmp_path):
    """Molten NaCl, 1000 ions, 1450 K, Na-Cl <= 2.6 A: train on n <= 6, predict 7-12."""
    from clusterdynamicsml.clusters.extract import ClusterRules
    from clusterdynamicsml.dynamics.analyze import analyze_dynamics
    from clusterdynamicsml.io.frames import read_frames
    from clusterdynamicsml.library.write import write_library
    from clusterdynamicsml.predict.validate import validate_extrapolation_data

    path = shared_data / "nacl_melt_lammps_1450K" / "nacl_melt_1000_1450K.extxyz"
    rules = ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6})
    dyn = analyze_dynamics(path, rules, timestep_fs=40.0)
    write_library(read_frames(path), rules, tmp_path / "lib", max_files_per_label=50)
    rep = validate_extrapolation_data(tmp_path / "lib", dyn, rules, 6, list(range(7, 13)), n_bootstrap=100, box_lengths=[31.85] * 3, compare=("fisher", "reference"))
    s = rep.summary
    print(rep.table())
    assert s["sizes"] == 6 and s["max_count_factor"] <= 1.5
    assert s["mean_share_total_variation"] <= 0.25
    assert s["max_rg_relative_error"] <= 0.25
    assert s["count_coverage_90"] >= 4
    assert s["rg_coverage_90"] >= 4  # with the model-form term (sampling alone: 0 of 6)
    assert rep.comparison["reference"]["summary"]["sizes_within_factor_2"] < 6  # the reference ridge does not extrapolate



def _chain_library(tmp_path):
    """A Pb/I chain library of node counts 1-5 (3 files each) and its dynamics rows, populations
    falling with size."""
    from test_predict import lifetime_row, write_chain

    rng = np.random.default_rng(5)
    lib, table = tmp_path / "lib", []
    rows = [(3.0, 1.0, 200.0), (1.0, 0.6, 80.0), (0.4, 0.3, 50.0), (0.17, 0.15, 35.0), (0.08, 0.08, 28.0)]
    for n, (count, occ, life) in zip(range(1, 6), rows):
        label = "Pb" if n == 1 else f"Pb{n}" + ("I" if n == 2 else f"I{n - 1}")
        for k in range(3):
            write_chain(lib / label / f"frame_{k:04d}_AAA.xyz", n, rng)
        table.append(lifetime_row(label, 2 * n - 1, count, occ, life))
    return lib, table

@pytest.mark.slow
def test_predict_clusters_default_model_records_choice_validation_and_tables(tmp_path):
    from clusterdynamicsml.predict.core import DEFAULT_POPULATION_MODEL, PredictionResult, predict_clusters
    from test_predict import RULES

    lib, table = _chain_library(tmp_path)
    res = predict_clusters(lib, table, RULES, [6, 7], timestep_fs=10.0, n_bootstrap=20, debye_waller=False, box_lengths=[30.0] * 3)
    assert res.population_model == DEFAULT_POPULATION_MODEL == "fisher"
    assert "held-out validation" in res.population_choice["reason"] and "bulk_kT_per_node" in res.population_choice["free_energy"]
    counts = [p["count_per_frame"] for p in res.size_predictions]
    assert counts[0] > counts[1] > 0 and counts[0] < 0.08  # falls below the last observed size
    for n in (6, 7):
        cs = [c for c in res.candidates if c.node_count == n]
        assert cs[0].label == f"Pb{n}I{n - 1}" and cs[0].rank == 1  # the observed chain stoichiometry
        assert sum(c.share for c in cs) <= 1.0 + 1e-12
        assert all(c.weight > 0 and c.uncertainty["share"]["p05"] <= c.share <= c.uncertainty["share"]["p95"] for c in cs)
    v = res.validation
    # n = 5 has 8 observed clusters (< 10): n_ref = 4, K = 4 - max(2, ceil(4/3)) = 2
    assert v["train_max_node_count"] == 2 and v["target_node_counts"] == [3, 4]
    assert set(v["comparison"]) == {"fisher", "cnt", "geometric", "reference"}
    paths = res.save(tmp_path / "out", "run")
    assert "sizes" in paths and paths["sizes"].read_text().splitlines()[0].startswith("node_count,population_model,population_model_requested,count_per_frame")
    back = PredictionResult.load(paths["json"])
    assert back.population_model == "fisher" and back.size_predictions[0]["node_count"] == 6
    with pytest.raises(ValueError, match="population_model must be one of"):
        predict_clusters(lib, table, RULES, [6], timestep_fs=10.0, n_bootstrap=0, population_model="ridge")


def test_two_node_elements_keep_their_observed_fraction():
    types = AtomTypes.from_rules({"node": ["Na", "K"], "linker": ["Cl"], "cutoffs": {("Na", "Cl"): 2.6, ("K", "Cl"): 2.9}})
    labels = []
    for n in range(2, 6):
        k = n // 2
        counts = {"Na": n - k, "K": k, "Cl": n}
        labels.append(LabelObservation(types.format_label(counts), n, counts, 1.0 / n, 100))
    model = CompositionModel.fit(ObservedClusters(labels, 10.0), types)
    label, counts, p = model.distribution(9)[0]
    assert counts["Na"] + counts["K"] == 9 and abs(counts["Na"] - counts["K"]) == 1 and counts["Cl"] == 9
    assert label == types.format_label(counts) and any("several node elements" in n for n in model.notes)


def test_plot_size_extrapolation_writes_png_and_svg(tmp_path):
    from clusterdynamicsml.plot.predict import plot_size_extrapolation

    rows = lambda f: [{"node_count": n, "observed_count_per_frame": 2.0 ** -n, "predicted_count_per_frame": f * 2.0 ** -n,  # noqa: E731
                       "predicted_count_p05": 0.5 * f * 2.0 ** -n if f else 0.0, "predicted_count_p95": 2 * f * 2.0 ** -n if f else 0.0} for n in (4, 5)]
    v = {"train_max_node_count": 3, "settings": {"observed_count_per_frame": {"1": 0.5, "2": 0.25, "3": 0.125}},
         "comparison": {"fisher": {"sizes": rows(1.1)}, "reference": {"sizes": rows(0.0)}}}
    paths = plot_size_extrapolation(v, tmp_path / "sizes")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)


def test_fallback_names_the_law_used_and_why(tmp_path):
    """P6: after a fallback (fisher -> geometric with two observed sizes) the sizes table and
    population_choice name the geometric law and the fallback's reason, not fisher's."""
    from clusterdynamicsml.predict.core import predict_clusters
    from test_predict import RULES, lifetime_row, write_chain

    rng = np.random.default_rng(3)
    lib, table = tmp_path / "lib", []
    for n, (count, occ, life) in zip((1, 2), [(3.0, 1.0, 200.0), (1.0, 0.6, 80.0)]):
        label = "Pb" if n == 1 else "Pb2I"
        for k in range(3):
            write_chain(lib / label / f"frame_{k:04d}_AAA.xyz", n, rng)
        table.append(lifetime_row(label, 2 * n - 1, count, occ, life))
    res = predict_clusters(lib, table, RULES, [3, 4], timestep_fs=10.0, n_bootstrap=0, debye_waller=False, validate=False)
    choice = res.population_choice
    assert choice["model"] == "fisher" and choice["used"] == "geometric"
    assert "only 2 observed node counts" in choice["reason"] and "held-out validation" not in choice["reason"]
    assert "held-out validation" in choice["requested_reason"]  # why fisher was asked for stays on record
    rows = res.sizes_table()
    assert {r["population_model"] for r in rows} == {"geometric"}
    assert all(r["population_model_requested"] == "fisher" and "only 2 observed node counts" in r["population_model_reason"] for r in rows)
    header = res.save(tmp_path / "out", "run")["sizes"].read_text().splitlines()[1]
    assert header.split(",")[1] == "geometric"


def test_two_node_elements_warn_and_a_contradicting_validation_is_said(tmp_path, monkeypatch):
    """P5: with several node elements the one-composition-per-size approximation is a warning;
    when this run's own validation gives another model a clearly better worst count factor
    (melt2node: fisher 41x, cnt 2.84x) the reason and the warnings say so (the model is kept)."""
    from clusterdynamicsml.predict import validate as valmod
    from clusterdynamicsml.predict.core import predict_clusters
    from clusterdynamicsml.predict.sized import validation_verdict
    from test_predict import lifetime_row, write_chain

    comp = {"fisher": {"summary": {"max_count_factor": 41.0}}, "cnt": {"summary": {"max_count_factor": 2.84}},
            "geometric": {"summary": {"max_count_factor": 5.1}}, "reference": {"summary": {"max_count_factor": None, "sizes_predicted_zero": 6}}}
    val = {"train_max_node_count": 6, "target_node_counts": list(range(7, 13)), "comparison": comp}
    assert validation_verdict(val, "fisher")[1] == "cnt"
    assert validation_verdict(val, "cnt")[1] is None
    assert validation_verdict({**val, "comparison": {**comp, "fisher": {"summary": {"max_count_factor": 3.5}}}}, "fisher")[1] is None  # not clearly

    class FakeReport:
        def to_dict(self):
            return dict(val)

    monkeypatch.setattr(valmod, "validate_extrapolation_data", lambda *a, **k: FakeReport())
    rules = {"node": ["Pb", "I"], "linker": [], "cutoffs": {("Pb", "I"): 3.36}}
    rng = np.random.default_rng(4)
    lib, table = tmp_path / "lib", []
    for n, (count, life) in zip(range(1, 5), [(3.0, 200.0), (1.0, 80.0), (0.4, 50.0), (0.17, 35.0)]):
        label = "Pb" if n == 1 else f"Pb{n}" + ("I" if n == 2 else f"I{n - 1}")
        for k in range(3):
            write_chain(lib / label / f"frame_{k:04d}_AAA.xyz", n, rng)
        table.append(lifetime_row(label, 2 * n - 1, count, min(count, 1.0), life))
    res = predict_clusters(lib, table, rules, [9], timestep_fs=10.0, n_bootstrap=0, debye_waller=False)
    assert any(w.startswith("several node elements (I, Pb)") for w in res.warnings), res.warnings
    ch = res.population_choice
    assert ch["used"] == "fisher" and ch["contradicted_by"] == "cnt"  # reported, not silently switched
    assert "contradicts the population model used (fisher)" in ch["reason"] and "cnt 2.84" in ch["reason"]
    assert any("contradicts the population model used (fisher)" in w for w in res.warnings)


def test_reference_predictions_get_the_physical_checks(tmp_path):
    """P4: population_model = "reference" keeps the reference numbers but is checked against
    half the box and the chain / compact limits (ex_ref: max radius 34.6 A in a 19 A box)."""
    from clusterdynamicsml.predict.candidates import Candidate
    from clusterdynamicsml.predict.core import predict_clusters
    from clusterdynamicsml.predict.scaling import chain_radius, check_candidate_shapes
    from test_predict import RULES

    c = Candidate(7, "Pb7I7", {"Pb": 7, "I": 7}, "trend", None, "", {"mean_radius_of_gyration": 12.0, "mean_max_radius": 34.6})
    warns = check_candidate_shapes([c], 2.25, [19.0] * 3, ("Pb", "I", "O"))
    assert chain_radius(14, 2.25) == pytest.approx(14.625)
    assert any("exceeds half the source box (9.5 A)" in w for w in warns) and any("max radius 34.6 A exceeds the straight-chain limit 14.6 A" in w for w in warns)
    assert "straight-chain" in c.notes and c.predicted["mean_max_radius"] == 34.6  # numbers untouched

    lib, table = _chain_library(tmp_path)
    kw = dict(timestep_fs=10.0, n_bootstrap=0, debye_waller=False, validate=False, population_model="reference", population_transform="log")
    plain = predict_clusters(lib, table, RULES, [6, 7], **kw)
    boxed = predict_clusters(lib, table, RULES, [6, 7], box_lengths=[12.0] * 3, **kw)
    assert [c.predicted for c in plain.candidates] == [c.predicted for c in boxed.candidates]  # the reference numbers stay
    assert any("exceeds half the source box (6 A)" in w for w in boxed.warnings)
    assert not any("half the source box" in w for w in plain.warnings)


def test_model_error_widens_intervals_in_proportion_to_the_extrapolation_distance():
    """Step 4 of uncertainty.py: with counts so large that resampling changes nothing, the 90 %
    interval of the count at d node counts beyond the data is exp(+-1.645 k d) around the law
    (and of Rg, exp(+-1.645 k_rg d)); without the term the interval is a point."""
    a, b, s = 9.0, -0.55, 0.9
    n = np.arange(1, 7)
    law = lambda m: np.exp(a + b * m + s * m ** (2 / 3) - FISHER_TAU * np.log(m))  # noqa: E731
    labels = [LabelObservation(f"Na{k}Cl{k}", int(k), {"Na": int(k), "Cl": int(k)}, float(law(k)), int(1e9 * law(k)),
                               rg=1.2 * k ** 0.5, rg_std=1e-9, files=1000, atom_count=2 * int(k),
                               max_radius=2.0 * k ** 0.5, max_radius_std=1e-9,
                               semiaxes=(1.5 * k ** 0.5, 1.2 * k ** 0.5, k ** 0.5)) for k in n]
    obs = ObservedClusters(labels, 10.0, n_frames=10**9)
    kw = dict(n_bootstrap=1000, seed=3, resampling="blocks")
    flat = bootstrap_sizes(obs, TYPES, "fisher", [7, 10], 10.0, model_error={"count_per_frame": 0, "rg": 0}, **kw)
    wide = bootstrap_sizes(obs, TYPES, "fisher", [7, 10], 10.0, model_error={"count_per_frame": 0.1, "rg": 0.03}, **kw)
    for m in (7, 10):
        f = flat["sizes"][m]["count_per_frame"]
        assert f["p95"] / f["p05"] == pytest.approx(1.0, abs=1e-4)
        d = m - 6
        for key, k in (("count_per_frame", 0.1), ("rg", 0.03)):
            w = wide["sizes"][m][key]
            half = 0.5 * math.log(w["p95"] / w["p05"])
            assert half == pytest.approx(1.645 * k * d, rel=0.12), (m, key, half)
            # the median stays at the law (standard error of a median of 1000 normals: 0.04 k d)
            assert abs(math.log(w["p50"] / flat["sizes"][m][key]["p50"])) <= 0.15 * k * d
    assert wide["model_error_per_node"] == {"count_per_frame": 0.1, "rg": 0.03, "beyond_node_count": 6}
    for bad in ({"count_per_frame": -0.1}, {"rg": float("nan")}, {"lifetime": 0.1}, [0.1, 0.1], {"rg": True}):
        with pytest.raises(ValueError, match="model_error"):
            bootstrap_sizes(obs, TYPES, "fisher", [7], 10.0, n_bootstrap=1, model_error=bad)


def test_charge_implausible_compositions_are_flagged():
    """A prediction is checked against the charges of the observed clusters (>= 2 nodes), widened
    by one linker; Na6Cl2 (+4 e) next to observed clusters of -1..+1 e is flagged, Na6Cl5 is not.
    Elements without a formal charge are checked on the linker excess instead."""
    from clusterdynamicsml.predict.candidates import Candidate
    from clusterdynamicsml.predict.charges import check_candidate_charges

    observed = ["Cl1", "Na1", "Na1Cl1", "Na2Cl1", "Na2Cl3", "Na3Cl3", "Na4Cl4", "Na1Cl4"]
    good = Candidate(6, "Na6Cl5", {"Na": 6, "Cl": 5}, "distribution")
    edge = Candidate(6, "Na6Cl4", {"Na": 6, "Cl": 4}, "distribution")
    bad = Candidate(6, "Na6Cl2", {"Na": 6, "Cl": 2}, "distribution")
    warns = check_candidate_charges([good, edge, bad], observed, TYPES)
    assert len(warns) == 1 and "Na6Cl2" in warns[0] and "net charge +4 e" in warns[0] and "[-1, +1]" in warns[0]
    assert "charge-implausible" in bad.notes and not good.notes and not edge.notes
    cu = AtomTypes.from_rules({"node": ["Cu"], "linker": ["S"], "cutoffs": {("Cu", "S"): 2.4}})
    cands = [Candidate(6, "Cu6S6", {"Cu": 6, "S": 6}, "distribution"), Candidate(6, "Cu6S1", {"Cu": 6, "S": 1}, "distribution")]
    warns = check_candidate_charges(cands, ["Cu2S2", "Cu3S3", "Cu3S4"], cu)
    assert len(warns) == 1 and "Cu6S1" in warns[0] and "linker excess" in warns[0]


def test_model_error_run_file_keys():
    """[predict] model_error_count / model_error_rg reach predict_clusters; unset keeps the
    measured default; out-of-range values are refused naming the key."""
    from clusterdynamicsml.pipeline.config import ConfigError, RunConfig
    from clusterdynamicsml.predict.uncertainty import MODEL_ERROR_PER_NODE
    from clusterdynamicsml.predict.validate import model_error_setting

    base = '[frames]\npath = "x.xyz"\n[clusters]\nnode = ["Na"]\nlinker = ["Cl"]\ncutoffs = { "Na-Cl" = 2.6 }\n'
    assert model_error_setting(RunConfig.from_toml_string(base).predict) is None
    cfg = RunConfig.from_toml_string(base + "[predict]\nmodel_error_count = 0\n")
    assert model_error_setting(cfg.predict) == {"count_per_frame": 0.0, "rg": MODEL_ERROR_PER_NODE["rg"]}
    with pytest.raises(ConfigError, match="model_error_rg"):
        RunConfig.from_toml_string(base + "[predict]\nmodel_error_rg = -0.1\n")
