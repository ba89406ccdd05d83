"""Weighted ridge models (ref §4.3): known answers, special cases, bounds, validation."""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml.library.read import TrainingRow
from clusterdynamicsml.predict.models import ClusterPropertyModel, WeightedRidge, feature_vector


def test_ridge_recovers_known_linear_truth_with_weights():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(40), rng.normal(size=(40, 3))])
    beta = np.array([0.5, -1.0, 2.0, 0.25])
    y = X @ beta
    w = rng.uniform(0.5, 5.0, size=40)
    model = WeightedRidge().fit(X, y, w)
    assert model.mode_ == "ridge"
    np.testing.assert_allclose(model.coef_, beta, atol=1e-6)
    np.testing.assert_allclose(model.predict(X), y, atol=1e-6)


def test_ridge_log1p_round_trip_and_bounds():
    rng = np.random.default_rng(1)
    X = np.column_stack([np.ones(30), rng.uniform(0, 2, size=(30, 2))])
    beta = np.array([0.2, 0.8, 0.3])  # y > 0, so the clip at 0 is inactive
    y = np.expm1(X @ beta)
    m = WeightedRidge(transform="log1p").fit(X, y)
    np.testing.assert_allclose(m.predict(X), y, rtol=1e-5, atol=1e-7)
    bounded = WeightedRidge(transform="log1p", lower=1.0, upper=1.5).fit(X, y)
    p = bounded.predict(X)
    assert p.min() >= 1.0 and p.max() <= 1.5


def test_ridge_penalises_intercept_like_reference():
    # lambda is tiny, so a constant target is reproduced almost exactly even with the penalty
    X = np.column_stack([np.ones(3), [1.0, 2.0, 3.0]])
    m = WeightedRidge().fit(X, [4.0, 4.0, 4.0])
    np.testing.assert_allclose(m.predict(X), 4.0, atol=1e-5)


def test_constant_model_for_one_row_and_default_for_zero_rows():
    one = WeightedRidge(transform="log1p").fit([[1.0, 2.0, 3.0]], [5.0])
    assert one.mode_ == "constant" and one.constant_ == pytest.approx(np.log1p(5.0))
    np.testing.assert_allclose(one.predict([[1.0, 7.0, 9.0], [1.0, 0.0, 0.0]]), 5.0)
    zero = WeightedRidge(default=2.5).fit(np.zeros((0, 3)), [])
    assert zero.mode_ == "default"
    np.testing.assert_allclose(zero.predict([[1.0, 1.0, 1.0]]), 2.5)
    with pytest.raises(ValueError, match="zero rows without a default"):
        WeightedRidge().fit(np.zeros((0, 3)), [])


def test_ridge_params_stored_unchanged_and_fit_returns_self():
    m = WeightedRidge(alpha=1e-3, transform="log1p", lower=0, upper=None, default=None)
    assert (m.alpha, m.transform, m.lower, m.upper, m.default) == (1e-3, "log1p", 0, None, None)
    assert m.fit([[1.0, 0.0], [1.0, 1.0]], [0.0, 1.0]) is m


@pytest.mark.parametrize(
    "kwargs, X, y, match",
    [
        ({"transform": "sqrt"}, [[1.0]], [1.0], "transform must be"),
        ({"alpha": -1}, [[1.0]], [1.0], "alpha must be"),
        ({"lower": 2, "upper": 1}, [[1.0]], [1.0], "lower bound must not exceed"),
        ({}, [1.0, 2.0], [1.0, 2.0], "2-D feature matrix"),
        ({}, [[1.0], [2.0]], [1.0], "same number of rows"),
        ({}, [[1.0], [np.nan]], [1.0, 2.0], "finite"),
    ],
)
def test_ridge_rejects_bad_input(kwargs, X, y, match):
    with pytest.raises(ValueError, match=match):
        WeightedRidge(**kwargs).fit(X, y)


def test_ridge_predict_before_fit_raises():
    with pytest.raises(ValueError, match="not fitted"):
        WeightedRidge().predict([[1.0]])


def test_feature_vector_matches_reference_definition():
    x = feature_vector({"Pb": 3, "I": 2, "O": 3}, ["Pb"], ["I", "O"])
    np.testing.assert_allclose(x, [1.0, 3.0, 8.0, 2 / 3, 1.0])
    # no node atoms: n is clamped to 1
    np.testing.assert_allclose(feature_vector({"I": 2}, ["Pb"], ["I"]), [1.0, 1.0, 2.0, 2.0])


