// Cell-list neighbour search. Hand-written because it is the hot loop of every frame.
//
// All phases run in ONE parallel region, chained by PhasedWork (parallel.hpp) instead
// of barriers, so that a busy machine costs one scheduler delay per call, not one per phase.
//
// 1. Grid. Every atom is wrapped into the primary cell in fractional coordinates and
//    binned into an n0 x n1 x n2 grid of parallelepiped cells whose perpendicular widths
//    are all >= the cutoff (at most ~2 cells per atom). A stable counting sort by cell
//    (histograms over fixed atom ranges, so the order inside a cell is by atom index for
//    any thread count) gives structure-of-arrays positions in cell order. Atoms with a
//    negative type never enter the grid.
// 2. Search. Each cell is compared with itself and with its 13 "forward" neighbours
//    (a half shell: every unordered pair of cells/images is visited once). With axis 0
//    running fastest in memory, the forward neighbours form 4 rows of 3 cells plus the
//    next cell, so for an interior cell each atom scans 5 contiguous ranges of atoms.
//    Cells on the periodic border fall back to one range per cell, each with the lattice
//    translation of the image it refers to (this also covers grids with 1 or 2 cells
//    along an axis). Distances are tested branch-free, hits compacted.
// 3. Canonical order. A found pair (i < j, original indices) goes to a per-thread,
//    per-bucket block list, bucket = i >> shift (a few thousand rows each, so a bucket
//    fits in cache). Buckets are then filled independently: counting sort by row inside
//    the bucket, each row sorted by j. The output is sorted by (i, j), hence identical
//    for any thread count and schedule; every distance is computed from the same two
//    wrapped coordinates whichever thread finds the pair.
#include "clusterdynamicsml/neighbors.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "clusterdynamicsml/parallel.hpp"


namespace cdml {
namespace {

struct Grid {
    int64_t n[3] = {1, 1, 1};
    bool periodic = false;
    int64_t natoms = 0;                  // atoms in the grid (types >= 0)
    std::vector<int64_t> cell_start;     // size ncell + 1
    Buffer<uint32_t> order;              // sorted position -> original index
    Buffer<double> x, y, z;              // sorted, wrapped Cartesian positions
    Buffer<int32_t> type;                // sorted types (empty if untyped)
    double h[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};  // lattice rows, periodic only
    int64_t ncell() const { return n[0] * n[1] * n[2]; }
};

void check_positions(const double* pos, int64_t n) {
    for (int64_t k = 0; k < 3 * n; ++k)
        if (!std::isfinite(pos[k]))
            throw std::invalid_argument("positions contain a non-finite value (atom " +
                                        std::to_string(k / 3) + ")");
}

// Number of cells along each axis: width >= cutoff, total bounded by ~2 natoms.
void choose_cells(const double extent[3], double cutoff, int64_t natoms, int64_t out[3]) {
    const double max_cells = std::max<double>(1.0, 2.0 * static_cast<double>(natoms));
    double width = std::max(cutoff, 1e-12);
    for (int k = 0; k < 3; ++k) width = std::max(width, extent[k] * 1e-6);  // at most 1e6 cells per axis
    for (int attempt = 0; attempt < 400; ++attempt) {
        double total = 1.0;
        for (int k = 0; k < 3; ++k) {
            const double c = std::floor(extent[k] / width);
            out[k] = std::max<int64_t>(1, static_cast<int64_t>(std::min(c, 1e6)));
            total *= static_cast<double>(out[k]);
        }
        if (total <= max_cells) return;
        width *= 1.25;
    }
}

// A found pair, original indices row < col.
struct Rec {
    uint32_t row;
    uint32_t col;
    double d;
};

// Per-thread storage of found pairs: one list of fixed-size blocks per row bucket,
// blocks carved from large slabs (no reallocation, no copying while searching).
class PairStore {
public:
    static constexpr int64_t kBlock = 512;     // records per block (8 KiB)
    static constexpr int64_t kMaxSlab = 1024;  // blocks per slab at most (8 MiB, huge pages)

    PairStore(int64_t nbuckets, int shift)
        : shift_(shift), head_(nbuckets, nullptr), fill_(nbuckets, kBlock), blocks_(nbuckets), count_(nbuckets, 0) {}

