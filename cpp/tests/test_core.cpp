// C++ unit tests of the Python-free core: Box, neighbor_pairs against brute force,
// neighbor_pairs_typed, connected_components, the Debye kernels (histogram against exact within
// its bound, both histogram paths), thread-count determinism and error paths.
// Plain C++ (no framework): prints one line per failed check and returns non-zero on failure.
#include <clusterdynamicsml/box.hpp>
#include <clusterdynamicsml/clusters.hpp>
#include <clusterdynamicsml/debye.hpp>
#include <clusterdynamicsml/neighbors.hpp>
#include <clusterdynamicsml/parallel.hpp>
#include <clusterdynamicsml/xyz.hpp>

#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

int failures = 0;
int checks = 0;

void check(bool ok, const std::string& what) {
    ++checks;
    if (!ok) {
        ++failures;
        std::printf("FAIL: %s\n", what.c_str());
    }
}

template <class F>
bool throws_invalid_argument(F&& f) {
    try {
        f();
    } catch (const std::invalid_argument&) {
        return true;
    } catch (...) {
        return false;
    }
    return false;
}

// Minimum-image distance by explicit search over shifts -2..2 along each lattice vector.
double brute_distance(const double* a, const double* b, const cdml::Box* box) {
    double d[3] = {b[0] - a[0], b[1] - a[1], b[2] - a[2]};
    if (!box) return std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    double s[3];
    box->to_fractional(d, s);
    for (double& x : s) x -= std::nearbyint(x);
    double base[3];
    box->to_cartesian(s, base);
    const auto& h = box->matrix();
    double best = 1e300;
    for (int i = -2; i <= 2; ++i)
        for (int j = -2; j <= 2; ++j)
            for (int k = -2; k <= 2; ++k) {
                double c[3];
                for (int x = 0; x < 3; ++x) c[x] = base[x] + i * h[0][x] + j * h[1][x] + k * h[2][x];
                best = std::min(best, std::sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]));
            }
    return best;
}

void test_box() {
    const cdml::Box o = cdml::Box::orthorhombic(10, 11, 12);
    check(o.is_orthorhombic(), "orthorhombic box is orthorhombic");
    check(std::fabs(o.volume() - 1320.0) < 1e-9, "orthorhombic volume");
    check(std::fabs(o.min_height() - 10.0) < 1e-12, "orthorhombic min height");
    const double m[9] = {10, 0, 0, 4, 9, 0, -3, 2, 8};
    const cdml::Box t = cdml::Box::from_matrix(m);
    check(!t.is_orthorhombic(), "triclinic box is not orthorhombic");
    check(std::fabs(t.volume() - 720.0) < 1e-9, "triclinic volume = det");
    double r[3] = {-27.5, 13.25, 40.0};
    double w[3] = {r[0], r[1], r[2]};
    t.wrap(w);
    double s[3];
    t.to_fractional(w, s);
    check(s[0] >= 0 && s[0] < 1 && s[1] >= 0 && s[1] < 1 && s[2] >= 0 && s[2] < 1, "wrap lands in [0, 1)");
    double d[3] = {r[0] - w[0], r[1] - w[1], r[2] - w[2]};
    t.minimum_image(d);
    check(std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]) < 1e-9, "wrap moves by a lattice vector");
    // minimum image agrees with brute force
    std::mt19937_64 rng(5);
    std::uniform_real_distribution<double> u(-30.0, 30.0);
    int bad = 0;
    for (int k = 0; k < 500; ++k) {
        double a[3] = {0, 0, 0}, b[3] = {u(rng), u(rng), u(rng)};
        double v[3] = {b[0], b[1], b[2]};
        t.minimum_image(v);
        if (std::fabs(std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]) - brute_distance(a, b, &t)) > 1e-9) ++bad;
    }
    check(bad == 0, "minimum_image matches brute force (" + std::to_string(bad) + " wrong of 500)");
    const double sing[9] = {1, 0, 0, 2, 0, 0, 0, 0, 1};
    check(throws_invalid_argument([&] { cdml::Box::from_matrix(sing); }), "singular box throws");
    const double nan9[9] = {1, 0, 0, 0, NAN, 0, 0, 0, 1};
    check(throws_invalid_argument([&] { cdml::Box::from_matrix(nan9); }), "non-finite box throws");
}

