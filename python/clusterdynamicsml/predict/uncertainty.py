"""Bootstrap intervals for the size-resolved predictions.

Each replicate (``numpy.random.default_rng(seed)``, ``n_bootstrap`` of them):

1. populations: with a per-frame count series (``DynamicsResult.frame_count_matrix``) the
   frames are cut into ``BLOCKS`` consecutive time blocks of (nearly) equal length and the
   blocks are resampled with replacement (a block bootstrap keeps the time correlation of
   the counts within a block); the clusters per frame of every label are the means over the
   resampled frames, and the observed cluster numbers (the Poisson weights) are rescaled to
   the same total. Without the series, every label's cluster number is drawn from a Poisson
   distribution around the observed one (a bootstrap over clusters).
2. label means from the structure library and the dynamics are redrawn from the normal
   distribution of a mean, ``mean + z std / sqrt(files)`` for Rg and max radius (semiaxes
   scaled with Rg) and ``mean + z std / sqrt(completed lifetimes)`` for lifetimes (>= dt);
3. every law is refitted and the targets are predicted again (the shape laws on the scaling
   regime of the full data: ``ShapeLaws.fit(regime_sizes=...)``); the population law's tail
   anchor (``population.py``) is tested against the replicate's time-resampled counts of every
   observed size, before the case resampling of node counts (which perturbs the law's shape
   but must not remove the observed tail).

4. model-form error (``model_error``): resampling the observations cannot show that the law
   itself is wrong beyond the observed sizes, and on trajectories with many clusters the
   bootstrap alone is tight while the law drifts (the Fisher law is 20-60 % low at 3-6 sizes
   beyond the training range of high-statistics NaCl melts). Each replicate therefore also
   multiplies its count per frame (and the rates and per-composition counts, which scale with
   it) by ``exp(k_count d z1)`` and its Rg, max radius and semiaxes by ``exp(k_rg d z2)``,
   ``z1, z2 ~ N(0, 1)`` drawn once per replicate (the error of a law is systematic: the same
   sign at every size), ``d = n - L`` the distance in node counts beyond the largest size ``L``
   the laws were fitted on (0 inside the observed range). ``k`` is the RMS log error per node
   of extrapolation of the default laws measured by held-out validation on a corpus of real
   trajectories (``MODEL_ERROR_PER_NODE``, ``docs/predict.md``; recomputed from validation
   JSON files by ``scripts/calibrate_model_error.py``); pass ``model_error={"count_per_frame":
   0, "rg": 0}`` to see the sampling uncertainty alone.

The 5/50/95 % percentiles over the replicates are the intervals of every per-size quantity
(count per frame, Rg, max radius, semiaxes, lifetime, rates) and of the share and count per
frame of every composition. Replicates whose fit fails are counted, not hidden.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .extrapolate import fit_size_models, predict_sizes
from .scaling import ShapeLaws

BLOCKS = 20
#: RMS error of log(observed / predicted) per node count of extrapolation distance of the
#: default laws (Fisher population law, Rg scaling law), measured by
#: ``scripts/calibrate_model_error.py`` on held-out sizes 7-12 (trained on n <= 6) of nine
#: LAMMPS alkali-halide melts (module docs, step 4; the table is in docs/predict.md).
MODEL_ERROR_PER_NODE = {"count_per_frame": 0.054, "rg": 0.014}
#: quantities that scale with the count per frame (rates = constant x count / lifetime)
_COUNT_SCALED = ("count_per_frame", "association_rate_per_ps", "dissociation_rate_per_ps")
_RG_SCALED = ("rg", "max_radius", "semiaxis_a", "semiaxis_b", "semiaxis_c")
SIZE_KEYS = (
    "count_per_frame",
    "rg",
    "max_radius",
    "semiaxis_a",
    "semiaxis_b",
    "semiaxis_c",
    "lifetime_fs",
    "association_rate_per_ps",
    "dissociation_rate_per_ps",
)


def summary(values) -> dict:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": None, "std": None, "p05": None, "p50": None, "p95": None, "n": 0}
    p = np.percentile(v, (5, 50, 95))
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "p05": float(p[0]),
        "p50": float(p[1]),
        "p95": float(p[2]),
        "n": int(v.size),
    }


def resample_observed(observed, rng):
    """One bootstrap replicate of an ``ObservedClusters`` (module docs, steps 1 and 2)."""
    labels = observed.labels
    if observed.frame_counts is not None and observed.frame_counts.shape[1] > 0:
        fc = observed.frame_counts
        F = fc.shape[1]
        nb = min(BLOCKS, F)
        edges = np.linspace(0, F, nb + 1).round().astype(int)
        pick = rng.integers(0, nb, nb)
        sums = np.add.reduceat(fc, edges[:-1], axis=1) if fc.shape[0] else np.zeros((0, nb))
        lengths = np.diff(edges)
        frames = lengths[pick].sum()
        counts = sums[:, pick].sum(axis=1) / max(frames, 1)
        total_obs = np.array([o.observations for o in labels], dtype=np.float64)
        full = fc.mean(axis=1)
        scale = np.where(full > 0, counts / np.where(full > 0, full, 1.0), 0.0)
        obs_n = np.round(total_obs * scale).astype(int)
    else:
        N = np.array([o.observations for o in labels], dtype=np.float64)
        draw = rng.poisson(N)
        counts = np.array([o.count_per_frame * (d / n if n > 0 else 0.0) for o, d, n in zip(labels, draw, N)])
        obs_n = draw
    out = []
    dt = observed.timestep_fs
    for o, c, nobs in zip(labels, counts, obs_n):
        kw = {"count_per_frame": float(c), "observations": int(nobs)}
        if o.rg is not None and o.rg_std and o.files > 0:
            f = max(o.rg + rng.normal() * o.rg_std / math.sqrt(o.files), 1e-3) / o.rg if o.rg > 0 else 1.0
            kw["rg"] = o.rg * f
            if o.semiaxes is not None:
                kw["semiaxes"] = tuple(v * f for v in o.semiaxes)
        if o.max_radius is not None and o.max_radius_std and o.files > 0:
            kw["max_radius"] = max(o.max_radius + rng.normal() * o.max_radius_std / math.sqrt(o.files), 1e-3)
        if o.lifetime_fs is not None and o.lifetime_std_fs and o.completed_lifetimes > 0:
            kw["lifetime_fs"] = max(
                o.lifetime_fs + rng.normal() * o.lifetime_std_fs / math.sqrt(o.completed_lifetimes), dt
            )
        out.append(dataclasses.replace(o, **kw))
    return dataclasses.replace(observed, labels=out)


def resample_sizes(observed, rng, min_sizes: int = 3):
    """Case resampling over node counts: the observed sizes are drawn with replacement (at
    least ``min_sizes`` distinct ones, or all sizes when fewer exist); a size drawn ``k``
    times enters every fit with ``k`` times its weight, an undrawn size is left out."""
    sizes = observed.sizes
    if len(sizes) <= min_sizes:
        return observed
    for _ in range(50):
        pick = rng.choice(sizes, len(sizes), replace=True)
        mult = {int(n): int(np.sum(pick == n)) for n in sizes}
        if sum(1 for v in mult.values() if v > 0) >= min_sizes:
            break
    labels = [
        dataclasses.replace(
            o,
            observations=o.observations * mult.get(o.node_count, 0),
            files=o.files * mult.get(o.node_count, 0),
            completed_lifetimes=o.completed_lifetimes * mult.get(o.node_count, 0),
        )
        for o in observed.labels
        if mult.get(o.node_count, 0) > 0
    ]
    keep = [i for i, o in enumerate(observed.labels) if mult.get(o.node_count, 0) > 0]
    fc = None if observed.frame_counts is None else observed.frame_counts[keep]
    return dataclasses.replace(observed, labels=labels, frame_counts=fc)


RESAMPLING = ("blocks+sizes", "blocks")


def _model_error(model_error) -> tuple[float, float]:
    """(k_count, k_rg) from a ``model_error`` argument (None: ``MODEL_ERROR_PER_NODE``)."""
    src = MODEL_ERROR_PER_NODE if model_error is None else model_error
    if not isinstance(src, dict) or set(src) - {"count_per_frame", "rg"}:
        raise ValueError(f"model_error must be a dict with keys 'count_per_frame' and/or 'rg', got {src!r}")
    out = []
    for key in ("count_per_frame", "rg"):
        v = src.get(key)
        v = 0.0 if v is None else v
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 5:
            raise ValueError(f"model_error[{key!r}] must be a number in [0, 5] (log error per node), got {v!r}")
        out.append(float(v))
    return out[0], out[1]


def bootstrap_sizes(
    observed,
    types,
    population_model: str,
    targets,
    timestep_fs: float,
    n_bootstrap: int = 200,
    seed: int = 0,
    bond_length=None,
    box_lengths=None,
    labels_by_size=None,
    resampling: str = "blocks+sizes",
    model_error: dict | None = None,
    shape_regime=None,
) -> dict:
    """Bootstrap intervals (module docs).

    shape_regime : node counts of the shape laws' scaling regime fitted on the full data
        (``ShapeLaws.fit_sizes``; default: fitted here).

    model_error : ``{"count_per_frame": k, "rg": k}``, the model-form error per node count
        beyond the largest observed size (log units; module docs, step 4). Default
        ``MODEL_ERROR_PER_NODE``; a missing key or 0 leaves that quantity without the term.

    labels_by_size : {n: [labels]} whose share and count per frame get intervals (default:
        none, only the per-size quantities).
    Returns ``{"sizes": {n: {quantity: summary}}, "shares": {n: {label: summary}},
    "counts": {n: {label: summary}}, "n_bootstrap", "seed", "failed_replicates",
    "resampling"}``.
    """
    if resampling not in RESAMPLING:
        raise ValueError(f"resampling must be one of {RESAMPLING}, got {resampling!r}")
    targets = [int(n) for n in targets]
    labels_by_size = labels_by_size or {}
    k_count, k_rg = _model_error(model_error)
    largest = max(observed.sizes) if observed.sizes else 0
    regime = ShapeLaws.fit(observed, bond_length, box_lengths).fit_sizes if shape_regime is None else shape_regime
    rng = np.random.default_rng(seed)
    per_size: dict[int, dict[str, list]] = {n: {k: [] for k in SIZE_KEYS} for n in targets}
    shares: dict[int, dict[str, list]] = {n: {lab: [] for lab in labels_by_size.get(n, ())} for n in targets}
    counts: dict[int, dict[str, list]] = {n: {lab: [] for lab in labels_by_size.get(n, ())} for n in targets}
    failed = 0
    for _ in range(int(n_bootstrap)):
        z_count, z_rg = rng.normal(size=2)
        timed = rep = resample_observed(observed, rng)
        if resampling == "blocks+sizes":
            rep = resample_sizes(rep, rng)
        try:
            models = fit_size_models(
                rep, types, population_model, max(targets), timestep_fs, bond_length, box_lengths, tail_observed=timed,
                shape_regime=regime,
            )
            preds = predict_sizes(models, targets)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            failed += 1
            continue
        for p in preds:
            n = p["node_count"]
            d = max(0, n - largest)
            f_count, f_rg = math.exp(k_count * d * z_count), math.exp(k_rg * d * z_rg)
            for k in SIZE_KEYS:
                v = p.get(k)
                if v is not None:
                    v = v * (f_count if k in _COUNT_SCALED else f_rg if k in _RG_SCALED else 1.0)
                per_size[n][k].append(v)
            for lab in shares[n]:
                s = p["shares"].get(lab, 0.0)
                shares[n][lab].append(s)
                counts[n][lab].append(s * p["count_per_frame"] * f_count)
    return {
        "sizes": {n: {k: summary(v) for k, v in d.items()} for n, d in per_size.items()},
        "shares": {n: {lab: summary(v) for lab, v in d.items()} for n, d in shares.items()},
        "counts": {n: {lab: summary(v) for lab, v in d.items()} for n, d in counts.items()},
        "n_bootstrap": int(n_bootstrap),
        "seed": int(seed),
        "failed_replicates": failed,
        "model_error_per_node": {"count_per_frame": k_count, "rg": k_rg, "beyond_node_count": largest},
        "resampling": ("time blocks" if observed.frame_counts is not None else "clusters (Poisson)")
        + (" + node counts" if resampling == "blocks+sizes" else ""),
    }
