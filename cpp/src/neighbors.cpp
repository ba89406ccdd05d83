// Cell-list neighbour search. Hand-written because it is the hot loop of every frame.
//
// Algorithm: wrap every atom into the primary cell in fractional coordinates, bin it
// into an n0 x n1 x n2 grid of parallelepiped cells whose perpendicular widths are all
// >= the cutoff, counting-sort the atoms by cell (so the inner loop reads contiguous
// memory), then compare each cell with itself and with 13 of its 26 neighbours (a
// half shell: every unordered pair of cells/images is visited exactly once). Each
// neighbour offset carries the lattice translation of the periodic image it refers to,
// so grids with 2 cells along an axis are handled exactly. Found pairs go to
// thread-local buffers and are then scattered by row (smaller index) and sorted by
// column, which gives the canonical (i, j) order independently of the thread count.
#include "clusterdynamicsml/neighbors.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "clusterdynamicsml/parallel.hpp"

namespace cdml {
namespace {

struct Pair {
    int64_t i;
    int64_t j;
    double d;
};

struct Grid {
    int64_t n[3] = {1, 1, 1};
    bool periodic = false;
    std::vector<int64_t> cell_start;  // size ncell + 1
    std::vector<int64_t> order;       // sorted position -> original index
    std::vector<double> xyz;          // sorted, wrapped Cartesian positions (3 per atom)
    std::vector<int32_t> type;        // sorted types (empty if untyped)
    double h[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};  // lattice rows, periodic only
    int64_t ncell() const { return n[0] * n[1] * n[2]; }
};

void check_positions(const double* pos, int64_t n) {
    for (int64_t k = 0; k < 3 * n; ++k)
        if (!std::isfinite(pos[k]))
            throw std::invalid_argument("positions contain a non-finite value (atom " +
                                        std::to_string(k / 3) + ")");
}

// Choose the number of cells along each axis: width >= cutoff, total bounded by ~2 n.
void choose_cells(const double extent[3], double cutoff, int64_t natoms, int64_t out[3]) {
    const double max_cells = std::max<double>(1.0, 2.0 * static_cast<double>(natoms));
    double width = std::max(cutoff, 1e-12);
    for (int attempt = 0; attempt < 200; ++attempt) {
        double total = 1.0;
        for (int k = 0; k < 3; ++k) {
            out[k] = std::max<int64_t>(1, static_cast<int64_t>(std::floor(extent[k] / width)));
            total *= static_cast<double>(out[k]);
        }
        if (total <= max_cells) return;
        width *= 1.25;
    }
}

Grid build_grid(const double* pos, int64_t n, const int32_t* types, double cutoff, const Box* box,
                int nthreads) {
    Grid g;
    std::vector<double> frac(3 * n);
    if (box) {
        g.periodic = true;
        const auto& m = box->matrix();
        for (int a = 0; a < 3; ++a)
            for (int b = 0; b < 3; ++b) g.h[a][b] = m[a][b];
        const double ext[3] = {box->height(0), box->height(1), box->height(2)};
        choose_cells(ext, cutoff, n, g.n);
        const auto& inv = box->inverse();
#pragma omp parallel for schedule(static) num_threads(nthreads)
        for (int64_t a = 0; a < n; ++a) {
            const double* r = pos + 3 * a;
            for (int k = 0; k < 3; ++k) {
                double s = r[0] * inv[0][k] + r[1] * inv[1][k] + r[2] * inv[2][k];
                s -= std::floor(s);
                if (s >= 1.0) s = 0.0;
                frac[3 * a + k] = s;
            }
        }
    } else {
        double lo[3] = {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity(),
                        std::numeric_limits<double>::infinity()};
        double hi[3] = {-lo[0], -lo[1], -lo[2]};
        for (int64_t a = 0; a < n; ++a)
            for (int k = 0; k < 3; ++k) {
                lo[k] = std::min(lo[k], pos[3 * a + k]);
                hi[k] = std::max(hi[k], pos[3 * a + k]);
            }
        double ext[3];
        for (int k = 0; k < 3; ++k) ext[k] = n > 0 ? hi[k] - lo[k] : 0.0;
        choose_cells(ext, cutoff, n, g.n);
        for (int64_t a = 0; a < n; ++a)
            for (int k = 0; k < 3; ++k)
                frac[3 * a + k] = ext[k] > 0 ? (pos[3 * a + k] - lo[k]) / ext[k] : 0.0;
    }
    const int64_t ncell = g.ncell();
    std::vector<int64_t> cell_of(n);
    for (int64_t a = 0; a < n; ++a) {
        int64_t c[3];
        for (int k = 0; k < 3; ++k) {
            c[k] = static_cast<int64_t>(frac[3 * a + k] * static_cast<double>(g.n[k]));
            c[k] = std::min(std::max<int64_t>(c[k], 0), g.n[k] - 1);
        }
        cell_of[a] = (c[0] * g.n[1] + c[1]) * g.n[2] + c[2];
    }
    g.cell_start.assign(ncell + 1, 0);
    for (int64_t a = 0; a < n; ++a) ++g.cell_start[cell_of[a] + 1];
    for (int64_t c = 0; c < ncell; ++c) g.cell_start[c + 1] += g.cell_start[c];
    std::vector<int64_t> cursor(g.cell_start.begin(), g.cell_start.end() - 1);
    g.order.resize(n);
    for (int64_t a = 0; a < n; ++a) g.order[cursor[cell_of[a]]++] = a;  // stable: ascending index
    g.xyz.resize(3 * n);
    if (types) g.type.resize(n);
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t p = 0; p < n; ++p) {
        const int64_t a = g.order[p];
        if (g.periodic) {
            const double* s = &frac[3 * a];
            for (int k = 0; k < 3; ++k)
                g.xyz[3 * p + k] = s[0] * g.h[0][k] + s[1] * g.h[1][k] + s[2] * g.h[2][k];
        } else {
            for (int k = 0; k < 3; ++k) g.xyz[3 * p + k] = pos[3 * a + k];
        }
        if (types) g.type[p] = types[a];
    }
    return g;
}

// The 13 "forward" neighbour offsets plus the cell itself.
constexpr int kHalfShell[14][3] = {{0, 0, 0},  {0, 0, 1},  {0, 1, -1}, {0, 1, 0},   {0, 1, 1},
                                   {1, -1, -1}, {1, -1, 0}, {1, -1, 1}, {1, 0, -1}, {1, 0, 0},
                                   {1, 0, 1},  {1, 1, -1}, {1, 1, 0},  {1, 1, 1}};

PairList search(const double* pos, int64_t n, const int32_t* types, int32_t n_types,
                const double* cutoffs, double max_cutoff, const Box* box, int num_threads) {
    if (n < 0) throw std::invalid_argument("number of atoms must be >= 0");
    if (!std::isfinite(max_cutoff) || max_cutoff < 0.0)
        throw std::invalid_argument("cutoff must be finite and >= 0, got " + std::to_string(max_cutoff));
    check_positions(pos, n);
    if (box && !(max_cutoff < 0.5 * box->min_height()))
        throw std::invalid_argument("cutoff " + std::to_string(max_cutoff) +
                                    " A is not smaller than half the smallest box height (" +
                                    std::to_string(0.5 * box->min_height()) + " A)");
    std::vector<double> cut2;
    if (types) {
        cut2.resize(static_cast<std::size_t>(n_types) * n_types);
        for (std::size_t k = 0; k < cut2.size(); ++k)
            cut2[k] = cutoffs[k] > 0.0 ? cutoffs[k] * cutoffs[k] : -1.0;
        for (int64_t a = 0; a < n; ++a)
            if (types[a] >= n_types)
                throw std::invalid_argument("type index out of range at atom " + std::to_string(a));
    }
    const int nthreads = resolve_threads(num_threads);
    PairList out;
    if (n < 2) return out;
    const Grid g = build_grid(pos, n, types, max_cutoff, box, nthreads);
    const double c2 = max_cutoff * max_cutoff;
    const int64_t ncell = g.ncell();

    std::vector<std::vector<Pair>> buffers(nthreads);
#pragma omp parallel num_threads(nthreads)
    {
        int tid = 0;
#ifdef CDML_HAVE_OPENMP
        tid = omp_get_thread_num();
#endif
        std::vector<Pair>& buf = buffers[tid];
#pragma omp for schedule(dynamic, 64)
        for (int64_t c = 0; c < ncell; ++c) {
            const int64_t cx = c / (g.n[1] * g.n[2]);
            const int64_t cy = (c / g.n[2]) % g.n[1];
            const int64_t cz = c % g.n[2];
            const int64_t a0 = g.cell_start[c], a1 = g.cell_start[c + 1];
            if (a0 == a1) continue;
            for (const auto& off : kHalfShell) {
                int64_t nc[3] = {cx + off[0], cy + off[1], cz + off[2]};
                double shift[3] = {0.0, 0.0, 0.0};
                bool skip = false;
                for (int k = 0; k < 3; ++k) {
                    int64_t wrapn = 0;
                    if (nc[k] < 0) { nc[k] += g.n[k]; wrapn = -1; }
                    else if (nc[k] >= g.n[k]) { nc[k] -= g.n[k]; wrapn = 1; }
                    if (wrapn != 0) {
                        if (!g.periodic) { skip = true; break; }
                        for (int x = 0; x < 3; ++x) shift[x] += static_cast<double>(wrapn) * g.h[k][x];
                    }
                }
                if (skip) continue;
                // With fewer than 3 cells on an axis, a forward offset can land on the
                // same cell via an image; offset (0,0,0) is the only true self visit.
                const bool self = off[0] == 0 && off[1] == 0 && off[2] == 0;
                const int64_t nb = (nc[0] * g.n[1] + nc[1]) * g.n[2] + nc[2];
                const int64_t b0 = g.cell_start[nb], b1 = g.cell_start[nb + 1];
                for (int64_t p = a0; p < a1; ++p) {
                    const double px = g.xyz[3 * p] - shift[0];
                    const double py = g.xyz[3 * p + 1] - shift[1];
                    const double pz = g.xyz[3 * p + 2] - shift[2];
                    const int32_t tp = types ? g.type[p] : 0;
                    if (tp < 0) continue;
                    for (int64_t q = self ? p + 1 : b0; q < b1; ++q) {
                        const double dx = g.xyz[3 * q] - px;
                        const double dy = g.xyz[3 * q + 1] - py;
                        const double dz = g.xyz[3 * q + 2] - pz;
                        const double r2 = dx * dx + dy * dy + dz * dz;
                        if (r2 > c2) continue;
                        if (types) {
                            const int32_t tq = g.type[q];
                            if (tq < 0 || r2 > cut2[static_cast<std::size_t>(tp) * n_types + tq]) continue;
                        }
                        const int64_t oi = g.order[p], oj = g.order[q];
                        if (oi == oj) continue;  // an atom and its own image (cannot be within cutoff)
                        buf.push_back(oi < oj ? Pair{oi, oj, std::sqrt(r2)} : Pair{oj, oi, std::sqrt(r2)});
                    }
                }
            }
        }
    }

    // Canonical order: counting sort by row i, then sort each row by j.
    std::vector<std::vector<uint32_t>> counts(nthreads, std::vector<uint32_t>(n, 0));
#pragma omp parallel for schedule(static, 1) num_threads(nthreads)
    for (int t = 0; t < nthreads; ++t)
        for (const Pair& p : buffers[t]) ++counts[t][p.i];
    std::vector<int64_t> row_start(n + 1, 0);
    for (int64_t a = 0; a < n; ++a) {
        int64_t s = 0;
        for (int t = 0; t < nthreads; ++t) s += counts[t][a];
        row_start[a + 1] = row_start[a] + s;
    }
    const int64_t total = row_start[n];
    std::vector<std::vector<int64_t>> cursor(nthreads, std::vector<int64_t>(n));
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t a = 0; a < n; ++a) {
        int64_t acc = row_start[a];
        for (int t = 0; t < nthreads; ++t) {
            cursor[t][a] = acc;
            acc += counts[t][a];
        }
    }
    counts.clear();
    counts.shrink_to_fit();
    out.i.resize(total);
    out.j.resize(total);
    out.d.resize(total);
#pragma omp parallel for schedule(static, 1) num_threads(nthreads)
    for (int t = 0; t < nthreads; ++t) {
        for (const Pair& p : buffers[t]) {
            const int64_t k = cursor[t][p.i]++;
            out.i[k] = p.i;
            out.j[k] = p.j;
            out.d[k] = p.d;
        }
        std::vector<Pair>().swap(buffers[t]);
    }
#pragma omp parallel for schedule(dynamic, 1024) num_threads(nthreads)
    for (int64_t a = 0; a < n; ++a) {
        const int64_t s = row_start[a], e = row_start[a + 1];
        for (int64_t x = s + 1; x < e; ++x) {  // insertion sort: rows are short
            const int64_t jj = out.j[x];
            const double dd = out.d[x];
            int64_t y = x - 1;
            while (y >= s && out.j[y] > jj) {
                out.j[y + 1] = out.j[y];
                out.d[y + 1] = out.d[y];
                --y;
            }
            out.j[y + 1] = jj;
            out.d[y + 1] = dd;
        }
    }
    return out;
}

}  // namespace