    void add(uint32_t row, uint32_t col, double d) {
        const std::size_t b = row >> shift_;
        if (fill_[b] == kBlock) new_block(b);
        head_[b][fill_[b]++] = Rec{row, col, d};
        ++count_[b];
    }
    int64_t count(std::size_t b) const { return count_[b]; }
    template <class F>
    void for_each(std::size_t b, F&& f) const {
        int64_t left = count_[b];
        for (const Rec* blk : blocks_[b]) {
            const int64_t k1 = std::min(left, kBlock);
            for (int64_t k = 0; k < k1; ++k) f(blk[k]);
            left -= k1;
        }
    }

private:
    void new_block(std::size_t b) {
        if (slabs_.empty() || slab_used_ == slab_blocks_) {
            // slabs grow 32, 64, ... up to kMaxSlab blocks: small searches stay small
            slab_blocks_ = slabs_.empty() ? 32 : std::min(kMaxSlab, 2 * slab_blocks_);
            slabs_.emplace_back();
            slabs_.back().resize(kBlock * slab_blocks_);  // not zeroed
            slab_used_ = 0;
        }
        head_[b] = slabs_.back().data() + kBlock * slab_used_++;
        blocks_[b].push_back(head_[b]);
        fill_[b] = 0;
    }
    int shift_;
    std::vector<Rec*> head_;
    std::vector<int64_t> fill_;
    std::vector<std::vector<Rec*>> blocks_;
    std::vector<int64_t> count_;
    std::vector<Buffer<Rec>> slabs_;
    int64_t slab_used_ = 0;
    int64_t slab_blocks_ = 0;
};

// One contiguous range of sorted atoms [q0, q1) seen through the lattice translation
// (sx, sy, sz) of its image (subtracted from the home atom); `from_next`: start after the home atom.
struct Segment {
    int64_t q0, q1;
    double sx, sy, sz;
    bool from_next;
};

struct SearchParams {
    double c2;                  // max cutoff squared
    const double* cut2;         // per type pair, or nullptr
    int32_t n_types;
};

// Compare the atoms of one home cell with a list of segments and store the hits.
void scan_cell(const Grid& g, int64_t a0, int64_t a1, const Segment* segs, int nseg, const SearchParams& sp,
               PairStore& store, std::vector<int64_t>& hits, std::vector<double>& hit_r2) {
    const double* X = g.x.data();
    const double* Y = g.y.data();
    const double* Z = g.z.data();
    for (int64_t p = a0; p < a1; ++p) {
        const int32_t tp = sp.cut2 ? g.type[p] : 0;
        const uint32_t op = g.order[p];
        for (int s = 0; s < nseg; ++s) {
            const Segment& sg = segs[s];
            const double px = X[p] - sg.sx, py = Y[p] - sg.sy, pz = Z[p] - sg.sz;
            const int64_t q0 = sg.from_next ? p + 1 : sg.q0;
            const int64_t len = sg.q1 - q0;
            if (len <= 0) continue;
            if (static_cast<int64_t>(hits.size()) < len) {
                hits.resize(len);
                hit_r2.resize(len);
            }
            int64_t* hq = hits.data();
            double* hr = hit_r2.data();
            int64_t nh = 0;
            for (int64_t q = q0; q < sg.q1; ++q) {
                const double dx = X[q] - px, dy = Y[q] - py, dz = Z[q] - pz;
                const double r2 = dx * dx + dy * dy + dz * dz;
                hq[nh] = q;
                hr[nh] = r2;
                nh += (r2 <= sp.c2);
            }
            for (int64_t k = 0; k < nh; ++k) {
                const int64_t q = hq[k];
                if (sp.cut2 && !(hr[k] <= sp.cut2[static_cast<std::size_t>(tp) * sp.n_types + g.type[q]])) continue;
                const uint32_t oq = g.order[q];
                if (oq == op) continue;  // an atom and its own image (cannot be within the cutoff)
                const double d = std::sqrt(hr[k]);
                if (op < oq) store.add(op, oq, d);
                else store.add(oq, op, d);
            }
        }
    }
}

// Segments of the half shell of cell (cx, cy, cz): the cell itself from the next atom on,
// then forward neighbours, as contiguous ranges where the grid allows.
int half_shell_segments(const Grid& g, int64_t cx, int64_t cy, int64_t cz, Segment* out) {
    const int64_t nx = g.n[0], ny = g.n[1];
    int nseg = 0;
    // neighbour coordinate along axis k with its image count; false if outside an open grid
    auto wrap = [&](int k, int64_t c, int64_t& w, int64_t& img) -> bool {
        img = 0;
        w = c;
        if (c < 0) { w += g.n[k]; img = -1; }
        else if (c >= g.n[k]) { w -= g.n[k]; img = 1; }
        return img == 0 || g.periodic;
    };
    auto cell = [&](int64_t x, int64_t y, int64_t z) { return (z * ny + y) * nx + x; };
    auto add = [&](int64_t c0, int64_t c1, int64_t ix, int64_t iy, int64_t iz, bool from_next) {
        // cells c0..c1 (inclusive, contiguous) seen through image (ix, iy, iz)
        Segment s;
        s.q0 = g.cell_start[c0];
        s.q1 = g.cell_start[c1 + 1];
        s.sx = ix * g.h[0][0] + iy * g.h[1][0] + iz * g.h[2][0];
        s.sy = ix * g.h[0][1] + iy * g.h[1][1] + iz * g.h[2][1];
        s.sz = ix * g.h[0][2] + iy * g.h[1][2] + iz * g.h[2][2];
        s.from_next = from_next;
        if (s.q1 > s.q0) out[nseg++] = s;
    };
    // the home cell (from the next atom), then dx = +1 in the same row
    add(cell(cx, cy, cz), cell(cx, cy, cz), 0, 0, 0, true);
    {
        int64_t wx, ix;
        if (wrap(0, cx + 1, wx, ix)) add(cell(wx, cy, cz), cell(wx, cy, cz), ix, 0, 0, false);
    }
    // rows (dy, dz) in {(1, 0), (-1, 1), (0, 1), (1, 1)}, dx = -1..1
    static constexpr int kRows[4][2] = {{1, 0}, {-1, 1}, {0, 1}, {1, 1}};
    for (const auto& r : kRows) {
        int64_t wy, iy, wz, iz;
        if (!wrap(1, cy + r[0], wy, iy) || !wrap(2, cz + r[1], wz, iz)) continue;
        if (cx >= 1 && cx + 1 < nx) {
            add(cell(cx - 1, wy, wz), cell(cx + 1, wy, wz), 0, iy, iz, false);
        } else {
            for (int dx = -1; dx <= 1; ++dx) {
                int64_t wx, ix;
                if (wrap(0, cx + dx, wx, ix)) add(cell(wx, wy, wz), cell(wx, wy, wz), ix, iy, iz, false);
            }
        }
    }
    return nseg;
}

// Chunk sizes of the phases (atoms, cells); fixed, so the work split is the same for
// any thread count (the output does not depend on it anyway: see the header comment).
constexpr int64_t kAtomChunk = 8192;
constexpr int64_t kCellChunk = 256;

PairList search(const double* pos, int64_t n, const int32_t* types, int32_t n_types,
                const double* cutoffs, double max_cutoff, const Box* box, int num_threads) {
    if (n < 0) throw std::invalid_argument("number of atoms must be >= 0");
    if (n > static_cast<int64_t>(std::numeric_limits<uint32_t>::max()))
        throw std::invalid_argument("neighbor search supports at most 4294967295 atoms, got " + std::to_string(n));
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
                throw std::invalid_argument("type index out of range at atom " + std::to_string(a) + ": " +
                                            std::to_string(types[a]) + " >= " + std::to_string(n_types));
    }
    // Below kSerialAtoms the whole search takes well under 10 ms on one thread, while waking
    // a team of threads costs milliseconds on a loaded machine (measured: 64 atoms, 0.06 ms
    // serial vs 12 ms with 2 threads at load 5). Serial there; results are identical anyway.
    constexpr int64_t kSerialAtoms = 20000;
    const int nthreads = n < kSerialAtoms ? 1 : resolve_threads(num_threads);
    PairList out;
    if (n < 2) return out;

