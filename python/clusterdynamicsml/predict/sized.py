"""``predict_clusters`` with a size-resolved population model ("fisher", "cnt", "geometric").

Observed sizes come from the dynamics (every label with node atoms, also those without a
structure file); targets must exceed the largest of them. The laws of ``extrapolate.py`` give
the candidates (the most probable compositions of every target size), the per-size table
(``size_predictions``) with bootstrap intervals, and the validation of ``validate.py``
(``default_split``: train on the small sizes, predict the largest well-observed ones, every
population model side by side). ``population_choice`` records the model, why, and how the
models compared in this run's validation.
"""

from __future__ import annotations

import math

from ..errors import InsufficientDataError
from .candidates import Candidate

#: another model's worst count factor at least this many times smaller contradicts the model used
CONTRADICTION_RATIO = 1.5


def validation_verdict(validation: dict, model: str) -> tuple:
    """``(note, contradicted_by)``: the note of ``_box_note`` and the model whose worst
    held-out count factor in this run's own validation is at least ``CONTRADICTION_RATIO``
    times smaller than that of ``model`` (None if no model clearly did better)."""
    note = _box_note(validation, model)
    comp = (validation or {}).get("comparison") or {}
    scores = {}
    for m, c in comp.items():
        summ = (c or {}).get("summary") or {}
        if summ.get("sizes_predicted_zero"):
            scores[m] = math.inf
        elif summ.get("max_count_factor") is not None:
            scores[m] = float(summ["max_count_factor"])
    if model not in scores:
        return note, None
    best = min(scores, key=lambda m: scores[m])
    if best != model and scores[best] * CONTRADICTION_RATIO <= scores[model]:
        return note, best
    return note, None


def _box_note(validation: dict, model: str) -> str | None:
    comp = (validation or {}).get("comparison") or {}
    scores = {
        m: (math.inf if c["summary"].get("sizes_predicted_zero") else c["summary"].get("max_count_factor"))
        for m, c in comp.items()
        if (c.get("summary") or {}).get("max_count_factor") is not None
        or (c.get("summary") or {}).get("sizes_predicted_zero")
    }
    if not scores or model not in scores:
        return None
    best = min(scores, key=lambda m: scores[m])
    text = ", ".join(f"{m} {v:.3g}" for m, v in sorted(scores.items(), key=lambda t: t[1]))
    note = (
        f"this run's validation (train n <= {validation['train_max_node_count']}, "
        f"predict {validation['target_node_counts']}): worst count factor {text}"
    )
    if best != model:
        note += f"; {best} did better here than the model used ({model})"
    return note


#: what the prediction result keeps of the bootstrap record (the intervals are in the sizes)
_BOOTSTRAP_KEYS = ("n_bootstrap", "seed", "failed_replicates", "resampling", "model_error_per_node")


