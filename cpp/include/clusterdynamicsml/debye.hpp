// Debye scattering sums, grouped by element-pair type. Python-free.
//
// For atoms i with form factors f_i(q) and pair distances r_ij the Debye equation is
//
//     I(q) = sum_i sum_j f_i f_j sinc(q r_ij),         sinc(x) = sin(x) / x, sinc(0) = 1
//
// in absolute units (electrons^2). With atoms grouped into element types a, b and
//
//     S_ab(q) = sum over unordered pairs i < j whose types are {a, b} of sinc(q r_ij)
//
// this is  I(q) = sum_a n_a f_a^2 + 2 sum_{a <= b} f_a f_b S_ab(q),  so the O(N^2 Q) work
// (the partial sums S_ab) never touches a form factor. A pairwise Debye-Waller factor that
// depends only on the pair type multiplies a whole partial sum:
//
//     I_DW(q) = sum_a n_a f_a^2 + 2 sum_{a <= b} f_a f_b exp(-sigma_ab^2 q^2 / 2) S_ab(q).
//
// Pair types are indexed in upper-triangular order: (0,0), (0,1), ..., (0,T-1), (1,1), ...
// (see pair_type_index). Every kernel takes an explicit thread count (<= 0: all) and gives
// results identical, bit for bit, for any thread count: work is cut into tasks that do not
// depend on the thread count, each task writes its own slot, and slots are reduced in a
// fixed order.
#pragma once
#include <cstdint>
#include <vector>

