// Rank-aligned pair-distance spreads (Debye-Waller sigma estimator).
#include "clusterdynamicsml/spreads.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "clusterdynamicsml/parallel.hpp"

namespace cdml {

RankAlignedSpread rank_aligned_sigma(const std::vector<const double*>& positions,
                                     const std::vector<int64_t>& n_atoms,
                                     const std::vector<const int32_t*>& types, int32_t type_a,
                                     int32_t type_b, double cutoff, int num_threads) {
    const int64_t S = static_cast<int64_t>(positions.size());
    if (static_cast<int64_t>(n_atoms.size()) != S || static_cast<int64_t>(types.size()) != S)
        throw std::invalid_argument("positions, n_atoms and types must have one entry per structure");
    if (std::isnan(cutoff)) throw std::invalid_argument("cutoff must not be NaN");
    const bool all_pairs = !(cutoff > 0) || std::isinf(cutoff);
    for (int64_t s = 0; s < S; ++s) {
        if (n_atoms[s] < 0) throw std::invalid_argument("structure " + std::to_string(s) + ": negative atom count");
        for (int64_t k = 0; k < 3 * n_atoms[s]; ++k)
            if (!std::isfinite(positions[s][k]))
                throw std::invalid_argument("structure " + std::to_string(s) + ": positions contain NaN or infinity");
    }
    std::vector<std::vector<double>> dist(S);
    bool failed = false;  // no exception may leave the parallel region
    double work = 0.0;  // pair distances to compute
    for (int64_t s = 0; s < S; ++s) work += 0.5 * static_cast<double>(n_atoms[s]) * static_cast<double>(n_atoms[s]);
    const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads_for_work(num_threads, work, 2e4), S)));
#ifdef CDML_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
#endif
    for (int64_t s = 0; s < S; ++s) {
        try {
            const double* p = positions[s];
            const int32_t* t = types[s];
            std::vector<double>& out = dist[s];
            for (int64_t i = 0; i < n_atoms[s]; ++i)
                for (int64_t j = i + 1; j < n_atoms[s]; ++j) {
                    const bool match = (t[i] == type_a && t[j] == type_b) || (t[i] == type_b && t[j] == type_a);
                    if (!match) continue;
                    const double dx = p[3 * j] - p[3 * i], dy = p[3 * j + 1] - p[3 * i + 1],
                                 dz = p[3 * j + 2] - p[3 * i + 2];
                    const double d = std::sqrt(dx * dx + dy * dy + dz * dz);
                    if (all_pairs || d <= cutoff) out.push_back(d);
                }
            std::sort(out.begin(), out.end());
        } catch (...) {
#ifdef CDML_HAVE_OPENMP
#pragma omp atomic write
#endif
            failed = true;
        }
    }
    if (failed) throw std::runtime_error("rank_aligned_sigma: out of memory while collecting distances");
    std::vector<int64_t> keep;
    for (int64_t s = 0; s < S; ++s)
        if (!dist[s].empty()) keep.push_back(s);
    if (keep.size() < 2)
        throw std::invalid_argument("rank_aligned_sigma needs at least two structures containing the pair; found " +
                                    std::to_string(keep.size()) + " of " + std::to_string(S));
    RankAlignedSpread r;
    r.support = static_cast<int64_t>(keep.size());
    int64_t nstar = static_cast<int64_t>(dist[keep[0]].size());
    for (int64_t s : keep) nstar = std::min<int64_t>(nstar, static_cast<int64_t>(dist[s].size()));
    r.aligned_count = nstar;
    r.rank_sigma.resize(nstar);
    r.rank_mean.resize(nstar);
    const double m = static_cast<double>(keep.size());
    double ss = 0.0;
    for (int64_t k = 0; k < nstar; ++k) {
        double mean = 0.0;
        for (int64_t s : keep) mean += dist[s][k];
        mean /= m;
        double var = 0.0;
        for (int64_t s : keep) var += (dist[s][k] - mean) * (dist[s][k] - mean);
        var /= m;
        r.rank_mean[k] = mean;
        r.rank_sigma[k] = std::sqrt(var);
        ss += var;
    }
    r.sigma = std::sqrt(ss / static_cast<double>(nstar));
    r.b_factor = 8.0 * 3.14159265358979323846 * 3.14159265358979323846 * r.sigma * r.sigma;
    return r;
}

}  // namespace cdml