def predict_sized(
    library,
    lifetime_source,
    table,
    rows,
    rules,
    types,
    dt,
    warnings,
    *,
    target_node_counts,
    max_node_count,
    observed_targets,
    candidates_per_size,
    share_threshold,
    n_bootstrap,
    seed,
    validate,
    debye_waller,
    dw_bootstrap,
    population_model,
    model_reason,
    box_lengths,
    model_error=None,
):
    """The size-resolved branch of ``core.predict_clusters`` (same arguments, already checked)."""
    from .charges import check_candidate_charges
    from .core import resolve_target_node_counts
    from .extrapolate import predict_by_size
    from .observed import ObservedClusters
    from .result import assemble_result, run_settings
    from .scaling import learned_bond_length
    from .validate import validate_extrapolation_data

    # a DynamicsResult gives the per-frame count series; a table of rows gives none (from_inputs)
    observed = ObservedClusters.from_inputs(table, rows, types, dt, lifetime_source, library)
    warnings.extend(n for n in observed.notes if n not in warnings)
    sizes = observed.sizes
    if len(sizes) < 2:
        raise InsufficientDataError(f"at least 2 distinct observed node counts are needed to extrapolate, got {sizes}")
    max_obs = max(sizes + [r.node_count for r in rows])
    targets = resolve_target_node_counts(max_obs, target_node_counts, max_node_count, observed_targets, warnings)
    bond = learned_bond_length(library, types)
    if bond is None:
        warnings.append(
            "no node-linker distance in the library: the compact-sphere and straight-chain bounds of the sizes are "
            "not applied"
        )
    out = predict_by_size(
        observed,
        types,
        targets,
        population_model,
        dt,
        candidates_per_size=candidates_per_size,
        share_threshold=share_threshold,
        n_bootstrap=n_bootstrap,
        seed=seed,
        bond_length=bond,
        box_lengths=box_lengths,
        model_error=model_error,
    )
    warnings.extend(w for w in out["warnings"] if w not in warnings)
    # approximations of the composition law that change the answer are warnings, not only notes in size_models
    warnings.extend(
        n for n in out["models"].composition.notes if n.startswith("several node elements") and n not in warnings
    )
    cands: list[Candidate] = out["candidates"]
    warnings.extend(w for w in check_candidate_charges(cands, table, types) if w not in warnings)
    validation = None
    if validate:
        try:
            rep = validate_extrapolation_data(
                library,
                lifetime_source,
                rules,
                population_model=population_model,
                n_bootstrap=min(n_bootstrap, 100),
                seed=seed,
                timestep_fs=dt,
                box_lengths=box_lengths,
                compare_bootstrap=0,
                model_error=model_error,
            )
            validation = rep.to_dict()
        except ValueError as exc:
            validation = {"skipped": str(exc)}
    fit = out["models"].population
    choice = {
        "model": population_model,
        "used": fit.model,
        "reason": model_reason,
        "free_energy": fit.free_energy_terms(),
        "flagged": fit.flagged,
    }
    if fit.model != population_model:
        # the law actually used is the fallback: its reason is the fallback's, not the requested model's
        choice["fallback"] = "; ".join(fit.warnings)
        choice["requested_reason"] = model_reason
        choice["reason"] = f"fallback from {population_model!r} to {fit.model!r}: {choice['fallback']}"
    note, better = validation_verdict(validation, population_model)
    if note:
        choice["validation"] = note
    if better is not None:
        # never a silent switch: the model stays, but the reason and the warnings say that this run's own data disagree
        msg = (
            f"this run's own held-out validation contradicts the population model used ({population_model}): {note}; "
            f"consider population_model = {better!r} for this system"
        )
        choice["reason"] = f"{choice['reason']}; BUT {msg}"
        choice["contradicted_by"] = better
        if msg not in warnings:
            warnings.append(msg)
    mass_by_size = {}
    for r in rows:
        if r.node_count > 0 and r.observed_weight > 0:
            mass_by_size[r.node_count] = mass_by_size.get(r.node_count, 0.0) + r.observed_weight
    ok = [
        c.node_count for c in cands if c.predicted["mean_lifetime_fs"] >= dt and c.predicted["mean_count_per_frame"] > 0
    ]
    boot = out["bootstrap"] or {}
    settings = run_settings(
        library, candidates_per_size, share_threshold, dt, n_bootstrap, seed, observed_targets, bond, box_lengths,
        {"population_model": population_model},
    )
    return assemble_result(
        library, types, rows, table, cands, targets, max_obs, ok, dt, settings, warnings, validation,
        debye_waller, n_bootstrap if dw_bootstrap is None else dw_bootstrap, seed,
        non_node_elements=sorted({e for c in cands for e in c.counts} - set(types.node_elements)),
        rejected=out["dropped"],
        pruned=[],
        mass={"weight": sum(c.weight for c in cands), "mass_by_size": mass_by_size, "model": population_model},
        bootstrap={k: boot.get(k) for k in _BOOTSTRAP_KEYS} if boot else {},
        population_model=population_model,
        population_choice=choice,
        size_predictions=out["sizes"],
        size_models=out["models"].to_dict(),
    )
