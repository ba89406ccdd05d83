// Debye partial sums: exact (sin recurrence / vectorised sine) and histogram kernels.
#include "clusterdynamicsml/debye.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "clusterdynamicsml/parallel.hpp"
#include "debye_detail.hpp"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
// One build runs everywhere; the hot loops get an AVX2/AVX-512 clone picked at load time
// (by CPU feature, not by "arch=" names, which dispatch on the exact CPU model).
// fp-contract is off in ISO C++ mode, so every clone rounds the same way.
#define CDML_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CDML_CLONES
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"  // 64-byte lane vectors never cross an ABI boundary
#endif
#define CDML_INLINE inline __attribute__((always_inline))

namespace cdml {
namespace {

constexpr int V = 8;           // doubles per lane vector
constexpr int G = 4;           // independent lane vectors (hides the recurrence latency)
constexpr int W = V * G;       // pairs advanced together
constexpr int RESEED = 32;     // q points between direct sine evaluations in the recurrence
constexpr int QBLOCK = 128;    // q points per task of the exact kernel
constexpr int QBLOCK_H = 32;   // q points per task of the histogram evaluation
constexpr double MAX_HISTOGRAM_BINS = 2e7;  // bins x pair types (24 bytes each per thread)

// Eight lanes as one GCC/Clang vector: the compiler lowers each operation to whatever the
// target has (4 SSE2, 2 AVX2 or 1 AVX-512 instruction), lane by lane, so every clone rounds
// identically.
typedef double v8d __attribute__((vector_size(8 * sizeof(double))));
typedef uint64_t v8u __attribute__((vector_size(8 * sizeof(uint64_t))));
static_assert(V == 8, "lane vectors hold 8 doubles");

CDML_INLINE v8d load8(const double* p) {
    v8d v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
CDML_INLINE void store8(double* p, v8d v) { std::memcpy(p, &v, sizeof v); }

// sin(x) lane-wise for 0 <= |x| < 1e8, branch-free.
// x = n pi/2 + r with n = round(2x/pi) (the 1.5*2^52 trick) and r from a 3-part Cody-Waite
// reduction; sin r and cos r from the Cephes minimax polynomials on [-pi/4, pi/4];
// the quadrant n mod 4 selects sin/cos and the sign.
template <class V, class U>
CDML_INLINE V sin_poly(V x) {
    constexpr double two_over_pi = 0.63661977236758134308;
    constexpr double magic = 6755399441055744.0;  // 1.5 * 2^52
    constexpr double p1 = 1.57079625129699707031e+00;
    constexpr double p2 = 7.54978941586159635336e-08;
    constexpr double p3 = 5.39030285815811905290e-15;
    const V t = x * two_over_pi + magic;
    U nb;
    std::memcpy(&nb, &t, sizeof nb);
    const V nq = t - magic;
    const V r = ((x - nq * p1) - nq * p2) - nq * p3;
    const V z = r * r;
    const V s = r + r * z *
                        (((((1.58962301576546568060e-10 * z - 2.50507477628578072866e-8) * z +
                            2.75573136213857245213e-6) * z -
                           1.98412698295895385996e-4) * z +
                          8.33333333332211858878e-3) * z -
                         1.66666666666666307295e-1);
    const V c = 1.0 - 0.5 * z +
                z * z *
                    (((((-1.13585365213876817300e-11 * z + 2.08757008419747316778e-9) * z -
                        2.75573141792967388112e-7) * z +
                       2.48015872888517045348e-5) * z -
                      1.38888888888730564116e-3) * z +
                     4.16666666666665929218e-2);
    U sb, cb;
    std::memcpy(&sb, &s, sizeof sb);
    std::memcpy(&cb, &c, sizeof cb);
    const U one = nb - nb + 1u;                  // (a vector or scalar) 1
    const U swap = (nb - nb) - (nb & one);        // odd quadrant: all ones -> cos r
    const U sign = (nb & (one + one)) << 62;      // quadrants 2, 3: negative
    const U res = ((cb & swap) | (sb & ~swap)) ^ sign;
    V out;
    std::memcpy(&out, &res, sizeof out);
    return out;
}

// The recurrence: acc[k * W + l] += wr[l] * sin((q0 + (k0 + k) dq) r[l]) for k in [0, nk).
// Fold = true adds the G lane vectors together before the accumulator is touched:
// acc[k * W + l] += sum_g wr[g V + l] sin(q_k r[g V + l]) for l < V only (lanes V..W-1 of acc
// are left alone); one accumulator update per q point instead of G, for the histogram
// evaluation, whose sine phase is this loop over ~1e6 bins.
template <bool Fold>
CDML_INLINE void lanes_uniform_impl(const double* r_, const double* wr_, double q0, double dq, int64_t k0, int nk,
                                    double* acc) {
    v8d r[G], wr[G], lam[G], u[G], d[G];
    for (int g = 0; g < G; ++g) {
        r[g] = load8(r_ + g * V);
        wr[g] = load8(wr_ + g * V);
        const v8d h = sin_poly<v8d, v8u>(0.5 * dq * r[g]);
        lam[g] = -4.0 * h * h;
    }
    static_assert(G == 4, "the fold below adds four lane vectors");
    for (int kb = 0; kb < nk; kb += RESEED) {
        const double qa = q0 + static_cast<double>(k0 + kb) * dq;
        const double qb = q0 + static_cast<double>(k0 + kb + 1) * dq;
        for (int g = 0; g < G; ++g) {
            u[g] = wr[g] * sin_poly<v8d, v8u>(qa * r[g]);
            d[g] = wr[g] * sin_poly<v8d, v8u>(qb * r[g]) - u[g];
        }
        const int m = std::min(RESEED, nk - kb);
        double* a = acc + static_cast<int64_t>(kb) * W;
        for (int k = 0; k < m; ++k) {
            if constexpr (Fold) store8(a + k * W, load8(a + k * W) + ((u[0] + u[1]) + (u[2] + u[3])));
            for (int g = 0; g < G; ++g) {
                if constexpr (!Fold) store8(a + k * W + g * V, load8(a + k * W + g * V) + u[g]);
                u[g] += d[g];
                d[g] += lam[g] * u[g];
            }
        }
    }
}

CDML_CLONES
void lanes_uniform(const double* r_, const double* wr_, double q0, double dq, int64_t k0, int nk, double* acc) {
    lanes_uniform_impl<false>(r_, wr_, q0, dq, k0, nk, acc);
}

CDML_CLONES
void lanes_uniform_folded(const double* r_, const double* wr_, double q0, double dq, int64_t k0, int nk,
                          double* acc) {
    lanes_uniform_impl<true>(r_, wr_, q0, dq, k0, nk, acc);
}

// acc[k * W + l] += wr[l] * sin(q[k] r[l]) for k in [0, nk): direct evaluation.
CDML_CLONES
void lanes_direct(const double* r_, const double* wr_, const double* q, int nk, double* acc) {
    for (int g = 0; g < G; ++g) {
        const v8d r = load8(r_ + g * V), wr = load8(wr_ + g * V);
        for (int k = 0; k < nk; ++k)
            store8(acc + k * W + g * V, load8(acc + k * W + g * V) + wr * sin_poly<v8d, v8u>(q[k] * r));
    }
}

// sqrt(x) for x >= 0 from multiplications only, so that it vectorises (std::sqrt keeps a
// scalar errno path without -fno-math-errno): a bit-level estimate of 1/sqrt(x) refined by
// three Newton steps y <- y (1.5 - 0.5 x y^2) (relative error 3.5e-2 -> 1.8e-3 -> 5e-6 -> 4e-11), then
// s = x y corrected once, s + 0.5 y (x - s^2). Accurate to a few ulp; x = 0 gives 0.
CDML_INLINE double sqrt_mul(double x) {
    uint64_t b;
    std::memcpy(&b, &x, sizeof b);
    b = 0x5FE6EB50C7B537A9ULL - (b >> 1);
    double y;
    std::memcpy(&y, &b, sizeof y);
    const double hx = 0.5 * x;
    y = y * (1.5 - hx * y * y);
    y = y * (1.5 - hx * y * y);
    y = y * (1.5 - hx * y * y);
    const double s = x * y;
    return s + 0.5 * y * (x - s * s);
}

// ---- histogram distance pass
// A pair at distance r, with r / w = bin + frac, is coded as the word
//     K = COUNT_ONE + bin * 2^OFF_BITS + floor(frac * 2^OFF_BITS),
// and the histogram word of its bin (one per bin, pair type and thread) is incremented by K:
// after n pairs it holds n (COUNT_ONE + bin 2^OFF_BITS) + (sum of the fixed-point offsets), and
// because that sum is below n 2^OFF_BITS <= COUNT_ONE, n = word / (COUNT_ONE + bin 2^OFF_BITS)
// exactly. One load, one shift and one add per pair: the scatter is half the cost of the pass.
// Words stay below 2^64 for n <= PACKED_MAX_PAIRS and bin < MAX_BINS_PER_TYPE; a thread moves
// its words into wide (count, offset-sum) arrays before that. All sums are integer sums, so the
// merged histogram does not depend on the order of the pairs or on the thread count.
constexpr int OFF_BITS = 16;
constexpr uint64_t OFF_ONE = uint64_t(1) << OFF_BITS;
constexpr uint64_t COUNT_ONE = uint64_t(1) << 40;
constexpr int64_t PACKED_MAX_PAIRS = int64_t(1) << 23;
constexpr int64_t MAX_BINS_PER_TYPE = int64_t(1) << 23;
static_assert(static_cast<double>(PACKED_MAX_PAIRS) *
                      static_cast<double>(COUNT_ONE + static_cast<uint64_t>(MAX_BINS_PER_TYPE) * OFF_ONE) <
                  18446744073709551615.0,
              "histogram words overflow");
static_assert(static_cast<uint64_t>(PACKED_MAX_PAIRS) * OFF_ONE <= COUNT_ONE, "offset sums overflow the count");

// Split a histogram word of bin `bin` into (pair count, sum of fixed-point offsets).
inline void unpack_word(uint64_t word, int64_t bin, uint64_t* count, uint64_t* offsum) {
    const uint64_t unit = COUNT_ONE + static_cast<uint64_t>(bin) * OFF_ONE;
    const uint64_t c = word / unit;
    *count = c;
    *offsum = word - c * unit;
}

// Add the words of one row of partners to the histogram whose word for bin b is at
// hp_key + 8 (COUNT_ONE >> OFF_BITS) + 8 b, i.e. hp_key + 8 (key >> OFF_BITS). Unrolled by 8:
// this loop issues one load, one shift and one memory add per pair, and the front end, not
// the memory, is its limit.
CDML_INLINE void scatter_keys(const uint64_t* key, int m, uintptr_t hp_key) {
    int l = 0;
    for (; l + 8 <= m; l += 8) {
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 8
#endif
        for (int u = 0; u < 8; ++u)
            *reinterpret_cast<uint64_t*>(hp_key + (key[l + u] >> OFF_BITS) * sizeof(uint64_t)) += key[l + u];
    }
    for (; l < m; ++l) *reinterpret_cast<uint64_t*>(hp_key + (key[l] >> OFF_BITS) * sizeof(uint64_t)) += key[l];
}

// A pair counted `mult` times (a structure of an ensemble with multiplicity mult) adds mult
// words: mult K = mult (COUNT_ONE + bin 2^OFF_BITS) + mult offset, which unpacks to count mult
// and offset sum mult offset, as long as the weighted pairs stay below PACKED_MAX_PAIRS.
// (The word's address still comes from the unscaled key.)
inline void scatter_keys_mult(const uint64_t* key, int m, uintptr_t hp_key, uint64_t mult) {
    for (int l = 0; l < m; ++l)
        *reinterpret_cast<uint64_t*>(hp_key + (key[l] >> OFF_BITS) * sizeof(uint64_t)) += key[l] * mult;
}

// One tile of the distance pass: every pair (i, j) with i in [i0, i1), j in [j0, j1) (and j > i
// when both ranges are of the same type), coded as words K (see above) and added to the
// histogram at hp_key, each `mult` times. At most HIST_BJ partners per row.
constexpr int HIST_BJ = 256;

// Portable version: the multiply-only sqrt above (a few ulp) and int32 conversions, which
// every ISA vectorises.
CDML_CLONES
void bin_tile_generic(const double* xs, const double* ys, const double* zs, int64_t i0, int64_t i1, int64_t j0,
                      int64_t j1, bool upper, double inv_w, uintptr_t hp_key, uint64_t mult) {
    alignas(64) uint64_t key[HIST_BJ];
    for (int64_t i = i0; i < i1; ++i) {
        const int64_t jb = upper ? std::max(j0, i + 1) : j0;
        if (jb >= j1) continue;
        const int m = static_cast<int>(j1 - jb);
        const double xi = xs[i], yi = ys[i], zi = zs[i];
        const double *x = xs + jb, *y = ys + jb, *z = zs + jb;
        for (int l = 0; l < m; ++l) {
            const double dx = x[l] - xi, dy = y[l] - yi, dz = z[l] - zi;
            const double t = sqrt_mul(dx * dx + dy * dy + dz * dz) * inv_w;
            const int32_t b = static_cast<int32_t>(t);
            const int32_t u = static_cast<int32_t>((t - static_cast<double>(b)) * static_cast<double>(OFF_ONE));
            key[l] = COUNT_ONE + (static_cast<uint64_t>(b) << OFF_BITS) + static_cast<uint64_t>(u);
        }
        if (mult != 1)
            scatter_keys_mult(key, m, hp_key, mult);
        else
            scatter_keys(key, m, hp_key);
    }
}

#if defined(__GNUC__) && defined(__x86_64__)
#define CDML_HAVE_AVX512_PATH 1
// Words of up to 8 partners (lanes in mask k) of the atom at (vx, vy, vz); see bin_tile_avx512.
__attribute__((target("avx512f,avx512dq"), always_inline)) inline void keys8_avx512(
    const double* x, const double* y, const double* z, __mmask8 k, __m512d vx, __m512d vy, __m512d vz,
    __m512d scale, uint64_t* key) {
    const __m512d dx = _mm512_sub_pd(_mm512_maskz_loadu_pd(k, x), vx);
    const __m512d dy = _mm512_sub_pd(_mm512_maskz_loadu_pd(k, y), vy);
    const __m512d dz = _mm512_sub_pd(_mm512_maskz_loadu_pd(k, z), vz);
    const __m512d s = _mm512_fmadd_pd(dz, dz, _mm512_fmadd_pd(dy, dy, _mm512_mul_pd(dx, dx)));
    const __m512d y0 = _mm512_rsqrt14_pd(_mm512_max_pd(s, _mm512_set1_pd(1e-300)));  // s = 0: r = 1e-150 -> bin 0
    const __m512d hy = _mm512_mul_pd(y0, _mm512_set1_pd(0.5));
    __m512d r = _mm512_mul_pd(s, y0);
    r = _mm512_fmadd_pd(hy, _mm512_fnmadd_pd(r, r, s), r);
    r = _mm512_fmadd_pd(hy, _mm512_fnmadd_pd(r, r, s), r);
    const __m512i K = _mm512_cvttpd_epu64(_mm512_mul_pd(r, scale));
    _mm512_mask_storeu_epi64(key, k, _mm512_add_epi64(K, _mm512_set1_epi64(static_cast<long long>(COUNT_ONE))));
}

// The same words as bin_tile_generic with AVX-512: r from the 14-bit reciprocal square root
// estimate and two Newton corrections r <- r + (y0 / 2)(s - r^2) (relative error < 4e-13,
// measured over 1e-14..3e4 A^2), and one 64-bit conversion of r * 2^OFF_BITS / w, whose high
// bits are the bin and low bits the offset (the same split as the portable version: scaling by
// 2^OFF_BITS is exact). Hand-written because this pass is the whole cost of the histogram
// kernel: about half the vector instructions of the portable version, which needs the sqrt
// and two conversions.
__attribute__((target("avx512f,avx512dq,bmi2"))) void bin_tile_avx512(const double* xs, const double* ys,
                                                                        const double* zs, int64_t i0, int64_t i1,
                                                                        int64_t j0, int64_t j1, bool upper,
                                                                        double inv_w, uintptr_t hp_key,
                                                                        uint64_t mult) {
    alignas(64) uint64_t key[HIST_BJ];
    const __m512d scale = _mm512_set1_pd(inv_w * static_cast<double>(OFF_ONE));
    for (int64_t i = i0; i < i1; ++i) {
        const int64_t jb = upper ? std::max(j0, i + 1) : j0;
        if (jb >= j1) continue;
        const int m = static_cast<int>(j1 - jb);
        const __m512d vx = _mm512_set1_pd(xs[i]), vy = _mm512_set1_pd(ys[i]), vz = _mm512_set1_pd(zs[i]);
        const double *x = xs + jb, *y = ys + jb, *z = zs + jb;
        int l = 0;
        for (; l + 8 <= m; l += 8)  // full vectors, then the masked tail
            keys8_avx512(x + l, y + l, z + l, static_cast<__mmask8>(0xFF), vx, vy, vz, scale, key + l);
        if (l < m)
            keys8_avx512(x + l, y + l, z + l, static_cast<__mmask8>((1u << (m - l)) - 1u), vx, vy, vz, scale,
                         key + l);
        if (mult != 1)
            scatter_keys_mult(key, m, hp_key, mult);
        else
            scatter_keys(key, m, hp_key);
    }
}
#endif

using BinTile = void (*)(const double*, const double*, const double*, int64_t, int64_t, int64_t, int64_t, bool,
                         double, uintptr_t, uint64_t);

BinTile pick_bin_tile(HistogramPath path) {
#ifdef CDML_HAVE_AVX512_PATH
    static const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                               __builtin_cpu_supports("bmi2");
    if (path == HistogramPath::Auto && avx512) return bin_tile_avx512;
#else
    (void)path;
#endif
    return bin_tile_generic;
}

void check_q(const double* q, int64_t nq) {
    if (nq < 0) throw std::invalid_argument("number of q points must be >= 0");
    for (int64_t k = 0; k < nq; ++k)
        if (!std::isfinite(q[k]) || q[k] < 0)
            throw std::invalid_argument("q must be finite and >= 0 (1/angstrom); q[" + std::to_string(k) +
                                        "] = " + std::to_string(q[k]));
}

// Validate atoms; return the bounding-box diagonal (an upper bound on every distance).
double check_atoms(const double* pos, int64_t n, const int32_t* types, int32_t n_types) {
    if (n < 0) throw std::invalid_argument("number of atoms must be >= 0");
    if (n_types < 1) throw std::invalid_argument("n_types must be >= 1");
    double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
    for (int64_t i = 0; i < n; ++i) {
        if (types[i] < 0 || types[i] >= n_types)
            throw std::invalid_argument("type of atom " + std::to_string(i) + " is " + std::to_string(types[i]) +
                                        ", expected 0.." + std::to_string(n_types - 1));
        for (int c = 0; c < 3; ++c) {
            const double v = pos[3 * i + c];
            if (!std::isfinite(v))
                throw std::invalid_argument("positions contain NaN or infinity (atom " + std::to_string(i) + ")");
            if (i == 0 || v < lo[c]) lo[c] = v;
            if (i == 0 || v > hi[c]) hi[c] = v;
        }
    }
    return std::sqrt((hi[0] - lo[0]) * (hi[0] - lo[0]) + (hi[1] - lo[1]) * (hi[1] - lo[1]) +
                     (hi[2] - lo[2]) * (hi[2] - lo[2]));
}

void check_range(const double* q, int64_t nq, double rmax) {
    double qmax = 0;
    for (int64_t k = 0; k < nq; ++k) qmax = std::max(qmax, q[k]);
    if (qmax * rmax > 1e8)
        throw std::invalid_argument("q_max * r_max = " + std::to_string(qmax * rmax) +
                                    " exceeds 1e8 (q in 1/angstrom, positions in angstrom?)");
}

// Atoms sorted by type, and inside a type along a Morton (Z-order) curve of 4 A cells, so
// that consecutive partners j of an atom i have similar distances (cache-friendly histogram
// updates). The order is a pure function of the input (ties keep the input order).
struct Sorted {
    std::vector<double> x, y, z;
    std::vector<int32_t> t;
    std::vector<int64_t> start;  // (n_types + 1,)
};

uint64_t spread_bits(uint64_t v) {  // 21 bits -> every third bit
    v &= 0x1fffff;
    v = (v | v << 32) & 0x1f00000000ffffULL;
    v = (v | v << 16) & 0x1f0000ff0000ffULL;
    v = (v | v << 8) & 0x100f00f00f00f00fULL;
    v = (v | v << 4) & 0x10c30c30c30c30c3ULL;
    v = (v | v << 2) & 0x1249249249249249ULL;
    return v;
}

Sorted sort_by_type(const double* pos, int64_t n, const int32_t* types, int32_t n_types) {
    Sorted s;
    s.start.assign(static_cast<size_t>(n_types) + 1, 0);
    for (int64_t i = 0; i < n; ++i) ++s.start[types[i] + 1];
    for (int32_t a = 0; a < n_types; ++a) s.start[a + 1] += s.start[a];
    double lo[3] = {0, 0, 0};
    for (int64_t i = 0; i < n; ++i)
        for (int c = 0; c < 3; ++c) lo[c] = (i == 0) ? pos[3 * i + c] : std::min(lo[c], pos[3 * i + c]);
    constexpr double cell = 4.0;
    std::vector<uint64_t> key(n);
    for (int64_t i = 0; i < n; ++i) {
        uint64_t m = 0;
        for (int c = 0; c < 3; ++c) {
            const double v = std::min((pos[3 * i + c] - lo[c]) / cell, 2097151.0);
            m |= spread_bits(static_cast<uint64_t>(v)) << c;
        }
        key[i] = m;
    }
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), int64_t(0));
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        if (types[a] != types[b]) return types[a] < types[b];
        return key[a] < key[b];
    });
    s.x.resize(n);
    s.y.resize(n);
    s.z.resize(n);
    s.t.resize(n);
    for (int64_t k = 0; k < n; ++k) {
        const int64_t i = order[k];
        s.x[k] = pos[3 * i];
        s.y[k] = pos[3 * i + 1];
        s.z[k] = pos[3 * i + 2];
        s.t[k] = types[i];
    }
    return s;
}