PairList neighbor_pairs(const double* positions, int64_t n, double cutoff, const Box* box, int num_threads) {
    return search(positions, n, nullptr, 0, nullptr, cutoff, box, num_threads);
}

PairList neighbor_pairs_typed(const double* positions, int64_t n, const int32_t* types, int32_t n_types,
                              const double* cutoffs, const Box* box, int num_threads) {
    if (n_types < 1) throw std::invalid_argument("n_types must be >= 1");
    double max_cut = 0.0;
    for (int64_t k = 0; k < static_cast<int64_t>(n_types) * n_types; ++k) {
        if (!std::isfinite(cutoffs[k])) throw std::invalid_argument("cutoff matrix has a non-finite entry");
        max_cut = std::max(max_cut, cutoffs[k]);
    }
    for (int32_t a = 0; a < n_types; ++a)
        for (int32_t b = 0; b < a; ++b)
            if (cutoffs[a * n_types + b] != cutoffs[b * n_types + a])
                throw std::invalid_argument("cutoff matrix must be symmetric");
    return search(positions, n, types, n_types, cutoffs, max_cut, box, num_threads);
}

std::vector<int64_t> connected_components(int64_t n, const int64_t* i, const int64_t* j, int64_t n_edges) {
    if (n < 0) throw std::invalid_argument("number of vertices must be >= 0");
    std::vector<int64_t> parent(n);
    std::iota(parent.begin(), parent.end(), 0);
    auto find = [&parent](int64_t x) {
        while (parent[x] != x) {
            parent[x] = parent[parent[x]];  // path halving
            x = parent[x];
        }
        return x;
    };
    for (int64_t e = 0; e < n_edges; ++e) {
        const int64_t a = i[e], b = j[e];
        if (a < 0 || a >= n || b < 0 || b >= n)
            throw std::invalid_argument("edge " + std::to_string(e) + " has a vertex outside [0, " +
                                        std::to_string(n) + ")");
        int64_t ra = find(a), rb = find(b);
        if (ra == rb) continue;
        if (ra < rb) parent[rb] = ra;  // the root is always the smallest member
        else parent[ra] = rb;
    }
    std::vector<int64_t> label(n);
    int64_t next = 0;
    for (int64_t v = 0; v < n; ++v) {
        const int64_t r = find(v);
        label[v] = (r == v) ? next++ : label[r];
    }
    return label;
}

}  // namespace cdml
