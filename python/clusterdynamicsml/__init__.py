"""clusterdynamicsml: clusters, cluster dynamics, prediction and Debye SAXS from MD frames.

Units everywhere: angstrom, femtoseconds (rates per picosecond), q in inverse angstrom
(q = 4 pi sin(theta) / lambda), double precision.

Public names are imported lazily (nothing heavy at import time): the table below maps
each name to the module that defines it.
"""
from __future__ import annotations

import importlib

from ._core import __version__ as _core_version  # noqa: F401  (fails early if the build is broken)
from ._threads import get_num_threads, openmp_enabled, set_num_threads

__version__ = "0.1.0"

_LAZY = {
    # geometry
    "Box": "geometry.box",
    "neighbor_pairs": "geometry.neighbors",
    "connected_components": "geometry.neighbors",
    "neighbor_pairs_typed": "geometry.neighbors",
    # frames
    "Frame": "io.frames",
    "read_frames": "io.frames",
    "FrameSource": "io.frames",
    "FileFormatError": "io.frames",
    "read_structure": "io.frames",
    "write_xyz": "io.frames",
    "write_pdb": "io.frames",
    "write_frames": "io.frames",
    # clusters
    "ClusterRules": "clusters.extract",
    "Cluster": "clusters.extract",
    "extract_clusters": "clusters.extract",
    "parse_label": "clusters.extract",
    "format_label": "clusters.extract",
    "count_labels": "clusters.extract",
    "summarize_frame": "clusters.extract",
    "write_library": "library.write",
    # dynamics
    "analyze_dynamics": "dynamics.analyze",
    "DynamicsResult": "dynamics.analyze",
    # scattering
    "debye_intensity": "saxs.debye",
    "rank_aligned_sigma": "saxs.debye",
    "form_factors": "saxs.formfactors",
    "debye_partials": "saxs.debye",
    "rank_aligned_spread": "saxs.debye",
    "b_factor_from_sigma": "saxs.debye",
    "sigma_from_b_factor": "saxs.debye",
    "SaxsComponent": "saxs.debye",
    "single_component": "saxs.debye",
    "average_component": "saxs.debye",
    "mix_components": "saxs.debye",
    "farthest_point_sampling": "saxs.debye",
    "SaxsData": "saxs.expdata",
    "load_saxs_data": "saxs.expdata",
    "stitch_saxs": "saxs.expdata",
    "SaxsFitResult": "saxs.fit",
    "fit_saxs": "saxs.fit",
    "plot_saxs_traces": "plot.saxs",
    "plot_saxs_fit": "plot.saxs",
    # structure library and prediction
    "read_library": "library.read",
    "predict_clusters": "predict.core",
    "PredictionResult": "predict.core",
    "validate_extrapolation": "predict.validate",
    # geometry statistics and predicted structures
    "geometry_statistics": "build.geomstats",
    "GeometryStatistics": "build.geomstats",
    "build_structure": "build.grow",
    "BuiltStructure": "build.grow",
    "write_built_structure": "build.grow",
    # workflow
    "RunConfig": "pipeline.config",
    "run": "pipeline.workflow",
}

__all__ = ["__version__", "get_num_threads", "openmp_enabled", "set_num_threads", *sorted(_LAZY)]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'clusterdynamicsml' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