DebyePartials make_partials(const Sorted& s, int32_t n_types, int64_t nq) {
    DebyePartials out;
    out.n_types = n_types;
    out.n_q = nq;
    const int64_t P = n_pair_types(n_types);
    out.type_counts.resize(n_types);
    for (int32_t a = 0; a < n_types; ++a) out.type_counts[a] = s.start[a + 1] - s.start[a];
    out.pair_counts.assign(P, 0);
    for (int32_t a = 0; a < n_types; ++a)
        for (int32_t b = a; b < n_types; ++b) {
            const int64_t na = out.type_counts[a], nb = out.type_counts[b];
            out.pair_counts[pair_type_index(a, b, n_types)] = (a == b) ? na * (na - 1) / 2 : na * nb;
        }
    out.s.assign(static_cast<size_t>(P * nq), 0.0);
    return out;
}

// Turn A_p(q) = sum w sin(q r) / r into S_p(q) = A_p(q) / q, with S_p(0) = sum w (+ zero-distance pairs).
void finish(DebyePartials& out, const double* q, const std::vector<double>& weight_sum,
            const std::vector<double>& zero_pairs) {
    const int64_t P = static_cast<int64_t>(weight_sum.size());
    for (int64_t p = 0; p < P; ++p)
        for (int64_t k = 0; k < out.n_q; ++k) {
            double& v = out.s[p * out.n_q + k];
            v = (q[k] > 0 ? v / q[k] : weight_sum[p]) + zero_pairs[p];
        }
}

