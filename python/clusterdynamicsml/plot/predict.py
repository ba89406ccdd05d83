"""Figures of a ``PredictionResult``: observed vs observed-plus-predicted population
histograms, a prediction table and the Debye-Waller table. Each function writes ``<stem>.png`` and ``<stem>.svg``
(matplotlib, Agg backend, imported inside the functions) and returns the two paths.
"""
from __future__ import annotations

from ..plot._common import pyplot, save_figure

MAX_HISTOGRAM_LABELS = 30
MAX_DW_ROWS = 40


def plot_population_histograms(result, out_stem, max_bars: int | None = MAX_HISTOGRAM_LABELS) -> tuple:
    """Horizontal bar chart of normalised population weights per label: observed only vs
    observed plus predicted (ref §4.9 weights). Predicted bars are hatched and carry bootstrap
    5-95 % error bars of their weight when available. Labels are ordered by node count, then
    label (top to bottom). With more than ``max_bars`` labels (default 30; None or 0: all),
    every predicted label and the most populated observed ones are shown, and the rest are
    summed into one "other (k labels)" bar, so the figure stays readable at any label count."""
    plt = pyplot()
    hist = result.histogram_tables()
    obs = {r["label"]: r for r in hist["observed"]}
    comb = {r["label"]: r for r in hist["observed_plus_predicted"]}
    labels = sorted(comb, key=lambda k: (comb[k]["node_count"], k))
    total_comb = sum(r["raw_weight"] for r in hist["observed_plus_predicted"]) or 1.0
    errs = {}
    for c in result.candidates:
        u = c.uncertainty.get("weight") or {}
        if u.get("p05") is not None:
            errs[c.label] = (max(c.weight - u["p05"], 0.0) / total_comb, max(u["p95"] - c.weight, 0.0) / total_comb)
    import numpy as np

    other = []
    if max_bars and len(labels) > max_bars:
        predicted = [k for k in labels if comb[k]["source"] == "predicted"]
        rest = sorted((k for k in labels if comb[k]["source"] != "predicted"),
                      key=lambda k: (-comb[k]["normalized_weight"], comb[k]["node_count"], k))
        keep = set(predicted) | set(rest[: max(max_bars - len(predicted), 0)])
        other = [k for k in labels if k not in keep]
        labels = [k for k in labels if k in keep]
    names = list(labels)
    obs_w = [obs[k]["normalized_weight"] if k in obs else 0.0 for k in labels]
    comb_w = [comb[k]["normalized_weight"] for k in labels]
    colors = ["#ee6677" if comb[k]["source"] == "predicted" else "#88ccee" for k in labels]
    if other:
        names.append(f"other ({len(other)} labels)")
        obs_w.append(sum(obs[k]["normalized_weight"] for k in other if k in obs))
        comb_w.append(sum(comb[k]["normalized_weight"] for k in other))
        colors.append("#bbbbbb")
    y = np.arange(len(names))[::-1]  # first label at the top
    fig, ax = plt.subplots(figsize=(7.5, min(max(3.0, 0.32 * len(names) + 1.6), 16.0)))
    ax.barh(y + 0.2, obs_w, 0.4, label="observed", color="#4477aa")
    bars = ax.barh(y - 0.2, comb_w, 0.4, label="observed + predicted", color=colors)
    for b, k in zip(bars, labels):
        if comb[k]["source"] == "predicted":
            b.set_hatch("//")
    for i, k in enumerate(labels):
        if k in errs:
            ax.errorbar(comb[k]["normalized_weight"], y[i] - 0.2, xerr=[[errs[k][0]], [errs[k][1]]], color="k",
                        capsize=3, lw=1)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=max(6.0, min(9.0, 260.0 / max(len(names), 1))))
    ax.set_xlabel("normalised population weight")
    positive = [w for w in comb_w if w > 0]
    if positive and min(positive) < 1e-3:
        ax.set_xscale("log")
    title = "Observed vs observed + predicted populations"
    if other:
        title += f"\n(all predicted and the most populated observed labels; {len(other)} others summed)"
    ax.set_title(title, fontsize=10)
    from matplotlib.patches import Patch

    handles, leg = ax.get_legend_handles_labels()
    if any(comb[k]["source"] == "predicted" for k in labels):
        handles.append(Patch(facecolor="#ee6677", hatch="//", label="predicted (bootstrap 5-95 %)"))
        leg.append("predicted (bootstrap 5-95 %)")
    ax.legend(handles, leg, fontsize=8, loc="best")
    fig.tight_layout()
    try:
        return tuple(save_figure(fig, out_stem, bbox_inches="tight"))
    finally:
        plt.close(fig)


