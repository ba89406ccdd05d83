"""Prediction figures: readable population histograms at any label count, Debye-Waller table."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from clusterdynamicsml.plot.predict import plot_debye_waller_table, plot_population_histograms


class FakePrediction:
    """Just what the figures read: histogram_tables(), candidates, debye_waller."""

    def __init__(self, n_observed, n_predicted=2):
        obs = [{"label": f"Na{k + 1}Cl{k}", "node_count": k + 1, "source": "observed", "raw_weight": 1.0 / (k + 1),
                "normalized_weight": 0.0} for k in range(n_observed)]
        pred = [{"label": f"Na{n_observed + k + 1}Cl{n_observed + k}", "node_count": n_observed + k + 1,
                 "source": "predicted", "raw_weight": 1e-3, "normalized_weight": 0.0} for k in range(n_predicted)]
        total_o = sum(r["raw_weight"] for r in obs)
        comb = [dict(r) for r in obs + pred]
        total_c = sum(r["raw_weight"] for r in comb)
        for r in obs:
            r["normalized_weight"] = r["raw_weight"] / total_o
        for r in comb:
            r["normalized_weight"] = r["raw_weight"] / total_c
        self._hist = {"observed": obs, "observed_plus_predicted": comb}
        self.candidates = [SimpleNamespace(label=r["label"], weight=r["raw_weight"],
                                           uncertainty={"weight": {"p05": 5e-4, "p95": 2e-3}}) for r in pred]
        self.debye_waller = []
        for r in obs + pred:
            for pair in (("Cl", "Na"), ("Na", "Na")):
                sigma = 0.1 + 0.001 * r["node_count"]
                p = r["source"] == "predicted"
                self.debye_waller.append(dict(
                    source=r["source"], method="ridge" if p or r["node_count"] % 5 == 0 else "ensemble",
                    label=r["label"], node_count=r["node_count"], candidate_rank=1 if p else None,
                    element_a=pair[0], element_b=pair[1], sigma=sigma, b_factor=8 * np.pi ** 2 * sigma ** 2,
                    support_count=100 - r["node_count"], sigma_p05=sigma * 0.9 if p else None,
                    sigma_p95=sigma * 1.1 if p else None))

    def histogram_tables(self):
        return self._hist


def _png_size(path):
    import matplotlib.image as mpimg

    h, w = mpimg.imread(path).shape[:2]
    return w, h


@pytest.mark.parametrize("n_observed", [3, 50])
def test_population_histograms_stay_readable(tmp_path, n_observed):
    res = FakePrediction(n_observed)
    png, svg = plot_population_histograms(res, tmp_path / f"hist{n_observed}")
    w, h = _png_size(png)
    assert w < 1400 and h < 2600
    text = svg.read_text()
    n = n_observed
    assert f"Na{n + 1}Cl{n}" in text and f"Na{n + 2}Cl{n + 1}" in text  # predicted labels always shown
    if n_observed == 50:
        assert "other (22 labels)" in text and "Na1Cl0" in text  # 30 bars: 2 predicted, 28 most populated
        assert "Na50Cl49" not in text
    else:
        assert "other" not in text
    png_all, _ = plot_population_histograms(FakePrediction(50), tmp_path / "all", max_bars=None)
    assert _png_size(png_all)[0] < 1400


def test_debye_waller_table_figure(tmp_path):
    res = FakePrediction(6)
    png, svg = plot_debye_waller_table(res, tmp_path / "dw")
    assert png.stat().st_size > 1000
    text = svg.read_text()
    for word in ("sigma (angstrom)", "angstrom^2", "Cl-Na", "Na-Na", "observed (ensemble)",
                 "observed (ridge estimate)", "predicted (ridge", "Na7Cl6 (pred., rank 1)"):
        assert word in text, word
    assert "log scale" not in text
    res.debye_waller[-1]["sigma"] = 5.0  # one wild extrapolation: log axes
    assert "sigma (angstrom), log scale" in plot_debye_waller_table(res, tmp_path / "dw_log")[1].read_text()
    many = FakePrediction(60)
    png, svg = plot_debye_waller_table(many, tmp_path / "dw_many")
    assert _png_size(png)[1] < 2600 and "40 of 62 labels" in svg.read_text()
    with pytest.raises(ValueError, match="no Debye-Waller rows"):
        plot_debye_waller_table([], tmp_path / "none")


def test_report_finds_the_debye_waller_plot():
    from clusterdynamicsml.pipeline.report import _plot_function, _writes_files

    func = _plot_function("debye_waller")
    assert func is plot_debye_waller_table and _writes_files(func)


def test_debye_waller_figure_leaves_room_right_of_the_largest_sigma(tmp_path, monkeypatch):
    """No marker sits on the right axis edge (half cut off): the axis ends beyond the largest
    sigma (and its 95 % bound), in the linear and the log layout, and the B axis likewise."""
    import clusterdynamicsml.plot.predict as pp

    seen = []
    real = pp.save_figure
    monkeypatch.setattr(pp, "save_figure", lambda fig, stem, **kw: seen.append([ax.get_xlim()[1] for ax in fig.axes[:2]]) or real(fig, stem, **kw))
    res = FakePrediction(6)
    for wild in (None, 5.0):
        if wild:
            res.debye_waller[-1]["sigma"] = wild
        plot_debye_waller_table(res, tmp_path / f"dw{wild}")
        top = max(max(float(r["sigma"]), float(r.get("sigma_p95") or 0)) for r in res.debye_waller)
        right_sigma, right_b = seen[-1]
        assert right_sigma >= 1.05 * top and right_b >= 1.05 * 8 * math.pi**2 * top**2
