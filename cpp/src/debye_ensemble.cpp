// Ensemble-averaged Debye partial sums: one call for a whole ensemble of structures (a cluster
// label's library structures). See debye.hpp (DebyeEnsemble, debye_partials_ensemble).
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "clusterdynamicsml/debye.hpp"
#include "clusterdynamicsml/parallel.hpp"
#include "debye_detail.hpp"

namespace cdml {
namespace {

constexpr double MAX_MULTIPLICITY = 32768;  // pooled histogram: a pair adds at most this many words
constexpr int64_t CHUNK = 64;              // structures computed before their sums are reduced

// Run f(k) for k in [k0, k1) on nt threads; rethrow the first failing structure's error
// (lowest index), prefixed with its index.
template <class F>
void each_structure(int64_t k0, int64_t k1, int nt, F&& f) {
    std::vector<std::string> errors(static_cast<size_t>(k1 - k0));
    (void)nt;
#ifdef CDML_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
#endif
    for (int64_t k = k0; k < k1; ++k) {
        try {
            f(k);
        } catch (const std::exception& e) {
            errors[k - k0] = e.what();
            if (errors[k - k0].empty()) errors[k - k0] = "error";
        }
    }
    for (int64_t k = k0; k < k1; ++k)
        if (!errors[k - k0].empty()) throw std::invalid_argument("structure " + std::to_string(k) + ": " + errors[k - k0]);
}

}  // namespace

DebyeEnsemble debye_partials_ensemble(const std::vector<DebyeStructure>& structures, int32_t n_types,
                                      const double* q, int64_t nq, DebyeMethod method, double bin_width,
                                      const double* weights, bool moments, int num_threads) {
    detail::validate_q(q, nq);
    const int64_t B = static_cast<int64_t>(structures.size());
    if (B == 0) throw std::invalid_argument("an ensemble needs at least one structure");
    if (n_types < 1) throw std::invalid_argument("n_types must be >= 1");
    if (!(bin_width > 0) || !std::isfinite(bin_width))
        throw std::invalid_argument("bin_width must be finite and > 0 angstrom");
    std::vector<double> w(static_cast<size_t>(B), 1.0);
    double W = 0.0;
    for (int64_t k = 0; k < B; ++k) {
        if (weights != nullptr) {
            if (!std::isfinite(weights[k]) || weights[k] < 0)
                throw std::invalid_argument("structure " + std::to_string(k) + ": weight " +
                                            std::to_string(weights[k]) + " must be finite and >= 0");
            w[k] = weights[k];
        }
        W += w[k];
    }
    if (!(W > 0)) throw std::invalid_argument("the weights of the ensemble sum to zero");

    // Validate every structure first (errors name the structure), in parallel over structures.
    double atoms = 0.0, pairs = 0.0, work = 0.0;
    for (int64_t k = 0; k < B; ++k) {
        const double n = static_cast<double>(structures[k].n);
        atoms += n;
        if (w[k] > 0) pairs += 0.5 * n * (n - 1.0);
    }
    work = pairs * static_cast<double>(std::max<int64_t>(nq, 1));
    const int nt_check = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads_for_work(num_threads, 50.0 * atoms, 1e6), B)));
    std::vector<double> rmax(static_cast<size_t>(B), 0.0);
    each_structure(0, B, nt_check, [&](int64_t k) {
        const DebyeStructure& st = structures[k];
        rmax[k] = detail::validate_structure(st.positions, st.n, st.types, n_types, q, nq);
    });
    const double r_all = *std::max_element(rmax.begin(), rmax.end());

    bool integral = true;
    for (int64_t k = 0; k < B; ++k) integral = integral && w[k] == std::floor(w[k]) && w[k] <= MAX_MULTIPLICITY;
    const int64_t P = n_pair_types(n_types);
    const double bins = static_cast<double>(P) * (std::floor(r_all / bin_width) + 2.0);
    bool pooled = false;
    if (!moments && method == DebyeMethod::Histogram) {
        if (!integral)
            throw std::invalid_argument("the pooled histogram counts each structure's pairs an integer number of "
                                        "times: weights must be integers 0..32768 (use the exact method, or moments)");
        pooled = true;
    } else if (!moments && method == DebyeMethod::Auto) {
        pooled = integral && pairs > 4.0 * bins && detail::histogram_fits(r_all, bin_width, n_types);
    }

    DebyeEnsemble out;
    out.n_types = n_types;
    out.n_q = nq;
    out.n_structures = B;
    out.weight_sum = W;
    out.r_max = r_all;
    out.pooled = pooled;
    out.type_counts.assign(static_cast<size_t>(n_types), 0.0);
    out.pair_counts.assign(static_cast<size_t>(P), 0.0);
    out.s.assign(static_cast<size_t>(P * nq), 0.0);
    double q0, dq;
    out.uniform_grid = is_uniform_grid(q, nq, &q0, &dq);

    if (pooled) {
        std::vector<uint64_t> mult(static_cast<size_t>(B));
        for (int64_t k = 0; k < B; ++k) {
            mult[k] = static_cast<uint64_t>(w[k]);
            out.n_histogram += mult[k] > 0 ? 1 : 0;
        }
        const DebyePartials sums =
            detail::pooled_histogram(structures, mult.data(), n_types, q, nq, bin_width, r_all, num_threads);
        for (int32_t a = 0; a < n_types; ++a) out.type_counts[a] = static_cast<double>(sums.type_counts[a]) / W;
        for (int64_t p = 0; p < P; ++p) out.pair_counts[p] = static_cast<double>(sums.pair_counts[p]) / W;
        for (int64_t i = 0; i < P * nq; ++i) out.s[i] = sums.s[i] / W;
        return out;
    }

    // One structure per task (one thread each, reusing that thread's buffers), CHUNK structures
    // at a time; then their sums are added in structure order (rows of v over the threads), so
    // the result does not depend on the thread count.
    const int64_t T = n_types, V = T + P;
    const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads_for_work(num_threads, work, 1e6), B)));
    std::vector<double> shift, d1, d2;  // moments: v of the first weighted structure, sums of w d, w d d^T
    bool shifted = false;
    if (moments) {
        shift.assign(static_cast<size_t>(V * nq), 0.0);
        d1.assign(static_cast<size_t>(V * nq), 0.0);
        d2.assign(static_cast<size_t>(V * V * nq), 0.0);
    }
    std::vector<DebyePartials> part(static_cast<size_t>(std::min<int64_t>(CHUNK, B)));
    std::vector<uint8_t> used(part.size(), 0);
    for (int64_t c0 = 0; c0 < B; c0 += CHUNK) {
        const int64_t c1 = std::min<int64_t>(c0 + CHUNK, B);
        each_structure(c0, c1, nt, [&](int64_t k) {
            const DebyeStructure& st = structures[k];
            DebyePartials& d = part[k - c0];
            if (w[k] == 0) return;  // contributes nothing
            bool hist = method == DebyeMethod::Histogram;
            if (method == DebyeMethod::Auto) hist = debye_auto_uses_histogram(st.n, n_types, rmax[k], bin_width);
            used[k - c0] = hist ? 1 : 0;
            d = hist ? debye_partials_histogram(st.positions, st.n, st.types, n_types, q, nq, bin_width, 1)
                     : debye_partials_exact(st.positions, st.n, st.types, n_types, q, nq, 1);
        });
        // v_i(k): counts (constant in q) for i < T, then S_p(q_k)
        auto v = [&](const DebyePartials& d, int64_t i, int64_t k) {
            return i < T ? static_cast<double>(d.type_counts[i]) : d.s[(i - T) * nq + k];
        };
        for (int64_t k = c0; k < c1; ++k) {
            if (w[k] == 0) continue;
            const DebyePartials& d = part[k - c0];
            out.n_histogram += used[k - c0];
            for (int64_t a = 0; a < T; ++a) out.type_counts[a] += w[k] * static_cast<double>(d.type_counts[a]);
            for (int64_t p = 0; p < P; ++p) out.pair_counts[p] += w[k] * static_cast<double>(d.pair_counts[p]);
            if (moments && !shifted) {
                for (int64_t i = 0; i < V; ++i)
                    for (int64_t kq = 0; kq < nq; ++kq) shift[i * nq + kq] = v(d, i, kq);
                shifted = true;
            }
        }
        const int nt_rows = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, V)));
        (void)nt_rows;