def _dw_key(r) -> tuple:
    """Row key of a Debye-Waller table row: (source, node count, candidate rank, label)."""
    return (r.get("source") or "observed", r.get("node_count") or 0, r.get("candidate_rank") or 0, r["label"])


def _dw_entries(rows, max_rows: int | None) -> tuple[list, int]:
    """Row keys to show (observed first, then predicted; size then label) and their total
    number. Above ``max_rows`` every predicted key is kept and the observed ones with the
    largest support count fill the rest."""
    entries = sorted({_dw_key(r) for r in rows}, key=lambda k: (k[0] != "observed", k[1], k[2], k[3]))
    n_all = len(entries)
    if max_rows and n_all > max_rows:
        support: dict = {}
        for r in rows:
            support[_dw_key(r)] = max(support.get(_dw_key(r), 0), int(r.get("support_count") or 0))
        pred = [e for e in entries if e[0] == "predicted"]
        obs = sorted((e for e in entries if e[0] != "predicted"), key=lambda e: (-support[e], e[1], e[3]))
        keep = set(pred) | set(obs[: max(max_rows - len(pred), 0)])
        entries = [e for e in entries if e in keep]
    return entries, n_all


def _dw_style(r) -> str:
    """Marker style of a row: "predicted", "ensemble" (observed) or "ridge_obs" (observed ridge)."""
    if _dw_key(r)[0] == "predicted":
        return "predicted"
    return "ensemble" if r.get("method") == "ensemble" else "ridge_obs"


def _dw_draw_pair(axes, pair_rows, y_of: dict, color) -> None:
    """Plot one element pair's rows on the sigma and B axes, one marker style per row kind,
    with the bootstrap 5-95 % range as horizontal error bars where present."""
    import numpy as np

    ax_s, ax_b = axes
    for style in ("ensemble", "ridge_obs", "predicted"):
        sel = [r for r in pair_rows if _dw_style(r) == style]
        if not sel:
            continue
        y = np.array([y_of[_dw_key(r)] for r in sel])
        s = np.array([float(r["sigma"]) for r in sel])
        lo = np.array([np.nan if r.get("sigma_p05") is None else float(r["sigma_p05"]) for r in sel])
        hi = np.array([np.nan if r.get("sigma_p95") is None else float(r["sigma_p95"]) for r in sel])
        marker = {"ensemble": "o", "ridge_obs": "o", "predicted": "D"}[style]
        face = "none" if style == "ridge_obs" else color
        clipped = np.array([bool(r.get("clipped")) for r in sel])
        for ax, f in ((ax_s, _identity), (ax_b, _b_factor)):
            v = f(s)
            ax.plot(v[~clipped], y[~clipped], marker, color=color, mfc=face, ms=5, ls="none")
            # a sigma clipped to the observed range is a bound, not an estimate: its own marker
            ax.plot(v[clipped], y[clipped], "x", color=color, ms=6, mew=1.6, ls="none")
            ok = np.isfinite(lo) & np.isfinite(hi)
            if ok.any():
                xerr = [np.clip(v[ok] - f(lo[ok]), 0, None), np.clip(f(hi[ok]) - v[ok], 0, None)]
                ax.errorbar(v[ok], y[ok], xerr=xerr, fmt="none", ecolor=color, lw=0.8, capsize=2)


def _identity(v):
    return v


def _b_factor(sigma):
    """B = 8 pi^2 sigma^2 (angstrom^2) from sigma (angstrom)."""
    import numpy as np

    return 8.0 * np.pi ** 2 * sigma ** 2


