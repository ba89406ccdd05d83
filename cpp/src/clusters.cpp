#include "clusterdynamicsml/clusters.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "clusterdynamicsml/neighbors.hpp"

namespace cdml {
namespace {

constexpr int kNode = 0;
constexpr int kLinker = 1;
constexpr int kShell = 2;

using Shift = std::array<int32_t, 3>;

/// Union-find whose entries also carry the lattice image of each atom relative to its parent
/// (off[x] = image[x] - image[parent[x]]): a bond a-b with minimum-image lattice shift s asks
/// image[b] = image[a] + s. A bond inside one set whose shift disagrees with the images
/// already fixed closes a cycle with a net lattice translation: the set percolates. This test
/// does not depend on which spanning tree the unions build (every cycle is a sum of
/// fundamental cycles of any spanning tree), so it agrees with the breadth-first tree of the
/// Python path.
class ImageUnionFind {
public:
    explicit ImageUnionFind(int64_t n) : parent_(n), size_(n, 1), off_(n, Shift{0, 0, 0}), perc_(n, 0) {
        for (int64_t k = 0; k < n; ++k) parent_[k] = k;
    }
    /// Root of x; o = image[x] - image[root].
    int64_t find(int64_t x, Shift& o) {
        int64_t root = x;
        Shift sum{0, 0, 0};
        while (parent_[root] != root) {
            for (int c = 0; c < 3; ++c) sum[c] += off_[root][c];
            root = parent_[root];
        }
        o = sum;
        // path compression keeping the offsets right
        int64_t cur = x;
        Shift rem = sum;
        while (parent_[cur] != root && cur != root) {
            const int64_t next = parent_[cur];
            const Shift here = off_[cur];
            parent_[cur] = root;
            off_[cur] = rem;
            for (int c = 0; c < 3; ++c) rem[c] -= here[c];
            cur = next;
        }
        return root;
    }
    void unite(int64_t a, int64_t b, const Shift& s) {
        Shift oa, ob;
        const int64_t ra = find(a, oa);
        const int64_t rb = find(b, ob);
        Shift rel;  // image[rb] - image[ra]
        for (int c = 0; c < 3; ++c) rel[c] = s[c] - ob[c] + oa[c];
        if (ra == rb) {
            if (rel[0] != 0 || rel[1] != 0 || rel[2] != 0) perc_[ra] = 1;
            return;
        }
        if (size_[ra] >= size_[rb]) {
            parent_[rb] = ra;
            off_[rb] = rel;
            size_[ra] += size_[rb];
            perc_[ra] |= perc_[rb];
        } else {
            parent_[ra] = rb;
            for (int c = 0; c < 3; ++c) off_[ra][c] = -rel[c];
            size_[rb] += size_[ra];
            perc_[rb] |= perc_[ra];
        }
    }
    bool percolating(int64_t root) const { return perc_[root] != 0; }

private:
    std::vector<int64_t> parent_;
    std::vector<int64_t> size_;
    std::vector<Shift> off_;
    std::vector<uint8_t> perc_;
};

/// Integer lattice shift n with pos[j] - pos[i] + n H the minimum image (as the Python
/// _image_shifts: round((mi - raw) H^-1)).
Shift image_shift(const double* pos, int64_t i, int64_t j, const Box& box) {
    double raw[3], mi[3];
    for (int c = 0; c < 3; ++c) mi[c] = raw[c] = pos[3 * j + c] - pos[3 * i + c];
    box.minimum_image(mi);
    const auto& inv = box.inverse();
    Shift out;
    for (int c = 0; c < 3; ++c) {
        double v = 0.0;
        for (int r = 0; r < 3; ++r) v += (mi[r] - raw[r]) * inv[r][c];
        out[c] = static_cast<int32_t>(std::nearbyint(v));
    }
    return out;
}

void check_matrix(const std::vector<double>& m, int64_t t, const char* what) {
    if (static_cast<int64_t>(m.size()) != t * t)
        throw std::invalid_argument(std::string("cluster_counts: ") + what + " must be a " + std::to_string(t) +
                                    " x " + std::to_string(t) + " matrix, got " + std::to_string(m.size()) +
                                    " entries");
}

/// Nearest owner per target: smallest distance, ties by the smaller owner index.
struct Nearest {
    double d = std::numeric_limits<double>::infinity();
    int64_t owner = -1;
    void offer(double dist, int64_t who) {
        if (dist < d || (dist == d && who < owner)) {
            d = dist;
            owner = who;
        }
    }
};

/// Number the distinct rows of out.counts in order of first appearance (hash of the row).
void group_compositions(FrameClusters& out) {
    const int32_t E = out.n_elements;
    const int64_t nc = out.n_clusters;
    out.group.assign(nc, -1);
    out.group_first.clear();
    struct RowHash {
        const int32_t* base;
        int32_t width;
        std::size_t operator()(int64_t r) const {
            uint64_t h = 1469598103934665603ull;
            for (int32_t e = 0; e < width; ++e) h = (h ^ static_cast<uint32_t>(base[r * width + e])) * 1099511628211ull;
            return static_cast<std::size_t>(h ^ (h >> 29));
        }
    };
    struct RowEq {
        const int32_t* base;
        int32_t width;
        bool operator()(int64_t a, int64_t b) const {
            return std::equal(base + a * width, base + (a + 1) * width, base + b * width);
        }
    };
    const int32_t* base = out.counts.data();
    std::unordered_map<int64_t, int64_t, RowHash, RowEq> seen(64, RowHash{base, E}, RowEq{base, E});
    for (int64_t c = 0; c < nc; ++c) {
        const auto it = seen.emplace(c, static_cast<int64_t>(out.group_first.size()));
        if (it.second) out.group_first.push_back(c);
        out.group[c] = it.first->second;
    }
}

}  // namespace

FrameClusters cluster_counts(const double* positions, int64_t n, const int32_t* types, const ClusterSpec& spec,
                             const Box* box, int num_threads) {
    const int32_t E = spec.n_elements;
    if (E < 1) throw std::invalid_argument("cluster_counts: n_elements must be >= 1, got " + std::to_string(E));
    if (n < 0) throw std::invalid_argument("cluster_counts: negative atom count");
    const int32_t T = 3 * E;
    check_matrix(spec.cutoff0, T, "the level-0 cutoff matrix");
    for (const auto& m : spec.level_cutoffs) check_matrix(m, T, "a shell-level cutoff matrix");
    std::vector<int8_t> role(n, -1);
    for (int64_t k = 0; k < n; ++k) {
        const int32_t t = types[k];
        if (t < -1 || t >= T)
            throw std::invalid_argument("cluster_counts: atom " + std::to_string(k) + " has type " +
                                        std::to_string(t) + ", expected -1 .. " + std::to_string(T - 1));
        if (t >= 0) role[k] = static_cast<int8_t>(t / E);
    }
    const bool shells = spec.attach_shells;

    // ---- level-0 pairs: node/linker bonds (and core-shell contacts when shells are attached)
    std::vector<int32_t> t0(types, types + n);
    if (!shells)
        for (int64_t k = 0; k < n; ++k)
            if (role[k] == kShell) t0[k] = -1;
    PairList pairs = neighbor_pairs_typed(positions, n, t0.data(), T, spec.cutoff0.data(), box, num_threads);

    // ---- components of the core bond graph, with percolation
    // A raw displacement shorter than half the smallest box height is its own minimum image
    // (every other image is longer than that), so only bonds that cross the box need the
    // lattice shift.
    ImageUnionFind uf(n);
    const Shift zero{0, 0, 0};
    const double half = box ? 0.5 * box->min_height() : 0.0;
    for (std::size_t p = 0; p < pairs.size(); ++p) {
        const int64_t a = pairs.i[p], b = pairs.j[p];
        const bool ca = role[a] == kNode || role[a] == kLinker;
        const bool cb = role[b] == kNode || role[b] == kLinker;
        if (!(ca && cb)) continue;
        Shift s = zero;
        if (box) {
            double r2 = 0.0;
            for (int c = 0; c < 3; ++c) {
                const double x = positions[3 * b + c] - positions[3 * a + c];
                r2 += x * x;
            }
            if (!(r2 < half * half)) s = image_shift(positions, a, b, *box);
        }
        uf.unite(a, b, s);
    }

    // ---- canonical cluster ids: node clusters by smallest node atom, then linker-only
    FrameClusters out;
    out.n_elements = E;
    out.cluster_of.assign(n, -1);
    std::vector<int64_t> id_of_root(n, -1);
    std::vector<int64_t> root_of(n, -1);
    Shift ignored;
    int64_t next = 0;
    for (int pass = 0; pass < 2; ++pass) {
        for (int64_t k = 0; k < n; ++k) {
            const bool take = pass == 0 ? role[k] == kNode : role[k] == kLinker;
            if (!take) continue;
            const int64_t r = uf.find(k, ignored);
            root_of[k] = r;
            if (id_of_root[r] < 0) id_of_root[r] = next++;
        }
    }
    out.n_clusters = next;
    out.counts.assign(static_cast<std::size_t>(next) * E, 0);
    out.percolating.assign(next, 0);
    for (int64_t k = 0; k < n; ++k) {
        if (root_of[k] < 0) continue;
        const int64_t c = id_of_root[root_of[k]];
        out.cluster_of[k] = c;
        out.counts[c * E + types[k] % E] += 1;
        if (box && uf.percolating(root_of[k])) out.percolating[c] = 1;
    }
    if (!shells) {
        group_compositions(out);
        return out;
    }

    // ---- shells. Level 0: each shell atom to the cluster of its nearest core atom.
    std::vector<Nearest> best(n);
    for (std::size_t p = 0; p < pairs.size(); ++p) {
        int64_t a = pairs.i[p], b = pairs.j[p];
        if (role[a] == kShell) std::swap(a, b);
        if (role[b] != kShell || role[a] == kShell || role[a] < 0) continue;
        best[b].offer(pairs.d[p], a);
    }
    pairs = PairList();
    std::vector<uint8_t> taken(n, 0);
    std::vector<std::pair<int64_t, int64_t>> members;  // (cluster, shell atom)
    for (int64_t s = 0; s < n; ++s) {
        if (best[s].owner < 0) continue;
        members.emplace_back(out.cluster_of[best[s].owner], s);
        taken[s] = 1;
    }
    // Extra levels: shell atoms within the level cutoff of a node atom.
    std::vector<int32_t> tl(n);
    for (const auto& cm : spec.level_cutoffs) {
        for (int64_t k = 0; k < n; ++k) {
            const bool cand = role[k] == kShell && (spec.shared_shells || !taken[k]);
            tl[k] = (role[k] == kNode || cand) ? types[k] : -1;
        }
        PairList lp = neighbor_pairs_typed(positions, n, tl.data(), T, cm.data(), box, num_threads);
        if (spec.shared_shells) {
            std::vector<std::pair<int64_t, int64_t>> fresh;
            for (std::size_t p = 0; p < lp.size(); ++p) {
                int64_t a = lp.i[p], b = lp.j[p];
                if (role[a] == kShell) std::swap(a, b);
                if (role[a] != kNode || role[b] != kShell) continue;
                fresh.emplace_back(out.cluster_of[a], b);
            }
            std::sort(fresh.begin(), fresh.end());
            fresh.erase(std::unique(fresh.begin(), fresh.end()), fresh.end());
            std::vector<std::pair<int64_t, int64_t>> present(members);
            std::sort(present.begin(), present.end());
            for (const auto& m : fresh) {
                if (std::binary_search(present.begin(), present.end(), m)) continue;
                members.push_back(m);
                taken[m.second] = 1;
            }
        } else {
            std::vector<Nearest> near(n);
            for (std::size_t p = 0; p < lp.size(); ++p) {
                int64_t a = lp.i[p], b = lp.j[p];
                if (role[a] == kShell) std::swap(a, b);
                if (role[a] != kNode || role[b] != kShell) continue;
                near[b].offer(lp.d[p], a);
            }
            for (int64_t s = 0; s < n; ++s) {
                if (near[s].owner < 0) continue;
                members.emplace_back(out.cluster_of[near[s].owner], s);
                taken[s] = 1;
            }
        }
    }
    if (spec.count_shells)
        for (const auto& m : members) out.counts[m.first * E + types[m.second] % E] += 1;
    group_compositions(out);
    return out;
}

}  // namespace cdml
