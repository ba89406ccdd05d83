# Type stub of the compiled core, generated from the binding (keep in sync when cpp/bindings changes):
#   PYTHONPATH=python pybind11-stubgen clusterdynamicsml._core -o /tmp/stubs && cp /tmp/stubs/clusterdynamicsml/_core.pyi python/clusterdynamicsml/
# then drop the version value (the one version source is CMakeLists.txt).
"""
clusterdynamicsml C++ core (private; use the clusterdynamicsml package)
"""
from __future__ import annotations

import typing

import numpy
import numpy.typing

__all__: list[str] = ['cluster_counts', 'connected_components', 'contact_statistics', 'debye_auto_uses_histogram', 'debye_pairlist_partials', 'debye_partials', 'debye_partials_batch', 'debye_partials_ensemble', 'max_threads', 'minimum_image', 'neighbor_pairs', 'neighbor_pairs_typed', 'openmp_enabled', 'parse_xyz_atoms', 'rank_aligned_sigma', 'scaffold_statistics']
def cluster_counts(positions: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], types: typing.Annotated[numpy.typing.ArrayLike, numpy.int32], n_elements: typing.SupportsInt | typing.SupportsIndex, cutoff0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], level_cutoffs: list, attach_shells: bool, shared_shells: bool, count_shells: bool, box: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None, num_threads: typing.SupportsInt | typing.SupportsIndex) -> tuple:
    """
    Per-cluster element counts (n_clusters, E) int32, percolating (n_clusters,) bool, the cluster of each atom (n,) int64 (-1: not a node/linker atom), the composition group of each cluster (n_clusters,) and the first cluster of each group (G,), groups in order of first appearance.
    """
def connected_components(n: typing.SupportsInt | typing.SupportsIndex, i: typing.Annotated[numpy.typing.ArrayLike, numpy.int64], j: typing.Annotated[numpy.typing.ArrayLike, numpy.int64]) -> numpy.typing.NDArray[numpy.int64]:
    ...
def contact_statistics(positions: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], offsets: typing.Annotated[numpy.typing.ArrayLike, numpy.int64], elements: typing.Annotated[numpy.typing.ArrayLike, numpy.int32], contact_cutoffs: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], num_threads: typing.SupportsInt | typing.SupportsIndex) -> dict:
    """
    Contact pairs and per-atom contact counts by element over a batch of open structures.
    """
def debye_auto_uses_histogram(n: typing.SupportsInt | typing.SupportsIndex, n_types: typing.SupportsInt | typing.SupportsIndex, r_max: typing.SupportsFloat | typing.SupportsIndex, bin_width: typing.SupportsFloat | typing.SupportsIndex) -> bool:
    """
    True when method='auto' uses the histogram for this size.
    """
def debye_pairlist_partials(r: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], pair_type: typing.Annotated[numpy.typing.ArrayLike, numpy.int64], n_pair_types: typing.SupportsInt | typing.SupportsIndex, q: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], num_threads: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.float64]:
    ...
def debye_partials(positions: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], types: typing.Annotated[numpy.typing.ArrayLike, numpy.int32], n_types: typing.SupportsInt | typing.SupportsIndex, q: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], method: str, bin_width: typing.SupportsFloat | typing.SupportsIndex, num_threads: typing.SupportsInt | typing.SupportsIndex, simd: str = 'auto') -> tuple:
    """
    Partial Debye sums S_ab(q) per pair type: (S (P, nq), type_counts, pair_counts, uniform_grid).
    simd: 'auto' (AVX-512 histogram pass when the CPU has it) or 'portable'.
    """
def debye_partials_batch(positions: list, types: list, n_types: typing.SupportsInt | typing.SupportsIndex, q: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], method: str, bin_width: typing.SupportsFloat | typing.SupportsIndex, num_threads: typing.SupportsInt | typing.SupportsIndex) -> tuple:
    """
    Partial Debye sums of many structures in one call: (S (B, P, nq), type_counts (B, T), pair_counts (B, P), used_histogram (B,) bool); entry k equals debye_partials of structure k.
    """
def debye_partials_ensemble(positions: list, types: list, n_types: typing.SupportsInt | typing.SupportsIndex, q: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], method: str, bin_width: typing.SupportsFloat | typing.SupportsIndex, weights: typing.Any, moments: bool, num_threads: typing.SupportsInt | typing.SupportsIndex) -> tuple:
    """
    Weighted-mean partial Debye sums of an ensemble in one call: (S (P, nq), type_counts (T,), pair_counts (P,), pooled, n_histogram, r_max, cov (T+P, T+P, nq) or None, uniform_grid).
    """
def max_threads() -> int:
    """
    Threads OpenMP uses by default (1 without OpenMP).
    """
def minimum_image(displacements: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], box: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> numpy.typing.NDArray[numpy.float64]:
    ...
def neighbor_pairs(positions: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], cutoff: typing.SupportsFloat | typing.SupportsIndex, box: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None, num_threads: typing.SupportsInt | typing.SupportsIndex) -> tuple:
    ...
def neighbor_pairs_typed(positions: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], types: typing.Annotated[numpy.typing.ArrayLike, numpy.int32], cutoffs: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], box: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None, num_threads: typing.SupportsInt | typing.SupportsIndex) -> tuple:
    ...
def openmp_enabled() -> bool:
    """
    True when the core was compiled with OpenMP.
    """
def parse_xyz_atoms(data: bytes, offset: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, species_col: typing.SupportsInt | typing.SupportsIndex, pos_col: typing.SupportsInt | typing.SupportsIndex, ncols: typing.SupportsInt | typing.SupportsIndex, single: bool) -> tuple:
    """
    Atom lines of one XYZ frame from data[offset:]: positions (n, 3) float64, species codes (n,) int32, distinct species tokens (bytes). ValueError names the atom line of the frame.
    """
def rank_aligned_sigma(positions: list, types: list, type_a: typing.SupportsInt | typing.SupportsIndex, type_b: typing.SupportsInt | typing.SupportsIndex, cutoff: typing.SupportsFloat | typing.SupportsIndex, num_threads: typing.SupportsInt | typing.SupportsIndex) -> tuple:
    ...
def scaffold_statistics(positions: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], offsets: typing.Annotated[numpy.typing.ArrayLike, numpy.int64], elements: typing.Annotated[numpy.typing.ArrayLike, numpy.int32], element_kinds: typing.Annotated[numpy.typing.ArrayLike, numpy.int32], assoc_cutoffs: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], num_threads: typing.SupportsInt | typing.SupportsIndex) -> dict:
    """
    Pass 1 of the geometry statistics over a batch of open structures (see pairstats.hpp).
    """
__version__: str
