// Internal helpers shared by debye.cpp and debye_ensemble.cpp (not installed).
#pragma once
#include <cstdint>
#include <vector>

#include "clusterdynamicsml/debye.hpp"

namespace cdml::detail {

/// Throws std::invalid_argument unless every q is finite and >= 0.
void validate_q(const double* q, int64_t nq);

/// Validates one structure (types in range, finite positions, q_max r_max <= 1e8); returns its
/// bounding-box diagonal r_max (angstrom).
double validate_structure(const double* positions, int64_t n, const int32_t* types, int32_t n_types,
                          const double* q, int64_t nq);

/// True when a histogram of width bin_width over [0, rmax] for n_types types stays within the
/// kernel's limits (2e7 bins x pair types).
bool histogram_fits(double rmax, double bin_width, int32_t n_types);

/// The histogram kernel over the pairs of every structure (validated; rmax >= every structure's
/// r_max), the pairs of structure k counted mult[k] times, all binned into one histogram per
/// pair type, then one sinc transform. type_counts / pair_counts / s are SUMS over the
/// structures weighted by mult (not means). Bit-identical for any thread count.
DebyePartials pooled_histogram(const std::vector<DebyeStructure>& structures, const uint64_t* mult,
                               int32_t n_types, const double* q, int64_t nq, double bin_width, double rmax,
                               int num_threads);

}  // namespace cdml::detail
