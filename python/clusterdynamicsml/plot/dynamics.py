"""Figures of a :class:`~clusterdynamicsml.dynamics.analyze.DynamicsResult`: heatmap and lifetime table.

matplotlib is imported inside the functions (never at package import), and the figures are
drawn on the non-interactive Agg canvas (``matplotlib.figure.Figure``, no pyplot state), so
they work in batch jobs without a display and do not change the user's pyplot backend.

Heatmap (ref §3.6): ``imshow`` of the (labels x bins) matrix of a display mode, origin lower,
nearest interpolation, x extent = the bin edges (fs or ps), y = one row per label in result
order (size, then label). Colour limits: :func:`color_limits`. An optional lower panel shows
temperature (K), potential or kinetic energy (Ha) from the CP2K ``.ener`` file on the same
time axis, with height ratio 4 : 1.2.
"""
from __future__ import annotations

import math

import numpy as np

from ..plot._common import save_figure

__all__ = ["COLORMAPS", "MODE_LABELS", "color_limits", "plot_heatmap", "plot_lifetimes", "save_figure"]

#: Colour-bar labels of the display modes (ref §3.6).
MODE_LABELS = {"count": "Counts / bin", "fraction": "Fraction / bin", "mean_count": "Mean count / frame"}
COLORMAPS = ("viridis", "magma", "cividis", "inferno", "turbo")


def color_limits(values, lower_quantile: float = 0.05, upper_quantile: float = 0.95) -> tuple[float, float]:
    """Colour limits from quantiles of the positive finite values (ref §3.6).

    lower_quantile is clipped to [0, 0.95], upper_quantile to [0.05, 1], and they are kept at
    least 0.05 apart. If the two quantiles are equal, the min and max of the positive values are
    used; if those are still equal, ``vmax = vmin + 1``. With no positive value: (0, 1).
    """
    for name, q in (("lower_quantile", lower_quantile), ("upper_quantile", upper_quantile)):
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not math.isfinite(q):
            raise ValueError(f"{name} must be a number in [0, 1], got {q!r}")
    lo = min(max(float(lower_quantile), 0.0), 0.95)
    hi = min(max(float(upper_quantile), 0.05), 1.0)
    if hi - lo < 0.05:
        hi = min(lo + 0.05, 1.0)
        lo = hi - 0.05
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return 0.0, 1.0
    vmin, vmax = (float(x) for x in np.quantile(v, [lo, hi]))
    if vmin == vmax:
        vmin, vmax = float(v.min()), float(v.max())
    if vmin == vmax:
        vmax = vmin + 1.0
    return vmin, vmax


def _time_scale(unit: str) -> float:
    if unit == "fs":
        return 1.0
    if unit == "ps":
        return 1000.0
    raise ValueError(f"time_unit must be 'fs' or 'ps', got {unit!r}")