// Grid used by the lane kernels: either uniform (q0, dq) or the explicit q values.
struct Grid {
    const double* q;
    int64_t nq;
    bool uniform;
    double q0, dq;
};

inline void lanes(const Grid& g, const double* r, const double* wr, int64_t k0, int nk, double* acc) {
    if (g.uniform)
        lanes_uniform(r, wr, g.q0, g.dq, k0, nk, acc);
    else
        lanes_direct(r, wr, g.q + k0, nk, acc);
}

Grid make_grid(const double* q, int64_t nq) {
    Grid g{q, nq, false, 0.0, 0.0};
    g.uniform = is_uniform_grid(q, nq, &g.q0, &g.dq);
    return g;
}

}  // namespace

bool is_uniform_grid(const double* q, int64_t nq, double* q0, double* dq) {
    if (nq < 3) return false;
    const double a = q[0];
    const double step = (q[nq - 1] - q[0]) / static_cast<double>(nq - 1);
    if (!(step > 0)) return false;
    double qmax = 0;
    for (int64_t k = 0; k < nq; ++k) qmax = std::max(qmax, std::fabs(q[k]));
    const double tol = 8.0 * std::numeric_limits<double>::epsilon() * qmax;
    for (int64_t k = 0; k < nq; ++k)
        if (std::fabs(q[k] - (a + static_cast<double>(k) * step)) > tol) return false;
    *q0 = a;
    *dq = step;
    return true;
}

