// Periodic neighbour search (cell list) and connected components. Python-free.
#pragma once
#include <cstdint>
#include <vector>

#include "clusterdynamicsml/box.hpp"

namespace cdml {

/// All unordered pairs (i < j) within a cutoff, in canonical order: sorted by (i, j).
struct PairList {
    std::vector<int64_t> i;
    std::vector<int64_t> j;
    std::vector<double> d;  ///< minimum-image distance, angstrom
    std::size_t size() const { return d.size(); }
};

/// All pairs i < j with minimum-image distance d <= cutoff.
///
/// positions: n x 3 row-major (angstrom), any values (coordinates far outside the
/// cell are wrapped). box: nullptr for an open (non-periodic) system. With a box the
/// cutoff must be < half the smallest perpendicular cell height, so that at most one
/// periodic image of each atom is within the cutoff. The result is identical, bit for
/// bit, for any num_threads (<= 0 means all available).
/// Throws std::invalid_argument on a negative / non-finite cutoff, non-finite
/// positions or a cutoff too large for the box.
PairList neighbor_pairs(const double* positions, int64_t n, double cutoff, const Box* box,
                        int num_threads);

/// Same search with a cutoff per type pair: types[k] in [0, n_types); cutoffs is a
/// symmetric n_types x n_types row-major matrix; a pair (a, b) is kept when
/// d <= cutoffs[ta * n_types + tb] and that cutoff is > 0 (0 or negative: never bonded).
/// types[k] < 0 marks an atom that takes part in no pair.
PairList neighbor_pairs_typed(const double* positions, int64_t n, const int32_t* types,
                              int32_t n_types, const double* cutoffs, const Box* box,
                              int num_threads);

/// Union-find connected components of a graph with n vertices and edges (i[k], j[k]).
/// Returns one label per vertex; components are numbered 0, 1, 2, ... in the order of
/// their smallest vertex index. Throws std::invalid_argument for an index outside [0, n).
std::vector<int64_t> connected_components(int64_t n, const int64_t* i, const int64_t* j,
                                          int64_t n_edges);

}  // namespace cdml
