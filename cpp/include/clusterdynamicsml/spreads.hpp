// Rank-aligned spreads of pair distances across an ensemble of structures. Python-free.
//
// For one element pair (a, b) and S structures: in each structure s take the distances of
// all unordered atom pairs of types {a, b} with d <= cutoff (the first shell), sorted
// ascending: d^(s)_(0) <= d^(s)_(1) <= ...  Structures without such a pair are skipped; at
// least two must remain. With n* = min_s n_s, the ranks k < n* are aligned across
// structures and
//     sigma_k = sqrt( mean_s (d^(s)_(k) - mean_s d^(s)_(k))^2 )      (population std)
//     sigma   = sqrt( mean_k sigma_k^2 )                              (RMS over ranks)
//     B       = 8 pi^2 sigma^2                                        (angstrom^2)
#pragma once
#include <cstdint>
#include <vector>

namespace cdml {

struct RankAlignedSpread {
    double sigma = 0.0;               ///< angstrom
    double b_factor = 0.0;            ///< 8 pi^2 sigma^2, angstrom^2
    int64_t aligned_count = 0;        ///< n*
    int64_t support = 0;              ///< structures that contain the pair
    std::vector<double> rank_sigma;   ///< (n*,) sigma_k
    std::vector<double> rank_mean;    ///< (n*,) mean distance per rank
};

/// positions[s]: n_atoms[s] x 3 row-major (angstrom); types[s]: (n_atoms[s],) ints.
/// type_a, type_b: the pair (may be equal). cutoff: keep d <= cutoff; cutoff <= 0 or infinite
/// keeps every pair. Structures are processed in parallel (each owns its result), so the
/// result does not depend on num_threads. Throws std::invalid_argument with fewer than two
/// structures containing the pair, or on non-finite positions.
RankAlignedSpread rank_aligned_sigma(const std::vector<const double*>& positions,
                                     const std::vector<int64_t>& n_atoms,
                                     const std::vector<const int32_t*>& types, int32_t type_a,
                                     int32_t type_b, double cutoff, int num_threads);

}  // namespace cdml
