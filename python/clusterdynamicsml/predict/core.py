"""Prediction of larger clusters: orchestration, bootstrap uncertainty, validation, tables.

``predict_clusters(library, lifetime_table, rules, target_node_counts or max_node_count)``
reads the structure library (ref §4.1), joins it with the dynamics lifetime table (§4.2),
fits the ridge models (§4.3), generates, filters, scores, shares and prunes candidates (§4.4,
§4.5), anchors the predicted mass to the observed size tail (§4.9), estimates Debye-Waller
sigma (§5.3), and adds what the reference lacks:

* uncertainty for every predicted quantity: a bootstrap over training rows (fixed seed),
  refitting every model and re-predicting each retained candidate; mean, std and the 5/50/95
  percentiles, plus how often the full pipeline retains that label (``selection_frequency``);
* a leave-largest-size-out validation: train without the largest observed node count,
  predict it, and compare labels, shares, mass and properties with what was observed;
* requested target sizes at or below the largest observed size raise (or, with
  ``observed_targets="warn"``, are dropped with a warning), never a silent empty result (V1).

Units: counts per frame, fractions, fs, 1/ps, angstrom.
"""

from __future__ import annotations

import numpy as np

from ..errors import InsufficientDataError
from ..library.read import (
    AtomTypes,
    StructureLibrary,
    build_training_rows,
    load_lifetime_table,
    read_library,
)
from .population import POPULATION_MODELS
from .result import (  # noqa: F401  (PredictionResult and the table columns: re-exported here)
    HISTOGRAM_COLUMNS,
    PREDICTIONS_CSV_COLUMNS,
    RESULT_VERSION,
    PredictionResult,
    assemble_result,
    run_settings,
    write_csv,
)

#: population model of ``predict_clusters`` and of every run unless configured otherwise
DEFAULT_POPULATION_MODEL = "fisher"
#: why: the measurement behind the default (docs/predict.md, "Measured")
DEFAULT_POPULATION_MODEL_REASON = (
    "default chosen by held-out validation (train on node counts <= 6, predict 7-12, compare with the same "
    "trajectory; docs/predict.md 'Measured'): on nine alkali-halide melts (NaCl, KCl, KBr, NaBr, 1100-1450 K, "
    "1000 and 4000 ions) the Fisher droplet law was within a factor 1.06-1.91 of the observed clusters per frame at "
    "every size, the 3-term law without log n turned upward and its geometric fallback was off by up to 5.3x, "
    "and the reference ridge predicted 0 clusters at every size"
)

def _resolve_timestep(timestep_fs, lifetime_table, warnings) -> float:
    if timestep_fs is None:
        for attr in ("timestep_fs", "frame_timestep_fs"):
            value = getattr(lifetime_table, attr, None)
            if value is not None:
                timestep_fs = value
                break
    if timestep_fs is None:
        warnings.append("frame timestep not given and not found on the lifetime table; using the default 0.5 fs")
        timestep_fs = 0.5
    from .._validate import as_timestep_fs

    return as_timestep_fs(timestep_fs)


def load_inputs(library, lifetime_table, rules, timestep_fs, warnings: list) -> tuple:
    """What both prediction entry points read first: ``(dt, table, types, library, rows,
    join_warnings)`` (the frame time step in fs, the lifetime table ``{label: row}``,
    ``AtomTypes``, the ``StructureLibrary`` (read from a folder if needed), the training rows
    and the warnings of joining library and table). Time-step warnings go to ``warnings``."""
    dt = _resolve_timestep(timestep_fs, lifetime_table, warnings)
    table = load_lifetime_table(lifetime_table)
    types = AtomTypes.from_rules(rules)
    if not isinstance(library, StructureLibrary):
        library = read_library(library, types, frame_labels=table.keys())
    rows, join_warnings = build_training_rows(library, table)
    return dt, table, types, library, rows, join_warnings


