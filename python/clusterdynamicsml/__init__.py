"""clusterdynamicsml: clusters, cluster dynamics, prediction and Debye SAXS from MD frames.

Units everywhere: angstrom, femtoseconds (rates per picosecond), q in inverse angstrom
(q = 4 pi sin(theta) / lambda), double precision.

The top level holds the names of a whole run and of each stage's entry point (imported
lazily: nothing heavy at import time). Everything else lives in the subpackages, one per
pipeline stage: ``geometry``, ``io``, ``clusters``, ``library``, ``dynamics``, ``predict``,
``build``, ``saxs``, ``plot``, ``pipeline``, plus the shared vocabulary ``chem`` and ``rules``
(``import clusterdynamicsml as cdml; cdml.saxs.rank_aligned_sigma(...)`` works too).
"""
from __future__ import annotations

import importlib as _importlib
import warnings as _warnings

# The one version source is project(... VERSION) in CMakeLists.txt, compiled into the core
# (pyproject.toml reads the same line). Importing _core also fails early if the build is broken.
from ._core import __version__
from ._threads import get_num_threads, openmp_enabled, set_num_threads

#: public name -> module that defines it (resolved lazily on first access)
_LAZY = {
    # a whole run
    "run": "pipeline.workflow",
    "RunConfig": "pipeline.config",
    "load_run": "pipeline.runs",
    # stage entry points
    "read_frames": "io.frames",
    "Frame": "io.frames",
    "Box": "geometry.box",
    "ClusterRules": "rules",
    "extract_clusters": "clusters.extract",
    "analyze_dynamics": "dynamics.analyze",
    "DynamicsResult": "dynamics.analyze",
    "write_library": "library.write",
    "read_library": "library.read",
    "predict_clusters": "predict.core",
    "build_structure": "build.grow",
    "debye_intensity": "saxs.debye",
    "load_saxs_data": "saxs.expdata",
    "fit_saxs": "saxs.fit",
}

_SUBPACKAGES = frozenset({"geometry", "io", "clusters", "library", "dynamics", "predict", "build", "saxs", "plot",
                          "pipeline", "chem", "rules", "example"})

#: former top-level names: still resolved for one release, with a DeprecationWarning
_DEPRECATED = {
    "neighbor_pairs": "geometry.neighbors", "connected_components": "geometry.neighbors",
    "neighbor_pairs_typed": "geometry.neighbors", "FrameSource": "io.frames", "FileFormatError": "io.frames",
    "read_structure": "io.frames", "write_xyz": "io.frames", "write_pdb": "io.frames", "write_frames": "io.frames",
    "Cluster": "clusters.extract", "parse_label": "clusters.extract", "format_label": "clusters.extract",
    "count_labels": "clusters.extract", "summarize_frame": "clusters.extract",
    "rank_aligned_sigma": "saxs.debye", "form_factors": "saxs.formfactors", "debye_partials": "saxs.debye",
    "rank_aligned_spread": "saxs.debye", "b_factor_from_sigma": "saxs.debye", "sigma_from_b_factor": "saxs.debye",
    "SaxsComponent": "saxs.debye", "single_component": "saxs.debye", "average_component": "saxs.debye",
    "mix_components": "saxs.debye", "farthest_point_sampling": "saxs.debye", "SaxsData": "saxs.expdata",
    "stitch_saxs": "saxs.expdata", "SaxsFitResult": "saxs.fit", "plot_saxs_traces": "plot.saxs",
    "plot_saxs_fit": "plot.saxs", "PredictionResult": "predict.core", "geometry_statistics": "build.geomstats",
    "GeometryStatistics": "build.geomstats", "BuiltStructure": "build.grow",
    "write_built_structure": "build.grow",
}

__all__ = ["__version__", "get_num_threads", "openmp_enabled", "set_num_threads", *sorted(_LAZY)]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(_importlib.import_module(f".{module}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return _importlib.import_module(f".{name}", __name__)
    module = _DEPRECATED.get(name)
    if module is not None:
        _warnings.warn(f"clusterdynamicsml.{name} moved to clusterdynamicsml.{module}.{name}; the top-level "
                       "name will be removed in the next release", DeprecationWarning, stacklevel=2)
        return getattr(_importlib.import_module(f".{module}", __name__), name)
    raise AttributeError(f"module 'clusterdynamicsml' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