std::vector<double> random_positions(std::mt19937_64& rng, int n, const cdml::Box& box, double spread) {
    std::uniform_real_distribution<double> u(-spread + 1.0, spread);
    std::vector<double> pos(3 * n);
    for (int a = 0; a < n; ++a) {
        const double s[3] = {u(rng), u(rng), u(rng)};
        box.to_cartesian(s, &pos[3 * a]);
    }
    return pos;
}

void compare_with_brute(const std::vector<double>& pos, double cutoff, const cdml::Box* box, const std::string& name) {
    const int64_t n = static_cast<int64_t>(pos.size() / 3);
    const cdml::PairList p = cdml::neighbor_pairs(pos.data(), n, cutoff, box, 0);
    std::set<std::pair<int64_t, int64_t>> ref;
    for (int64_t a = 0; a < n; ++a)
        for (int64_t b = a + 1; b < n; ++b)
            if (brute_distance(&pos[3 * a], &pos[3 * b], box) <= cutoff) ref.insert({a, b});
    bool sorted = true, dist_ok = true;
    std::set<std::pair<int64_t, int64_t>> got;
    for (std::size_t k = 0; k < p.size(); ++k) {
        got.insert({p.i[k], p.j[k]});
        if (k > 0 && (p.i[k] < p.i[k - 1] || (p.i[k] == p.i[k - 1] && p.j[k] <= p.j[k - 1]))) sorted = false;
        if (std::fabs(p.d[k] - brute_distance(&pos[3 * p.i[k]], &pos[3 * p.j[k]], box)) > 1e-9) dist_ok = false;
    }
    check(got == ref, name + ": pair set equals brute force (" + std::to_string(got.size()) + " vs " +
                          std::to_string(ref.size()) + ")");
    check(sorted, name + ": pairs sorted by (i, j)");
    check(dist_ok, name + ": distances equal brute force");
}

void test_neighbor_pairs() {
    std::mt19937_64 rng(11);
    const cdml::Box ortho = cdml::Box::orthorhombic(12, 13, 14);
    const double m[9] = {12, 0, 0, 6, 11, 0, -4, 3.5, 12};
    const cdml::Box tric = cdml::Box::from_matrix(m);
    for (int seed = 0; seed < 4; ++seed) {
        const double spread = seed % 2 ? 3.0 : 1.0;
        compare_with_brute(random_positions(rng, 150, ortho, spread), 4.0, &ortho, "orthorhombic seed " + std::to_string(seed));
        compare_with_brute(random_positions(rng, 150, tric, spread), 0.49 * tric.min_height(), &tric,
                           "triclinic seed " + std::to_string(seed));
        compare_with_brute(random_positions(rng, 150, ortho, spread), 2.5, nullptr, "open seed " + std::to_string(seed));
    }
    // determinism across thread counts
    std::vector<double> pos = random_positions(rng, 5000, cdml::Box::orthorhombic(37, 38, 39), 2.0);
    const cdml::Box big = cdml::Box::orthorhombic(37, 38, 39);
    const cdml::PairList ref = cdml::neighbor_pairs(pos.data(), 5000, 3.5, &big, 1);
    for (int t : {2, 3, 8}) {
        const cdml::PairList p = cdml::neighbor_pairs(pos.data(), 5000, 3.5, &big, t);
        check(p.i == ref.i && p.j == ref.j && p.d == ref.d, "identical output with " + std::to_string(t) + " threads");
    }
    // typed: a uniform matrix gives the untyped result; negative types drop atoms
    std::vector<int32_t> types(5000, 1);
    for (int a = 0; a < 5000; a += 7) types[a] = -1;
    const double cm[4] = {0.0, 0.0, 0.0, 3.5};
    const cdml::PairList pt = cdml::neighbor_pairs_typed(pos.data(), 5000, types.data(), 2, cm, &big, 0);
    std::size_t expect = 0;
    for (std::size_t k = 0; k < ref.size(); ++k) expect += (ref.i[k] % 7 != 0 && ref.j[k] % 7 != 0);
    check(pt.size() == expect, "typed pairs drop negative-type atoms");
    // errors
    const double p2[6] = {0, 0, 0, 1, 1, NAN};
    check(throws_invalid_argument([&] { cdml::neighbor_pairs(p2, 2, 1.0, nullptr, 1); }), "NaN position throws");
    check(throws_invalid_argument([&] { cdml::neighbor_pairs(pos.data(), 10, -1.0, nullptr, 1); }), "negative cutoff throws");
    check(throws_invalid_argument([&] { cdml::neighbor_pairs(pos.data(), 10, 19.0, &big, 1); }), "cutoff >= half box throws");
    const int32_t bad_types[2] = {0, 3};
    check(throws_invalid_argument([&] { cdml::neighbor_pairs_typed(pos.data(), 2, bad_types, 2, cm, nullptr, 1); }),
          "type index out of range throws");
    const cdml::PairList none = cdml::neighbor_pairs(pos.data(), 0, 3.0, &big, 0);
    check(none.size() == 0, "zero atoms gives zero pairs");
}

