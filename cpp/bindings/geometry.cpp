#include "common.hpp"
#include "clusterdynamicsml/neighbors.hpp"

using namespace cdml_bind;

namespace {

py::tuple pairs_to_tuple(cdml::PairList&& p) {
    return py::make_tuple(to_numpy(std::move(p.i)), to_numpy(std::move(p.j)), to_numpy(std::move(p.d)));
}

py::tuple neighbor_pairs(const f64_array& positions, double cutoff, const std::optional<f64_array>& box,
                         int num_threads) {
    const int64_t n = rows3(positions, "positions");
    const auto b = box_from(box);
    cdml::PairList out;
    {
        py::gil_scoped_release release;
        out = cdml::neighbor_pairs(positions.data(), n, cutoff, b ? &*b : nullptr, num_threads);
    }
    return pairs_to_tuple(std::move(out));
}

py::tuple neighbor_pairs_typed(const f64_array& positions, const i32_array& types, const f64_array& cutoffs,
                               const std::optional<f64_array>& box, int num_threads) {
    const int64_t n = rows3(positions, "positions");
    if (types.ndim() != 1 || types.shape(0) != n) throw py::value_error("types must have shape (n,)");
    if (cutoffs.ndim() != 2 || cutoffs.shape(0) != cutoffs.shape(1) || cutoffs.shape(0) < 1)
        throw py::value_error("cutoff matrix must be square (n_types, n_types)");
    const auto b = box_from(box);
    const int32_t nt = static_cast<int32_t>(cutoffs.shape(0));
    cdml::PairList out;
    {
        py::gil_scoped_release release;
        out = cdml::neighbor_pairs_typed(positions.data(), n, types.data(), nt, cutoffs.data(), b ? &*b : nullptr,
                                         num_threads);
    }
    return pairs_to_tuple(std::move(out));
}

py::array_t<int64_t> connected_components(int64_t n, const i64_array& i, const i64_array& j) {
    if (i.ndim() != 1 || j.ndim() != 1 || i.shape(0) != j.shape(0))
        throw py::value_error("i and j must be 1-D arrays of the same length");
    std::vector<int64_t> labels;
    {
        py::gil_scoped_release release;
        labels = cdml::connected_components(n, i.data(), j.data(), static_cast<int64_t>(i.shape(0)));
    }
    return to_numpy(std::move(labels));
}

py::array_t<double> minimum_image(const f64_array& d, const f64_array& box) {
    const int64_t n = rows3(d, "displacements");
    const auto b = box_from(box);
    py::array_t<double> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(3)});
    double* o = out.mutable_data();
    const double* src = d.data();
    {
        py::gil_scoped_release release;
        for (int64_t k = 0; k < 3 * n; ++k) o[k] = src[k];
        for (int64_t a = 0; a < n; ++a) b->minimum_image(o + 3 * a);
    }
    return out;
}

}  // namespace

void bind_geometry(py::module_& m) {
    m.def("neighbor_pairs", &neighbor_pairs, py::arg("positions"), py::arg("cutoff"), py::arg("box"),
          py::arg("num_threads"));
    m.def("neighbor_pairs_typed", &neighbor_pairs_typed, py::arg("positions"), py::arg("types"),
          py::arg("cutoffs"), py::arg("box"), py::arg("num_threads"));
    m.def("connected_components", &connected_components, py::arg("n"), py::arg("i"), py::arg("j"));
    m.def("minimum_image", &minimum_image, py::arg("displacements"), py::arg("box"));
}