    // ---- serial set-up: active atoms, grid shape -------------------------------------
    Grid g;
    std::vector<uint32_t> active;  // atoms with type >= 0, increasing index (typed only)
    const bool all_active = types == nullptr || std::all_of(types, types + n, [](int32_t t) { return t >= 0; });
    if (!all_active)
        for (int64_t a = 0; a < n; ++a)
            if (types[a] >= 0) active.push_back(static_cast<uint32_t>(a));
    const int64_t m = all_active ? n : static_cast<int64_t>(active.size());
    if (m < 2) return out;
    g.natoms = m;
    auto atom = [&](int64_t k) -> int64_t { return all_active ? k : active[k]; };
    double lo[3] = {0, 0, 0}, ext[3] = {0, 0, 0};
    if (box) {
        g.periodic = true;
        const auto& hm = box->matrix();
        for (int a = 0; a < 3; ++a)
            for (int b = 0; b < 3; ++b) g.h[a][b] = hm[a][b];
        for (int k = 0; k < 3; ++k) ext[k] = box->height(k);
    } else {
        double hi[3];
        for (int c = 0; c < 3; ++c) {
            lo[c] = std::numeric_limits<double>::infinity();
            hi[c] = -lo[c];
        }
        for (int64_t k = 0; k < m; ++k)
            for (int c = 0; c < 3; ++c) {
                lo[c] = std::min(lo[c], pos[3 * atom(k) + c]);
                hi[c] = std::max(hi[c], pos[3 * atom(k) + c]);
            }
        for (int c = 0; c < 3; ++c) ext[c] = hi[c] - lo[c];
    }
    choose_cells(ext, max_cutoff, m, g.n);
    const int64_t ncell = g.ncell();
    const auto inv = box ? box->inverse() : std::array<std::array<double, 3>, 3>{};
    const SearchParams sp{max_cutoff * max_cutoff, types ? cut2.data() : nullptr, n_types};