void test_components() {
    const int64_t i[4] = {5, 1, 3, 6};
    const int64_t j[4] = {2, 4, 5, 6};
    const std::vector<int64_t> lab = cdml::connected_components(7, i, j, 4);
    const std::vector<int64_t> want = {0, 1, 2, 2, 1, 2, 3};
    check(lab == want, "components numbered by smallest member");
    const int64_t bi[1] = {7};
    check(throws_invalid_argument([&] { cdml::connected_components(7, bi, j, 1); }), "edge outside [0, n) throws");
}

// Histogram partial sums against the exact ones, per pair type and q, within the documented
// per-pair bound e(q) times the pair count; both instruction-set paths; the q = 0 column equals
// the pair counts (every pair binned once); identical results for 1 and 2 threads.
void test_debye_histogram() {
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> u(-25.0, 25.0);
    const int64_t n = 8000;  // above the work below which the kernels stay on one thread
    std::vector<double> pos(3 * n);
    std::vector<int32_t> types(n);
    for (int64_t i = 0; i < n; ++i) {
        for (int c = 0; c < 3; ++c) pos[3 * i + c] = u(rng);
        types[i] = static_cast<int32_t>(rng() % 3);
    }
    pos[3] = pos[0], pos[4] = pos[1], pos[5] = pos[2];  // a coincident pair
    std::vector<double> q;
    for (int k = 0; k <= 100; ++k) q.push_back(0.02 * k);
    const cdml::DebyePartials ex = cdml::debye_partials_exact(pos.data(), n, types.data(), 3, q.data(), 101, 0);
    double rmax = 0;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
            const double dx = pos[3 * i] - pos[3 * j], dy = pos[3 * i + 1] - pos[3 * j + 1],
                         dz = pos[3 * i + 2] - pos[3 * j + 2];
            rmax = std::max(rmax, std::sqrt(dx * dx + dy * dy + dz * dz));
        }
    for (const double w : {0.001, 0.01, 0.1}) {
        for (const auto path : {cdml::HistogramPath::Auto, cdml::HistogramPath::Portable}) {
            const std::string name = std::string("histogram w=") + std::to_string(w) +
                                     (path == cdml::HistogramPath::Auto ? " auto" : " portable");
            const cdml::DebyePartials h1 =
                cdml::debye_partials_histogram(pos.data(), n, types.data(), 3, q.data(), 101, w, 1, path);
            const cdml::DebyePartials h2 =
                cdml::debye_partials_histogram(pos.data(), n, types.data(), 3, q.data(), 101, w, 2, path);
            check(h1.s == h2.s, name + ": 1 and 2 threads identical");
            bool within = true, counts = true;
            for (int64_t p = 0; p < 6; ++p) {
                counts = counts && h1.s[p * 101] == static_cast<double>(h1.pair_counts[p]);
                for (int k = 0; k < 101; ++k) {
                    const double wp = w + 4e-12 * rmax;  // the bounding-box diagonal is <= rmax * sqrt(3)
                    const double e = (q[k] * wp) * (q[k] * wp) / 24 + q[k] * (w / 131072.0 + 2e-12 * rmax) / 2;
                    within = within && std::fabs(h1.s[p * 101 + k] - ex.s[p * 101 + k]) <=
                                           e * static_cast<double>(h1.pair_counts[p]) + 1e-9;
                }
            }
            check(counts, name + ": S(0) equals the pair counts");
            check(within, name + ": within the documented bound of the exact sums");
        }
    }
    check(throws_invalid_argument([&] {
              cdml::debye_partials_histogram(pos.data(), n, types.data(), 3, q.data(), 101, 1e-7, 1);
          }),
          "a bin width giving more than 2e7 bins throws");
}