def _row(label, counts, **kw):
    n = counts.get("Pb", 0)
    base = dict(
        label=label,
        node_count=n,
        element_counts=counts,
        cluster_size=sum(counts.values()),
        file_count=2,
        representative_path=None,
        structure_dir="",
        mean_atom_count=float(sum(counts.values())),
        mean_radius_of_gyration=1.0 + n,
        mean_max_radius=1.5 + n,
        mean_semiaxis_a=1.0 + n,
        mean_semiaxis_b=0.5 + n / 2,
        mean_semiaxis_c=0.3,
    )
    base.update(kw)
    return TrainingRow(**base)


def test_property_model_lifetime_bound_and_missing_lifetimes():
    rows = [
        _row("Pb", {"Pb": 1}, mean_count_per_frame=2.0, occupancy_fraction=1.0, mean_lifetime_fs=None),
        _row("Pb2I", {"Pb": 2, "I": 1}, mean_count_per_frame=0.5, occupancy_fraction=0.4, mean_lifetime_fs=30.0),
        _row("Pb3I2", {"Pb": 3, "I": 2}, mean_count_per_frame=0.1, occupancy_fraction=0.1, mean_lifetime_fs=10.0),
    ]
    m = ClusterPropertyModel(["Pb"], timestep_fs=25.0).fit(rows)
    assert m.non_node_elements_ == ("I",)
    assert m.default_lifetime_fs_ == pytest.approx(20.0)
    p = m.predict({"Pb": 6, "I": 5})
    assert p["mean_lifetime_fs"] >= 25.0
    assert 0.0 <= p["occupancy_fraction"] <= 1.0
    assert p["mean_radius_of_gyration"] >= 0.1
    # training compositions are reproduced by the count model (I = n - 1)
    assert m.predict_counts({"Pb": 3, "I": 2})["I"] == pytest.approx(2.0, abs=1e-4)


def test_property_model_validates():
    with pytest.raises(ValueError, match="timestep_fs must be a positive"):
        ClusterPropertyModel(["Pb"], timestep_fs=0).fit([_row("Pb", {"Pb": 1})])
    with pytest.raises(ValueError, match="at least one training row"):
        ClusterPropertyModel(["Pb"]).fit([])
    with pytest.raises(ValueError, match="node_elements must be"):
        ClusterPropertyModel("Pb").fit([_row("Pb", {"Pb": 1})])
    with pytest.raises(ValueError, match="not fitted"):
        ClusterPropertyModel(["Pb"]).predict({"Pb": 1})


def test_log_transform_recovers_geometric_decay_and_stays_positive():
    n = np.arange(1, 6, dtype=float)
    X = np.column_stack([np.ones(5), n])
    y = 3.0 * 0.2 ** (n - 1)  # populations decaying geometrically with size
    m = WeightedRidge(transform="log", lower=0.0, log_offset=1e-9).fit(X, y)
    np.testing.assert_allclose(m.predict(X), y, rtol=1e-5)
    far = m.predict([[1.0, 8.0]])[0]
    assert far == pytest.approx(3.0 * 0.2**7, rel=1e-3) and far > 0
    # log1p (the reference) extrapolates the same data to a clipped 0
    assert WeightedRidge(transform="log1p", lower=0.0).fit(X, y).predict([[1.0, 8.0]])[0] == 0.0
    with pytest.raises(ValueError, match="log_offset must be a positive"):
        WeightedRidge(transform="log", log_offset=0).fit(X, y)


def test_population_transform_option():
    rows = [
        _row("Pb", {"Pb": 1}, mean_count_per_frame=3.0, occupancy_fraction=0.9),
        _row("Pb2I", {"Pb": 2, "I": 1}, mean_count_per_frame=0.6, occupancy_fraction=0.3),
        _row("Pb3I2", {"Pb": 3, "I": 2}, mean_count_per_frame=0.12, occupancy_fraction=0.1),
    ]
    ref = ClusterPropertyModel(["Pb"], 10.0).fit(rows)
    log = ClusterPropertyModel(["Pb"], 10.0, population_transform="log").fit(rows)
    assert ref.models_["mean_count_per_frame"].transform == "log1p" and ref.models_["occupancy_fraction"].transform == "identity"
    assert log.models_["mean_count_per_frame"].transform == "log" and log.models_["occupancy_fraction"].transform == "log"
    big = {"Pb": 5, "I": 4}
    assert ref.predict(big)["mean_count_per_frame"] == 0.0
    assert 0.0 < log.predict(big)["mean_count_per_frame"] < 0.12
    assert 0.0 < log.predict(big)["occupancy_fraction"] <= 1.0
    with pytest.raises(ValueError, match="population_transform must be"):
        ClusterPropertyModel(["Pb"], population_transform="sqrt").fit(rows)