def plot_heatmap(
    result,
    mode: str = "fraction",
    time_unit: str = "fs",
    cmap: str = "viridis",
    lower_quantile: float = 0.05,
    upper_quantile: float = 0.95,
    energy: str | None = None,
    title: str | None = None,
    max_labels: int | None = 40,
    max_columns: int | None = 2000,
):
    """Heatmap of cluster populations over time; returns a ``matplotlib.figure.Figure``.

    mode : "count" (counts per bin), "fraction" (fraction of the clusters in the bin, default)
        or "mean_count" (mean count per frame).
    time_unit : "fs" or "ps" for the x axis.
    cmap : a matplotlib colormap name (ref offers viridis, magma, cividis, inferno, turbo).
    lower_quantile, upper_quantile : colour limits, see :func:`color_limits`.
    energy : None, or "temperature" / "potential" / "kinetic" for a lower panel (needs a result
        analysed with ``energy_file=``).
    max_labels : show at most this many rows (default 40), the most populated labels (by
        total count over the trajectory), kept in result order; the title says how many of
        how many are shown. None or 0 shows every label.
    max_columns : with more time bins than this (default 2000), consecutive bins are merged
        ``g`` at a time for display (``g = ceil(n_bins / max_columns)``; counts summed, fractions
        and mean counts recomputed from the merged counts, as with ``g`` times wider bins) and
        the title says so; None or 0 draws every bin. The figure never holds more than
        labels x max_columns values, whatever the trajectory length.
    """
    import matplotlib
    from matplotlib.figure import Figure

    from ..io.energy import ENERGY_QUANTITIES

    if mode not in MODE_LABELS:
        raise ValueError(f"mode must be one of {sorted(MODE_LABELS)}, got {mode!r}")
    scale = _time_scale(time_unit)
    if energy is not None:
        if energy not in ENERGY_QUANTITIES:
            raise ValueError(f"energy must be None or one of {sorted(ENERGY_QUANTITIES)}, got {energy!r}")
        if result.energy is None:
            raise ValueError("energy panel requested but the result has no energy data (analyse with energy_file=)")
    if max_labels is not None and (isinstance(max_labels, bool) or not isinstance(max_labels, int) or max_labels < 0):
        raise ValueError(f"max_labels must be None or a non-negative integer, got {max_labels!r}")
    if max_columns is not None and (isinstance(max_columns, bool) or not isinstance(max_columns, int)
                                    or max_columns < 0):
        raise ValueError(f"max_columns must be None or a non-negative integer, got {max_columns!r}")
    labels = list(result.labels)
    n_total = len(labels)
    keep = np.arange(n_total)
    if max_labels and n_total > max_labels:
        totals = result.bin_counts.row_sums().astype(float)
        # most populated first; ties broken by result order (stable sort), then back to result order
        keep = np.sort(np.argsort(-totals, kind="stable")[:max_labels])
        labels = [labels[i] for i in keep]
    matrix, bin_edges, merged = _display_matrix(result, mode, keep, max_columns)
    n_labels = len(labels)
    height = _rows_height(n_labels, 0.28) + (1.4 if energy else 0.0)
    fig = Figure(figsize=(8.0, height), layout="constrained")
    if energy:
        grid = fig.add_gridspec(2, 2, height_ratios=[4.0, 1.2], width_ratios=[40, 1])
        ax = fig.add_subplot(grid[0, 0])
        cax = fig.add_subplot(grid[0, 1])
        eax = fig.add_subplot(grid[1, 0], sharex=ax)
    else:
        grid = fig.add_gridspec(1, 2, width_ratios=[40, 1])
        ax = fig.add_subplot(grid[0, 0])
        cax = fig.add_subplot(grid[0, 1])
        eax = None
    edges = bin_edges / scale
    vmin, vmax = color_limits(matrix, lower_quantile, upper_quantile)
    data = matrix if n_labels else np.zeros((1, matrix.shape[1]))
    # absent (0) is its own light grey, so a rare label below the colour floor (drawn in the
    # lowest colour) never looks absent
    data = np.ma.masked_less_equal(np.asarray(data, dtype=float), 0.0)
    colours = (matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap).with_extremes(bad="#ececec")
    image = ax.imshow(
        data, origin="lower", aspect="auto", interpolation="nearest", cmap=colours, vmin=vmin, vmax=vmax,
        extent=(float(edges[0]), float(edges[-1]), -0.5, max(n_labels, 1) - 0.5),
    )
    ax.set_yticks(range(n_labels))
    ax.set_yticklabels(labels, fontsize=_row_fontsize(n_labels))
    ax.set_ylabel("Cluster label")
    below = float(np.min(matrix[matrix > 0], initial=vmin)) < vmin
    cbar = fig.colorbar(image, cax=cax, extend="min" if below else "neither")
    cbar.set_label(MODE_LABELS[mode])
    cax.set_xlabel("grey:\nabsent", fontsize=7)
    shown = "" if n_labels == n_total else f"; the most populated {n_labels} of {n_total} labels"
    if merged > 1:
        shown += f"; shown as {matrix.shape[1]} columns of {merged} bins each"
    ax.set_title(title or f"Cluster populations ({result.n_frames} frames, bins of {result.bin_width_fs:g} fs{shown})")
    if eax is None or energy is None:
        ax.set_xlabel(f"Time ({time_unit})")
    else:
        ax.tick_params(labelbottom=False)
        t, values = result.energy_series(energy)
        eax.plot(t / scale, values, lw=1.0, color="tab:red")
        eax.set_ylabel(ENERGY_QUANTITIES[energy])
        eax.set_xlabel(f"Time ({time_unit})")
        eax.set_xlim(float(edges[0]), float(edges[-1]))
    return fig


def _display_matrix(result, mode: str, keep: np.ndarray, max_columns: int | None):
    """``(matrix (len(keep), columns), edges_fs (columns + 1,), merged)``: the rows ``keep`` of a
    display mode, with ``merged`` consecutive bins per column (1: the result's own bins)."""
    from ..dynamics.result import _row_values

    n_bins = result.n_bins
    merged = math.ceil(n_bins / max_columns) if max_columns and n_bins > max_columns else 1
    if merged == 1:
        counts, edges = result.bin_counts, result.bin_edges_fs
        total, per_bin = result.total_clusters_per_bin, result.frames_in_bin
    else:
        group = np.arange(n_bins) // merged
        starts = np.arange(0, n_bins, merged)
        counts = result.bin_counts.sum_column_runs(group, starts.size)
        total = np.add.reduceat(result.total_clusters_per_bin, starts)
        per_bin = np.add.reduceat(result.frames_in_bin, starts)
        edges = np.r_[result.bin_edges_fs[starts], result.bin_edges_fs[-1]]
    matrix = np.zeros((keep.size, edges.size - 1), dtype=np.int64 if mode == "count" else np.float64)
    row_of = {int(r): k for k, r in enumerate(keep)}
    for r, raw in counts.rows(keep):
        matrix[row_of[r]] = _row_values(raw, mode, total, per_bin)
    return matrix, edges, merged