// cluster_counts: a Pb4I4 ring closed through the box (percolating), a PbI3 with one O shell
// (counted), a lone I; the same ring without a box is finite; identical results for 1, 2 and 3
// threads on 30k random atoms; bad types and matrices throw.
void test_cluster_counts() {
    std::vector<double> pos;
    for (double x : {1.0, 3.5, 6.0, 8.5, 11.0, 13.5, 16.0, 18.5}) pos.insert(pos.end(), {x, 5.0, 5.0});
    const double rest[] = {5, 15, 15, 8, 15, 15, 5, 18, 15, 5, 15, 18, 2.5, 15, 15, 15, 15, 5};
    pos.insert(pos.end(), rest, rest + 18);
    // E = 3 (Pb, I, O); type = role * 3 + element: Pb node 0, I linker 3 + 1 = 4, O shell 6 + 2 = 8
    const std::vector<int32_t> types = {0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 4, 4, 8, 4};
    cdml::ClusterSpec spec;
    spec.n_elements = 3;
    spec.cutoff0.assign(81, 0.0);
    auto set = [&](int a, int b, double c) { spec.cutoff0[a * 9 + b] = spec.cutoff0[b * 9 + a] = c; };
    set(0, 4, 3.1);
    set(0, 8, 2.6);
    spec.attach_shells = spec.count_shells = true;
    const cdml::Box box = cdml::Box::orthorhombic(20, 20, 20);
    const auto r = cdml::cluster_counts(pos.data(), 14, types.data(), spec, &box, 1);
    check(r.n_clusters == 3, "cluster_counts: 3 clusters");
    const std::vector<int32_t> want = {4, 4, 0, 1, 3, 1, 0, 1, 0};
    check(r.counts == want, "cluster_counts: Pb4I4, PbI3O, I in canonical order");
    check(r.percolating == std::vector<uint8_t>({1, 0, 0}), "cluster_counts: the ring percolates");
    check(r.cluster_of[12] == -1 && r.cluster_of[13] == 2 && r.cluster_of[8] == 1, "cluster_counts: cluster_of");
    const auto open = cdml::cluster_counts(pos.data(), 14, types.data(), spec, nullptr, 1);
    check(open.counts == want && open.percolating == std::vector<uint8_t>({0, 0, 0}),
          "cluster_counts: without a box the ring is a finite chain");

    std::mt19937_64 rng(5);
    const int64_t n = 30000;
    std::uniform_real_distribution<double> u(0.0, 120.0);
    std::vector<double> big(3 * n);
    std::vector<int32_t> bt(n);
    for (int64_t k = 0; k < n; ++k) {
        for (int c = 0; c < 3; ++c) big[3 * k + c] = u(rng);
        const int pick = static_cast<int>(rng() % 3);
        bt[k] = pick == 0 ? 0 : pick == 1 ? 4 : 8;
    }
    spec.level_cutoffs.assign(1, std::vector<double>(81, 0.0));
    spec.level_cutoffs[0][0 * 9 + 8] = spec.level_cutoffs[0][8 * 9 + 0] = 3.5;
    const cdml::Box bb = cdml::Box::orthorhombic(120, 120, 120);
    for (bool shared : {false, true}) {
        spec.shared_shells = shared;
        const auto r1 = cdml::cluster_counts(big.data(), n, bt.data(), spec, &bb, 1);
        bool same = true;
        for (int t : {2, 3}) {
            const auto rt = cdml::cluster_counts(big.data(), n, bt.data(), spec, &bb, t);
            same = same && rt.counts == r1.counts && rt.percolating == r1.percolating && rt.cluster_of == r1.cluster_of;
        }
        check(same && r1.n_clusters > 100, "cluster_counts: identical for 1, 2 and 3 threads");
    }
    std::vector<int32_t> bad(types);
    bad[3] = 9;
    check(throws_invalid_argument([&] { cdml::cluster_counts(pos.data(), 14, bad.data(), spec, &box, 1); }),
          "cluster_counts: a type >= 3E throws");
    cdml::ClusterSpec wrong = spec;
    wrong.cutoff0.resize(10);
    check(throws_invalid_argument([&] { cdml::cluster_counts(pos.data(), 14, types.data(), wrong, &box, 1); }),
          "cluster_counts: a cutoff matrix of the wrong size throws");
    cdml::ClusterSpec huge = spec;
    huge.cutoff0[4] = huge.cutoff0[36] = 11.0;
    check(throws_invalid_argument([&] { cdml::cluster_counts(pos.data(), 14, types.data(), huge, &box, 1); }),
          "cluster_counts: a cutoff of half the box height throws");
}