def plot_debye_waller_table(result, out_stem, max_rows: int | None = MAX_DW_ROWS) -> tuple:
    """Debye-Waller figure of a prediction's table (``result.debye_waller`` rows, or a list of
    rows): per label (one row each, observed first, then predicted; size then label) and
    element pair (one marker shape/colour each), sigma in angstrom (left panel) and
    B = 8 pi^2 sigma^2 in angstrom^2 (right panel). Observed ensemble values are filled
    circles, observed ridge estimates open circles, predicted (ridge) values diamonds with
    their bootstrap 5-95 % range. The axes are logarithmic (symlog, linear below 0.01) when
    the positive sigmas span more than a factor of 20. With more than ``max_rows`` labels (default 40; None or 0:
    all), every predicted label and the best supported observed ones are shown (title says so).
    """
    plt = pyplot()
    import numpy as np

    rows = list(getattr(result, "debye_waller", result) or [])
    rows = [r for r in rows if r.get("sigma") is not None and np.isfinite(float(r["sigma"]))]
    if not rows:
        raise ValueError("no Debye-Waller rows to plot")

    entries, n_all = _dw_entries(rows, max_rows)
    index = {e: i for i, e in enumerate(entries)}
    pairs = sorted({(r["element_a"], r["element_b"]) for r in rows})
    n_p = len(pairs)
    offsets = {p: (k - (n_p - 1) / 2) * (0.6 / max(n_p, 1)) for k, p in enumerate(pairs)}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    n = len(entries)
    fig, (ax_s, ax_b) = plt.subplots(1, 2, sharey=True, figsize=(12.0, min(max(3.0, 0.3 * n + 1.8), 16.0)))
    for k, pair in enumerate(pairs):
        pair_rows = [r for r in rows if _dw_key(r) in index and (r["element_a"], r["element_b"]) == pair]
        y_of = {e: n - 1 - i + offsets[pair] for e, i in index.items()}
        _dw_draw_pair((ax_s, ax_b), pair_rows, y_of, colors[k % len(colors)])
    names = [f"{e[3]} (pred., rank {e[2]})" if e[0] == "predicted" else e[3] for e in entries]
    ax_s.set_yticks(np.arange(n)[::-1])
    ax_s.set_yticklabels(names, fontsize=max(6.0, min(9.0, 260.0 / max(n, 1))))
    n_obs = sum(1 for e in entries if e[0] != "predicted")
    if 0 < n_obs < n:
        for ax in (ax_s, ax_b):
            ax.axhline(n - n_obs - 0.5, color="0.6", lw=0.8, ls="--")
    sig = np.array([float(r["sigma"]) for r in rows if _dw_key(r) in index])
    pos = sig[sig > 0]
    log = bool(pos.size) and pos.max() / pos.min() > 20.0
    if log:  # a few extrapolated sigmas would squash the observed ones on a linear axis
        for ax in (ax_s, ax_b):  # symlog: ridge sigmas clipped to 0 stay on the axis
            ax.set_xscale("symlog", linthresh=0.01)
            ax.set_xlim(left=0.0)
    # room right of the largest sigma (or its 95 % bound) so that no marker sits on the axis edge
    top = max([float(v) for r in rows if _dw_key(r) in index for v in (r["sigma"], r.get("sigma_p95"))
               if v is not None and np.isfinite(float(v))] or [1.0])
    right = top * (1.35 if log else 1.08)
    ax_s.set_xlim(right=right)
    ax_b.set_xlim(right=8.0 * np.pi**2 * right**2)  # B = 8 pi^2 sigma^2
    ax_s.set_xlabel("sigma (angstrom)" + (", log scale" if log else ""))
    ax_b.set_xlabel("B = 8 pi^2 sigma^2 (angstrom^2)" + (", log scale" if log else ""))
    for ax in (ax_s, ax_b):
        ax.grid(axis="x", alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[k % len(colors)], marker="s", ls="none", label=f"{a}-{b}")
               for k, (a, b) in enumerate(pairs)]
    handles += [Line2D([], [], color="k", marker="o", ls="none", label="observed (ensemble)"),
                Line2D([], [], color="k", marker="o", mfc="none", ls="none", label="observed (ridge estimate)"),
                Line2D([], [], color="k", marker="D", ls="none", label="predicted (ridge, bootstrap 5-95 %)")]
    n_clipped = sum(1 for r in rows if _dw_key(r) in index and r.get("clipped"))
    if n_clipped:
        handles.append(Line2D([], [], color="k", marker="x", mew=1.6, ls="none",
                              label=f"clipped to the observed range ({n_clipped} of {len(sig)})"))
    ax_b.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    title = "Debye-Waller sigma and B factor per label and element pair"
    if n < n_all:
        title += f" ({n} of {n_all} labels: all predicted, best supported observed)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        return tuple(save_figure(fig, out_stem, bbox_inches="tight"))
    finally:
        plt.close(fig)