DebyePartials debye_partials_exact(const double* positions, int64_t n, const int32_t* types, int32_t n_types,
                                   const double* q, int64_t nq, int num_threads) {
    check_q(q, nq);
    const double rmax = check_atoms(positions, n, types, n_types);
    check_range(q, nq, rmax);
    const Sorted s = sort_by_type(positions, n, types, n_types);
    DebyePartials out = make_partials(s, n_types, nq);
    const int64_t P = n_pair_types(n_types);
    const Grid g = make_grid(q, nq);
    out.uniform_grid = g.uniform;
    if (n < 2 || nq == 0) {
        std::vector<double> ws(P), z(P, 0.0);
        for (int64_t p = 0; p < P; ++p) ws[p] = static_cast<double>(out.pair_counts[p]);
        finish(out, q, ws, z);
        return out;
    }

    // Row chunks with about equal pair counts; their number depends on n only.
    const int64_t total_pairs = n * (n - 1) / 2;
    const int64_t n_chunks = std::max<int64_t>(1, std::min<int64_t>({64, (total_pairs + 65535) / 65536, n - 1}));
    std::vector<int64_t> row_start(n_chunks + 1, n - 1);
    row_start[0] = 0;
    {
        int64_t c = 1, acc_pairs = 0;
        for (int64_t i = 0; i < n - 1 && c < n_chunks; ++i) {
            acc_pairs += n - 1 - i;
            if (acc_pairs * n_chunks >= c * total_pairs) row_start[c++] = i + 1;
        }
        for (; c < n_chunks; ++c) row_start[c] = n - 1;
    }
    const int64_t n_qblocks = (nq + QBLOCK - 1) / QBLOCK;
    const int64_t n_tasks = n_chunks * n_qblocks;
    const int nt = static_cast<int>(std::max<int64_t>(
        1, std::min<int64_t>(threads_for_work(num_threads, static_cast<double>(total_pairs) * nq), n_tasks)));

    std::vector<double> partial(static_cast<size_t>(n_chunks * P * nq), 0.0);  // [chunk][p][k]
    std::vector<double> zero_chunk(static_cast<size_t>(n_chunks * P), 0.0);   // coincident pairs
    std::vector<double> scratch(static_cast<size_t>(nt) * P * QBLOCK * W);

#ifdef CDML_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
#endif
    for (int64_t task = 0; task < n_tasks; ++task) {
        const int tid = thread_index();
        const int64_t c = task / n_qblocks, qb = task % n_qblocks;
        const int64_t k0 = qb * QBLOCK;
        const int nk = static_cast<int>(std::min<int64_t>(QBLOCK, nq - k0));
        double* acc = scratch.data() + static_cast<size_t>(tid) * P * QBLOCK * W;
        std::fill(acc, acc + P * QBLOCK * W, 0.0);
        alignas(64) double r[W], wr[W];
        for (int64_t i = row_start[c]; i < row_start[c + 1]; ++i) {
            const int32_t a = s.t[i];
            const double xi = s.x[i], yi = s.y[i], zi = s.z[i];
            for (int32_t b = a; b < n_types; ++b) {
                const int64_t j_begin = std::max(i + 1, s.start[b]), j_end = s.start[b + 1];
                if (j_begin >= j_end) continue;
                const int64_t p = pair_type_index(a, b, n_types);
                double* accp = acc + p * QBLOCK * W;
                for (int64_t j0 = j_begin; j0 < j_end; j0 += W) {
                    const int64_t m = std::min<int64_t>(W, j_end - j0);
                    for (int l = 0; l < W; ++l) {
                        r[l] = 1.0;
                        wr[l] = 0.0;
                    }
                    for (int64_t l = 0; l < m; ++l) {
                        const double dx = s.x[j0 + l] - xi, dy = s.y[j0 + l] - yi, dz = s.z[j0 + l] - zi;
                        const double rr = std::sqrt(dx * dx + dy * dy + dz * dz);
                        if (rr > 0) {
                            r[l] = rr;
                            wr[l] = 1.0 / rr;
                        } else if (qb == 0) {
                            zero_chunk[c * P + p] += 1.0;  // coincident atoms: sinc(0) = 1 at every q
                        }
                    }
                    lanes(g, r, wr, k0, nk, accp);
                }
            }
        }
        for (int64_t p = 0; p < P; ++p)
            for (int k = 0; k < nk; ++k) {
                const double* v = acc + (p * QBLOCK + k) * W;
                double sum = 0.0;
                for (int l = 0; l < W; ++l) sum += v[l];
                partial[(c * P + p) * nq + k0 + k] = sum;
            }
    }

    std::vector<double> ws(P), zp(P, 0.0);
    for (int64_t p = 0; p < P; ++p) ws[p] = static_cast<double>(out.pair_counts[p]);
    for (int64_t c = 0; c < n_chunks; ++c)
        for (int64_t p = 0; p < P; ++p) {
            zp[p] += zero_chunk[c * P + p];
            for (int64_t k = 0; k < nq; ++k) out.s[p * nq + k] += partial[(c * P + p) * nq + k];
        }
    // Pairs at r = 0 were counted in ws through pair_counts; keep q = 0 equal to the pair count.
    for (int64_t p = 0; p < P; ++p) ws[p] -= zp[p];
    finish(out, q, ws, zp);
    return out;
}