// parse_xyz_atoms: values correctly rounded, species codes in order of first appearance,
// extended columns, blank lines in a one-frame file, and every kind of bad line throws an
// XyzParseError naming the atom line.
void test_parse_xyz() {
    const std::string a = "Pb 0.1 2 -3e-1 extra\nI\t4.5 +5 6\r\nPb 1e-3 .5 7.\n";
    const auto r = cdml::parse_xyz_atoms(a.data(), a.size(), 3, 0, 1, -1, false);
    check(r.positions == std::vector<double>({0.1, 2, -0.3, 4.5, 5, 6, 1e-3, 0.5, 7.0}), "parse_xyz: values");
    check(r.species == std::vector<int32_t>({0, 1, 0}) && r.tokens.size() == 2 && r.tokens[1] == "I",
          "parse_xyz: species codes");
    const std::string ext = "7 8 9 O 9\n";  // Properties: pos:R:3:species:S:1:charge:R:1
    const auto e = cdml::parse_xyz_atoms(ext.data(), ext.size(), 1, 3, 0, 5, false);
    check(e.positions == std::vector<double>({7, 8, 9}) && e.tokens[0] == "O", "parse_xyz: extended columns");
    const std::string single = "\nPb 1 2 3\n  \nI 4 5 6\n\n";
    check(cdml::parse_xyz_atoms(single.data(), single.size(), 2, 0, 1, -1, true).positions.size() == 6,
          "parse_xyz: blank lines in a one-frame file");
    auto row_of = [](const std::string& s, int64_t n, int ncols, bool one) -> int64_t {
        try {
            cdml::parse_xyz_atoms(s.data(), s.size(), n, 0, 1, ncols, one);
        } catch (const cdml::XyzParseError& err) {
            return err.row();
        }
        return -100;
    };
    check(row_of("Pb 1 2 3\nI 4 5\n", 2, -1, false) == 1, "parse_xyz: short line");
    check(row_of("Pb 1 2 3\nI 4 5 z\n", 2, -1, false) == 1, "parse_xyz: bad number");
    check(row_of("Pb 1 2 3\nI 4 5 6x\n", 2, -1, false) == 1, "parse_xyz: trailing junk in a number");
    check(row_of("Pb 1 2 inf\n", 1, -1, false) == 0, "parse_xyz: non-finite");
    check(row_of("Pb 1 2 3\n", 2, -1, false) == 1, "parse_xyz: truncated frame");
    check(row_of("Pb 1 2 3 4\n", 1, 4, false) == 0, "parse_xyz: too many columns for Properties");
    check(row_of("Pb 1 2 3\n\n", 2, -1, false) == 1, "parse_xyz: blank atom line in a multi-frame file");
    check(row_of("Pb 1 2 3\nI 4 5 6\n", 1, -1, true) == 1, "parse_xyz: extra line in a one-frame file");
    check(throws_invalid_argument([] { cdml::parse_xyz_atoms("", 0, -1, 0, 1, -1, false); }),
          "parse_xyz: negative count");
}

