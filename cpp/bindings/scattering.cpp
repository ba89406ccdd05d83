// Bindings of the scattering kernels (Debye sums, rank-aligned spreads). Thin: arrays in,
// pointers to the C++ core, arrays out; the GIL is released around the kernels.
#include "clusterdynamicsml/debye.hpp"
#include "clusterdynamicsml/spreads.hpp"

#include "common.hpp"

using namespace cdml_bind;

namespace {

int64_t check_types(const i32_array& types, int64_t n) {
    if (types.ndim() != 1 || types.shape(0) != n) throw py::value_error("types must have shape (n,)");
    return n;
}

int64_t check_q(const f64_array& q) {
    if (q.ndim() != 1) throw py::value_error("q must be a 1-D array");
    return static_cast<int64_t>(q.shape(0));
}

py::tuple partials_to_tuple(cdml::DebyePartials&& p) {
    const int64_t P = cdml::n_pair_types(p.n_types);
    py::array_t<double> s({static_cast<py::ssize_t>(P), static_cast<py::ssize_t>(p.n_q)});
    std::copy(p.s.begin(), p.s.end(), s.mutable_data());
    return py::make_tuple(s, to_numpy(std::move(p.type_counts)), to_numpy(std::move(p.pair_counts)),
                          p.uniform_grid);
}

py::tuple debye_partials(const f64_array& positions, const i32_array& types, int32_t n_types, const f64_array& q,
                         const std::string& method, double bin_width, int num_threads,
                         const std::string& simd) {
    const int64_t n = rows3(positions, "positions");
    check_types(types, n);
    const int64_t nq = check_q(q);
    if (method != "exact" && method != "histogram" && method != "auto")
        throw py::value_error("method must be 'exact', 'histogram' or 'auto', got '" + method + "'");
    if (simd != "auto" && simd != "portable")
        throw py::value_error("simd must be 'auto' or 'portable', got '" + simd + "'");
    const auto path = simd == "auto" ? cdml::HistogramPath::Auto : cdml::HistogramPath::Portable;
    cdml::DebyePartials out;
    {
        py::gil_scoped_release release;
        bool hist = method == "histogram";
        if (method == "auto")
            hist = cdml::debye_auto_uses_histogram(n, n_types, cdml::debye_r_max(positions.data(), n), bin_width);
        if (!hist)
            out = cdml::debye_partials_exact(positions.data(), n, types.data(), n_types, q.data(), nq, num_threads);
        else
            out = cdml::debye_partials_histogram(positions.data(), n, types.data(), n_types, q.data(), nq, bin_width,
                                                 num_threads, path);
    }
    return partials_to_tuple(std::move(out));
}

cdml::DebyeMethod parse_method(const std::string& method) {
    if (method == "exact") return cdml::DebyeMethod::Exact;
    if (method == "histogram") return cdml::DebyeMethod::Histogram;
    if (method == "auto") return cdml::DebyeMethod::Auto;
    throw py::value_error("method must be 'exact', 'histogram' or 'auto', got '" + method + "'");
}

// The arrays of every structure (kept alive in pos_keep / typ_keep) as DebyeStructure views.
std::vector<cdml::DebyeStructure> collect_structures(const py::list& positions, const py::list& types,
                                                     std::vector<f64_array>& pos_keep,
                                                     std::vector<i32_array>& typ_keep) {
    if (positions.size() != types.size()) throw py::value_error("positions and types must have the same length");
    for (size_t s = 0; s < positions.size(); ++s) {
        pos_keep.push_back(positions[s].cast<f64_array>());
        typ_keep.push_back(types[s].cast<i32_array>());
        const int64_t n = rows3(pos_keep.back(), "positions");
        check_types(typ_keep.back(), n);
    }
    std::vector<cdml::DebyeStructure> structures;
    for (size_t s = 0; s < pos_keep.size(); ++s)
        structures.push_back({pos_keep[s].data(), typ_keep[s].data(), static_cast<int64_t>(pos_keep[s].shape(0))});
    return structures;
}

py::tuple debye_partials_batch(const py::list& positions, const py::list& types, int32_t n_types, const f64_array& q,
                               const std::string& method, double bin_width, int num_threads) {
    const int64_t nq = check_q(q);
    const cdml::DebyeMethod m = parse_method(method);
    std::vector<f64_array> pos_keep;
    std::vector<i32_array> typ_keep;
    const std::vector<cdml::DebyeStructure> structures = collect_structures(positions, types, pos_keep, typ_keep);
    std::vector<cdml::DebyePartials> out;
    std::vector<uint8_t> used;
    {
        py::gil_scoped_release release;
        out = cdml::debye_partials_batch(structures, n_types, q.data(), nq, m, bin_width, num_threads, &used);
    }
    const auto B = static_cast<py::ssize_t>(out.size());
    const auto P = static_cast<py::ssize_t>(cdml::n_pair_types(n_types));
    py::array_t<double> s({B, P, static_cast<py::ssize_t>(nq)});
    py::array_t<int64_t> tc({B, static_cast<py::ssize_t>(n_types)});
    py::array_t<int64_t> pc({B, P});
    py::array_t<bool> hist(B);
    for (py::ssize_t k = 0; k < B; ++k) {
        std::copy(out[k].s.begin(), out[k].s.end(), s.mutable_data() + k * P * nq);
        std::copy(out[k].type_counts.begin(), out[k].type_counts.end(), tc.mutable_data() + k * n_types);
        std::copy(out[k].pair_counts.begin(), out[k].pair_counts.end(), pc.mutable_data() + k * P);
        hist.mutable_data()[k] = used[k] != 0;
    }
    return py::make_tuple(s, tc, pc, hist);
}

py::tuple debye_partials_ensemble(const py::list& positions, const py::list& types, int32_t n_types,
                                  const f64_array& q, const std::string& method, double bin_width,
                                  const py::object& weights, bool moments, int num_threads) {
    const int64_t nq = check_q(q);
    const cdml::DebyeMethod m = parse_method(method);
    std::vector<f64_array> pos_keep;
    std::vector<i32_array> typ_keep;
    const std::vector<cdml::DebyeStructure> structures = collect_structures(positions, types, pos_keep, typ_keep);
    f64_array w;
    const double* wp = nullptr;
    if (!weights.is_none()) {
        w = weights.cast<f64_array>();
        if (w.ndim() != 1 || static_cast<size_t>(w.shape(0)) != structures.size())
            throw py::value_error("weights must have shape (" + std::to_string(structures.size()) + ",)");
        wp = w.data();
    }
    cdml::DebyeEnsemble e;
    {
        py::gil_scoped_release release;
        e = cdml::debye_partials_ensemble(structures, n_types, q.data(), nq, m, bin_width, wp, moments, num_threads);
    }
    const auto P = static_cast<py::ssize_t>(cdml::n_pair_types(n_types));
    const auto V = static_cast<py::ssize_t>(n_types) + P;
    py::array_t<double> s({P, static_cast<py::ssize_t>(nq)});
    std::copy(e.s.begin(), e.s.end(), s.mutable_data());
    py::object cov = py::none();
    if (moments) {
        py::array_t<double> c({V, V, static_cast<py::ssize_t>(nq)});
        std::copy(e.cov.begin(), e.cov.end(), c.mutable_data());
        cov = c;
    }
    return py::make_tuple(s, to_numpy(std::move(e.type_counts)), to_numpy(std::move(e.pair_counts)), e.pooled,
                          e.n_histogram, e.r_max, cov, e.uniform_grid);
}

py::array_t<double> debye_pairlist_partials(const f64_array& r, const i64_array& pair_type, int64_t n_pair_types,
                                            const f64_array& q, int num_threads) {
    if (r.ndim() != 1 || pair_type.ndim() != 1 || r.shape(0) != pair_type.shape(0))
        throw py::value_error("r and pair_type must be 1-D arrays of the same length");
    const int64_t nq = check_q(q);
    std::vector<double> out;
    {
        py::gil_scoped_release release;
        out = cdml::debye_pairlist_partials(r.data(), pair_type.data(), static_cast<int64_t>(r.shape(0)),
                                            n_pair_types, q.data(), nq, num_threads);
    }
    py::array_t<double> a({static_cast<py::ssize_t>(n_pair_types), static_cast<py::ssize_t>(nq)});
    std::copy(out.begin(), out.end(), a.mutable_data());
    return a;
}

py::tuple rank_aligned_sigma(const py::list& positions, const py::list& types, int32_t type_a, int32_t type_b,
                             double cutoff, int num_threads) {
    if (positions.size() != types.size()) throw py::value_error("positions and types must have the same length");
    std::vector<f64_array> pos_keep;
    std::vector<i32_array> typ_keep;
    std::vector<const double*> pp;
    std::vector<const int32_t*> tp;
    std::vector<int64_t> na;
    for (size_t s = 0; s < positions.size(); ++s) {
        pos_keep.push_back(positions[s].cast<f64_array>());
        typ_keep.push_back(types[s].cast<i32_array>());
        const int64_t n = rows3(pos_keep.back(), "positions");
        check_types(typ_keep.back(), n);
        na.push_back(n);
    }
    for (size_t s = 0; s < pos_keep.size(); ++s) {
        pp.push_back(pos_keep[s].data());
        tp.push_back(typ_keep[s].data());
    }
    cdml::RankAlignedSpread r;
    {
        py::gil_scoped_release release;
        r = cdml::rank_aligned_sigma(pp, na, tp, type_a, type_b, cutoff, num_threads);
    }
    return py::make_tuple(r.sigma, r.b_factor, r.aligned_count, r.support, to_numpy(std::move(r.rank_sigma)),
                          to_numpy(std::move(r.rank_mean)));
}

}  // namespace