namespace {
// Per thread of a histogram call: packed words (hot, one add per pair), the wide count and
// offset sums they are moved into, and the pairs added per pair type since the last move.
struct ThreadHist {
    std::vector<uint64_t> packed, count, offsum;
    std::vector<int64_t> pending;
    bool spilled = false;      // count / offsum hold data (else they are all zero)
    bool packed_zero = false;  // every packed word is zero (the merge clears the words it reads)
};
constexpr size_t KEEP_HISTOGRAM_BYTES = size_t(64) << 20;  // per calling thread, at most
std::vector<ThreadHist>& kept_histograms() {
    thread_local std::vector<ThreadHist> kept;
    return kept;
}
}  // namespace

namespace {
// Bins of width bin_width (angstrom) covering [0, rmax] per pair type; throws when the histogram
// would be too large.
int64_t histogram_bins(double rmax, double bin_width, int64_t P) {
    const double nbins_d = std::floor(rmax * (1.0 / bin_width)) + 2.0;
    if (nbins_d * static_cast<double>(P) > MAX_HISTOGRAM_BINS || nbins_d > static_cast<double>(MAX_BINS_PER_TYPE))
        throw std::invalid_argument("bin_width " + std::to_string(bin_width) + " A is too small for r_max " +
                                    std::to_string(rmax) + " A and " + std::to_string(P) +
                                    " element pairs (more than 2e7 bins); use a larger bin_width");
    return static_cast<int64_t>(nbins_d);
}

// The histogram kernel over the pairs of one or more structures (each sorted by sort_by_type):
// every pair of structure k is binned mult[k] times into ONE histogram per pair type (bins of
// width bin_width covering [0, rmax], rmax >= every structure's bounding-box diagonal), then
// one sinc transform per pair type. Writes out.s (P x nq, finished: S(0) = the binned pairs)
// and out.uniform_grid. With one structure and mult 1 this is debye_partials_histogram.
void histogram_sums(const std::vector<const Sorted*>& ss, const uint64_t* mult, int32_t n_types, const double* q,
                    int64_t nq, double bin_width, double rmax, int num_threads, HistogramPath path,
                    DebyePartials& out) {
    const int64_t P = n_pair_types(n_types);
    const Grid g = make_grid(q, nq);
    out.uniform_grid = g.uniform;
    const double inv_w = 1.0 / bin_width;
    const int64_t nbins = histogram_bins(rmax, bin_width, P);
    // Work: one binning step per pair, then one sinc per non-empty bin and q (at most one bin
    // per pair), then the merge of the P x nbins histogram words.
    double n_pairs = 0.0;
    for (const Sorted* s : ss) n_pairs += 0.5 * static_cast<double>(s->x.size()) * static_cast<double>(s->x.size());
    const double filled = std::min(n_pairs, static_cast<double>(nbins) * static_cast<double>(P));
    const int nt = threads_for_work(num_threads, n_pairs + filled * static_cast<double>(nq) +
                                                     static_cast<double>(nbins) * static_cast<double>(P));
    const BinTile bin_tile = pick_bin_tile(path);

    // Tiles: a task is one structure, one pair type (a, b) and one block of BI atoms i of type a
    // (Morton order, so spatially compact); it sweeps the partners j of type b in blocks of BJ
    // and, inside a j block, every i of its block. The distances of one i block x j block tile
    // fall in a window of a few tens of angstrom, so the histogram lines it touches stay in
    // L1/L2 instead of missing to L3 on every increment.
    constexpr int BI = 32, BJ = HIST_BJ;
    static_assert(int64_t(BI) * BJ < PACKED_MAX_PAIRS, "a tile must fit in the packed words");
    struct Tile {
        int32_t a, b, st;
        int64_t i0, i1;
    };
    std::vector<Tile> tiles;
    for (int32_t st = 0; st < static_cast<int32_t>(ss.size()); ++st) {
        const Sorted& s = *ss[st];
        if (mult[st] == 0) continue;
        for (int32_t a = 0; a < n_types; ++a)
            for (int32_t b = a; b < n_types; ++b)
                for (int64_t i0 = s.start[a]; i0 < s.start[a + 1]; i0 += BI) {
                    const int64_t i1 = std::min<int64_t>(i0 + BI, s.start[a + 1]);
                    if (a == b && i0 >= s.start[a + 1] - 1) continue;  // no partner j > i
                    if (s.start[b + 1] - s.start[b] == 0) continue;
                    tiles.push_back({a, b, st, i0, i1});
                }
    }
    const int64_t n_tiles = static_cast<int64_t>(tiles.size());

    // Per thread: packed words (hot, one add per pair), the wide count and offset sums they are
    // moved into, and the pairs added per pair type since the last move.
    // The words of small histograms are kept by the calling thread between calls (a run computes
    // thousands of small-cluster profiles: fresh pages cost more than the work); they are
    // cleared, not reallocated. Large ones are allocated per call, first touched by their thread.
    int nt_bin = 0;
    std::vector<ThreadHist> fresh;
    const size_t words = static_cast<size_t>(P * nbins);
    std::vector<ThreadHist>& hist = words * 24 <= KEEP_HISTOGRAM_BYTES ? kept_histograms() : fresh;
    if (n_tiles > 0) {
        int64_t max_rows = 1;  // the busiest structure's atoms - 1 bounds the useful threads
        for (const Sorted* s : ss) max_rows = std::max<int64_t>(max_rows, static_cast<int64_t>(s->x.size()) - 1);
        nt_bin = static_cast<int>(
            std::max<int64_t>(1, std::min<int64_t>(nt, ss.size() == 1 ? max_rows : n_tiles)));
        if (static_cast<int>(hist.size()) < nt_bin) hist.resize(nt_bin);
        // count / offsum are only written when packed words overflow (large calls), so they
        // are cleared only after a call that spilled into them
        auto clear = [words](ThreadHist& h) {
            const auto w = static_cast<std::ptrdiff_t>(words);
            if (!h.packed_zero) std::fill(h.packed.begin(), h.packed.end(), uint64_t(0));
            if (h.packed.size() < words) h.packed.resize(words);  // new words are zero
            h.packed_zero = false;
            for (auto* v : {&h.count, &h.offsum}) {
                if (h.spilled) std::fill(v->begin(), v->begin() + std::min<std::ptrdiff_t>(w, v->size()), uint64_t(0));
                if (v->size() < words) v->resize(words);
            }
            if (h.spilled)  // entries beyond `words` from an earlier, larger call
                for (auto* v : {&h.count, &h.offsum}) std::fill(v->begin() + w, v->end(), uint64_t(0));
            h.spilled = false;
        };
        if (nt_bin == 1) {
            clear(hist[0]);
            hist[0].pending.assign(static_cast<size_t>(P), 0);
        } else {
#ifdef CDML_HAVE_OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(nt_bin)
#endif
            for (int t = 0; t < nt_bin; ++t) {  // first touch by the thread that uses it
                clear(hist[t]);
                hist[t].pending.assign(static_cast<size_t>(P), 0);
            }
        }
#ifdef CDML_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt_bin)
#endif
        for (int64_t ti = 0; ti < n_tiles; ++ti) {
            ThreadHist& th = hist[thread_index()];
            const Tile& tl = tiles[ti];
            const Sorted& s = *ss[tl.st];
            const uint64_t m = mult[tl.st];
            const int64_t p = pair_type_index(tl.a, tl.b, n_types);
            uint64_t* hp = th.packed.data() + p * nbins;
            // hp[bin] is at hp_key + 8 (key >> OFF_BITS): the key's high part is COUNT_ONE >> OFF_BITS + bin
            const uintptr_t hp_key = reinterpret_cast<uintptr_t>(hp) - (COUNT_ONE >> OFF_BITS) * sizeof(uint64_t);
            const int64_t j_first = (tl.a == tl.b) ? tl.i0 + 1 : s.start[tl.b];
            const int64_t j_last = s.start[tl.b + 1];
            for (int64_t j0 = j_first; j0 < j_last; j0 += BJ) {
                const int64_t j1 = std::min<int64_t>(j0 + BJ, j_last);
                // rows per call so that one call adds at most PACKED_MAX_PAIRS (weighted) pairs
                const int64_t rows = std::max<int64_t>(1, PACKED_MAX_PAIRS / ((j1 - j0) * static_cast<int64_t>(m)));
                for (int64_t r0 = tl.i0; r0 < tl.i1; r0 += rows) {
                    const int64_t r1 = std::min<int64_t>(r0 + rows, tl.i1);
                    const int64_t most = (r1 - r0) * (j1 - j0) * static_cast<int64_t>(m);
                    if (th.pending[p] + most > PACKED_MAX_PAIRS) {  // move the words out before they overflow
                        th.spilled = true;
                        uint64_t* c = th.count.data() + p * nbins;
                        uint64_t* o = th.offsum.data() + p * nbins;
                        for (int64_t k = 0; k < nbins; ++k) {
                            if (hp[k] == 0) continue;
                            uint64_t cnt, off;
                            unpack_word(hp[k], k, &cnt, &off);
                            c[k] += cnt;
                            o[k] += off;
                            hp[k] = 0;
                        }
                        th.pending[p] = 0;
                    }
                    th.pending[p] += most;
                    bin_tile(s.x.data(), s.y.data(), s.z.data(), r0, r1, j0, j1, tl.a == tl.b, inv_w, hp_key, m);
                }
            }
        }
    }
    // Merge the thread histograms and list the non-empty bins per pair type as (r_mean, count)
    // lanes; one pair type per iteration, so the order of every sum is fixed. A pair's offset
    // was truncated to OFF_BITS bits, so the bin mean adds half a unit back.
    std::vector<std::vector<double>> rb(P), wb(P);
    std::vector<double> ws(P, 0.0), zp(P, 0.0);
    bool spilled = false;
    for (int t = 0; t < nt_bin; ++t) spilled = spilled || hist[t].spilled;
#ifdef CDML_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(std::max(1, nt_bin))
#endif
    for (int64_t p = 0; p < P; ++p) {
        for (int64_t bin = 0; bin < nbins && nt_bin > 0; ++bin) {
            const size_t k = static_cast<size_t>(p * nbins + bin);
            uint64_t c = 0, off = 0;
            for (int t = 0; t < nt_bin; ++t) {
                if (spilled) {
                    c += hist[t].count[k];
                    off += hist[t].offsum[k];
                }
                if (hist[t].packed[k] == 0) continue;
                uint64_t cnt, o;
                unpack_word(hist[t].packed[k], bin, &cnt, &o);
                hist[t].packed[k] = 0;  // leaves the words zero for the next call
                c += cnt;
                off += o;
            }
            if (c == 0) continue;
            if (bin == 0 && off == 0) {  // every pair closer than w / 2^16: coincident, sinc = 1
                zp[p] += static_cast<double>(c);
                continue;
            }
            const double mean_frac =
                (static_cast<double>(off) / static_cast<double>(c) + 0.5) / static_cast<double>(OFF_ONE);
            const double rm = (static_cast<double>(bin) + mean_frac) * bin_width;
            rb[p].push_back(rm);
            wb[p].push_back(static_cast<double>(c) / rm);
            ws[p] += static_cast<double>(c);
        }
        while (rb[p].size() % W != 0) {
            rb[p].push_back(1.0);
            wb[p].push_back(0.0);
        }
    }

    for (int t = 0; t < nt_bin; ++t) hist[t].packed_zero = true;  // every word was read and cleared

    // Owner-computes: a task is one pair type and one block of q points.
    const int64_t n_qblocks = (nq + QBLOCK_H - 1) / QBLOCK_H;
    const int64_t n_tasks = P * n_qblocks;
    const int nt_eval = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nt, n_tasks)));
    std::vector<double> scratch(static_cast<size_t>(nt_eval) * QBLOCK_H * W);
