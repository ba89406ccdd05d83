"""Dynamics figures (ref §3.6): colour limits, heatmap with energy panel, lifetime figure."""
from __future__ import annotations

import numpy as np
import pytest

from _dynamics_standin import ref_fixture, write_energy_file


def test_color_limits_follow_the_reference_rules():
    from clusterdynamicsml.plot.dynamics import color_limits

    values = np.array([[0.0, -1.0, np.nan, 1.0], [2.0, 3.0, 4.0, 5.0]])
    positive = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert color_limits(values) == tuple(np.quantile(positive, [0.05, 0.95]))
    assert color_limits(values, 0.5, 0.5) == tuple(np.quantile(positive, [0.5, 0.55]))  # kept 0.05 apart
    assert color_limits(values, -1.0, 2.0) == (1.0, 5.0)  # clipped to [0, 0.95] and [0.05, 1]
    assert color_limits([[0.0, 2.0, 2.0]]) == (2.0, 3.0)  # equal limits: vmax = vmin + 1
    assert color_limits(np.zeros((2, 2))) == (0.0, 1.0)
    with pytest.raises(ValueError, match="lower_quantile must be a number"):
        color_limits(values, "low")


def test_heatmap_and_lifetime_figures(tmp_path):
    from clusterdynamicsml.io.energy import read_cp2k_ener
    from clusterdynamicsml.plot.dynamics import plot_heatmap, plot_lifetimes, save_figure

    r = ref_fixture(energy=read_cp2k_ener(write_energy_file(tmp_path)))
    fig = plot_heatmap(r, mode="mean_count", time_unit="ps", energy="temperature")
    written = save_figure(fig, tmp_path / "heat.png")
    assert [p.name for p in written] == ["heat.png", "heat.svg"]
    assert written[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = written[1].read_text()
    for text in ("Time (ps)", "Mean count / frame", "Temperature (K)", "Pb2I"):
        assert text in svg, text
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 0.06) and [t.get_text() for t in ax.get_yticklabels()] == r.labels
    image = ax.get_images()[0]
    assert image.get_clim() == pytest.approx(
        np.quantile(r.mean_count_matrix[r.mean_count_matrix > 0], [0.05, 0.95])
    )
    counts = plot_heatmap(r, mode="count")
    assert counts.axes[0].get_xlabel() == "Time (fs)" and counts.axes[1].get_ylabel() == "Counts / bin"
    life = plot_lifetimes(r, time_unit="fs")
    assert "Lifetime (fs)" in save_figure(life, tmp_path / "life", formats=("svg",))[0].read_text()
    assert len(plot_lifetimes(r, by="size").axes[0].get_yticklabels()) == 2
    with pytest.raises(ValueError, match="mode must be one of"):
        plot_heatmap(r, mode="percent")
    with pytest.raises(ValueError, match="time_unit must be 'fs' or 'ps'"):
        plot_heatmap(r, time_unit="ns")
    with pytest.raises(ValueError, match="no energy data"):
        plot_heatmap(ref_fixture(), energy="potential")
    with pytest.raises(ValueError, match="by must be 'label' or 'size'"):
        plot_lifetimes(r, by="bin")


