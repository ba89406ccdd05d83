// Pair statistics over batches of open structures (geometry statistics, ref §4.7).
//
// Parallel layout: one structure is processed by one thread (dynamic schedule over
// structures) into its own result slot; slots are concatenated in structure order
// afterwards. Inside a structure every loop runs in index order, so the output does
// not depend on the thread count. All input checks run before the parallel region;
// nothing inside it throws (a failure sets a flag that is turned into an exception
// after the region).
#include "clusterdynamicsml/pairstats.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include "clusterdynamicsml/neighbors.hpp"
#include "clusterdynamicsml/parallel.hpp"

namespace cdml {
namespace {

constexpr double kRadToDeg = 57.29577951308232;

inline double dist(const double* a, const double* b) {
    const double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
    return std::sqrt(dx * dx + dy * dy + dz * dz);
}

void check_cutoff_matrix(const double* c, int32_t ne, const char* name) {
    for (int32_t a = 0; a < ne; ++a)
        for (int32_t b = 0; b < ne; ++b) {
            const double v = c[a * ne + b];
            if (!std::isfinite(v)) throw std::invalid_argument(std::string(name) + " has a non-finite entry");
            if (v != c[b * ne + a]) throw std::invalid_argument(std::string(name) + " must be symmetric");
        }
}

struct UnionFind {
    std::vector<int64_t> parent;
    explicit UnionFind(int64_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
    int64_t find(int64_t x) {
        while (parent[x] != x) {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        return x;
    }
    bool unite(int64_t a, int64_t b) {
        a = find(a);
        b = find(b);
        if (a == b) return false;
        if (a < b) parent[b] = a;
        else parent[a] = b;
        return true;
    }
};

struct NodePair {
    double d;
    int64_t a, b;  // local indices, a < b
};

// Pass 1 for one structure; atoms [o0, o1) of the batch. Writes `nearest` in place
// (global rows) and fills `out` with global indices.
void scaffold_one(const StructureBatch& batch, const double* cut, int64_t o0, int64_t o1, ScaffoldStats& out,
                  double* nearest, int32_t* coordination) {
    const int64_t n = o1 - o0;
    const int32_t ne = batch.n_elements;
    const double* pos = batch.positions + 3 * o0;
    const int32_t* el = batch.elements + o0;
    const double inf = std::numeric_limits<double>::infinity();

    for (int64_t a = 0; a < n; ++a) {
        double* row = nearest + (o0 + a) * ne;
        for (int64_t b = 0; b < n; ++b) {
            if (b == a) continue;
            const double d = dist(pos + 3 * a, pos + 3 * b);
            double& slot = row[el[b]];
            if (d < slot) slot = d;
        }
    }

    std::vector<int64_t> nodes;
    for (int64_t a = 0; a < n; ++a)
        if (batch.element_kind[el[a]] == kNode) nodes.push_back(a);
    if (nodes.empty()) return;

    // Node scaffold: explicit edges, then Kruskal over the remaining node pairs.
    const int64_t m = static_cast<int64_t>(nodes.size());
    std::vector<NodePair> pairs;
    pairs.reserve(static_cast<std::size_t>(m * (m - 1) / 2));
    UnionFind uf(n);
    std::vector<std::pair<int64_t, int64_t>> edges;
    std::vector<double> edge_len;
    for (int64_t x = 0; x < m; ++x)
        for (int64_t y = x + 1; y < m; ++y) {
            const int64_t a = nodes[x], b = nodes[y];
            const double d = dist(pos + 3 * a, pos + 3 * b);
            const double c = cut[el[a] * ne + el[b]];
            if (c > 0.0 && d <= c) {
                edges.emplace_back(a, b);
                edge_len.push_back(d);
                uf.unite(a, b);
            } else {
                pairs.push_back({d, a, b});
            }
        }
    std::sort(pairs.begin(), pairs.end(), [](const NodePair& p, const NodePair& q) {
        if (p.d != q.d) return p.d < q.d;
        if (p.a != q.a) return p.a < q.a;
        return p.b < q.b;
    });
    for (const NodePair& p : pairs) {
        if (uf.unite(p.a, p.b)) {
            edges.emplace_back(p.a, p.b);
            edge_len.push_back(p.d);
        }
    }
    std::vector<std::size_t> order(edges.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&edges](std::size_t p, std::size_t q) { return edges[p] < edges[q]; });

    std::vector<std::vector<int64_t>> nbr(n);  // node -> neighbours (scaffold, then associated atoms)
    std::vector<int32_t> coord(static_cast<std::size_t>(n) * kNumKinds, 0);
    for (std::size_t k : order) {
        const auto [a, b] = edges[k];
        out.edge_i.push_back(o0 + a);
        out.edge_j.push_back(o0 + b);
        out.edge_d.push_back(edge_len[k]);
        nbr[a].push_back(b);
        nbr[b].push_back(a);
        ++coord[a * kNumKinds + kNode];
        ++coord[b * kNumKinds + kNode];
    }
    for (int64_t a : nodes) std::sort(nbr[a].begin(), nbr[a].end());

    // Associate every non-node atom with nodes.
    std::vector<std::pair<double, int64_t>> hits;
    for (int64_t x = 0; x < n; ++x) {
        const int32_t kind = batch.element_kind[el[x]];
        if (kind == kNode) continue;
        hits.clear();
        double best = inf;
        int64_t best_node = -1;
        for (int64_t a : nodes) {
            const double d = dist(pos + 3 * x, pos + 3 * a);
            const double c = cut[el[x] * ne + el[a]];
            if (c > 0.0 && d <= c) hits.emplace_back(d, a);
            if (d < best) {
                best = d;
                best_node = a;
            }
        }
        if (hits.empty()) hits.emplace_back(best, best_node);
        std::sort(hits.begin(), hits.end());
        for (const auto& [d, a] : hits) {
            out.assoc_atom.push_back(o0 + x);
            out.assoc_node.push_back(o0 + a);
            out.assoc_d.push_back(d);
            nbr[a].push_back(x);
            ++coord[a * kNumKinds + kind];
        }
        coord[x * kNumKinds + kNode] = static_cast<int32_t>(hits.size());
    }
    std::copy(coord.begin(), coord.end(), coordination + o0 * kNumKinds);

    // Node-centred angles between every pair of neighbour vectors.
    for (int64_t a : nodes) {
        const auto& list = nbr[a];
        const std::size_t deg = list.size();
        for (std::size_t p = 0; p < deg; ++p) {
            const double* rp = pos + 3 * list[p];
            const double u[3] = {rp[0] - pos[3 * a], rp[1] - pos[3 * a + 1], rp[2] - pos[3 * a + 2]};
            const double nu = std::sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2]);
            if (!(nu > 0.0)) continue;
            for (std::size_t q = p + 1; q < deg; ++q) {
                const double* rq = pos + 3 * list[q];
                const double v[3] = {rq[0] - pos[3 * a], rq[1] - pos[3 * a + 1], rq[2] - pos[3 * a + 2]};
                const double nv = std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
                if (!(nv > 0.0)) continue;
                double c = (u[0] * v[0] + u[1] * v[1] + u[2] * v[2]) / (nu * nv);
                c = std::min(1.0, std::max(-1.0, c));
                int32_t ka = batch.element_kind[el[list[p]]], kb = batch.element_kind[el[list[q]]];
                if (ka > kb) std::swap(ka, kb);
                out.angle_center.push_back(o0 + a);
                out.angle_kind_a.push_back(ka);
                out.angle_kind_b.push_back(kb);
                out.angle_deg.push_back(std::acos(c) * kRadToDeg);
            }
        }
    }
}

template <class T, class A1, class A2>
void append(std::vector<T, A1>& dst, const std::vector<T, A2>& src) {
    dst.insert(dst.end(), src.begin(), src.end());
}

}  // namespace