#ifdef CDML_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt_eval)
#endif
    for (int64_t task = 0; task < n_tasks; ++task) {
        const int tid = thread_index();
        const int64_t p = task / n_qblocks, qb = task % n_qblocks;
        const int64_t k0 = qb * QBLOCK_H;
        const int nk = static_cast<int>(std::min<int64_t>(QBLOCK_H, nq - k0));
        double* acc = scratch.data() + static_cast<size_t>(tid) * QBLOCK_H * W;
        std::fill(acc, acc + QBLOCK_H * W, 0.0);
        const int64_t nb = static_cast<int64_t>(rb[p].size());
        for (int64_t b0 = 0; b0 < nb; b0 += W) {
            if (g.uniform)
                lanes_uniform_folded(rb[p].data() + b0, wb[p].data() + b0, g.q0, g.dq, k0, nk, acc);
            else
                lanes_direct(rb[p].data() + b0, wb[p].data() + b0, g.q + k0, nk, acc);
        }
        for (int k = 0; k < nk; ++k) {
            double sum = 0.0;
            for (int l = 0; l < W; ++l) sum += acc[k * W + l];
            out.s[p * nq + k0 + k] = sum;
        }
    }
    finish(out, q, ws, zp);
}
}  // namespace

DebyePartials debye_partials_histogram(const double* positions, int64_t n, const int32_t* types,
                                       int32_t n_types, const double* q, int64_t nq, double bin_width,
                                       int num_threads, HistogramPath path) {
    check_q(q, nq);
    if (!(bin_width > 0) || !std::isfinite(bin_width))
        throw std::invalid_argument("bin_width must be finite and > 0 angstrom");
    const double rmax = check_atoms(positions, n, types, n_types);
    check_range(q, nq, rmax);
    const Sorted s = sort_by_type(positions, n, types, n_types);
    DebyePartials out = make_partials(s, n_types, nq);
    const uint64_t one = 1;
    histogram_sums({&s}, &one, n_types, q, nq, bin_width, rmax, num_threads, path, out);
    return out;
}

