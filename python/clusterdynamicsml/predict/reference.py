"""The reference method's candidate pipeline around the ridge models (ref §4.3 to §4.5):
its bootstrap over training rows, its leave-largest-size-out validation and the comparison
of candidates with labels observed at the same sizes. Moved whole from ``core.py``; the
numbers are those of the reference tool path (``population_model = "reference"``).

Units: counts per frame, fractions, fs, 1/ps, angstrom.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..library.read import AtomTypes, TrainingRow, parse_label_counts
from .candidates import PREDICTED_FIELDS, composition_distance, predict_candidates, share_weight, tail_anchored_mass
from .models import ClusterPropertyModel
from .uncertainty import summary as _summary


def _fit_and_predict(rows, types, sizes, dt, k, threshold, population_transform="reference"):
    model = ClusterPropertyModel(types.node_elements, dt, population_transform=population_transform).fit(rows)
    return model, predict_candidates(rows, model, types, sizes, dt, k, threshold)


def bootstrap_uncertainty(
    rows,
    types: AtomTypes,
    candidates,
    target_sizes,
    timestep_fs: float,
    n_bootstrap: int = 200,
    seed: int = 0,
    candidates_per_size: int = 3,
    share_threshold: float = 0.02,
    population_transform: str = "reference",
) -> dict:
    """Bootstrap over training rows (resampled with replacement, ``numpy.random.default_rng(seed)``).

    Each replicate refits every model, re-predicts every target of each retained candidate
    (fixed compositions), recomputes shares over that candidate set and the tail-anchored
    weights, and reruns the whole candidate pipeline to count how often each label is retained.
    Sets ``candidate.uncertainty`` to ``{quantity: summary}`` and returns
    ``{"n_bootstrap", "seed", "failed_replicates"}``.
    """
    rows = list(rows)
    rng = np.random.default_rng(seed)
    samples: dict[int, dict[str, list]] = {id(c): {} for c in candidates}
    retained_counts = {(c.node_count, c.label): 0 for c in candidates}
    failed = 0
    done = 0
    for _ in range(int(n_bootstrap)):
        idx = rng.integers(0, len(rows), len(rows))
        sample = [rows[i] for i in idx]
        try:
            model, out = _fit_and_predict(
                sample, types, target_sizes, timestep_fs, candidates_per_size, share_threshold, population_transform
            )
        except (ValueError, np.linalg.LinAlgError):
            failed += 1
            continue
        done += 1
        for c in out["candidates"]:
            size_label = (c.node_count, c.label)
            if size_label in retained_counts:
                retained_counts[size_label] += 1
        preds = [model.predict(c.counts) for c in candidates]
        counts = [model.predict_counts(c.counts) for c in candidates]
        sw = [share_weight(p, timestep_fs) for p in preds]
        total = max(sum(sw), 1e-12)
        base = [max(p["mean_count_per_frame"], 0.0) * max(p["occupancy_fraction"], 0.05) for p in preds]
        mass = tail_anchored_mass(sample, sorted({c.node_count for c in candidates}), base)["weight"]
        for c, p, cnt, w in zip(candidates, preds, counts, sw):
            s = samples[id(c)]
            for key in PREDICTED_FIELDS:
                s.setdefault(key, []).append(p[key])
            for el, v in cnt.items():
                s.setdefault(f"count_{el}", []).append(v)
            s.setdefault("share", []).append(w / total)
            s.setdefault("weight", []).append(w / total * mass)
    for c in candidates:
        c.uncertainty = {k: _summary(v) for k, v in samples[id(c)].items()}
        c.uncertainty["selection_frequency"] = retained_counts[(c.node_count, c.label)] / done if done else None
    return {"n_bootstrap": int(n_bootstrap), "seed": int(seed), "failed_replicates": failed}


def _observed_at_sizes(rows_or_table, types: AtomTypes, sizes) -> dict:
    """{size: [{label, weight, counts, props...}]} of observed labels (weight > 0) at ``sizes``."""
    out: dict[int, list[dict]] = {s: [] for s in sizes}
    for r in rows_or_table:
        if isinstance(r, TrainingRow):
            label, counts, props = r.label, r.element_counts, dataclasses.asdict(r)
        else:
            label = r["label"]
            try:
                counts = parse_label_counts(label)
            except ValueError:
                continue
            props = r
        n = sum(counts.get(e, 0) for e in types.node_elements)
        if n not in out:
            continue
        w = max(float(props.get("mean_count_per_frame") or 0), 0.0) * max(
            float(props.get("occupancy_fraction") or 0), 0.05
        )
        if w <= 0:
            continue
        out[n].append({"label": label, "weight": w, "counts": {e: int(c) for e, c in counts.items()}, "props": props})
    return out


def compare_with_observed(candidates, observed_rows, types: AtomTypes, predicted_mass: float | None = None) -> dict:
    """Compare predicted candidates with labels actually observed at the same node counts.

    observed_rows : ``TrainingRow`` objects or lifetime-table rows (dicts with label,
        mean_count_per_frame, occupancy_fraction, ...). Observed weight is
        ``max(count, 0) max(occ, 0.05)``, normalised within each size.

    Per size: observed and predicted labels with within-size shares, ``top1_match`` (rank-1
    label is the dominant observed label), ``label_recall`` (observed population fraction whose
    label was predicted), ``label_precision`` (fraction of predicted labels observed),
    ``share_overlap`` (sum of min(predicted, observed) within-size shares; 1 is perfect),
    ``top1_composition_distance`` (to the dominant observed composition), predicted vs observed
    mass, and per matched label the predicted and observed properties with whether the
    observed value lies in the bootstrap 5-95 % interval.
    """
    sizes = sorted({c.node_count for c in candidates})
    observed = _observed_at_sizes(observed_rows, types, sizes)
    per_size = {}
    for s in sizes:
        preds = sorted((c for c in candidates if c.node_count == s), key=lambda c: c.rank)
        ptot = sum(c.share for c in preds) or 1.0
        pshare = {c.label: c.share / ptot for c in preds}
        obs = sorted(observed[s], key=lambda o: (-o["weight"], o["label"]))
        otot = sum(o["weight"] for o in obs)
        oshare = {o["label"]: o["weight"] / otot for o in obs} if otot > 0 else {}
        entry = {
            "node_count": s,
            "observed": [{"label": o["label"], "share": oshare[o["label"]], "weight": o["weight"]} for o in obs],
            "predicted": [
                {"label": c.label, "rank": c.rank, "share": pshare[c.label], "weight": c.weight} for c in preds
            ],
            "observed_mass": otot,
            "predicted_mass": sum(c.weight for c in preds),
        }
        if obs:
            entry["top1_match"] = bool(preds) and preds[0].label == obs[0]["label"]
            entry["label_recall"] = float(sum(v for k, v in oshare.items() if k in pshare))
            entry["label_precision"] = sum(1 for k in pshare if k in oshare) / len(pshare) if pshare else 0.0
            entry["share_overlap"] = sum(min(pshare.get(k, 0.0), oshare.get(k, 0.0)) for k in set(pshare) | set(oshare))
            entry["top1_composition_distance"] = (
                composition_distance(preds[0].counts, obs[0]["counts"], s) if preds else None
            )
            matched = []
            for c in preds:
                o = next((o for o in obs if o["label"] == c.label), None)
                if o is None:
                    continue
                props = {}
                for key in (
                    "mean_count_per_frame",
                    "occupancy_fraction",
                    "mean_lifetime_fs",
                    "mean_radius_of_gyration",
                    "mean_max_radius",
                ):
                    ov = o["props"].get(key)
                    if ov is None or key not in c.predicted:
                        continue
                    u = c.uncertainty.get(key, {})
                    inside = None if u.get("p05") is None else bool(u["p05"] <= float(ov) <= u["p95"])
                    props[key] = {"predicted": c.predicted[key], "observed": float(ov), "in_interval_05_95": inside}
                matched.append({"label": c.label, "properties": props})
            entry["matched"] = matched
        else:
            entry.update(
                top1_match=None,
                label_recall=None,
                label_precision=None,
                share_overlap=None,
                top1_composition_distance=None,
                matched=[],
            )
        per_size[s] = entry
    return {"sizes": per_size, "predicted_mass_total": predicted_mass}


def leave_largest_size_out(
    rows,
    types: AtomTypes,
    timestep_fs: float,
    candidates_per_size: int = 3,
    share_threshold: float = 0.02,
    n_bootstrap: int = 50,
    seed: int = 0,
    population_transform: str = "reference",
) -> dict:
    """Train without the largest observed node count, predict it, compare with what was observed.

    Needs at least three distinct observed node counts (two remain for training); otherwise
    returns ``{"skipped": reason}``.
    """
    rows = list(rows)
    sizes = sorted({r.node_count for r in rows})
    if len(sizes) < 3:
        return {"skipped": f"needs at least 3 distinct observed node counts, got {sizes}"}
    held = sizes[-1]
    train = [r for r in rows if r.node_count < held]
    test = [r for r in rows if r.node_count == held]
    try:
        _, out = _fit_and_predict(
            train, types, [held], timestep_fs, candidates_per_size, share_threshold, population_transform
        )
    except ValueError as exc:
        return {"skipped": f"could not fit without node count {held}: {exc}"}
    cands = out["candidates"]
    if n_bootstrap:
        bootstrap_uncertainty(
            train,
            types,
            cands,
            [held],
            timestep_fs,
            n_bootstrap,
            seed,
            candidates_per_size,
            share_threshold,
            population_transform,
        )
    cmp = compare_with_observed(cands, test, types, out["mass"]["weight"])
    report = {"held_out_node_count": held, "train_node_counts": sizes[:-1], "train_labels": [r.label for r in train]}
    report.update(cmp["sizes"][held])
    report["observed_mass"] = sum(r.observed_weight for r in test)
    report["predicted_mass"] = out["mass"]["weight"]
    report["rejected"] = out["rejected"]
    return report