namespace cdml {

/// Number of unordered type pairs for n_types types: n_types (n_types + 1) / 2.
inline int64_t n_pair_types(int32_t n_types) {
    return static_cast<int64_t>(n_types) * (n_types + 1) / 2;
}

/// Index of the unordered type pair {a, b} in upper-triangular order.
inline int64_t pair_type_index(int32_t a, int32_t b, int32_t n_types) {
    if (a > b) {
        const int32_t t = a;
        a = b;
        b = t;
    }
    return static_cast<int64_t>(a) * n_types - static_cast<int64_t>(a) * (a - 1) / 2 + (b - a);
}

/// Partial Debye sums per pair type.
struct DebyePartials {
    int32_t n_types = 0;
    int64_t n_q = 0;
    std::vector<int64_t> type_counts;  ///< (n_types,) atoms of each type
    std::vector<int64_t> pair_counts;  ///< (n_pair_types,) unordered pairs of each type
    /// (n_pair_types, n_q) row-major: S_ab(q_k) = sum_{i<j, {t_i,t_j}={a,b}} sinc(q_k r_ij)
    std::vector<double> s;
    bool uniform_grid = false;  ///< true when the sin recurrence along a uniform q grid was used
};

/// True when q (length nq >= 3) is an ascending uniform grid q_k = q0 + k dq to within
/// 8 ulps of max |q|; then *q0 and *dq are set.
bool is_uniform_grid(const double* q, int64_t nq, double* q0, double* dq);

/// Exact partial sums over all N (N - 1) / 2 pairs.
///
/// positions: n x 3 row-major, angstrom; types: (n,) in [0, n_types); q: (nq,) >= 0, 1/angstrom.
/// On a uniform q grid sin(q_k r) is advanced along q by the second-order recurrence
/// u_{k+1} = u_k + d_{k+1}, d_{k+2} = d_{k+1} + lambda u_{k+1}, lambda = -4 sin^2(dq r / 2)
/// (Reinsch's form of the Chebyshev recurrence), re-seeded from a directly evaluated sine
/// every 32 q points so the rounding error stays below ~1e-13 of each term. Otherwise every
/// sine is evaluated directly. Sines are evaluated by a branch-free polynomial (Cephes
/// coefficients, Cody-Waite reduction, within 2 ulp of std::sin) that the compiler vectorises.
/// Throws std::invalid_argument on bad input (negative/non-finite q, types out of range,
/// non-finite positions, q r_max > 1e8).
DebyePartials debye_partials_exact(const double* positions, int64_t n, const int32_t* types, int32_t n_types,
                                   const double* q, int64_t nq, int num_threads);

/// Instruction set of the histogram's distance pass. Auto: AVX-512 (F, DQ) and BMI2 when the
/// CPU has them, else the portable version; Portable: always the portable version. The two
/// may put a pair whose distance lies within ~1e-12 relative of a bin edge into different
/// bins; both stay within the bound below, and each is bit-identical for any thread count.
enum class HistogramPath { Auto, Portable };

/// Histogram approximation: the pair distances of each pair type are binned in bins of
/// width w = bin_width (angstrom) starting at 0; each bin keeps its pair count and the mean
/// distance of its pairs (offsets inside the bin in 16-bit fixed point, summed as integers, so
/// the binning is independent of summation order), and S_ab(q) = sum_bins count * sinc(q r_mean).
/// Because the bin mean is used, the first-order error cancels and, per pair,
/// |sinc(q r) - its bin's share| <= (q w)^2 / 24 (|d^2 sinc/dx^2| <= 1/3, bin variance
/// <= w^2 / 4), plus q/2 times the error of r_mean (<= 2^-17 w from the fixed point and
/// 1e-12 r_max from the distance arithmetic; |d sinc/dx| <= 1/2). Hence, for form factors f_i,
///     |I_hist(q) - I_exact(q)| <= e(q) ((sum_i |f_i|)^2 - sum_i f_i^2),
///     e(q) = (q w')^2 / 24 + q (2^-17 w + 1e-12 r_max) / 2,   w' = w + 2e-12 r_max,
/// with r_max the diagonal of the atoms' bounding box. The O(N^2) pass only codes each pair as
/// one integer added to its bin (AVX-512 when the CPU has it, see HistogramPath); the sine work
/// is O(bins * Q). Throws std::invalid_argument when bins x pair types would exceed 2e7 or one
/// pair type would need more than 2^23 bins.
DebyePartials debye_partials_histogram(const double* positions, int64_t n, const int32_t* types,
                                       int32_t n_types, const double* q, int64_t nq, double bin_width,
                                       int num_threads, HistogramPath path = HistogramPath::Auto);

/// Which method debye_partials_auto uses for a structure: the histogram only when its pairs
/// outnumber four times the histogram's bins (P x (r_max / w + 2)), i.e. when most bins are
/// shared by many pairs; otherwise the exact sum, which is then as fast or faster and exact.
/// r_max: the diagonal of the atoms' bounding box (angstrom).
bool debye_auto_uses_histogram(int64_t n, int32_t n_types, double r_max, double bin_width);

/// The bounding-box diagonal of n atoms (angstrom); throws on non-finite positions.
double debye_r_max(const double* positions, int64_t n);

/// Method of a Debye call: Exact, Histogram, or Auto (debye_auto_uses_histogram decides).
enum class DebyeMethod { Exact, Histogram, Auto };

/// One structure of a batch: n atoms, positions (n x 3, angstrom), types (n,) in [0, n_types).
struct DebyeStructure {
    const double* positions;
    const int32_t* types;
    int64_t n;
};

/// Partial sums of many structures in one call, one structure per task (each task runs the
/// one-structure kernel on one thread, reusing that thread's buffers), tasks spread over
/// num_threads threads. Entry k equals debye_partials_{exact,histogram}(structure k) bit for bit,
/// for any thread count; `histogram[k]` says which method was used. The first failing
/// structure's error is rethrown, prefixed with its index.
std::vector<DebyePartials> debye_partials_batch(const std::vector<DebyeStructure>& structures, int32_t n_types,
                                                const double* q, int64_t nq, DebyeMethod method, double bin_width,
                                                int num_threads, std::vector<uint8_t>* histogram = nullptr);

/// Ensemble-averaged partial sums of a set of structures (e.g. one cluster label's ensemble),
/// over the union of their types (a type absent from a structure counts zero atoms there).
/// Means are weighted by w_k (weights[k] >= 0, sum > 0; nullptr: all 1):
///     mean X = sum_k w_k X_k / sum_k w_k   for X = type counts, pair counts and S_ab(q).
/// As I(q) is linear in the counts and in every S_ab (form factors and a pair-type damping
/// exp(-sigma_ab^2 q^2 / 2) do not depend on the structure), the mean intensity is the
/// intensity of the mean partials, damped or not.
struct DebyeEnsemble {
    int32_t n_types = 0;
    int64_t n_q = 0;
    int64_t n_structures = 0;
    double weight_sum = 0.0;
    std::vector<double> type_counts;  ///< (n_types,) mean atoms of each type
    std::vector<double> pair_counts;  ///< (n_pair_types,) mean unordered pairs of each type
    std::vector<double> s;            ///< (n_pair_types, n_q) mean S_ab(q)
    bool pooled = false;              ///< one shared histogram over every pair of every structure
    int64_t n_histogram = 0;          ///< structures whose pairs were binned (pooled or their own histogram)
    double r_max = 0.0;               ///< largest bounding-box diagonal of the structures (angstrom)
    bool uniform_grid = false;
    /// With moments: the weighted population covariance over the structures of the vector
    /// v = (n_0 .. n_{T-1}, S_0(q) .. S_{P-1}(q)) (counts, then partial sums), V = T + P,
    /// (V, V, n_q) row-major: cov[(i V + j) n_q + k] = sum_k w (v_i - mean_i)(v_j - mean_j) / sum w.
    /// The variance of I(q) over the structures is c^T cov c with c = (f_a^2, 2 f_a f_b D_ab).
    std::vector<double> cov;
};

/// One call for a whole ensemble: the weighted means of DebyeEnsemble.
///
/// Without moments:
///  - Histogram: every pair of every structure is binned (weight w_k = multiplicity, an integer
///    0..32768) into ONE histogram per pair type of width bin_width (angstrom) over [0, max r_max],
///    then one sinc transform: cost ~ (pairs + bins x Q), against pairs x Q for exact sums.
///    The mean has the error bound of debye_partials_histogram with r_max the largest diagonal:
///    |I_hist(q) - I_exact(q)| <= e(q) * 2 sum_{a<=b} |f_a f_b| mean_pairs_ab.
///  - Exact: every structure's exact sums (one structure per task on one thread), summed in
///    structure order.
///  - Auto: Histogram when the weights are integral and the pooled pairs outnumber four times
///    the bins (debye_auto_uses_histogram's rule for the pooled pair count), else each structure
///    by debye_auto_uses_histogram.
/// With moments the per-structure sums are needed, so every structure is computed on its own
/// (Exact: exact; Histogram: its own histogram; Auto: debye_auto_uses_histogram per structure)
/// and cov is filled as well (shifted sums, shift = structure 0).
/// Every result is bit-identical for any thread count: integer histogram sums, or per-structure
/// results reduced in structure order. Bad input throws std::invalid_argument naming the structure
/// ("structure k: ..."); an empty ensemble, bad weights or bin_width throw too.
DebyeEnsemble debye_partials_ensemble(const std::vector<DebyeStructure>& structures, int32_t n_types,
                                      const double* q, int64_t nq, DebyeMethod method, double bin_width,
                                      const double* weights, bool moments, int num_threads);

/// Partial sums over an explicit pair list: S[p, k] = sum_{m: pair_type[m] = p} sinc(q_k r[m]),
/// (n_pair_types, nq) row-major. Owner-computes per q, exact std::sin.
std::vector<double> debye_pairlist_partials(const double* r, const int64_t* pair_type, int64_t n_pairs,
                                            int64_t n_pair_types, const double* q, int64_t nq,
                                            int num_threads);

/// I(q) from partial sums: sum_a n_a f_a^2 + 2 sum_p f_a f_b exp(-sigma_ab^2 q^2 / 2) S_p(q).
/// f: (n_types, n_q) row-major form factors (electrons); sigma: (n_types, n_types) row-major in
/// angstrom, or nullptr for no damping. Returns (n_q,) in electrons^2.
std::vector<double> debye_intensity_from_partials(const DebyePartials& partials, const double* q,
                                                  const double* f, const double* sigma);

}  // namespace cdml
