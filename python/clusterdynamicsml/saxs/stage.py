"""The SAXS step of a run: complete mixture, fit, evidence and reweighting, and their files.

``run_saxs_step(ctx)`` is called by the workflow with its run context (``cfg``, ``data``,
``path()``, ``output()``, ``warn()``, ``bar()``, ``dir``, ``stem``). It writes

* ``saxs_components/observed_<label>.txt`` / ``predicted_<structure>.txt`` (ref 4.10 profiles),
* ``<name>_saxs_components.csv``: every label of the dynamics table and every predicted
  candidate, with its weight (both conventions), source, whether node-free, in the mixture or not,
* ``<name>_saxs.csv``: model and fitted curves on the model q grid,
* with experimental data: ``<name>_saxs_fit.json`` (noise, models, evidence, background share,
  reweighting; evidence.py) and ``<name>_saxs_reweighting.csv`` (MD vs reweighted populations),

and leaves in ``ctx.data["saxs"]`` what the figures, the report and the dataset need.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from .._io import atomic_path, write_json
from .._io import write_csv as _write_csv

__all__ = ["SaxsSkipped", "run_saxs_step", "write_saxs_fit_json"]


class SaxsSkipped(Exception):
    """The step has nothing to do (the message says why)."""


def _safe(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_") or "x"


def _sigma_tables(pred) -> tuple[dict, dict]:
    """Debye-Waller sigma (angstrom) per label and element pair from the prediction's table:
    ({observed label: {(a, b): sigma}}, {(node count, rank, label): {(a, b): sigma}})."""
    observed: dict = {}
    predicted: dict = {}
    for r in getattr(pred, "debye_waller", None) or []:
        sigma = r.get("sigma")
        if sigma is None:
            continue
        pair = (r["element_a"], r["element_b"])
        if r.get("source") == "predicted":
            key = (r.get("node_count"), r.get("candidate_rank"), r.get("label"))
            predicted.setdefault(key, {})[pair] = float(sigma)
        else:
            observed.setdefault(r.get("label"), {})[pair] = float(sigma)
    return observed, predicted


def _write_profile(path: Path, comp, source: str) -> Path:
    """Component profile as ref 4.10: '# Source', '# Columns: q, S(q)_avg, S(q)_std, S(q)_se', %.8f."""
    header = (f"Source: {source}\nLabel: {comp.label}\nStructures used: {comp.n_structures} of "
              f"{comp.n_library} ({comp.source})\nUnits: q in 1/angstrom, S(q) in electrons^2\n"
              "Columns: q, S(q)_avg, S(q)_std, S(q)_se")
    with atomic_path(path) as tmp:
        np.savetxt(tmp, np.column_stack([comp.q, comp.intensity, comp.std, comp.se]), fmt="%.8f", header=header)
    return path


def write_saxs_fit_json(path, evidences) -> Path:
    """``<name>_saxs_fit.json``: the evidence of one curve as the top-level object (the shape of
    issue 13), with ``curves`` listing every curve when there are several."""
    items = [e.to_dict() for e in evidences]
    payload = dict(items[0]) if len(items) == 1 else {"curves": items}
    return write_json(path, payload)  # NaN / infinity -> null


def run_saxs_step(ctx) -> str:
    """The SAXS step (module docstring). Raises SaxsSkipped when there is nothing to compute."""
    from .components import compute_components, mix_components

    cfg = ctx.cfg
    sc = cfg.saxs
    dyn = ctx.data.get("dynamics")
    if dyn is None:
        raise SaxsSkipped("no dynamics (the mixture weights come from it)")
    pred = ctx.data.get("prediction")
    library = ctx.data.get("library")
    if library is None and ctx.data.get("library_dir") is not None:
        from ..errors import InsufficientDataError
        from ..library.read import read_library

        try:
            library = read_library(str(ctx.data["library_dir"]), ctx.data.get("rules"))
        except InsufficientDataError:
            library = None  # no cluster with node atoms: components come from the library files and lone atoms
    q = np.linspace(sc.q_min, sc.q_max, sc.q_points)
    sig_obs, sig_pred = _sigma_tables(pred)
    rules = ctx.data.get("rules")
    nodes = list(getattr(pred, "node_elements", []) or []) or (
        list(rules.role_elements("node")) if rules is not None and hasattr(rules, "role_elements") else [])
    n_items = len(getattr(dyn, "labels", []) or []) + len(getattr(pred, "candidates", []) or [])
    with ctx.bar(n_items, "SAXS components") as bar:
        cs = compute_components(
            q, dyn, library, library_dir=ctx.data.get("library_dir"), node_elements=nodes, prediction=pred,
            built_structures=ctx.data.get("built_structures", []),
            weights=getattr(sc, "mixture_weights", "clusters_per_frame"),
            observed_components=sc.observed_components, max_structures=sc.max_structures_per_label or None,
            observed_sigma=sig_obs, predicted_sigma=sig_pred, dw_pairs=sc.dw_pairs,
            cutoffs={f"{c.a}-{c.b}": c.distance for c in cfg.clusters.cutoffs if c.level == 0},
            method=sc.method, bin_width=sc.bin_width, progress=bar.update)
    for w in cs.warnings:
        ctx.warn(f"saxs: {w}")
    if not cs.components:
        raise SaxsSkipped("no component with a positive population weight")
    comp_dir = ctx.path("saxs_components", "x").parent
    rows = [dict(r) for r in cs.rows]
    # profiles of the components in the mixture (the rows in the mixture follow the component order)
    comp_rows = [r for r in rows if r.get("in_mixture")]
    listed = list(zip(cs.components, cs.sources, comp_rows)) + [(c, rows[i]["source"], rows[i]) for i, c in cs.unmixed]
    for comp, src, r in listed:
        stem = _safe(r["label"]) if src == "observed" else Path(r.get("structure") or r["label"]).stem
        path = _write_profile(comp_dir / f"{src}_{_safe(stem)}.txt", comp, f"{src} label {comp.label} ({comp.source})")
        r["profile"] = os.path.relpath(path, ctx.dir)
        if r.get("structure"):
            r["structure"] = os.path.relpath(r["structure"], ctx.dir)
    ctx.output("saxs_components", comp_dir)
    obs_idx = cs.indices("observed")
    saxs: dict = {"q": q, "components": cs.components, "component_rows": comp_rows, "all_rows": rows,
                  "mixture_weights": cs.mode}
    if obs_idx:
        saxs["observed_intensity"], w_obs = mix_components([cs.components[i] for i in obs_idx], cs.weights[obs_idx])
        for i, w in zip(obs_idx, w_obs):
            comp_rows[i]["observed_only_weight"] = float(w)
    saxs["combined_intensity"], w_all = mix_components(cs.components, cs.weights)
    for i, w in enumerate(w_all):
        comp_rows[i]["combined_weight"] = float(w)
    _write_csv(ctx.path(f"{ctx.stem}_saxs_components.csv"), rows)
    ctx.output("saxs_components_csv", ctx.dir / f"{ctx.stem}_saxs_components.csv")
    n_free = sum(1 for r in comp_rows if r.get("node_free"))
    text = (f"{len(obs_idx)} observed ({n_free} node-free) and {len(cs.components) - len(obs_idx)} predicted "
            f"components, weights {cs.mode.replace('_', ' ')}")
    if sc.experimental:
        text += "; " + _fit_experimental(ctx, saxs, cs)
    columns = {"q": q, "observed_raw_model_intensity": saxs.get("observed_intensity"),
               "raw_model_intensity": saxs["combined_intensity"],
               "observed_fitted_model_intensity": saxs.get("observed_fitted_on_grid"),
               "fitted_model_intensity": saxs.get("combined_fitted_on_grid")}
    exp = saxs.get("experimental_on_grid")
    if exp is not None:
        columns["experimental_intensity"] = exp
        if saxs.get("combined_fitted_on_grid") is not None:
            columns["residual"] = exp - saxs["combined_fitted_on_grid"]
    _write_csv(ctx.path(f"{ctx.stem}_saxs.csv"), [
        {
            k_: (None if v is None or not np.isfinite(v[i]) else float(v[i]))
            for k_, v in columns.items() if v is not None
        }
        for i in range(len(q))])
    ctx.output("saxs_csv", ctx.dir / f"{ctx.stem}_saxs.csv")
    ctx.data["saxs"] = saxs
    return text


def _fit_experimental(ctx, saxs: dict, cs) -> str:
    """Load (and stitch) the experimental files, estimate the noise, fit the observed-only and
    the combined mixture (fit.py, with the noise used for the statistics) and weigh the evidence
    (evidence.py: background, generic, observed, combined, reweighted, Pearson)."""
    from ..pipeline.config import ConfigError
    from .evidence import saxs_evidence
    from .expdata import load_saxs_data, stitch_saxs
    from .fit import fit_saxs
    from .noise import estimate_noise

    cfg = ctx.cfg
    sc = cfg.saxs
    unit = {"auto": None, "1/A": "A^-1", "1/nm": "nm^-1"}[sc.q_units]
    files = [str(cfg.resolve_path(p)) for p in sc.experimental]
    datasets = [load_saxs_data(f, q_unit=unit) for f in files]
    data = stitch_saxs(datasets) if len(datasets) > 1 else datasets[0]
    saxs["experimental"] = data
    if len(datasets) > 1:
        factors = ", ".join(f"{Path(f).name} x{x:.4g}" for f, x in zip(files, getattr(data, "scale_factors", ())))
        ctx.warn(f"saxs: stitched {len(files)} experimental files by overlap scaling ({factors})")
    lo = max(sc.fit_q_min if sc.fit_q_min is not None else sc.q_min, float(data.q[0]), sc.q_min)
    hi = min(sc.fit_q_max if sc.fit_q_max is not None else sc.q_max, float(data.q[-1]), sc.q_max)
    if not lo < hi:
        raise ConfigError(cfg.source, "saxs", "fit_q_max", f"the fit range [{lo:g}, {hi:g}] 1/A is empty: the "
                          f"model covers {sc.q_min:g}..{sc.q_max:g} and the data {data.q[0]:.4g}..{data.q[-1]:.4g}")
    noise = estimate_noise(data)
    if noise.used == "estimate":
        ctx.warn(f"saxs: {noise.note}")
    solvent = None
    if sc.solvent_file is not None:
        solvent = load_saxs_data(str(cfg.resolve_path(sc.solvent_file)), q_unit=unit)
    refit = None if sc.weights == "population" else sc.weights
    fitted = dataclasses.replace(data, sigma=noise.used_sigma)
    fits = {}
    comps = cs.components
    for name, idx in (("observed", cs.indices("observed")), ("combined", cs.indices())):
        if not idx:
            continue
        refine = sc.refine_dw_scale and any(getattr(comps[k], "sigma", None) for k in idx)
        fits[name] = fit_saxs(fitted, [comps[k] for k in idx], [cs.weights[k] for k in idx], solvent=solvent,
                              q_range=(lo, hi), background=sc.background,
                              background_degree=sc.background_degree, refit_weights=refit,
                              refine_sigma_scale=refine)
    saxs["fit"] = fits
    saxs["fit_q_range"] = (lo, hi)
    ev = saxs_evidence(data, comps, cs.weights, cs.sources, q_range=(lo, hi), background=sc.background,
                       background_degree=sc.background_degree,
                       solvent=None if solvent is None else (solvent.q, solvent.intensity), noise=noise,
                       margin=getattr(sc, "evidence_margin", 10.0), reweight=getattr(sc, "reweight", True))
    saxs["evidence"] = ev
    path = write_saxs_fit_json(ctx.path(f"{ctx.stem}_saxs_fit.json"), [ev])
    ctx.output("saxs_fit_json", path)
    for w in ev.warnings:
        ctx.warn(f"saxs: {w}")
    if ev.reweighting is not None:
        for note in ev.reweighting.notes:
            ctx.warn(f"saxs: reweighting: {note}")
        p = _write_csv(ctx.path(f"{ctx.stem}_saxs_reweighting.csv"), ev.reweighting.table())
        ctx.output("saxs_reweighting_csv", p)
    q = saxs["q"]
    inside = (q >= data.q[0]) & (q <= data.q[-1])
    saxs["experimental_on_grid"] = np.where(inside, np.interp(q, data.q, data.intensity), np.nan)
    for name, f in fits.items():
        on_grid = np.full(q.shape, np.nan)
        m = (q >= f.q[0]) & (q <= f.q[-1])
        on_grid[m] = np.interp(q[m], f.q, f.fitted)
        saxs[f"{name}_fitted_on_grid"] = on_grid
    m = ev.models
    parts = [f"{name}: chi2_red {m[name].stats['chi2_red']:.3g}, BIC {m[name].stats['bic']:.5g}"
             for name in ("background", "generic", "observed", "combined", "reweighted") if name in m]
    return (f"fit over q {lo:.3g}..{hi:.3g} 1/A, noise {noise.used} ({'; '.join(parts)}). {ev.verdict}")