// debye_partials_batch: every entry equals the one-structure kernel bit for bit for 1, 2 and 3
// threads; auto picks exact for a small structure; a bad structure's error names its index.
void test_debye_batch() {
    std::mt19937_64 rng(21);
    std::normal_distribution<double> g(0.0, 4.0);
    std::vector<std::vector<double>> pos;
    std::vector<std::vector<int32_t>> typ;
    for (int k = 0; k < 12; ++k) {
        const int64_t n = 1 + static_cast<int64_t>(rng() % 90);
        pos.emplace_back(3 * n);
        typ.emplace_back(n);
        for (auto& v : pos.back()) v = g(rng);
        for (auto& t : typ.back()) t = static_cast<int32_t>(rng() % 3);
    }
    std::vector<double> q;
    for (int k = 0; k < 64; ++k) q.push_back(0.03 * k);
    std::vector<cdml::DebyeStructure> st;
    for (size_t k = 0; k < pos.size(); ++k) st.push_back({pos[k].data(), typ[k].data(), static_cast<int64_t>(typ[k].size())});
    for (auto m : {cdml::DebyeMethod::Exact, cdml::DebyeMethod::Histogram, cdml::DebyeMethod::Auto}) {
        bool same = true;
        for (int t : {1, 2, 3}) {
            std::vector<uint8_t> used;
            const auto b = cdml::debye_partials_batch(st, 3, q.data(), 64, m, 0.01, t, &used);
            for (size_t k = 0; k < st.size(); ++k) {
                const bool hist = m == cdml::DebyeMethod::Histogram;
                same = same && used[k] == (hist ? 1 : 0);
                const auto one = hist ? cdml::debye_partials_histogram(st[k].positions, st[k].n, st[k].types, 3, q.data(), 64, 0.01, 1)
                                      : cdml::debye_partials_exact(st[k].positions, st[k].n, st[k].types, 3, q.data(), 64, 1);
                same = same && one.s == b[k].s && one.pair_counts == b[k].pair_counts && one.type_counts == b[k].type_counts;
            }
        }
        check(same, "debye_partials_batch: equals single calls for 1, 2, 3 threads");
    }
    check(!cdml::debye_auto_uses_histogram(100, 3, 20.0, 0.001) && cdml::debye_auto_uses_histogram(20000, 2, 60.0, 0.01),
          "debye_auto_uses_histogram: exact for 100 atoms, histogram for 20k atoms");
    std::vector<int32_t> bad(typ[4]);
    bad[0] = 5;
    auto st_bad = st;
    st_bad[4].types = bad.data();
    bool named = false;
    try {
        cdml::debye_partials_batch(st_bad, 3, q.data(), 64, cdml::DebyeMethod::Exact, 0.01, 2);
    } catch (const std::invalid_argument& e) {
        named = std::string(e.what()).rfind("structure 4:", 0) == 0;
    }
    check(named, "debye_partials_batch: a bad structure throws naming its index");
}

