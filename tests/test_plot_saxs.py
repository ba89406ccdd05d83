"""SAXS figures: outside legends that stay readable with many curves, and a fit whose parts
(scaled mixture, background, solvent) are drawn as their own lines and add up to the fit."""
from __future__ import annotations

import numpy as np
import pytest

from clusterdynamicsml.plot import saxs as plot_saxs
from clusterdynamicsml.saxs.expdata import SaxsData
from clusterdynamicsml.saxs.fit import fit_saxs

Q = np.linspace(0.02, 1.0, 80)


@pytest.fixture
def figures(monkeypatch):
    """Keep every figure handed to ``save_figure`` (the plot functions close theirs) and skip the
    slow file writing; ``test_traces_few_components_writes_png_and_svg`` writes for real."""
    kept = []

    def save(fig, stem, **kwargs):
        kept.append(fig)
        return []

    monkeypatch.setattr(plot_saxs, "save_figure", save)
    return kept


_RENDERERS = {}


def _bbox(artist, fig):
    if id(fig) not in _RENDERERS:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        canvas = FigureCanvasAgg(fig)  # the closed figure keeps only a base canvas
        canvas.draw()
        _RENDERERS[id(fig)] = (fig, canvas.get_renderer())
    return artist.get_window_extent(_RENDERERS[id(fig)][1])


def traces(n):
    return [(f"Pb{i // 4 + 1}I{2 * (i // 4) + i % 4}O{i % 7}", Q, (10.0 + i) ** 2 * np.exp(-(Q * (2 + 0.1 * i)) ** 2 / 3) + 50)
            for i in range(n)]


def test_traces_56_components_legend_outside_with_distinct_styles(tmp_path, figures):
    plot_saxs.plot_saxs_traces(traces(56), tmp_path / "t56", title="56")
    fig = figures[-1]
    ax = fig.axes[0]
    leg = ax.get_legend()
    assert len(leg.get_texts()) == 56
    assert leg._ncols > 1
    assert _bbox(leg, fig).x0 > _bbox(ax, fig).x1            # the legend covers no curve
    styles = [(ln.get_color(), ln.get_linestyle()) for ln in ax.get_lines()]
    assert len(set(styles)) == 40                             # 10 colours x 4 styles, then repeats
    assert styles[0][0] == styles[10][0] and styles[0][1] != styles[10][1]
    assert fig.get_figwidth() > 9.0                           # widened for three legend columns


def test_traces_few_components_single_column(tmp_path, figures):
    plot_saxs.plot_saxs_traces(traces(3), tmp_path / "t3")
    leg = figures[-1].axes[0].get_legend()
    assert leg._ncols == 1 and len(leg.get_texts()) == 3


def test_traces_few_components_writes_png_and_svg(tmp_path):
    paths = plot_saxs.plot_saxs_traces(traces(3), tmp_path / "t3")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)


@pytest.mark.parametrize("degree, solvent", [(2, True), (0, False)])
def test_fit_parts_drawn_and_add_up(tmp_path, figures, degree, solvent):
    comps = [("A", Q, 1e4 * np.exp(-(Q * 6) ** 2 / 3)), ("B", Q, 3e4 * np.exp(-(Q * 9) ** 2 / 3))]
    solv = 0.5 + 2.0 * Q**2
    y = 2e-4 * (0.3 * comps[0][2] + 0.7 * comps[1][2]) + 0.05 + (0.3 * solv if solvent else 0.0) + (0.1 * Q - 0.2 * Q**2 if degree else 0.0)
    data = SaxsData(q=Q, intensity=y, sigma=0.01 * y + 1e-3)
    r = fit_saxs(data, comps, solvent=(Q, solv) if solvent else None, background_degree=degree, refit_weights="nnls")
    plot_saxs.plot_saxs_fit(r, tmp_path / "fit", title="my title")
    fig = figures[-1]
    ax = fig.axes[0]
    lines = {ln.get_label().split(" ")[0]: ln for ln in ax.get_lines()}
    parts = ["scaled", "background"] + (["solvent"] if solvent else [])
    assert set(parts) <= set(lines)
    total = sum(np.asarray(lines[k].get_ydata()) for k in parts)
    np.testing.assert_allclose(total, r.fitted, rtol=1e-9, atol=1e-12)
    assert ax.get_title() == "my title"
    assert ax.get_ylabel() == "I(q) (data units)"
    leg = ax.get_legend()
    assert _bbox(leg, fig).x0 > _bbox(ax, fig).x1
    (box,) = [t for t in ax.texts if "Pearson" in t.get_text()]
    assert _bbox(box, fig).x0 > _bbox(ax, fig).x1            # the metrics cover no data


def test_fit_intensity_unit(tmp_path, figures):
    comps = [("A", Q, 1e4 * np.exp(-(Q * 6) ** 2 / 3))]
    y = 1e-3 * comps[0][2] + 0.1
    r = fit_saxs(SaxsData(q=Q, intensity=y, sigma=None), comps)
    plot_saxs.plot_saxs_fit(r, tmp_path / "fit", intensity_unit="1/cm")
    ax, axr = figures[-1].axes[:2]
    assert ax.get_ylabel() == "I(q) (1/cm)" and axr.get_ylabel() == "y - fit (1/cm)"