// Pair distances a statistics pass looks at, to decide whether threads are worth waking.
static double batch_pair_work(const StructureBatch& b) {
    double work = 0.0;
    for (int64_t s = 0; s < b.n_structures; ++s) {
        const double m = static_cast<double>(b.offsets[s + 1] - b.offsets[s]);
        work += 0.5 * m * m;
    }
    return work;
}

void validate_batch(const StructureBatch& b, bool need_kinds) {
    if (b.n_atoms < 0) throw std::invalid_argument("number of atoms must be >= 0");
    if (b.n_structures < 0) throw std::invalid_argument("number of structures must be >= 0");
    if (b.n_elements < 1) throw std::invalid_argument("n_elements must be >= 1");
    if (!b.offsets) throw std::invalid_argument("offsets are missing");
    if (b.n_atoms > 0 && (!b.positions || !b.elements)) throw std::invalid_argument("positions or elements missing");
    if (b.offsets[0] != 0) throw std::invalid_argument("offsets[0] must be 0");
    for (int64_t s = 0; s < b.n_structures; ++s)
        if (b.offsets[s + 1] < b.offsets[s])
            throw std::invalid_argument("offsets must be non-decreasing (structure " + std::to_string(s) + ")");
    if (b.offsets[b.n_structures] != b.n_atoms)
        throw std::invalid_argument("offsets[-1] must equal the number of atoms (" + std::to_string(b.n_atoms) +
                                    "), got " + std::to_string(b.offsets[b.n_structures]));
    for (int64_t k = 0; k < 3 * b.n_atoms; ++k)
        if (!std::isfinite(b.positions[k]))
            throw std::invalid_argument("positions contain a non-finite value (atom " + std::to_string(k / 3) + ")");
    for (int64_t a = 0; a < b.n_atoms; ++a)
        if (b.elements[a] < 0 || b.elements[a] >= b.n_elements)
            throw std::invalid_argument("element id out of range [0, " + std::to_string(b.n_elements) + ") at atom " +
                                        std::to_string(a));
    if (need_kinds) {
        if (!b.element_kind) throw std::invalid_argument("element kinds are missing");
        for (int32_t e = 0; e < b.n_elements; ++e)
            if (b.element_kind[e] < 0 || b.element_kind[e] >= kNumKinds)
                throw std::invalid_argument("element kind must be 0 (node), 1 (linker) or 2 (shell), element " +
                                            std::to_string(e) + " has " + std::to_string(b.element_kind[e]));
    }
}