namespace detail {
DebyePartials pooled_histogram(const std::vector<DebyeStructure>& structures, const uint64_t* mult,
                               int32_t n_types, const double* q, int64_t nq, double bin_width, double rmax,
                               int num_threads) {
    const int64_t B = static_cast<int64_t>(structures.size());
    std::vector<Sorted> sorted(static_cast<size_t>(B));
    double atoms = 0.0;
    for (const auto& st : structures) atoms += static_cast<double>(st.n);
    const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads_for_work(num_threads, 50.0 * atoms, 1e6), B)));
#ifdef CDML_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 16) num_threads(nt)
#endif
    for (int64_t k = 0; k < B; ++k)
        sorted[k] = sort_by_type(structures[k].positions, structures[k].n, structures[k].types, n_types);
    std::vector<const Sorted*> ptr(static_cast<size_t>(B));
    for (int64_t k = 0; k < B; ++k) ptr[k] = &sorted[k];
    const int64_t P = n_pair_types(n_types);
    DebyePartials out;
    out.n_types = n_types;
    out.n_q = nq;
    out.type_counts.assign(n_types, 0);
    out.pair_counts.assign(P, 0);
    for (int64_t k = 0; k < B; ++k) {
        const DebyePartials c = make_partials(sorted[k], n_types, 0);
        const auto m = static_cast<int64_t>(mult[k]);
        for (int32_t a = 0; a < n_types; ++a) out.type_counts[a] += m * c.type_counts[a];
        for (int64_t p = 0; p < P; ++p) out.pair_counts[p] += m * c.pair_counts[p];
    }
    out.s.assign(static_cast<size_t>(P * nq), 0.0);
    histogram_sums(ptr, mult, n_types, q, nq, bin_width, rmax, num_threads, HistogramPath::Auto, out);
    return out;
}