def test_importing_the_stages_does_not_import_matplotlib_or_dask():
    import subprocess
    import sys

    code = (
        "import sys, clusterdynamicsml.dynamics.analyze, clusterdynamicsml.plot.dynamics, clusterdynamicsml.dynamics.parallel, "
        "clusterdynamicsml.io.energy; print(sorted(m for m in ('matplotlib', 'dask', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_export_writes_dataset_csvs_and_figures(tmp_path):
    from clusterdynamicsml.io.energy import read_cp2k_ener

    r = ref_fixture(energy=read_cp2k_ener(write_energy_file(tmp_path)))
    names = sorted(p.name for p in r.export(tmp_path / "out", "run"))
    assert names == sorted([
        "run.json", "run_cluster_distribution.csv", "run_lifetime.csv", "run_energy.csv",
        "run_heatmap.png", "run_heatmap.svg", "run_lifetimes.png", "run_lifetimes.svg",
    ])
    assert "Temperature (K)" in (tmp_path / "out" / "run_heatmap.svg").read_text()
    text = r.summary()
    assert "frames analysed: 6 of 6" in text and "time bins: 2 of 30 fs (3 frame steps)" in text
    assert "labels: 3; lifetime rows: 3 by label, 2 by size" in text


@pytest.mark.shared_data
def test_molten_nacl_53_labels_stay_readable_and_error_bars_stop_at_zero(shared_data):
    """Regression: with the 53 labels of the molten-NaCl run the tick labels were drawn at
    5 pt in a figure capped at 14 inches, and mean - std error bars went below 0 fs."""
    import clusterdynamicsml as cdml
    from clusterdynamicsml.plot.dynamics import plot_heatmap, plot_lifetimes

    rules = cdml.ClusterRules(node=["Na"], linker=["Cl"], shell=[], cutoffs={("Na", "Cl"): 2.6})
    r = cdml.analyze_dynamics(shared_data / "nacl_molten_1400K_zincware" / "NaCl_1400K_0.extxyz", rules,
                              frames_per_bin=10, timestep_fs=0.5)
    assert len(r.labels) > 40
    for fig in (plot_heatmap(r, max_labels=None), plot_lifetimes(r)):
        ax = fig.axes[0]
        sizes = {t.get_fontsize() for t in ax.get_yticklabels()}
        assert min(sizes) >= 6.5, sizes
        # at least 0.25 inch per label row
        assert fig.get_figheight() >= 0.25 * len(r.labels), fig.get_figheight()
    life = plot_lifetimes(r)
    segments = [seg for coll in life.axes[0].collections for seg in getattr(coll, "get_segments", list)()]
    assert segments and min(float(np.min(s[:, 0])) for s in segments) >= 0.0


def test_heatmap_keeps_the_most_populated_labels(tmp_path):
    from clusterdynamicsml.dynamics.analyze import dynamics_from_counts
    from clusterdynamicsml.plot.dynamics import plot_heatmap

    n_labels, n_frames = 60, 6
    counts = np.zeros((n_frames, n_labels), dtype=np.int64)
    for k in range(n_labels):
        counts[:, k] = k % 7 + 1  # populations 1..7, repeating
    labels = [f"Pb{k + 1}I" for k in range(n_labels)]
    r = dynamics_from_counts(np.arange(n_frames) * 10.0, counts, labels, timestep_fs=10.0, frames_per_bin=3)
    fig = plot_heatmap(r, mode="count")
    ax = fig.axes[0]
    shown = [t.get_text() for t in ax.get_yticklabels()]
    assert len(shown) == 40 and "most populated 40 of 60 labels" in ax.get_title()
    totals = dict(zip(r.labels, r.matrix("count").sum(axis=1)))
    assert min(totals[s] for s in shown) >= max(totals[s] for s in r.labels if s not in shown)
    assert shown == [s for s in r.labels if s in shown]  # result order kept
    assert ax.get_images()[0].get_array().shape[0] == 40
    full = plot_heatmap(r, mode="count", max_labels=None)
    assert len(full.axes[0].get_yticklabels()) == 60 and "most populated" not in full.axes[0].get_title()
    with pytest.raises(ValueError, match="max_labels"):
        plot_heatmap(r, max_labels=-1)


@pytest.mark.parametrize("mode", ["count", "fraction", "mean_count"])
def test_heatmap_of_many_bins_merges_bins_for_display(mode):
    """5,000 one-frame bins drawn in at most 2,000 columns: 3 bins per column, the same numbers
    as the analysis with 3 frames per bin (and never a labels x 5,000 image)."""
    from clusterdynamicsml.dynamics import dynamics_from_counts
    from clusterdynamicsml.plot.dynamics import plot_heatmap

    rng = np.random.default_rng(5)
    counts = rng.poisson([0.3, 2.0, 0.05], size=(5000, 3))
    labels = ["I", "Pb", "Pb2I"]
    fine = dynamics_from_counts(np.arange(5000) * 0.5, counts, labels, timestep_fs=0.5)
    coarse = dynamics_from_counts(np.arange(5000) * 0.5, counts, labels, timestep_fs=0.5, frames_per_bin=3)
    assert fine.n_bins == 5000 and coarse.n_bins == 1667
    ax = plot_heatmap(fine, mode=mode).axes[0]
    shown = ax.get_images()[0].get_array()
    assert shown.shape == (3, 1667) and "shown as 1667 columns of 3 bins each" in ax.get_title()
    expected = coarse.matrix(mode)
    np.testing.assert_array_equal(shown.filled(0.0), np.where(expected > 0, expected, 0.0))
    assert ax.get_images()[0].get_extent()[:2] == [0.0, 2500.0]
    assert plot_heatmap(fine, mode=mode, max_columns=None).axes[0].get_images()[0].get_array().shape == (3, 5000)
