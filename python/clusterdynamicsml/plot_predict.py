"""Figures of a ``PredictionResult``: observed vs observed-plus-predicted population
histograms and a prediction table. Each function writes ``<stem>.png`` and ``<stem>.svg``
(matplotlib, Agg backend, imported inside the functions) and returns the two paths.
"""
from __future__ import annotations

from pathlib import Path


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from exc
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_stem) -> tuple:
    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_suffix(".png"), stem.with_suffix(".svg")
    fig.savefig(png, dpi=150, bbox_inches="tight")
    fig.savefig(svg, bbox_inches="tight")
    return png, svg


def plot_population_histograms(result, out_stem) -> tuple:
    """Bar chart of normalised population weights per label: observed only vs observed plus
    predicted (ref §4.9 weights). Predicted bars are hatched and carry bootstrap 5-95 % error
    bars of their weight when available. Labels are ordered by node count, then label."""
    plt = _pyplot()
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

    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(labels) + 2.0), 4.2))
    ax.bar(x - 0.2, [obs[k]["normalized_weight"] if k in obs else 0.0 for k in labels], 0.4, label="observed", color="#4477aa")
    colors = ["#ee6677" if comb[k]["source"] == "predicted" else "#88ccee" for k in labels]
    hatches = ["//" if comb[k]["source"] == "predicted" else "" for k in labels]
    bars = ax.bar(x + 0.2, [comb[k]["normalized_weight"] for k in labels], 0.4, label="observed + predicted", color=colors)
    for b, h in zip(bars, hatches):
        b.set_hatch(h)
    for i, k in enumerate(labels):
        if k in errs:
            ax.errorbar(x[i] + 0.2, comb[k]["normalized_weight"], yerr=[[errs[k][0]], [errs[k][1]]], color="k", capsize=3, lw=1)
    ax.set_xticks(x)
    ax.set_xticklabels(labels, rotation=60, ha="right")
    ax.set_ylabel("normalised population weight")
    if labels and min(comb[k]["normalized_weight"] for k in labels) < 1e-3:
        ax.set_yscale("log")
    ax.set_title("Observed vs observed + predicted populations")
    from matplotlib.patches import Patch

    handles, names = ax.get_legend_handles_labels()
    if any(comb[k]["source"] == "predicted" for k in labels):
        handles.append(Patch(facecolor="#ee6677", hatch="//", label="predicted (bootstrap 5-95 %)"))
        names.append("predicted (bootstrap 5-95 %)")
    ax.legend(handles, names)
    fig.tight_layout()
    try:
        return _save(fig, out_stem)
    finally:
        plt.close(fig)


def plot_prediction_table(result, out_stem) -> tuple:
    """Table figure of the retained predictions: size, rank, label, share (with bootstrap
    5-95 %), mean count per frame, occupancy, lifetime (fs), Rg (angstrom), route; the
    leave-largest-size-out validation summary as a footer."""
    plt = _pyplot()

    def ci(c, key, fmt):
        u = c.uncertainty.get(key) or {}
        value = c.share if key == "share" else c.predicted.get(key)
        text = format(value, fmt)
        if u.get("p05") is not None:
            text += f" [{format(u['p05'], fmt)}, {format(u['p95'], fmt)}]"
        return text

    header = ["n", "rank", "label", "share [5-95%]", "count/frame", "occupancy", "lifetime fs [5-95%]", "Rg A", "route / source"]
    cells = [
        [str(c.node_count), str(c.rank), c.label, ci(c, "share", ".3f"), format(c.predicted["mean_count_per_frame"], ".3g"), format(c.predicted["occupancy_fraction"], ".3f"), ci(c, "mean_lifetime_fs", ".3g"), format(c.predicted["mean_radius_of_gyration"], ".2f"), c.route + (f" ({c.source_label})" if c.source_label else "")]
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
            f"leave-largest-size-out (n = {v['held_out_node_count']}): predicted rank 1 {top}, observed most common {seen}; "
            f"label recall {num('label_recall')}, precision {num('label_precision')}, share overlap {num('share_overlap')}",
            fontsize=7,
        )
    elif v.get("skipped"):
        fig.text(0.01, 0.01, f"validation skipped: {v['skipped']}", fontsize=7)
    fig.tight_layout()
    try:
        return _save(fig, out_stem)
    finally:
        plt.close(fig)
