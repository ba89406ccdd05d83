"""The structures step of a run: a structure for every predicted candidate, built for the run's
own cluster rules, checked with the package's own cluster extraction (one cluster, exact
composition, learned minimum contacts, predicted Rg band) and rebuilt with other seeds when it
fails. A structure that still fails is written, flagged (``valid`` False in the CSV and the
dataset) and kept out of the SAXS mixture, with a warning. Writes the geometry statistics JSON,
``predicted_structures/`` and ``<name>_predicted_structures.csv``.

Each built structure's max radius (angstrom, the largest atom distance from its centroid) is
compared with half the shortest width of the source trajectory's box (the prediction's
``settings["box_lengths"]``): a structure beyond it stays valid (it is an isolated cluster) but
gets ``exceeds_half_box = True`` in the CSV and a warning, because in the source box it would
touch its own periodic image.

``run_structures_step(ctx)`` takes the workflow's step context: ``cfg``, ``data`` (reads
``prediction``, ``library``, ``rules``; sets ``geometry_statistics``, ``built_structures``,
``structure_quality``), ``path()``, ``output()``, ``warn()``, ``bar()``, ``stem``, ``dir``.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .._io import to_jsonable, write_csv
from .geomstats import geometry_statistics
from .grow import write_built_structure
from .validate import build_valid_structure, rg_interval_of


def representative_structure(library, candidate):
    """(symbols, positions) of the observed structure whose geometry seeds the build."""
    ref = getattr(candidate, "reference_label", None) or getattr(candidate, "source_label", None)
    if ref is None:
        return None
    try:
        obs = library[ref]
    except (KeyError, TypeError):
        return None
    rep = getattr(obs, "representative_path", None)
    files = [str(f) for f in getattr(obs, "files", [])]
    structures = library.structures(ref)
    if rep is not None and str(rep) in files and len(structures) == len(files):
        return structures[files.index(str(rep))]
    return structures[0] if structures else None


def run_structures_step(ctx) -> str:
    """Build, check and write the predicted structures of ``ctx.data["prediction"]`` (module
    docstring); returns the step's one-line message."""
    cfg = ctx.cfg
    pred = ctx.data["prediction"]
    library = ctx.data["library"]
    structures, labels = [], []
    for label in library.labels:
        for st in library.structures(label):
            structures.append(st)
            labels.append(label)
    rules = ctx.data["rules"]
    stats = geometry_statistics(
        structures, node_elements=list(rules.role_elements("node")),
        linker_elements=list(rules.role_elements("linker")), shell_elements=list(rules.role_elements("shell")),
        pair_cutoffs={(c.a, c.b): c.distance for c in cfg.clusters.cutoffs if c.level == 0}, labels=labels)
    ctx.data["geometry_statistics"] = stats
    if hasattr(stats, "to_json"):
        path = ctx.path(f"{ctx.stem}_geometry_statistics.json")
        text = stats.to_json()
        path.write_text(text if isinstance(text, str) else json.dumps(to_jsonable(text), indent=1))
        ctx.output("geometry_statistics", path)
    out_dir = ctx.path("predicted_structures", "x").parent
    built, quality = [], []
    cands = list(getattr(pred, "candidates", []) or [])
    # PDB mode (ref 4.8 step 6): whole shell molecules from one-molecule templates
    templates = {el: str(cfg.resolve_path(p)) for el, p in getattr(cfg.predict, "shell_templates", ())}
    half_box = _half_box(pred)
    with ctx.bar(len(cands), "predicted structures") as bar:
        for c in cands:
            # built for the run's own rules, checked with its own cluster extraction, rebuilt with other
            # seeds when it fails; a structure that still fails is written, flagged and kept out of SAXS
            try:
                st, validity, attempts = build_valid_structure(
                    c.counts, stats, rules, representative=representative_structure(library, c), label=c.label,
                    seed=cfg.run.seed, rg_interval=rg_interval_of(c), on_crowding="relax")
            except ValueError as exc:
                st, exc_text = None, str(exc)
            else:
                exc_text = "no attempt could place every atom"
            if st is None:
                ctx.warn(f"structures: {c.label} (node count {c.node_count}) not built: {exc_text}")
                bar.update(1)
                continue
            path = write_built_structure(out_dir, st, target_node_count=c.node_count, rank=c.rank,
                                         source_label=c.source_label, shell_templates=templates or None)
            valid = validity is None or bool(validity.passed)
            built.append({"candidate": c, "structure": st, "path": str(path), "valid": valid, "validity": validity})
            if not valid:
                ctx.warn(f"structures: {c.label} (node count {c.node_count}) is not a valid cluster after {attempts} "
                         f"builds: {validity.summary()}; kept out of the SAXS mixture")
            q = st.quality.to_dict() if hasattr(st.quality, "to_dict") else dict(st.quality)
            pos = np.asarray(st.positions, dtype=np.float64)
            max_radius = float(np.linalg.norm(pos - pos.mean(axis=0), axis=1).max()) if len(pos) else 0.0
            too_big = half_box is not None and max_radius > half_box
            if too_big:
                ctx.warn(f"structures: {c.label} (node count {c.node_count}) reaches {max_radius:.3g} A from its "
                         f"centre, more than half the source box ({half_box:.3g} A): in that box it would touch its "
                         "own periodic image")
            if q.get("relaxed_atoms"):
                ctx.warn(f"structures: {c.label} (node count {c.node_count}) is too crowded for the learned "
                         f"geometry: {q['relaxed_atoms']} atoms placed by the relaxed mode (see "
                         "relaxed_atoms in the predicted-structures CSV)")
            quality.append({"target_node_count": c.node_count, "rank": c.rank, "label": c.label,
                            "file": os.path.relpath(path, ctx.dir), "n_atoms": st.n_atoms,
                            "shortest_contact": q.get("shortest_contact"),
                            "shortest_contact_pair": q.get("shortest_contact_pair"),
                            "min_distance_ratio": q.get("min_distance_ratio"),
                            "max_abs_bond_deviation": q.get("max_abs_bond_deviation"),
                            "relaxed_atoms": q.get("relaxed_atoms"),
                            "bond_length_deviations": _compact(q.get("bond_length_deviations")),
                            "node_coordination_deviations": _compact(q.get("node_coordination_deviations")),
                            "valid": valid, "build_attempts": attempts,
                            "n_components": getattr(validity, "n_components", None),
                            "radius_of_gyration": getattr(validity, "rg", None),
                            "max_radius": max_radius, "exceeds_half_box": too_big,
                            "invalid_reasons": "; ".join(getattr(validity, "reasons", ()) or ()) or None})
            bar.update(1)
    ctx.data["built_structures"] = built
    ctx.data["structure_quality"] = quality
    ctx.output("predicted_structures", out_dir)
    if quality:
        path = ctx.path(f"{ctx.stem}_predicted_structures.csv")
        write_csv(path, quality)
        ctx.output("predicted_structures_csv", path)
    n_valid = sum(1 for b in built if b["valid"])
    return f"{len(built)} of {len(cands)} structures built, {n_valid} valid"


def _half_box(pred) -> float | None:
    """Half the shortest width of the source trajectory's box (angstrom), from the prediction's
    settings, or None when the frames had no box."""
    widths = (getattr(pred, "settings", None) or {}).get("box_lengths") or []
    widths = [float(w) for w in widths if w is not None and float(w) > 0]
    return 0.5 * min(widths) if widths else None


def _compact(value):
    """A dict of deviations as one CSV cell: 'Pb-I=+0.012;Pb-O=-0.030' (None stays None)."""
    if not isinstance(value, dict):
        return value
    return ";".join(f"{k}={v:+.4g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in sorted(value.items()))
