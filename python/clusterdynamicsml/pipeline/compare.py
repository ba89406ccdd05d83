"""``runs compare``: two saved runs side by side (settings that differ, summary numbers, SAXS
verdicts, predictions), and :func:`saxs_verdict`, the SAXS verdict of one saved run."""
from __future__ import annotations

from pathlib import Path

from .._io import read_json
from .runs import _read_payload

__all__ = ["compare_runs", "saxs_verdict"]


def _prediction_rows(path: Path, payload: dict) -> dict:
    """{(node count, label): {"predicted_population_share", "predicted_mean_lifetime_fs"}}."""
    pred = payload.get("prediction")
    rel = (payload.get("outputs") or {}).get("prediction_dataset")
    if pred is None and rel and (path.parent / rel).is_file():
        pred = read_json(path.parent / rel)
    out: dict = {}
    if not isinstance(pred, dict):
        return out
    for r in pred.get("predictions", []):  # predictions-table rows
        if isinstance(r, dict):
            out[(r.get("target_node_count"), r.get("label"))] = r
    for c in pred.get("candidates", []):  # PredictionResult.to_dict candidates
        if isinstance(c, dict):
            out[(c.get("node_count"), c.get("label"))] = {
                "predicted_population_share": c.get("share"),
                "predicted_mean_lifetime_fs": (c.get("predicted") or {}).get("mean_lifetime_fs")}
    return out


def _fmt_cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return ", ".join(str(i) for i in v) or "[]"
    return str(v)


def saxs_verdict(path: Path, payload: dict) -> dict:
    """Does a saved run's SAXS support its cluster model? {"supported": True / False / None,
    "reason": one sentence, "text": one line}, read from ``<name>_saxs_fit.json`` (else from
    the dataset's SAXS evidence). ``supported`` is None for a run without SAXS ("no SAXS") or
    with SAXS but no experimental data to judge it by."""
    outputs = payload.get("outputs") or {}
    saxs = payload.get("saxs")
    fit_rel = outputs.get("saxs_fit_json")
    evidence = None
    if fit_rel and (path.parent / fit_rel).is_file():
        try:
            evidence = read_json(path.parent / fit_rel)
        except (OSError, ValueError) as exc:
            return {"supported": None, "reason": f"{fit_rel}: unreadable ({exc})",
                    "text": f"unknown ({fit_rel} is unreadable)"}
    elif isinstance(saxs, dict) and isinstance(saxs.get("evidence"), dict):
        evidence = saxs["evidence"]
    if evidence is None:
        if isinstance(saxs, dict) and saxs.get("components"):
            return {"supported": None, "reason": "no experimental data to judge the model by",
                    "text": "SAXS without experimental data (no verdict)"}
        return {"supported": None, "reason": "the run computed no SAXS", "text": "no SAXS"}
    curves = evidence.get("curves") if isinstance(evidence.get("curves"), list) else [evidence]
    parts, flags = [], []
    for k, cur in enumerate(curves, start=1):
        ev = (cur.get("evidence") or {}) if isinstance(cur, dict) else {}
        flag = ev.get("supported")
        flags.append(flag if isinstance(flag, bool) else None)
        word = "unknown" if flags[-1] is None else "supported" if flags[-1] else "not supported"
        model = f" ({ev['cluster_model']})" if ev.get("cluster_model") else ""
        parts.append((f"curve {k}: " if len(curves) > 1 else "") + f"{word}{model}: {ev.get('reason') or '-'}")
    supported = flags[0] if len(set(flags)) == 1 else None
    reason = "; ".join(p.split(": ", 1)[1] if len(curves) == 1 else p for p in parts)
    return {"supported": supported, "reason": reason, "text": "; ".join(parts)}


def compare_runs(run_a, run_b) -> dict:
    """Settings, summary numbers, SAXS verdicts and predictions of two runs side by side.

    Returns {"a", "b" (dataset paths), "settings": [(key, a, b)] for keys that differ,
    "summary": [(key, a, b)], "saxs": {"a", "b": :func:`saxs_verdict`}, "predictions":
    [(size, label, share_a, share_b, lifetime_a, lifetime_b)], "text": a printable table}."""
    from .config import flatten

    pa, a = _read_payload(run_a)
    pb, b = _read_payload(run_b)
    fa, fb = flatten(a.get("settings", {})), flatten(b.get("settings", {}))
    settings = [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
    sa, sb = a.get("summary", {}), b.get("summary", {})
    summary = [(k, sa.get(k), sb.get(k)) for k in sorted(set(sa) | set(sb))]
    ra, rb = _prediction_rows(pa, a), _prediction_rows(pb, b)

    def skey(k):
        return (-(k[0] or 0), str(k[1]))

    preds = []
    for key in sorted(set(ra) | set(rb), key=skey):
        x, y = ra.get(key, {}), rb.get(key, {})
        preds.append((key[0], key[1], x.get("predicted_population_share"), y.get("predicted_population_share"),
                      x.get("predicted_mean_lifetime_fs"), y.get("predicted_mean_lifetime_fs")))

    f = _fmt_cell
    lines = [f"A: {pa.parent}", f"B: {pb.parent}", "", "settings that differ:"]
    if settings:
        w = max(len(k) for k, _, _ in settings)
        lines += [f"  {k:<{w}s}  A = {f(x):<24s} B = {f(y)}" for k, x, y in settings]
    else:
        lines.append("  (none)")
    lines += ["", "summary:"]
    w = max([len(k) for k, _, _ in summary] + [8])
    lines += [f"  {k:<{w}s}  A = {f(x):<24s} B = {f(y)}" for k, x, y in summary]
    saxs = {"a": saxs_verdict(pa, a), "b": saxs_verdict(pb, b)}
    lines += ["", "SAXS verdict (do the experimental data support the cluster model?):",
              f"  A = {saxs['a']['text']}", f"  B = {saxs['b']['text']}"]
    lines += ["", "predictions (size, label: population share A / B, mean lifetime fs A / B):"]
    if preds:
        lines += [f"  {s!s:>4} {lab!s:<14s} share {f(x1):>8s} / {f(y1):<8s}  lifetime {f(x2):>8s} / {f(y2)}"
                  for s, lab, x1, y1, x2, y2 in preds]
    else:
        lines.append("  (no predictions in either run)")
    return {"a": str(pa), "b": str(pb), "settings": settings, "summary": summary, "saxs": saxs, "predictions": preds,
            "text": "\n".join(lines)}