def _row_fontsize(n_rows: int) -> float:
    """Tick-label size (points) for one row per label: 10 pt for few rows, never below 6.5 pt."""
    return max(6.5, min(10.0, 220.0 / max(n_rows, 1)))


def _rows_height(n_rows: int, per_row: float) -> float:
    """Figure height (inches) for one row per label: grows with the rows so the labels stay
    readable (up to 40 inches, about 140 labels at 6.5 pt; more rows overlap)."""
    return min(max(3.0, per_row * n_rows + 1.6), 40.0)


def plot_lifetimes(result, by: str = "label", time_unit: str = "fs", title: str | None = None):
    """Lifetime table figure; returns a ``matplotlib.figure.Figure``.

    Three panels sharing the rows (one per label, or per cluster size with ``by="size"``):
    lifetimes (mean +- std of completed lifetimes as bars, the exponential MLE +- standard
    error and the Kaplan-Meier mean as markers; hollow KM markers are restricted means, lower
    bounds), association and dissociation rates (per ps), and occupancy fraction.
    """
    from matplotlib.figure import Figure

    if by == "label":
        rows = result.lifetime_by_label
        names = [r.label for r in rows]
    elif by == "size":
        rows = result.lifetime_by_size
        names = [f"size {r.cluster_size}" for r in rows]
    else:
        raise ValueError(f"by must be 'label' or 'size', got {by!r}")
    scale = _time_scale(time_unit)
    n = len(rows)
    y = np.arange(n)

    def col(attr, s=1.0):
        return np.array([np.nan if getattr(r, attr) is None else getattr(r, attr) / s for r in rows], dtype=float)

    fig = Figure(figsize=(11.0, _rows_height(n, 0.3)), layout="constrained")
    ax_life, ax_rate, ax_occ = fig.subplots(1, 3, sharey=True, width_ratios=[2.2, 1.4, 1.0])
    mean, std = col("mean_lifetime_fs", scale), col("std_lifetime_fs", scale)
    mean0, std0 = np.nan_to_num(mean), np.nan_to_num(std)
    # a lifetime is never negative: the lower error bar stops at zero
    ax_life.barh(y, mean0, xerr=np.vstack([np.minimum(std0, mean0), std0]), color="tab:blue", alpha=0.6,
                 label="mean of completed (ref) +- std", error_kw={"lw": 0.8})
    mle, mle_se = col("mle_lifetime_fs", scale), col("mle_lifetime_stderr_fs", scale)
    ax_life.errorbar(mle, y, xerr=mle_se, fmt="o", color="tab:red", ms=4, lw=0.8, label="exponential MLE +- s.e.")
    km = col("km_mean_lifetime_fs", scale)
    restricted = np.array([r.km_mean_is_restricted for r in rows], dtype=bool)
    ax_life.plot(km[~restricted], y[~restricted], "D", color="k", ms=4, label="Kaplan-Meier mean")
    ax_life.plot(km[restricted], y[restricted], "D", mfc="none", color="k", ms=4, label="Kaplan-Meier (lower bound)")
    ax_life.set_xlabel(f"Lifetime ({time_unit})")
    ax_life.set_yticks(y)
    ax_life.set_yticklabels(names, fontsize=_row_fontsize(n))
    ax_life.legend(fontsize=7, loc="best")
    h = 0.38
    ax_rate.barh(y - h / 2, col("association_rate_per_ps"), height=h, color="tab:green", label="association")
    ax_rate.barh(y + h / 2, col("dissociation_rate_per_ps"), height=h, color="tab:orange", label="dissociation")
    ax_rate.set_xlabel("Rate (1/ps)")
    ax_rate.legend(fontsize=7, loc="best")
    ax_occ.barh(y, col("occupancy_fraction"), color="tab:purple", alpha=0.7)
    ax_occ.set_xlim(0.0, 1.0)
    ax_occ.set_xlabel("Occupancy (fraction of frames)")
    fig.suptitle(title or f"Cluster lifetimes by {by} ({result.n_frames} frames, "
                 f"{result.frame_times_fs[0]:g} to {result.observed_stop_fs:g} fs)")
    return fig
