// Bindings of the pair-statistics kernels (geometry statistics of structure libraries).
// Arrays in, arrays out; the algorithm lives in cpp/src/pairstats.cpp.
#include "common.hpp"
#include "clusterdynamicsml/pairstats.hpp"

using namespace cdml_bind;

namespace {

cdml::StructureBatch make_batch(const f64_array& positions, const i64_array& offsets, const i32_array& elements,
                                int32_t n_elements, const i32_array* kinds) {
    const int64_t n = rows3(positions, "positions");
    if (offsets.ndim() != 1 || offsets.shape(0) < 1) throw py::value_error("offsets must be a 1-D array of length >= 1");
    if (elements.ndim() != 1 || elements.shape(0) != n) throw py::value_error("elements must have shape (n_atoms,)");
    cdml::StructureBatch b;
    b.positions = positions.data();
    b.n_atoms = n;
    b.offsets = offsets.data();
    b.n_structures = static_cast<int64_t>(offsets.shape(0)) - 1;
    b.elements = elements.data();
    b.n_elements = n_elements;
    if (kinds) {
        if (kinds->ndim() != 1 || kinds->shape(0) != n_elements)
            throw py::value_error("element_kinds must have shape (n_elements,)");
        b.element_kind = kinds->data();
    }
    return b;
}

int32_t square(const f64_array& m, const char* name) {
    if (m.ndim() != 2 || m.shape(0) != m.shape(1) || m.shape(0) < 1)
        throw py::value_error(std::string(name) + " must be a square (n_elements, n_elements) array");
    return static_cast<int32_t>(m.shape(0));
}

template <class T>
py::array_t<T> to_matrix(std::vector<T>&& v, int64_t cols) {
    auto a = to_numpy(std::move(v));
    const int64_t rows = cols > 0 ? static_cast<int64_t>(a.shape(0)) / cols : 0;
    return a.reshape({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
}

py::dict scaffold_statistics(const f64_array& positions, const i64_array& offsets, const i32_array& elements,
                             const i32_array& element_kinds, const f64_array& assoc_cutoffs, int num_threads) {
    const int32_t ne = square(assoc_cutoffs, "assoc_cutoffs");
    const auto batch = make_batch(positions, offsets, elements, ne, &element_kinds);
    cdml::ScaffoldStats r;
    {
        py::gil_scoped_release release;
        r = cdml::scaffold_statistics(batch, assoc_cutoffs.data(), num_threads);
    }
    py::dict out;
    out["nearest"] = to_matrix(std::move(r.nearest), ne);
    out["edge_i"] = to_numpy(std::move(r.edge_i));
    out["edge_j"] = to_numpy(std::move(r.edge_j));
    out["edge_d"] = to_numpy(std::move(r.edge_d));
    out["assoc_atom"] = to_numpy(std::move(r.assoc_atom));
    out["assoc_node"] = to_numpy(std::move(r.assoc_node));
    out["assoc_d"] = to_numpy(std::move(r.assoc_d));
    out["coordination"] = to_matrix(std::move(r.coordination), cdml::kNumKinds);
    out["angle_center"] = to_numpy(std::move(r.angle_center));
    out["angle_kind_a"] = to_numpy(std::move(r.angle_kind_a));
    out["angle_kind_b"] = to_numpy(std::move(r.angle_kind_b));
    out["angle_deg"] = to_numpy(std::move(r.angle_deg));
    return out;
}

py::dict contact_statistics(const f64_array& positions, const i64_array& offsets, const i32_array& elements,
                            const f64_array& contact_cutoffs, int num_threads) {
    const int32_t ne = square(contact_cutoffs, "contact_cutoffs");
    const auto batch = make_batch(positions, offsets, elements, ne, nullptr);
    cdml::ContactStats r;
    {
        py::gil_scoped_release release;
        r = cdml::contact_statistics(batch, contact_cutoffs.data(), num_threads);
    }
    py::dict out;
    out["i"] = to_numpy(std::move(r.i));
    out["j"] = to_numpy(std::move(r.j));
    out["d"] = to_numpy(std::move(r.d));
    out["counts"] = to_matrix(std::move(r.counts), ne);
    return out;
}

}  // namespace

void bind_stats(py::module_& m) {
    m.def("scaffold_statistics", &scaffold_statistics, py::arg("positions"), py::arg("offsets"), py::arg("elements"),
          py::arg("element_kinds"), py::arg("assoc_cutoffs"), py::arg("num_threads"),
          "Pass 1 of the geometry statistics over a batch of open structures (see pairstats.hpp).");
    m.def("contact_statistics", &contact_statistics, py::arg("positions"), py::arg("offsets"), py::arg("elements"),
          py::arg("contact_cutoffs"), py::arg("num_threads"),
          "Contact pairs and per-atom contact counts by element over a batch of open structures.");
}
