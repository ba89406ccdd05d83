"""Size-resolved extrapolation: population, composition, shape and dynamics laws together.

``fit_size_models(observed, types, population_model, ...)`` fits the four laws of
``population.py``, ``composition.py`` and ``scaling.py`` on the observed sizes;
``predict_sizes(models, targets)`` evaluates them at the target node counts, and
``size_candidates(...)`` turns the most probable compositions into ``Candidate`` records for
the structure builder and the SAXS mixture.

Per target node count ``n`` (units: clusters per frame, fractions, fs, 1/ps, angstrom):

* ``count_per_frame = c(n)`` (all compositions together, ``population.py``);
* ``distribution``: every composition with probability >= 1e-4, the within-size shares
  ``P(label | n)`` (sum 1);
* per composition: count per frame ``P c(n)``, occupancy ``1 - exp(-P c(n))`` (Poisson: the
  fraction of frames holding at least one such cluster), shape from its tracked-atom count;
* per size: ``rg``, ``max_radius``, semiaxes (share-weighted over the distribution),
  ``lifetime_fs`` with ``at_dt_floor``, association / dissociation rates (1/ps).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .candidates import Candidate, composition_distance
from .composition import CompositionModel
from .population import PopulationFit, fit_population
from .scaling import DynamicsLaws, ShapeLaws

MIN_PROBABILITY = 1e-4


@dataclass
class SizeModels:
    population: PopulationFit
    composition: CompositionModel
    shape: ShapeLaws
    dynamics: DynamicsLaws

    def to_dict(self) -> dict:
        return {
            "population": self.population.to_dict(),
            "composition": self.composition.to_dict(),
            "shape": self.shape.to_dict(),
            "dynamics": self.dynamics.to_dict(),
        }


def _size_table(observed):
    by_size = observed.by_size()
    counts = [d["count_per_frame"] for d in by_size.values()]
    return list(by_size), counts, [d["observations"] for d in by_size.values()]


def fit_size_models(
    observed,
    types,
    population_model: str,
    max_target: int,
    timestep_fs: float,
    bond_length=None,
    box_lengths=None,
    tail_observed=None,
    shape_regime=None,
) -> SizeModels:
    """Fit every law on ``observed`` (an ``ObservedClusters``). Raises ValueError when fewer
    than two node counts with clusters were observed. ``tail_observed`` (default
    ``observed``): the observation the population law's tail anchor is tested against.
    ``shape_regime``: node counts of the shape laws' scaling regime (``ShapeLaws.fit``)."""
    sizes, counts, obs = _size_table(observed)
    if len(sizes) < 2:
        raise ValueError(f"at least 2 observed node counts with clusters are needed to extrapolate, got {sizes}")
    tail = None if tail_observed is None else _size_table(tail_observed)
    pop = fit_population(population_model, sizes, counts, obs, max_target, tail=tail)
    return SizeModels(
        pop,
        CompositionModel.fit(observed, types),
        ShapeLaws.fit(observed, bond_length, box_lengths, shape_regime),
        DynamicsLaws.fit(observed, timestep_fs),
    )


def predict_size(models: SizeModels, n: int) -> dict:
    """Every predicted quantity at node count ``n`` (module docs)."""
    count = float(models.population.count_per_frame(n))
    dist = models.composition.distribution(n, MIN_PROBABILITY)
    comps = []
    acc: dict[str, float] = {}
    flags: set[str] = set()
    for label, counts, p in dist:
        shape = models.shape.predict(sum(counts.values()))
        comps.append({"label": label, "counts": counts, "share": p, "count_per_frame": p * count, "shape": shape})
        for key in ("rg", "max_radius", "semiaxis_a", "semiaxis_b", "semiaxis_c"):
            if key in shape:
                acc[key] = acc.get(key, 0.0) + p * shape[key]
        flags.update(shape.get("clipped", ()))
        if shape.get("exceeds_half_box"):
            flags.add("exceeds_half_box")
    tau, floor = models.dynamics.lifetime_at(n)
    rates = models.dynamics.rates(count, tau)
    out = {
        "node_count": int(n),
        "count_per_frame": count,
        "shares": {c["label"]: c["share"] for c in comps},
        "compositions": comps,
        "lifetime_fs": tau,
        "lifetime_at_dt_floor": floor,
        **rates,
        "flags": sorted(flags),
    }
    out.update(acc)
    return out