// debye_partials_ensemble: the pooled histogram is within the documented bound of the mean of
// the one-structure exact sums (structures of differing compositions: type 2 absent from some);
// the exact mode equals that mean to rounding; multiplicity 2 equals listing a structure twice;
// the covariance gives the std of the counts; 1, 2 and 3 threads give identical results; a bad
// structure's error names its index.
void test_debye_ensemble() {
    std::mt19937_64 rng(31);
    std::normal_distribution<double> g(0.0, 3.0);
    std::vector<std::vector<double>> pos;
    std::vector<std::vector<int32_t>> typ;
    for (int k = 0; k < 70; ++k) {  // more than one chunk of 64 structures
        const int64_t n = 2 + static_cast<int64_t>(rng() % 60);
        pos.emplace_back(3 * n);
        typ.emplace_back(n);
        for (auto& v : pos.back()) v = g(rng);
        for (auto& t : typ.back()) t = static_cast<int32_t>(rng() % (k % 3 == 0 ? 2 : 3));
    }
    std::vector<double> q;
    for (int k = 0; k < 80; ++k) q.push_back(0.025 * k);  // q = 0 first: S(0) = mean pair count
    const int64_t nq = 80, B = 70, P = 6;
    std::vector<cdml::DebyeStructure> st;
    for (size_t k = 0; k < pos.size(); ++k) st.push_back({pos[k].data(), typ[k].data(), static_cast<int64_t>(typ[k].size())});
    std::vector<double> mean(P * nq, 0.0), pairs(P, 0.0), count2(2, 0.0);
    double rmax = 0.0;
    for (int64_t k = 0; k < B; ++k) {
        const auto e = cdml::debye_partials_exact(st[k].positions, st[k].n, st[k].types, 3, q.data(), nq, 1);
        for (int64_t i = 0; i < P * nq; ++i) mean[i] += e.s[i] / B;
        for (int64_t p = 0; p < P; ++p) pairs[p] += static_cast<double>(e.pair_counts[p]) / B;
        count2[0] += static_cast<double>(e.type_counts[2]) / B;
        count2[1] += static_cast<double>(e.type_counts[2] * e.type_counts[2]) / B;
        rmax = std::max(rmax, cdml::debye_r_max(st[k].positions, st[k].n));
    }
    for (const double w : {0.001, 0.02}) {
        std::vector<cdml::DebyeEnsemble> runs;
        for (int t : {1, 2, 3})
            runs.push_back(cdml::debye_partials_ensemble(st, 3, q.data(), nq, cdml::DebyeMethod::Histogram, w,
                                                         nullptr, false, t));
        check(runs[0].pooled && runs[0].n_histogram == B, "debye_partials_ensemble: histogram pools the pairs");
        check(runs[0].s == runs[1].s && runs[0].s == runs[2].s, "debye_partials_ensemble: pooled, 1/2/3 threads identical");
        bool within = true, zero = true;
        for (int64_t p = 0; p < P; ++p) {
            zero = zero && std::fabs(runs[0].s[p * nq] - pairs[p]) <= 1e-12 * pairs[p];
            for (int64_t k = 0; k < nq; ++k) {
                const double wp = w + 2e-12 * rmax;
                const double e = (q[k] * wp) * (q[k] * wp) / 24 + q[k] * (w / 131072.0 + 1e-12 * rmax) / 2;
                within = within && std::fabs(runs[0].s[p * nq + k] - mean[p * nq + k]) <= e * pairs[p] + 1e-12;
            }
        }
        check(zero, "debye_partials_ensemble: pooled S(0) equals the mean pair count");
        check(within, "debye_partials_ensemble: pooled histogram within the bound of the mean exact sums");
    }
    bool exact_same = true, exact_close = true;
    cdml::DebyeEnsemble ex1;
    for (int t : {1, 2, 3}) {
        const auto ex = cdml::debye_partials_ensemble(st, 3, q.data(), nq, cdml::DebyeMethod::Exact, 0.001, nullptr, true, t);
        if (t == 1) ex1 = ex;
        exact_same = exact_same && ex.s == ex1.s && ex.cov == ex1.cov && !ex.pooled;
    }
    for (int64_t i = 0; i < P * nq; ++i) exact_close = exact_close && std::fabs(ex1.s[i] - mean[i]) <= 1e-12 * (1 + std::fabs(mean[i]));
    check(exact_same, "debye_partials_ensemble: exact with moments, 1/2/3 threads identical");
    check(exact_close, "debye_partials_ensemble: exact equals the mean of the single exact sums");
    const int64_t V = 3 + P;
    const double var2 = count2[1] - count2[0] * count2[0];
    check(std::fabs(ex1.cov[(2 * V + 2) * nq + 5] - var2) <= 1e-9 * var2 && std::fabs(ex1.type_counts[2] - count2[0]) < 1e-12,
          "debye_partials_ensemble: covariance of the counts is their population variance");
    // multiplicity 2 for structure 0 == structure 0 listed twice
    std::vector<double> wts(B, 1.0);
    wts[0] = 2.0;
    auto st2 = st;
    st2.push_back(st[0]);
    const auto a = cdml::debye_partials_ensemble(st, 3, q.data(), nq, cdml::DebyeMethod::Histogram, 0.01, wts.data(), false, 2);
    const auto b = cdml::debye_partials_ensemble(st2, 3, q.data(), nq, cdml::DebyeMethod::Histogram, 0.01, nullptr, false, 2);
    check(a.s == b.s, "debye_partials_ensemble: multiplicity 2 equals listing a structure twice");
    std::vector<int32_t> bad(typ[66]);
    bad[0] = 9;
    auto st_bad = st;
    st_bad[66].types = bad.data();
    bool named = false;
    try {
        cdml::debye_partials_ensemble(st_bad, 3, q.data(), nq, cdml::DebyeMethod::Auto, 0.001, nullptr, false, 2);
    } catch (const std::invalid_argument& e) {
        named = std::string(e.what()).rfind("structure 66:", 0) == 0;
    }
    check(named, "debye_partials_ensemble: a bad structure throws naming its index");
}

}  // namespace

int main() {
    test_debye_histogram();
    test_box();
    test_neighbor_pairs();
    test_components();
    test_cluster_counts();
    test_parse_xyz();
    test_debye_batch();
    test_debye_ensemble();
    std::printf("%d checks, %d failures (OpenMP %s, %d threads)\n", checks, failures,
                cdml::openmp_enabled() ? "on" : "off", cdml::max_threads());
    return failures == 0 ? 0 : 1;
}