    // counting sort in K fixed atom ranges (see below)
    const int64_t K = std::max<int64_t>(1, std::min<int64_t>(4 * static_cast<int64_t>(nthreads), m / 16384));
    auto range = [&](int64_t r) { return std::make_pair(m * r / K, m * (r + 1) / K); };
    // row buckets of 2^shift rows for the output
    int shift = 0;
    while ((n >> shift) > 512 && shift < 11) ++shift;
    const int64_t nbuckets = ((n - 1) >> shift) + 1;

    Buffer<double> wrapped(3 * m);
    Buffer<int64_t> cell_of(m);
    std::vector<Buffer<uint32_t>> hist(K);
    Buffer<uint32_t> sorted(m);
    g.cell_start.resize(ncell + 1);
    g.order.resize(m);
    g.x.resize(m);
    g.y.resize(m);
    g.z.resize(m);
    if (types) g.type.resize(m);
    std::vector<std::unique_ptr<PairStore>> stores(nthreads);
    std::vector<int64_t> bucket_start(nbuckets + 1, 0);
    const int64_t atom_chunks = (m + kAtomChunk - 1) / kAtomChunk;
    const int64_t cell_chunks = (ncell + kCellChunk - 1) / kCellChunk;

    PhasedWork work(8);
#pragma omp parallel num_threads(nthreads)
    {
        const int tid = thread_index();
        std::vector<int64_t> hits(64);
        std::vector<double> hit_r2(64);
        std::vector<int64_t> cnt;
        std::vector<std::pair<uint32_t, double>> tmp;

        // 1. wrapped Cartesian position (periodic: s H with s wrapped into [0, 1)) and cell
        //    of every atom; axis 0 of the grid runs fastest
        work.run(0, atom_chunks, [&](int64_t ch) {
            const int64_t k1 = std::min(m, (ch + 1) * kAtomChunk);
            for (int64_t k = ch * kAtomChunk; k < k1; ++k) {
                const double* r = pos + 3 * atom(k);
                double f[3];
                if (g.periodic) {
                    for (int c = 0; c < 3; ++c) {
                        double t = r[0] * inv[0][c] + r[1] * inv[1][c] + r[2] * inv[2][c];
                        t -= std::floor(t);
                        if (t >= 1.0) t = 0.0;  // -tiny wraps to 1.0 in floating point
                        f[c] = t;
                    }
                    for (int c = 0; c < 3; ++c)
                        wrapped[3 * k + c] = f[0] * g.h[0][c] + f[1] * g.h[1][c] + f[2] * g.h[2][c];
                } else {
                    for (int c = 0; c < 3; ++c) {
                        f[c] = ext[c] > 0 ? (r[c] - lo[c]) / ext[c] : 0.0;
                        wrapped[3 * k + c] = r[c];
                    }
                }
                int64_t cc[3];
                for (int d = 0; d < 3; ++d) {
                    cc[d] = static_cast<int64_t>(f[d] * static_cast<double>(g.n[d]));
                    cc[d] = std::min(std::max<int64_t>(cc[d], 0), g.n[d] - 1);
                }
                cell_of[k] = (cc[2] * g.n[1] + cc[1]) * g.n[0] + cc[0];
            }
        });
        // 2-4. stable counting sort of atom numbers by cell over K fixed atom ranges: range
        //    r's cursor for cell c starts after every atom of c in ranges < r, so inside a
        //    cell atoms stay in increasing index whatever K is
        work.run(1, K, [&](int64_t r) {
            hist[r].assign(ncell, 0);
            const auto rg = range(r);
            for (int64_t k = rg.first; k < rg.second; ++k) ++hist[r][cell_of[k]];
        });
        work.run(2, 1, [&](int64_t) {
            uint32_t acc = 0;
            for (int64_t c = 0; c < ncell; ++c) {
                g.cell_start[c] = acc;
                for (int64_t r = 0; r < K; ++r) {
                    const uint32_t count = hist[r][c];
                    hist[r][c] = acc;  // becomes range r's cursor for cell c
                    acc += count;
                }
            }
            g.cell_start[ncell] = acc;
        });
        work.run(3, K, [&](int64_t r) {
            const auto rg = range(r);
            Buffer<uint32_t>& cur = hist[r];
            for (int64_t k = rg.first; k < rg.second; ++k) sorted[cur[cell_of[k]]++] = static_cast<uint32_t>(k);
        });
        // 5. gather positions (structure of arrays), original indices and types in cell order
        work.run(4, atom_chunks, [&](int64_t ch) {
            const int64_t p1 = std::min(m, (ch + 1) * kAtomChunk);
            for (int64_t p = ch * kAtomChunk; p < p1; ++p) {
                const int64_t k = sorted[p];
                const int64_t a = atom(k);
                g.order[p] = static_cast<uint32_t>(a);
                g.x[p] = wrapped[3 * k];
                g.y[p] = wrapped[3 * k + 1];
                g.z[p] = wrapped[3 * k + 2];
                if (types) g.type[p] = types[a];
            }
        });
        // 6. search, half shell per cell; hits into this thread's bucketed store
        work.run(5, cell_chunks, [&](int64_t ch) {
            if (!stores[tid]) stores[tid].reset(new PairStore(nbuckets, shift));
            PairStore& store = *stores[tid];
            Segment segs[16];
            const int64_t c1 = std::min(ncell, (ch + 1) * kCellChunk);
            for (int64_t c = ch * kCellChunk; c < c1; ++c) {
                const int64_t a0 = g.cell_start[c], a1 = g.cell_start[c + 1];
                if (a0 == a1) continue;
                const int64_t cx = c % g.n[0];
                const int64_t cy = (c / g.n[0]) % g.n[1];
                const int64_t cz = c / (g.n[0] * g.n[1]);
                const int nseg = half_shell_segments(g, cx, cy, cz, segs);
                scan_cell(g, a0, a1, segs, nseg, sp, store, hits, hit_r2);
            }
        });
        // 7. bucket offsets in the output; the output is allocated, not zeroed
        work.run(6, 1, [&](int64_t) {
            for (int64_t b = 0; b < nbuckets; ++b) {
                int64_t total = 0;
                for (int t = 0; t < nthreads; ++t) total += stores[t] ? stores[t]->count(b) : 0;
                bucket_start[b + 1] = bucket_start[b] + total;
            }
            out.i.resize(bucket_start[nbuckets]);
            out.j.resize(bucket_start[nbuckets]);
            out.d.resize(bucket_start[nbuckets]);
        });
        // 8. fill each bucket: counting sort by row, then each row by column
        work.run(7, nbuckets, [&](int64_t b) {
            const int64_t base = b << shift;
            const int64_t rows = std::min<int64_t>(int64_t(1) << shift, n - base);
            cnt.assign(rows + 1, 0);
            for (int t = 0; t < nthreads; ++t)
                if (stores[t]) stores[t]->for_each(b, [&](const Rec& r) { ++cnt[r.row - base + 1]; });
            for (int64_t r = 0; r < rows; ++r) cnt[r + 1] += cnt[r];
            // cnt[r] is now the start of row r inside the bucket; use it as a cursor
            const int64_t off = bucket_start[b];
            for (int t = 0; t < nthreads; ++t)
                if (stores[t])
                    stores[t]->for_each(b, [&](const Rec& r) {
                        const int64_t k = off + cnt[r.row - base]++;
                        out.i[k] = r.row;
                        out.j[k] = r.col;
                        out.d[k] = r.d;
                    });
            // cnt[r] is now the end of row r; sort each row by column
            int64_t s = off;
            for (int64_t r = 0; r < rows; ++r) {
                const int64_t e = off + cnt[r];
                if (e - s <= 32) {
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
                } else {
                    tmp.resize(e - s);
                    for (int64_t x = s; x < e; ++x) tmp[x - s] = {static_cast<uint32_t>(out.j[x]), out.d[x]};
                    std::sort(tmp.begin(), tmp.end(),
                              [](const std::pair<uint32_t, double>& u, const std::pair<uint32_t, double>& v) {
                                  return u.first < v.first;
                              });
                    for (int64_t x = s; x < e; ++x) {
                        out.j[x] = tmp[x - s].first;
                        out.d[x] = tmp[x - s].second;
                    }
                }
                s = e;
            }
        });
    }
    work.rethrow();
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