def predict_sizes(models: SizeModels, targets) -> list:
    return [predict_size(models, int(n)) for n in targets]


def _reference(counts, n, observed):
    labs = [o for o in observed.labels if o.representative_path] or list(observed.labels)
    if not labs:
        return None, None
    best = min(labs, key=lambda o: (abs(n - o.node_count), composition_distance(counts, o.counts, n), o.label))
    return best.label, best.representative_path


def size_candidates(
    predictions: list, observed, timestep_fs: float, candidates_per_size: int = 3, share_threshold: float = 0.02
) -> tuple:
    """The ``candidates_per_size`` most probable compositions at each size as ``Candidate``
    records (rank 1 always kept; the others need ``share >= share_threshold``).

    ``share`` is the within-size probability (the shares of all compositions of a size sum to
    1; the retained ones sum to less), ``predicted["mean_count_per_frame"]`` the clusters per
    frame of that composition, ``weight`` the ref §4.9 population weight
    ``count * max(occupancy, 0.05)`` (the same definition as the observed weights).
    Returns ``(candidates, dropped)``, candidates ordered by size descending then rank.
    """
    out, dropped = [], []
    dt = float(timestep_fs)
    for pred in sorted(predictions, key=lambda p: -p["node_count"]):
        n = pred["node_count"]
        for rank, comp in enumerate(pred["compositions"], start=1):
            if rank > candidates_per_size or (rank > 1 and comp["share"] < share_threshold):
                dropped.append(
                    {
                        "node_count": n,
                        "label": comp["label"],
                        "share": comp["share"],
                        "reason": "below share threshold"
                        if rank <= candidates_per_size
                        else "beyond candidates_per_size",
                    }
                )
                continue
            cnt = comp["count_per_frame"]
            occ = 1.0 - math.exp(-cnt)
            shape = comp["shape"]
            predicted = {
                "mean_count_per_frame": cnt,
                "occupancy_fraction": occ,
                "mean_lifetime_fs": max(pred["lifetime_fs"], dt),
                "association_rate_per_ps": None
                if pred.get("association_rate_per_ps") is None
                else pred["association_rate_per_ps"] * comp["share"],
                "dissociation_rate_per_ps": None
                if pred.get("dissociation_rate_per_ps") is None
                else pred["dissociation_rate_per_ps"] * comp["share"],
                "mean_radius_of_gyration": shape.get("rg", float("nan")),
                "mean_max_radius": shape.get("max_radius", float("nan")),
                "mean_semiaxis_a": shape.get("semiaxis_a", float("nan")),
                "mean_semiaxis_b": shape.get("semiaxis_b", float("nan")),
                "mean_semiaxis_c": shape.get("semiaxis_c", float("nan")),
            }
            notes = [
                f"P({comp['label']} | n={n}) = {comp['share']:.3g} of {pred['count_per_frame']:.3g} clusters per frame"
            ]
            if pred["lifetime_at_dt_floor"]:
                notes.append("lifetime at the frame-spacing floor (an upper bound)")
            for flag in shape.get("clipped", ()):
                notes.append(f"{flag} bounded by the compact-sphere / straight-chain limit")
            if shape.get("exceeds_half_box"):
                notes.append("max radius exceeds half the source box")
            ref_label, ref_path = _reference(comp["counts"], n, observed)
            c = Candidate(n, comp["label"], dict(comp["counts"]), "distribution", None, "; ".join(notes), predicted,
                          score=comp["share"], share=comp["share"], weight=cnt * max(occ, 0.05), rank=rank,
                          reference_label=ref_label, reference_path=ref_path)
            out.append(c)
    return out, dropped


def _scaled(summary_: dict, value: float, centre: float | None) -> dict:
    """A size-level interval moved to one composition: the same relative spread."""
    if not summary_ or summary_.get("p05") is None or not centre:
        return {}
    f = value / centre
    return {
        k: (None if summary_.get(k) is None else summary_[k] * f)
        if k in ("mean", "std", "p05", "p50", "p95")
        else summary_.get(k)
        for k in summary_
    }