def resolve_target_node_counts(
    max_observed: int, target_node_counts=None, max_node_count=None, observed_targets: str = "error", warnings=None
) -> list:
    """Target sizes to predict.

    With ``target_node_counts``: positive integers; sizes <= ``max_observed`` raise ValueError
    (``observed_targets="error"``) or are dropped with a warning (``"warn"``). With
    ``max_node_count``: ``max_observed+1 .. max_node_count``. With neither:
    ``max_observed+1 .. max_observed+2``. An empty result is always an error (ref V1).
    """
    if observed_targets not in ("error", "warn"):
        raise ValueError(f"observed_targets must be 'error' or 'warn', got {observed_targets!r}")
    if target_node_counts is not None and max_node_count is not None:
        raise ValueError("give target_node_counts or max_node_count, not both")
    if target_node_counts is None:
        if max_node_count is None:
            return [max_observed + 1, max_observed + 2]
        if isinstance(max_node_count, bool) or not isinstance(max_node_count, (int, np.integer)):
            raise ValueError(f"max_node_count must be an integer, got {max_node_count!r}")
        if max_node_count <= max_observed:
            raise ValueError(
                f"max_node_count must exceed the largest observed node count {max_observed}, got {max_node_count}"
            )
        return list(range(max_observed + 1, int(max_node_count) + 1))
    if isinstance(target_node_counts, (int, np.integer)):
        target_node_counts = [target_node_counts]
    sizes = []
    for s in target_node_counts:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s <= 0:
            raise ValueError(f"target_node_counts must be positive integers, got {list(target_node_counts)!r}")
        sizes.append(int(s))
    sizes = sorted(set(sizes))
    low = [s for s in sizes if s <= max_observed]
    if low:
        msg = (
            f"target node counts {low} are at or below the largest observed node count {max_observed}; "
            "only larger sizes are predicted"
        )
        if observed_targets == "error":
            raise ValueError(msg + " (pass observed_targets='warn' to drop them)")
        if warnings is not None:
            warnings.append(msg + "; they were dropped")
    sizes = [s for s in sizes if s > max_observed]
    if not sizes:
        raise ValueError(
            f"no target node count above the largest observed node count {max_observed} remains, got "
            f"{list(target_node_counts)!r}"
        )
    return sizes


from .reference import (  # noqa: E402,F401  (moved whole; re-exported here)
    _fit_and_predict,
    bootstrap_uncertainty,
    compare_with_observed,
    leave_largest_size_out,
)


def _checked_share_threshold(candidates_per_size, share_threshold, n_bootstrap) -> float:
    """Validate ``predict_clusters``' counts (candidates per size >= 1, bootstrap replicates
    >= 0) and share threshold (in [0, 1]); returns the threshold as a float."""
    if (
        isinstance(candidates_per_size, bool)
        or not isinstance(candidates_per_size, (int, np.integer))
        or candidates_per_size < 1
    ):
        raise ValueError(f"candidates_per_size must be an integer >= 1, got {candidates_per_size!r}")
    try:
        threshold = float(share_threshold)
    except (TypeError, ValueError):
        raise ValueError(f"share_threshold must be a number in [0, 1], got {share_threshold!r}") from None
    if not (0.0 <= threshold <= 1.0):
        raise ValueError(f"share_threshold must be a number in [0, 1], got {share_threshold!r}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be an integer >= 0, got {n_bootstrap!r}")
    return threshold