ScaffoldStats scaffold_statistics(const StructureBatch& batch, const double* assoc_cutoffs, int num_threads) {
    validate_batch(batch, true);
    check_cutoff_matrix(assoc_cutoffs, batch.n_elements, "association cutoff matrix");
    const int nthreads = threads_for_work(num_threads, batch_pair_work(batch), 2e4);
    const int64_t S = batch.n_structures;

    ScaffoldStats out;
    out.nearest.assign(static_cast<std::size_t>(batch.n_atoms) * batch.n_elements,
                       std::numeric_limits<double>::infinity());
    out.coordination.assign(static_cast<std::size_t>(batch.n_atoms) * kNumKinds, 0);
    std::vector<ScaffoldStats> slots(S);
    std::atomic<bool> failed{false};
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
    for (int64_t s = 0; s < S; ++s) {
        try {
            // nearest and coordination rows of a structure are disjoint: written in place.
            scaffold_one(batch, assoc_cutoffs, batch.offsets[s], batch.offsets[s + 1], slots[s], out.nearest.data(),
                         out.coordination.data());
        } catch (...) {
            failed = true;
        }
    }
    if (failed) throw std::runtime_error("scaffold_statistics: internal failure (out of memory?)");
    for (int64_t s = 0; s < S; ++s) {
        const ScaffoldStats& r = slots[s];
        append(out.edge_i, r.edge_i);
        append(out.edge_j, r.edge_j);
        append(out.edge_d, r.edge_d);
        append(out.assoc_atom, r.assoc_atom);
        append(out.assoc_node, r.assoc_node);
        append(out.assoc_d, r.assoc_d);
        append(out.angle_center, r.angle_center);
        append(out.angle_kind_a, r.angle_kind_a);
        append(out.angle_kind_b, r.angle_kind_b);
        append(out.angle_deg, r.angle_deg);
    }
    return out;
}

ContactStats contact_statistics(const StructureBatch& batch, const double* contact_cutoffs, int num_threads) {
    validate_batch(batch, false);
    check_cutoff_matrix(contact_cutoffs, batch.n_elements, "contact cutoff matrix");
    const int nthreads = threads_for_work(num_threads, batch_pair_work(batch), 2e4);
    const int64_t S = batch.n_structures;
    const int32_t ne = batch.n_elements;

    ContactStats out;
    out.counts.assign(static_cast<std::size_t>(batch.n_atoms) * ne, 0);
    std::vector<PairList> slots(S);
    std::atomic<bool> failed{false};
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
    for (int64_t s = 0; s < S; ++s) {
        try {
            const int64_t o0 = batch.offsets[s], n = batch.offsets[s + 1] - o0;
            // Cell-list search of one open structure on this thread (inputs validated above).
            PairList p = neighbor_pairs_typed(batch.positions + 3 * o0, n, batch.elements + o0, ne, contact_cutoffs,
                                              nullptr, 1);
            for (std::size_t k = 0; k < p.size(); ++k) {
                const int64_t a = p.i[k], b = p.j[k];
                ++out.counts[(o0 + a) * ne + batch.elements[o0 + b]];
                ++out.counts[(o0 + b) * ne + batch.elements[o0 + a]];
                p.i[k] = o0 + a;
                p.j[k] = o0 + b;
            }
            slots[s] = std::move(p);
        } catch (...) {
            failed = true;
        }
    }
    if (failed) throw std::runtime_error("contact_statistics: internal failure (out of memory?)");
    std::size_t total = 0;
    for (const auto& p : slots) total += p.size();
    out.i.reserve(total);
    out.j.reserve(total);
    out.d.reserve(total);
    for (const auto& p : slots) {
        append(out.i, p.i);
        append(out.j, p.j);
        append(out.d, p.d);
    }
    return out;
}

}  // namespace cdml