#ifdef CDML_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt_rows)
#endif
        for (int64_t i = 0; i < V; ++i) {
            std::vector<double> di(static_cast<size_t>(nq));
            for (int64_t k = c0; k < c1; ++k) {
                if (w[k] == 0) continue;
                const DebyePartials& d = part[k - c0];
                const double wk = w[k];
                if (i >= T)
                    for (int64_t kq = 0; kq < nq; ++kq) out.s[(i - T) * nq + kq] += wk * d.s[(i - T) * nq + kq];
                if (!moments) continue;
                for (int64_t kq = 0; kq < nq; ++kq) {
                    di[kq] = v(d, i, kq) - shift[i * nq + kq];
                    d1[i * nq + kq] += wk * di[kq];
                }
                for (int64_t j = i; j < V; ++j) {
                    double* row = d2.data() + (i * V + j) * nq;
                    const double* sh = shift.data() + j * nq;
                    if (j < T) {
                        const double dj = static_cast<double>(d.type_counts[j]);
                        for (int64_t kq = 0; kq < nq; ++kq) row[kq] += wk * di[kq] * (dj - sh[kq]);
                    } else {
                        const double* sj = d.s.data() + (j - T) * nq;
                        for (int64_t kq = 0; kq < nq; ++kq) row[kq] += wk * di[kq] * (sj[kq] - sh[kq]);
                    }
                }
            }
        }
    }
    for (auto& x : out.type_counts) x /= W;
    for (auto& x : out.pair_counts) x /= W;
    for (auto& x : out.s) x /= W;
    if (moments) {
        out.cov.assign(static_cast<size_t>(V * V * nq), 0.0);
        for (int64_t i = 0; i < V; ++i)
            for (int64_t j = i; j < V; ++j)
                for (int64_t kq = 0; kq < nq; ++kq) {
                    const double c = d2[(i * V + j) * nq + kq] / W - (d1[i * nq + kq] / W) * (d1[j * nq + kq] / W);
                    out.cov[(i * V + j) * nq + kq] = c;
                    out.cov[(j * V + i) * nq + kq] = c;
                }
    }
    return out;
}

}  // namespace cdml