def predict_clusters(
    library,
    lifetime_table,
    rules,
    target_node_counts=None,
    max_node_count=None,
    *,
    candidates_per_size: int = 3,
    share_threshold: float = 0.02,
    timestep_fs: float | None = None,
    n_bootstrap: int = 200,
    seed: int = 0,
    validate: bool = True,
    observed_targets: str = "error",
    debye_waller: bool = True,
    dw_bootstrap: int | None = None,
    population_transform: str = "reference",
    population_model: str | None = None,
    box_lengths=None,
    model_error: dict | None = None,
) -> PredictionResult:
    """Predict larger clusters from a structure library and a dynamics lifetime table.

    library : library folder path or ``StructureLibrary`` (``read_library``).
    lifetime_table : ``DynamicsResult``, lifetime rows, ``{label: row}`` or a ``*_lifetime.csv``.
    rules : ``ClusterRules`` (node / linker / shell elements, cutoffs, shells_in_label).
    target_node_counts / max_node_count : sizes to predict (see ``resolve_target_node_counts``).
    candidates_per_size : top-k per size (>= 1, default 3).
    share_threshold : pruning threshold on population shares (>= 0, default 0.02).
    timestep_fs : frame timestep (fs), the lower bound of predicted lifetimes; default from the
        lifetime table (``timestep_fs`` attribute) or 0.5 fs with a warning.
    n_bootstrap, seed : bootstrap replicates (0 disables) and the RNG seed.
    validate : run the leave-largest-size-out validation.
    debye_waller : estimate observed and predicted Debye-Waller sigma (needs
        ``saxs.rank_aligned_sigma``; skipped with a warning when it is missing).
    dw_bootstrap : bootstrap replicates of the sigma models (default: n_bootstrap).
    population_transform : "reference" (ref §4.3: log1p counts, identity occupancy) or "log"
        (log(y + 1e-4) for both; see ``ClusterPropertyModel``). The validation report tells
        which extrapolates better on a given data set (only with population_model="reference").
    population_model : "fisher" (default, ``DEFAULT_POPULATION_MODEL``), "cnt", "geometric"
        (size-resolved laws: ``population.py``, ``composition.py``, ``scaling.py``) or
        "reference" (the reference ridge, the same numbers as the reference tool path).
    box_lengths : box edge widths of the source trajectory (angstrom); predicted clusters whose
        max radius exceeds half the shortest are flagged.
    model_error : ``{"count_per_frame": k, "rg": k}``, the model-form error per node count
        beyond the observed sizes (log units) added to the bootstrap intervals of the
        size-resolved models; default ``predict.uncertainty.MODEL_ERROR_PER_NODE``, measured
        on held-out sizes of real trajectories (docs/predict.md). Zeros give the sampling
        uncertainty alone.

    With a size-resolved model the validation is the extrapolation validation of
    ``validate.py`` on ``validate.default_split`` (train on the small sizes, predict the
    largest well-observed ones, every model side by side); with "reference" it is the
    leave-largest-size-out report. ``population_choice`` records the model and why.

    Raises ValueError for bad parameters, fewer than 2 distinct observed node counts, or
    target sizes that leave nothing to predict.
    """
    threshold = _checked_share_threshold(candidates_per_size, share_threshold, n_bootstrap)
    warnings: list = []
    dt, table, types, library, rows, join_warnings = load_inputs(library, lifetime_table, rules, timestep_fs, warnings)
    warnings.extend(library.warnings)
    warnings.extend(w for w in join_warnings if w not in warnings)
    if not rows:
        raise InsufficientDataError("no training rows: the structure library has no label with node atoms")
    sizes_obs = sorted({r.node_count for r in rows})
    if len(sizes_obs) < 2:
        raise InsufficientDataError(
            f"at least 2 distinct observed node counts are needed to extrapolate, got {sizes_obs}"
        )
    max_obs = sizes_obs[-1]
    if population_transform not in ("reference", "log"):
        raise ValueError(f"population_transform must be 'reference' or 'log', got {population_transform!r}")
    population_model = DEFAULT_POPULATION_MODEL if population_model is None else population_model
    if population_model not in POPULATION_MODELS:
        raise ValueError(f"population_model must be one of {POPULATION_MODELS}, got {population_model!r}")
    if population_model != "reference":
        from .sized import predict_sized

        return predict_sized(
            library,
            lifetime_table,
            table,
            rows,
            rules,
            types,
            dt,
            warnings,
            target_node_counts=target_node_counts,
            max_node_count=max_node_count,
            observed_targets=observed_targets,
            candidates_per_size=int(candidates_per_size),
            share_threshold=threshold,
            n_bootstrap=int(n_bootstrap),
            seed=int(seed),
            validate=validate,
            debye_waller=debye_waller,
            dw_bootstrap=dw_bootstrap,
            population_model=population_model,
            model_reason=DEFAULT_POPULATION_MODEL_REASON
            if population_model == DEFAULT_POPULATION_MODEL
            else (
                "set by the user (population_model / [predict] population_model); "
                f"the default is {DEFAULT_POPULATION_MODEL!r}: {DEFAULT_POPULATION_MODEL_REASON}"
            ),
            box_lengths=box_lengths,
            model_error=model_error,
        )
    targets = resolve_target_node_counts(max_obs, target_node_counts, max_node_count, observed_targets, warnings)
    model, out = _fit_and_predict(rows, types, targets, dt, candidates_per_size, threshold, population_transform)
    cands = out["candidates"]
    for n in targets:
        if not any(c.node_count == n for c in cands):
            warnings.append(f"no candidate survived the filters at node count {n}")
    # the reference numbers stay as the reference tool gives them; the physical checks of the
    # size-resolved models (half box, chain / compact limits) still apply, as notes and warnings
    from .charges import check_candidate_charges
    from .scaling import check_candidate_shapes, learned_bond_length

    bond = learned_bond_length(library, types)
    warnings.extend(
        w for w in check_candidate_shapes(cands, bond, box_lengths, types.tracked_elements) if w not in warnings
    )
    warnings.extend(w for w in check_candidate_charges(cands, table, types) if w not in warnings)
    boot = {}
    if n_bootstrap and cands:
        boot = bootstrap_uncertainty(
            rows, types, cands, targets, dt, n_bootstrap, seed, candidates_per_size, threshold, population_transform
        )
    ok = [c.node_count for c in cands if c.share >= threshold and c.predicted["mean_lifetime_fs"] >= dt]
    validation = None
    if validate:
        validation = leave_largest_size_out(
            rows, types, dt, candidates_per_size, threshold, min(n_bootstrap, 50), seed, population_transform
        )
    settings = run_settings(
        library, candidates_per_size, threshold, dt, n_bootstrap, seed, observed_targets, bond, box_lengths,
        {"ridge_lambda": 1e-6, "population_transform": population_transform, "population_model": "reference"},
    )
    return assemble_result(
        library, types, rows, table, cands, targets, max_obs, ok, dt, settings, warnings, validation,
        debye_waller, n_bootstrap if dw_bootstrap is None else dw_bootstrap, seed,
        non_node_elements=list(model.non_node_elements_),
        rejected=out["rejected"],
        pruned=out["pruned"],
        mass=out["mass"],
        bootstrap=boot,
        population_model="reference",
        population_choice={
            "model": "reference",
            "reason": "requested (population_model='reference': the reference tool's ridge)",
        },
    )