def predict_by_size(
    observed,
    types,
    targets,
    population_model: str,
    timestep_fs: float,
    *,
    candidates_per_size: int = 3,
    share_threshold: float = 0.02,
    n_bootstrap: int = 200,
    seed: int = 0,
    bond_length=None,
    box_lengths=None,
    model_error: dict | None = None,
) -> dict:
    """Fit, predict, bootstrap and make candidates (the non-reference population models).

    Returns ``{"models", "sizes", "candidates", "dropped", "bootstrap", "warnings"}``;
    every ``sizes`` entry carries ``<quantity>_p05/_p50/_p95`` from the bootstrap (None
    without one) and ``flags``. ``model_error``: the model-form error per node of the
    bootstrap (``uncertainty.bootstrap_sizes``; default ``MODEL_ERROR_PER_NODE``).
    """
    from .uncertainty import SIZE_KEYS, bootstrap_sizes

    targets = sorted(int(n) for n in targets)
    models = fit_size_models(observed, types, population_model, max(targets), timestep_fs, bond_length, box_lengths)
    preds = predict_sizes(models, targets)
    warnings = list(models.population.warnings) + list(models.shape.notes)
    fit = models.population
    if fit.chi2_reduced is not None and fit.chi2_reduced > 10:
        warnings.append(
            f"the {fit.model} population law does not describe the observed sizes {fit.train_sizes} (weighted "
            f"chi2/dof = {fit.chi2_reduced:.3g} with Poisson weights): the extrapolated counts are unreliable"
        )
    by_size = observed.by_size()
    last = max(by_size)
    first = min(targets)
    if first > last and fit.count_per_frame(first) > by_size[last]["count_per_frame"]:
        warnings.append(
            f"predicted clusters per frame at node count {first} ({float(fit.count_per_frame(first)):.3g}) exceed the "
            f"observed count at the largest observed node count {last} ({by_size[last]['count_per_frame']:.3g}): the "
            "law does not follow the observed tail"
        )
    cands, dropped = size_candidates(preds, observed, timestep_fs, candidates_per_size, share_threshold)
    boot = None
    if n_bootstrap:
        keep = {n: [c.label for c in cands if c.node_count == n] for n in targets}
        boot = bootstrap_sizes(
            observed, types, population_model, targets, timestep_fs, n_bootstrap, seed, bond_length, box_lengths, keep,
            model_error=model_error, shape_regime=models.shape.fit_sizes,
        )
        if boot["failed_replicates"]:
            warnings.append(f"{boot['failed_replicates']} of {n_bootstrap} bootstrap replicates could not be fitted")
    for p in preds:
        n = p["node_count"]
        s = boot["sizes"][n] if boot else {}
        for k in SIZE_KEYS:
            for q in ("p05", "p50", "p95"):
                p[f"{k}_{q}"] = (s.get(k) or {}).get(q)
        if boot:
            p["share_intervals"] = {
                lab: {q: v[q] for q in ("p05", "p50", "p95")} for lab, v in boot["shares"][n].items()
            }
        if p["lifetime_at_dt_floor"]:
            warnings.append(
                f"node count {n}: predicted lifetime at the frame-spacing floor ({timestep_fs:g} fs); only an upper "
                "bound is known"
            )
        if "exceeds_half_box" in p["flags"]:
            warnings.append(
                f"node count {n}: predicted max radius exceeds half the source box ({models.shape.half_box:.3g} A): "
                "such a cluster would touch its periodic image"
            )
    if boot:
        for c in cands:
            n = c.node_count
            size_s = boot["sizes"][n]
            centre = next(p for p in preds if p["node_count"] == n)
            c.uncertainty = {
                "share": boot["shares"][n].get(c.label, {}),
                "mean_count_per_frame": boot["counts"][n].get(c.label, {}),
                "mean_lifetime_fs": size_s.get("lifetime_fs", {}),
                "mean_radius_of_gyration": _scaled(
                    size_s.get("rg", {}), c.predicted["mean_radius_of_gyration"], centre.get("rg")
                ),
                "mean_max_radius": _scaled(
                    size_s.get("max_radius", {}), c.predicted["mean_max_radius"], centre.get("max_radius")
                ),
            }
    for p in preds:  # compositions carry shapes per composition; keep the table light
        p["compositions"] = [
            {
                "label": c["label"],
                "counts": c["counts"],
                "share": c["share"],
                "count_per_frame": c["count_per_frame"],
                "rg": c["shape"].get("rg"),
            }
            for c in p["compositions"]
        ]
    return {
        "models": models,
        "sizes": preds,
        "candidates": cands,
        "dropped": dropped,
        "bootstrap": boot,
        "warnings": warnings,
    }