def plot_prediction_table(result, out_stem) -> tuple:
    """Table figure of the retained predictions: size, rank, label, share (with bootstrap
    5-95 %), mean count per frame, occupancy, lifetime (fs), Rg (angstrom), route; the
    leave-largest-size-out validation summary as a footer."""
    plt = pyplot()

    def ci(c, key, fmt):
        u = c.uncertainty.get(key) or {}
        value = c.share if key == "share" else c.predicted.get(key)
        text = format(value, fmt)
        if u.get("p05") is not None:
            text += f" [{format(u['p05'], fmt)}, {format(u['p95'], fmt)}]"
        return text

    header = [
        "n", "rank", "label", "share [5-95%]", "count/frame", "occupancy", "lifetime fs [5-95%]", "Rg A",
        "route / source",
    ]
    cells = [
        [
            str(c.node_count),
            str(c.rank),
            c.label,
            ci(c, "share", ".3f"),
            format(c.predicted["mean_count_per_frame"], ".3g"),
            format(c.predicted["occupancy_fraction"], ".3f"),
            ci(c, "mean_lifetime_fs", ".3g"),
            format(c.predicted["mean_radius_of_gyration"], ".2f"),
            c.route + (f" ({c.source_label})" if c.source_label else ""),
        ]
        for c in result.candidates
    ] or [["-"] * len(header)]
    fig, ax = plt.subplots(figsize=(12, 0.45 * len(cells) + 1.2))
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=header, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(len(header))))
    ax.set_title(f"Predicted larger clusters (share threshold {result.settings.get('share_threshold')})")
    v = result.validation or {}
    if v.get("held_out_node_count") is not None:

        def num(key):
            value = v.get(key)
            return "n/a" if value is None else format(float(value), ".2f")

        top = v["predicted"][0]["label"] if v.get("predicted") else "-"
        seen = v["observed"][0]["label"] if v.get("observed") else "-"
        fig.text(
            0.01, 0.01,
            f"leave-largest-size-out (n = {v['held_out_node_count']}): predicted rank 1 {top}, "
            f"observed most common {seen}; "
            f"label recall {num('label_recall')}, precision {num('label_precision')}, "
            f"share overlap {num('share_overlap')}",
            fontsize=7,
        )
    elif v.get("train_max_node_count") is not None:
        sm = v.get("summary") or {}

        def g(key):
            value = sm.get(key)
            return "n/a" if value is None else format(float(value), ".3g")

        fig.text(
            0.01, 0.01,
            f"extrapolation validation ({v.get('population_model')}): train n <= {v['train_max_node_count']}, "
            f"predict {v.get('target_node_counts')}; "
            f"worst count factor {g('max_count_factor')}, "
            f"90% interval covers {sm.get('count_coverage_90')}/{sm.get('count_intervals')}, "
            f"mean share TV {g('mean_share_total_variation')}, max Rg error {g('max_rg_relative_error')}",
            fontsize=7,
        )
    elif v.get("skipped"):
        fig.text(0.01, 0.01, f"validation skipped: {v['skipped']}", fontsize=7)
    fig.tight_layout()
    try:
        return tuple(save_figure(fig, out_stem, bbox_inches="tight"))
    finally:
        plt.close(fig)


def plot_size_extrapolation(validation, out_stem, title: str | None = None) -> tuple:
    """Observed vs predicted clusters per frame by node count for every compared population
    model of an extrapolation validation (``ValidationReport`` or its ``to_dict()``), log
    scale, with the bootstrap 5-95 % intervals; the training range is shaded. A predicted 0
    (the reference ridge clips extrapolated counts to 0) is drawn at the bottom edge."""
    plt = pyplot()
    v = validation.to_dict() if hasattr(validation, "to_dict") else dict(validation)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    comp = v.get("comparison") or {}
    first: dict = next(iter(comp.values()), {"sizes": []})
    allobs = {int(n): c for n, c in ((v.get("settings") or {}).get("observed_count_per_frame") or {}).items()}
    for e in first["sizes"]:
        allobs.setdefault(e["node_count"], e["observed_count_per_frame"])
    hi_n = max([e["node_count"] for e in first["sizes"]] or [1])
    ns = sorted(n for n in allobs if n <= hi_n and allobs[n] > 0)
    ax.plot(ns, [allobs[n] for n in ns], "ko", label="observed", zorder=5)
    floor = min([allobs[n] for n in ns] or [1.0]) / 30.0
    for k, (model, c) in enumerate(comp.items()):
        rows = c.get("sizes") or []
        x = [e["node_count"] + 0.08 * (k - 1.5) for e in rows]
        y = [max(e["predicted_count_per_frame"], floor) for e in rows]  # 0 drawn at the bottom edge
        lo = [e.get("predicted_count_p05") for e in rows]
        hi = [e.get("predicted_count_p95") for e in rows]
        line = ax.plot(x, y, "-s", ms=4, label=model)[0]
        if all(a is not None and b is not None for a, b in zip(lo, hi)) and rows:
            ax.vlines(x, [max(a, 1e-12) for a in lo], [max(b, 1e-12) for b in hi], color=line.get_color(), lw=1)
    ax.axvspan(0.5, v["train_max_node_count"] + 0.5, color="0.9", zorder=0, label="training sizes")
    ax.set_yscale("log")
    ax.set_ylim(floor * 0.8, max([allobs[n] for n in ns] or [1.0]) * 3.0)
    ax.set_xlabel("node count n")
    ax.set_ylabel("clusters per frame (all compositions)")
    ax.set_title(title or f"extrapolation validation: train n <= {v['train_max_node_count']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        return tuple(save_figure(fig, out_stem, bbox_inches="tight"))
    finally:
        plt.close(fig)