void validate_q(const double* q, int64_t nq) { check_q(q, nq); }

double validate_structure(const double* positions, int64_t n, const int32_t* types, int32_t n_types,
                          const double* q, int64_t nq) {
    const double rmax = check_atoms(positions, n, types, n_types);
    check_range(q, nq, rmax);
    return rmax;
}

bool histogram_fits(double rmax, double bin_width, int32_t n_types) {
    const double nbins = std::floor(rmax * (1.0 / bin_width)) + 2.0;
    return nbins * static_cast<double>(n_pair_types(n_types)) <= MAX_HISTOGRAM_BINS &&
           nbins <= static_cast<double>(MAX_BINS_PER_TYPE);
}
}  // namespace detail

double debye_r_max(const double* positions, int64_t n) {
    if (n < 0) throw std::invalid_argument("number of atoms must be >= 0");
    double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
    for (int64_t i = 0; i < n; ++i)
        for (int c = 0; c < 3; ++c) {
            const double v = positions[3 * i + c];
            if (!std::isfinite(v)) throw std::invalid_argument("positions contain a non-finite value (atom " +
                                                               std::to_string(i) + ")");
            lo[c] = i == 0 ? v : std::min(lo[c], v);
            hi[c] = i == 0 ? v : std::max(hi[c], v);
        }
    return std::sqrt((hi[0] - lo[0]) * (hi[0] - lo[0]) + (hi[1] - lo[1]) * (hi[1] - lo[1]) +
                     (hi[2] - lo[2]) * (hi[2] - lo[2]));
}

bool debye_auto_uses_histogram(int64_t n, int32_t n_types, double r_max, double bin_width) {
    if (!(bin_width > 0) || !std::isfinite(bin_width)) return false;
    const double pairs = 0.5 * static_cast<double>(n) * static_cast<double>(n - 1);
    const double bins = static_cast<double>(n_pair_types(std::max<int32_t>(n_types, 1))) *
                        (std::floor(r_max / bin_width) + 2.0);
    return pairs > 4.0 * bins && bins <= MAX_HISTOGRAM_BINS;
}

std::vector<DebyePartials> debye_partials_batch(const std::vector<DebyeStructure>& structures, int32_t n_types,
                                                const double* q, int64_t nq, DebyeMethod method, double bin_width,
                                                int num_threads, std::vector<uint8_t>* histogram) {
    check_q(q, nq);
    const int64_t B = static_cast<int64_t>(structures.size());
    std::vector<DebyePartials> out(B);
    std::vector<uint8_t> used(B, 0);
    std::vector<std::string> errors(B);
    double work = 0.0;
    for (const auto& st : structures) work += 0.5 * static_cast<double>(st.n) * static_cast<double>(st.n) * nq;
    const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads_for_work(num_threads, work, 1e6), B)));
#ifdef CDML_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
#endif
    for (int64_t k = 0; k < B; ++k) {
        const DebyeStructure& st = structures[k];
        try {
            bool hist = method == DebyeMethod::Histogram;
            if (method == DebyeMethod::Auto)
                hist = debye_auto_uses_histogram(st.n, n_types, debye_r_max(st.positions, st.n), bin_width);
            used[k] = hist ? 1 : 0;
            out[k] = hist ? debye_partials_histogram(st.positions, st.n, st.types, n_types, q, nq, bin_width, 1)
                          : debye_partials_exact(st.positions, st.n, st.types, n_types, q, nq, 1);
        } catch (const std::exception& e) {
            errors[k] = e.what();
            if (errors[k].empty()) errors[k] = "error";
        }
    }
    for (int64_t k = 0; k < B; ++k)
        if (!errors[k].empty()) throw std::invalid_argument("structure " + std::to_string(k) + ": " + errors[k]);
    if (histogram) *histogram = std::move(used);
    return out;
}

std::vector<double> debye_pairlist_partials(const double* r, const int64_t* pair_type, int64_t n_pairs,
                                            int64_t n_pair_types_, const double* q, int64_t nq,
                                            int num_threads) {
    check_q(q, nq);
    if (n_pairs < 0 || n_pair_types_ < 1) throw std::invalid_argument("need n_pairs >= 0 and n_pair_types >= 1");
    for (int64_t m = 0; m < n_pairs; ++m) {
        if (pair_type[m] < 0 || pair_type[m] >= n_pair_types_)
            throw std::invalid_argument("pair_type[" + std::to_string(m) + "] out of range");
        if (!std::isfinite(r[m]) || r[m] < 0)
            throw std::invalid_argument("pair distances must be finite and >= 0");
    }
    std::vector<double> out(static_cast<size_t>(n_pair_types_ * nq), 0.0);
    const int nt = static_cast<int>(std::max<int64_t>(
        1, std::min<int64_t>(threads_for_work(num_threads, static_cast<double>(n_pairs) * nq), nq)));
#ifdef CDML_HAVE_OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int64_t k = 0; k < nq; ++k) {
        for (int64_t m = 0; m < n_pairs; ++m) {
            const double x = q[k] * r[m];
            out[pair_type[m] * nq + k] += x > 0 ? std::sin(x) / x : 1.0;
        }
    }
    return out;
}

std::vector<double> debye_intensity_from_partials(const DebyePartials& pt, const double* q, const double* f,
                                                  const double* sigma) {
    const int32_t T = pt.n_types;
    const int64_t nq = pt.n_q;
    std::vector<double> out(static_cast<size_t>(nq), 0.0);
    for (int64_t k = 0; k < nq; ++k) {
        double sum = 0.0;
        for (int32_t a = 0; a < T; ++a) sum += static_cast<double>(pt.type_counts[a]) * f[a * nq + k] * f[a * nq + k];
        for (int32_t a = 0; a < T; ++a)
            for (int32_t b = a; b < T; ++b) {
                const int64_t p = pair_type_index(a, b, T);
                double damp = 1.0;
                if (sigma != nullptr) {
                    const double sg = sigma[a * T + b];
                    damp = std::exp(-0.5 * sg * sg * q[k] * q[k]);
                }
                sum += 2.0 * f[a * nq + k] * f[b * nq + k] * damp * pt.s[p * nq + k];
            }
        out[k] = sum;
    }
    return out;
}

}  // namespace cdml