void bind_scattering(py::module_& m) {
    m.def("debye_partials", &debye_partials, py::arg("positions"), py::arg("types"), py::arg("n_types"),
          py::arg("q"), py::arg("method"), py::arg("bin_width"), py::arg("num_threads"),
          py::arg("simd") = "auto",
          "Partial Debye sums S_ab(q) per pair type: (S (P, nq), type_counts, pair_counts, uniform_grid).\n"
          "simd: 'auto' (AVX-512 histogram pass when the CPU has it) or 'portable'.");
    m.def("debye_partials_batch", &debye_partials_batch, py::arg("positions"), py::arg("types"), py::arg("n_types"),
          py::arg("q"), py::arg("method"), py::arg("bin_width"), py::arg("num_threads"),
          "Partial Debye sums of many structures in one call: (S (B, P, nq), type_counts (B, T), "
          "pair_counts (B, P), used_histogram (B,) bool); entry k equals debye_partials of structure k.");
    m.def("debye_partials_ensemble", &debye_partials_ensemble, py::arg("positions"), py::arg("types"),
          py::arg("n_types"), py::arg("q"), py::arg("method"), py::arg("bin_width"), py::arg("weights"),
          py::arg("moments"), py::arg("num_threads"),
          "Weighted-mean partial Debye sums of an ensemble in one call: (S (P, nq), type_counts (T,), "
          "pair_counts (P,), pooled, n_histogram, r_max, cov (T+P, T+P, nq) or None, uniform_grid).");
    m.def("debye_auto_uses_histogram", &cdml::debye_auto_uses_histogram, py::arg("n"), py::arg("n_types"),
          py::arg("r_max"), py::arg("bin_width"), "True when method='auto' uses the histogram for this size.");
    m.def("debye_pairlist_partials", &debye_pairlist_partials, py::arg("r"), py::arg("pair_type"),
          py::arg("n_pair_types"), py::arg("q"), py::arg("num_threads"));
    m.def("rank_aligned_sigma", &rank_aligned_sigma, py::arg("positions"), py::arg("types"), py::arg("type_a"),
          py::arg("type_b"), py::arg("cutoff"), py::arg("num_threads"));
}
