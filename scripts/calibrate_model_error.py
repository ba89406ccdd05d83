"""Measure the model-form error per node of the size laws from held-out validation files.

The bootstrap of ``predict/uncertainty.py`` widens every extrapolated count per frame by
``exp(k_count d z)`` and every Rg by ``exp(k_rg d z)`` (``d`` node counts beyond the training
range, ``z ~ N(0, 1)``), because resampling the observations cannot show that a law itself
drifts away from the truth beyond the observed sizes. This script measures ``k`` from
validation JSON files written by ``clusterdynamicsml validate RUNFILE --train-max-nodes K
--json OUT.json`` on real trajectories::

    k = sqrt(mean(e^2 / d^2)),   e = log(observed / predicted),   d = n - K

over every held-out size with at least ``--min-clusters`` observed clusters (so that the
observed value itself is known to about 1/sqrt(N); its sampling noise is not removed, so
``k`` errs on the wide side). It also runs a leave-one-file-out check: ``k`` from the other
files, then whether the held-out observed value lies in the 90 % interval
``predicted x exp(+-1.645 sqrt(s_b^2 + (k d)^2))``, ``s_b`` the file's bootstrap spread in log
units (``(log p95 - log p05) / 3.29``; validate the files with ``model_error`` set to zero,
e.g. ``[predict] model_error_per_node = {count_per_frame = 0, rg = 0}``, so that ``s_b`` is
the sampling spread alone).

    python scripts/calibrate_model_error.py VALIDATION.json [...] [--min-clusters 50]

Prints ``k_count`` and ``k_rg``, the points behind them and the leave-one-out coverage per
file. ``MODEL_ERROR_PER_NODE`` in ``predict/uncertainty.py`` holds the values measured on the
trajectories listed in docs/predict.md.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

Z90 = 1.6448536269514722


def _points(doc: dict, min_clusters: float) -> dict:
    K = int(doc["train_max_node_count"])
    out: dict = {"count": [], "rg": []}
    for s in doc["sizes"]:
        d = int(s["node_count"]) - K
        obs, pred = s.get("observed_count_per_frame"), s.get("predicted_count_per_frame")
        n_obs = s.get("observed_clusters")
        if d > 0 and obs and pred and n_obs is not None and n_obs >= min_clusters:
            out["count"].append((d, math.log(obs / pred), _spread(s, "predicted_count")))
            org, prg = s.get("observed_rg"), s.get("predicted_rg")
            if org and prg:
                out["rg"].append((d, math.log(org / prg), _spread(s, "predicted_rg")))
    return out


def _spread(s: dict, key: str) -> float:
    lo, hi = s.get(f"{key}_p05"), s.get(f"{key}_p95")
    if not lo or not hi or lo <= 0 or hi <= 0:
        return 0.0
    return (math.log(hi) - math.log(lo)) / (2 * Z90)


def _k(points: list) -> float | None:
    if not points:
        return None
    return math.sqrt(sum((e / d) ** 2 for d, e, _ in points) / len(points))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help="validation JSON files (clusterdynamicsml validate --json)")
    ap.add_argument("--min-clusters", type=float, default=50.0,
                    help="held-out sizes need at least this many observed clusters (default 50)")
    args = ap.parse_args(argv)
    docs = {}
    for f in args.files:
        try:
            docs[f.stem] = _points(json.loads(f.read_text()), args.min_clusters)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"{f}: not a validation file ({exc})", file=sys.stderr)
            return 2
    for q in ("count", "rg"):
        pts = [p for v in docs.values() for p in v[q]]
        k = _k(pts)
        print(f"k_{q} = {k:.4f} per node from {len(pts)} held-out sizes of {len(docs)} files" if k is not None
              else f"k_{q}: no usable held-out size")
    print("leave-one-file-out 90 % coverage (count, rg):")
    for name, v in docs.items():
        row = []
        for q in ("count", "rg"):
            k = _k([p for other, w in docs.items() if other != name for p in w[q]])
            if k is None or not v[q]:
                row.append("-")
                continue
            hit = sum(abs(e) <= Z90 * math.hypot(sb, k * d) for d, e, sb in v[q])
            row.append(f"{hit}/{len(v[q])} (k {k:.3f})")
        print(f"  {name}: count {row[0]}, rg {row[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
