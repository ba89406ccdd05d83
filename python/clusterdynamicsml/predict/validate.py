"""Extrapolation validation: train on the small clusters only, predict the larger ones, compare
with what the same trajectory observed.

``validate_extrapolation_data(library, dynamics, rules, train_max_node_count=K,
target_node_counts=[...])`` restricts the dynamics counts and the structure library to
labels with at most ``K`` node atoms, predicts the targets (default ``K+1 .. 2K``, capped at
the largest observed node count) and compares, per target size, the total clusters per frame
(with the bootstrap 90 % interval), the within-size label shares (total variation distance
``0.5 sum |p - q|``), the Rg (angstrom) and the lifetime (fs) with the observation. Every
population model (``fisher``, ``cnt``, ``geometric`` and the ``reference`` ridge) is run side
by side; ``sizes`` holds the requested model, ``comparison`` the summaries of all.

``default_split(observed)`` is the validation every full run writes: ``n_ref`` = the largest
node count such that every size 1..n_ref has at least ``MIN_OBSERVED_CLUSTERS`` = 10 clusters
over all frames (fewer leave the observed count itself uncertain by more than 30 %, and a
sparse tail of single large clusters says little), ``K = n_ref - max(2, ceil(n_ref / 3))``,
targets ``K+1 .. n_ref``; it needs ``K >= 2``.

Summary fields: ``max_count_factor`` (largest ``max(p/o, o/p)``), ``sizes_within_factor_2``
and ``_1_5``, ``count_coverage_90`` (sizes whose observed count lies in the 5-95 % interval),
``mean_share_total_variation``, ``max_rg_relative_error``, ``mean_rg_relative_error``,
``rg_coverage_90`` / ``rg_intervals`` (sizes whose observed mean Rg lies in the predicted 5-95 %
interval, per size ``rg_in_interval_90``); ``max_count_factor`` is None when some
observed size is predicted with 0 clusters (``sizes_predicted_zero``). Per size ``observed_count_p05/p95``
is the exact (Garwood) Poisson 90 % interval of the observed count from the number of observed
clusters (it ignores time correlation, so it is a lower bound on the noise); ``share_tv_sampling`` is
the total variation expected from the finite number of observed clusters alone (the mean TV
between the predicted shares and multinomial samples of that many clusters drawn from them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import chi2

from .composition import total_variation

MIN_OBSERVED_CLUSTERS = 10
SIZE_MODELS = ("fisher", "cnt", "geometric")
COMPARED_MODELS = ("fisher", "cnt", "geometric", "reference")


def default_split(observed) -> tuple:
    """``(K, targets, reason)``; ``K`` None when the data are too few (module docs)."""
    by = observed.by_size()
    n_ref = 0
    for n in range(1, max(by, default=0) + 1):
        if by.get(n, {}).get("observations", 0) < MIN_OBSERVED_CLUSTERS:
            break
        n_ref = n
    if n_ref == 0:
        return None, [], f"no node count with >= {MIN_OBSERVED_CLUSTERS} observed clusters"
    K = n_ref - max(2, math.ceil(n_ref / 3))
    if K < 2:
        return (
            None,
            [],
            f"node counts 1..{n_ref} have >= {MIN_OBSERVED_CLUSTERS} observed clusters each: too few sizes to hold "
            "out the largest and train on >= 2",
        )
    return (
        K,
        list(range(K + 1, n_ref + 1)),
        f"K = n_ref - max(2, ceil(n_ref/3)) with n_ref = {n_ref}: node counts 1..n_ref have >= "
        f"{MIN_OBSERVED_CLUSTERS} observed clusters each",
    )


def _sampling_tv(shares: dict, n_obs: int, rng, draws: int = 200) -> float | None:
    if n_obs <= 0 or not shares:
        return None
    labels = list(shares)
    p = np.array([shares[k] for k in labels])
    p = p / p.sum()
    samples = rng.multinomial(int(n_obs), p, size=draws) / float(n_obs)
    return float(np.mean(0.5 * np.abs(samples - p).sum(axis=1)))


@dataclass
class ValidationReport:
    """Result of an extrapolation validation (module docs). ``to_dict()`` is the JSON."""

    train_max_node_count: int
    target_node_counts: list
    population_model: str
    sizes: list
    summary: dict
    comparison: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "train_max_node_count": int(self.train_max_node_count),
            "population_model": self.population_model,
            "target_node_counts": [int(n) for n in self.target_node_counts],
            "sizes": self.sizes,
            "summary": self.summary,
            "comparison": self.comparison,
            "settings": self.settings,
            "warnings": list(self.warnings),
        }

    def table(self) -> str:
        """Plain-text table of every compared model per size."""
        lines = []
        for model, comp in self.comparison.items():
            s = comp["summary"]
            worst = (
                _f(s.get("max_count_factor"))
                if not s.get("sizes_predicted_zero")
                else f"inf (0 predicted at {s['sizes_predicted_zero']} sizes)"
            )
            lines.append(
                f"{model}: max count factor {worst}, within 2x {s.get('sizes_within_factor_2')}/{s.get('sizes')}, "
                f"90% coverage {s.get('count_coverage_90')}/{s.get('sizes')}, "
                f"mean share TV {_f(s.get('mean_share_total_variation'))}, "
                f"max Rg error {_f(s.get('max_rg_relative_error'))}, "
                f"Rg 90% coverage {s.get('rg_coverage_90')}/{s.get('rg_intervals')}"
            )
            for e in comp["sizes"]:
                lines.append(
                    f"  n={e['node_count']:>3d} count obs {_f(e['observed_count_per_frame'])} pred "
                    f"{_f(e['predicted_count_per_frame'])} "
                    f"[{_f(e.get('predicted_count_p05'))}, {_f(e.get('predicted_count_p95'))}]  TV "
                    f"{_f(e.get('share_total_variation'))}  "
                    f"Rg obs {_f(e.get('observed_rg'))} pred {_f(e.get('predicted_rg'))}"
                )
        return "\n".join(lines)


def _f(v):
    return "n/a" if v is None else f"{v:.3g}"


def _compare_sizes(predicted: list, observed_full, rng) -> list:
    """Per-size comparison rows (the issue's JSON keys and more)."""
    by = observed_full.by_size()
    rows = []
    for p in predicted:
        n = p["node_count"]
        o = by.get(n, {"count_per_frame": 0.0, "observations": 0})
        oc, pc = o["count_per_frame"], p["count_per_frame"]
        oshares, pshares = observed_full.shares(n), p["shares"]
        lo, hi = p.get("count_per_frame_p05", p.get("count_p05")), p.get("count_per_frame_p95", p.get("count_p95"))
        org, prg = observed_full.size_rg(n), p.get("rg")
        olt = observed_full.size_lifetime(n)
        nobs = int(o["observations"])
        per = oc / nobs if nobs > 0 else None  # frames^-1: clusters per frame per observed cluster
        rows.append(
            {
                "node_count": int(n),
                "observed_count_per_frame": oc,
                "observed_clusters": nobs,
                "observed_count_p05": None if per is None else 0.5 * chi2.ppf(0.05, 2 * nobs) * per,
                "observed_count_p95": None if per is None else 0.5 * chi2.ppf(0.95, 2 * nobs + 2) * per,
                "predicted_count_per_frame": pc,
                "predicted_count_p05": lo,
                "predicted_count_p95": hi,
                "count_ratio": (pc / oc) if oc > 0 else None,
                "count_in_interval_90": None if lo is None or oc <= 0 else bool(lo <= oc <= hi),
                "observed_shares": oshares,
                "predicted_shares": pshares,
                "share_total_variation": total_variation(oshares, pshares) if oshares else None,
                "share_tv_sampling": _sampling_tv(pshares, int(o["observations"]), rng),
                "observed_rg": org,
                "predicted_rg": prg,
                "predicted_rg_p05": p.get("rg_p05"),
                "predicted_rg_p95": p.get("rg_p95"),
                "rg_relative_error": (prg / org - 1.0) if org and prg else None,
                "rg_in_interval_90": None
                if not org or p.get("rg_p05") is None or p.get("rg_p95") is None
                else bool(p["rg_p05"] <= org <= p["rg_p95"]),
                "observed_lifetime_fs": olt,
                "predicted_lifetime_fs": p.get("lifetime_fs"),
                "predicted_lifetime_p05": p.get("lifetime_fs_p05"),
                "predicted_lifetime_p95": p.get("lifetime_fs_p95"),
                "lifetime_at_dt_floor": p.get("lifetime_at_dt_floor"),
            }
        )
    return rows


def summarize(rows: list) -> dict:
    have = [r for r in rows if r["count_ratio"] is not None]
    zero = sum(1 for r in have if r["count_ratio"] <= 0)
    factors = [max(r["count_ratio"], 1.0 / r["count_ratio"]) for r in have if r["count_ratio"] > 0]
    tvs = [r["share_total_variation"] for r in rows if r["share_total_variation"] is not None]
    tv_noise = [
        r["share_tv_sampling"]
        for r in rows
        if r["share_total_variation"] is not None and r.get("share_tv_sampling") is not None
    ]
    rg = [abs(r["rg_relative_error"]) for r in rows if r["rg_relative_error"] is not None]
    cov = [r["count_in_interval_90"] for r in rows if r["count_in_interval_90"] is not None]
    rg_cov = [r.get("rg_in_interval_90") for r in rows if r.get("rg_in_interval_90") is not None]
    return {
        "sizes": len(have),
        "max_count_factor": None if zero or not factors else max(factors),  # None: some size predicted 0
        "sizes_predicted_zero": zero,
        "sizes_within_factor_2": sum(1 for f in factors if f <= 2.0),
        "sizes_within_factor_1_5": sum(1 for f in factors if f <= 1.5),
        "count_coverage_90": sum(1 for c in cov if c),
        "count_intervals": len(cov),
        "mean_share_total_variation": float(np.mean(tvs)) if tvs else None,
        "mean_share_tv_sampling": float(np.mean(tv_noise)) if tv_noise else None,
        "max_rg_relative_error": max(rg) if rg else None,
        "mean_rg_relative_error": float(np.mean(rg)) if rg else None,
        "rg_coverage_90": sum(1 for c in rg_cov if c),
        "rg_intervals": len(rg_cov),
    }


def _reference_sizes(library, table, rules, targets, dt, n_bootstrap, seed) -> list:
    """Per-size totals of the reference ridge's retained candidates."""
    from .core import predict_clusters

    res = predict_clusters(
        library,
        table,
        rules,
        targets,
        population_model="reference",
        timestep_fs=dt,
        n_bootstrap=n_bootstrap,
        seed=seed,
        validate=False,
        debye_waller=False,
    )
    out = []
    for n in targets:
        cs = [c for c in res.candidates if c.node_count == n]
        tot_share = sum(c.share for c in cs)
        count = sum(max(c.predicted["mean_count_per_frame"], 0.0) for c in cs)
        lo = [(c.uncertainty.get("mean_count_per_frame") or {}).get("p05") for c in cs]
        hi = [(c.uncertainty.get("mean_count_per_frame") or {}).get("p95") for c in cs]
        lo_known = [v for v in lo if v is not None]
        hi_known = [v for v in hi if v is not None]
        shares = {c.label: c.share / tot_share for c in cs} if tot_share > 0 else {}
        rg = sum(shares.get(c.label, 0.0) * c.predicted["mean_radius_of_gyration"] for c in cs) if shares else None
        out.append(
            {
                "node_count": n,
                "count_per_frame": count,
                "shares": shares,
                "rg": rg,
                "count_p05": sum(max(v, 0.0) for v in lo_known) if cs and len(lo_known) == len(lo) else None,
                "count_p95": sum(max(v, 0.0) for v in hi_known) if cs and len(hi_known) == len(hi) else None,
                "lifetime_fs": max((c.predicted["mean_lifetime_fs"] for c in cs), default=None),
            }
        )
    return out


def validate_extrapolation_data(
    library,
    lifetime_table,
    rules,
    train_max_node_count=None,
    target_node_counts=None,
    *,
    population_model: str | None = None,
    n_bootstrap: int = 200,
    seed: int = 0,
    timestep_fs=None,
    box_lengths=None,
    compare=COMPARED_MODELS,
    compare_bootstrap: int | None = None,
    model_error: dict | None = None,
) -> ValidationReport:
    """Validate on already computed dynamics and library (module docs).

    library : ``StructureLibrary`` or folder; lifetime_table : ``DynamicsResult`` (per-frame
    counts give the block bootstrap), rows or CSV; rules : ``ClusterRules``.
    train_max_node_count : K (None: ``default_split``). target_node_counts : sizes to
    predict (None: K+1 .. 2K capped at the largest observed node count).
    population_model : the model whose rows fill ``sizes`` (default: the package default).
    compare : models run side by side (their summaries go into ``comparison``).
    compare_bootstrap : bootstrap replicates of the other compared models (default
        ``n_bootstrap``; 0 gives their point predictions only, no intervals).
    model_error : model-form error per node added to the intervals (``predict_clusters``).
    Raises ValueError when K leaves fewer than 2 training sizes or no target is observed.
    """
    from ..library.read import StructureLibrary
    from .core import DEFAULT_POPULATION_MODEL, load_inputs
    from .extrapolate import predict_by_size
    from .observed import ObservedClusters
    from .scaling import learned_bond_length

    population_model = population_model or DEFAULT_POPULATION_MODEL
    warnings: list = []
    dt, table, types, library, rows, _ = load_inputs(library, lifetime_table, rules, timestep_fs, warnings)
    # a DynamicsResult gives the per-frame count series; a table of rows gives none (from_inputs)
    full = ObservedClusters.from_inputs(table, rows, types, dt, lifetime_table, library)
    split_reason = "given"
    if train_max_node_count is None:
        K, default_targets, split_reason = default_split(full)
        if K is None:
            raise ValueError(split_reason)
    else:
        if (
            isinstance(train_max_node_count, bool)
            or not isinstance(train_max_node_count, (int, np.integer))
            or train_max_node_count < 1
        ):
            raise ValueError(f"train_max_node_count must be a positive integer, got {train_max_node_count!r}")
        K = int(train_max_node_count)
        default_targets = list(range(K + 1, min(2 * K, max(full.sizes)) + 1))
    targets = sorted({int(n) for n in (target_node_counts if target_node_counts is not None else default_targets)})
    if not targets or min(targets) <= K:
        raise ValueError(
            f"target node counts must exceed train_max_node_count = {K}, got {targets} (largest observed node count "
            f"{max(full.sizes)})"
        )
    train = full.restrict(K)
    if len(train.sizes) < 2:
        raise ValueError(f"training on node counts <= {K} leaves {train.sizes}: at least 2 sizes are needed")
    bond = learned_bond_length(library, types)
    rng = np.random.default_rng(seed)
    comparison: dict[str, dict] = {}
    chosen_rows: list | None = None
    models = list(dict.fromkeys([population_model, *compare]))
    for model in models:
        nb = n_bootstrap if model == population_model or compare_bootstrap is None else int(compare_bootstrap)
        if model == "reference":
            small = StructureLibrary(
                library.root, library.types, [o for o in library if o.node_count <= K], library.warnings
            )
            small_table = {k: v for k, v in table.items() if _node_count(k, types) <= K}
            try:
                preds = _reference_sizes(small, small_table, rules, targets, dt, nb, seed)
            except ValueError as exc:
                comparison[model] = {"summary": {}, "sizes": [], "error": str(exc)}
                continue
            fit = None
        else:
            out = predict_by_size(
                train, types, targets, model, dt, n_bootstrap=nb, seed=seed, bond_length=bond, box_lengths=box_lengths,
                model_error=model_error,
            )
            preds, fit = out["sizes"], out["models"].population.to_dict()
            if model == population_model:
                warnings.extend(out["warnings"])
        rows_cmp = _compare_sizes(preds, full, rng)
        comparison[model] = {
            "summary": summarize(rows_cmp),
            "population_fit": fit,
            "sizes": [
                {
                    k: r[k]
                    for k in (
                        "node_count",
                        "observed_count_per_frame",
                        "observed_clusters",
                        "predicted_count_per_frame",
                        "predicted_count_p05",
                        "predicted_count_p95",
                        "count_in_interval_90",
                        "share_total_variation",
                        "observed_rg",
                        "predicted_rg",
                    )
                }
                for r in rows_cmp
            ],
        }
        if model == population_model:
            chosen_rows = rows_cmp
    settings = {
        "n_bootstrap": int(n_bootstrap),
        "seed": int(seed),
        "timestep_fs": dt,
        "split": split_reason,
        "bond_length": bond,
        "observed_node_counts": full.sizes,
        "min_observed_clusters": MIN_OBSERVED_CLUSTERS,
        "observed_count_per_frame": {int(n): d["count_per_frame"] for n, d in full.by_size().items()},
        "observed_clusters": {int(n): int(d["observations"]) for n, d in full.by_size().items()},
    }
    if chosen_rows is None:  # the model's own run failed (its comparison entry holds the error)
        raise ValueError(
            f"extrapolation validation of {population_model!r} failed: {comparison[population_model].get('error')}"
        )
    return ValidationReport(
        K, targets, population_model, chosen_rows, summarize(chosen_rows), comparison, settings, warnings
    )


def _node_count(label, types) -> int:
    from ..library.read import parse_label_counts

    try:
        counts = parse_label_counts(label)
    except ValueError:
        return 0
    return sum(v for e, v in counts.items() if e in types.node_elements)


def validate_extrapolation(
    config,
    train_max_node_count=None,
    target_node_counts=None,
    *,
    population_model: str | None = None,
    n_bootstrap: int | None = None,
    work_dir=None,
) -> ValidationReport:
    """Run the frames, dynamics and library steps of a run file (or ``RunConfig``) in a
    scratch folder, then ``validate_extrapolation_data`` on them (module docs).

    n_bootstrap : default ``[predict] bootstrap`` of the config; the seed is ``[run] seed``.
    work_dir : parent of the scratch run folder (default: a temporary folder, removed).
    """
    import tempfile

    from ..pipeline.config import RunConfig
    from ..pipeline.workflow import run

    cfg = config if isinstance(config, RunConfig) else RunConfig.from_toml(config)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        res = run(cfg, output_dir=tmp, steps=("frames", "dynamics", "library"), progress=False)
        dyn = res.dynamics
        from ..clusters.extract import ClusterRules

        rules = ClusterRules.from_dict(cfg.cluster_rules_dict())
        box = _box_lengths(res.frames)
        report = validate_extrapolation_data(
            res.library_dir,
            dyn,
            rules,
            train_max_node_count,
            target_node_counts,
            population_model=population_model or getattr(cfg.predict, "population_model", None),
            n_bootstrap=cfg.predict.bootstrap if n_bootstrap is None else n_bootstrap,
            seed=cfg.run.seed,
            box_lengths=box,
            model_error=model_error_setting(cfg.predict),
        )
    report.settings["run_file"] = str(getattr(cfg, "source", "") or "")
    return report


def model_error_setting(predict_cfg) -> dict | None:
    """``model_error`` for ``predict_clusters`` from a ``[predict]`` config section: None (the
    package default) unless ``model_error_count`` or ``model_error_rg`` is set."""
    count = getattr(predict_cfg, "model_error_count", None)
    rg = getattr(predict_cfg, "model_error_rg", None)
    if count is None and rg is None:
        return None
    from .uncertainty import MODEL_ERROR_PER_NODE

    return {
        "count_per_frame": MODEL_ERROR_PER_NODE["count_per_frame"] if count is None else count,
        "rg": MODEL_ERROR_PER_NODE["rg"] if rg is None else rg,
    }


def _box_lengths(frames):
    """Perpendicular widths (angstrom) of the first frame's box, or None."""
    try:
        box = frames[0].box
    except (TypeError, IndexError, KeyError, AttributeError):
        return None
    if box is None:
        return None
    m = np.asarray(box.matrix, dtype=np.float64)
    vol = abs(float(np.linalg.det(m)))
    return [vol / float(np.linalg.norm(np.cross(m[(i + 1) % 3], m[(i + 2) % 3]))) for i in range(3)]
