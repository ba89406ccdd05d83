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
    "Box": "box",
    "neighbor_pairs": "geometry",
    "connected_components": "geometry",
    "neighbor_pairs_typed": "geometry",
    # frames
    "Frame": "frames",
    "read_frames": "frames",
    "FrameSource": "frames",
    "FileFormatError": "frames",
    "read_structure": "frames",
    "write_xyz": "frames",
    "write_pdb": "frames",
    "write_frames": "frames",
    # clusters
    "ClusterRules": "clusters",
    "Cluster": "clusters",
    "extract_clusters": "clusters",
    "parse_label": "clusters",
    "format_label": "clusters",
    "count_labels": "clusters",
    "summarize_frame": "clusters",
    "write_library": "library",
    # dynamics
    "analyze_dynamics": "dynamics",
    "DynamicsResult": "dynamics",
    # scattering
    "debye_intensity": "saxs",
    "rank_aligned_sigma": "saxs",
    "form_factors": "formfactors",
    "debye_partials": "saxs",
    "rank_aligned_spread": "saxs",
    "b_factor_from_sigma": "saxs",
    "sigma_from_b_factor": "saxs",
    "SaxsComponent": "saxs",
    "single_component": "saxs",
    "average_component": "saxs",
    "mix_components": "saxs",
    "farthest_point_sampling": "saxs",
    "SaxsData": "expdata",
    "load_saxs_data": "expdata",
    "stitch_saxs": "expdata",
    "SaxsFitResult": "fit",
    "fit_saxs": "fit",
    "plot_saxs_traces": "plot_saxs",
    "plot_saxs_fit": "plot_saxs",
    # structure library and prediction
    "read_library": "structures",
    "predict_clusters": "predict",
    "PredictionResult": "predict",
    # geometry statistics and predicted structures
    "geometry_statistics": "geomstats",
    "GeometryStatistics": "geomstats",
    "build_structure": "builder",
    "BuiltStructure": "builder",
    "write_built_structure": "builder",
    # workflow
    "RunConfig": "config",
    "run": "workflow",
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
