// Bindings of the per-frame kernels: cluster composition counts (and frame parsing).
#include "common.hpp"
#include "clusterdynamicsml/clusters.hpp"
#include "clusterdynamicsml/xyz.hpp"

using namespace cdml_bind;

namespace {

std::vector<double> square_matrix(const f64_array& m, int64_t t, const char* what) {
    if (m.ndim() != 2 || m.shape(0) != t || m.shape(1) != t)
        throw py::value_error(std::string(what) + " must have shape (" + std::to_string(t) + ", " + std::to_string(t) +
                              ")");
    return std::vector<double>(m.data(), m.data() + t * t);
}

py::tuple cluster_counts(const f64_array& positions, const i32_array& types, int32_t n_elements,
                         const f64_array& cutoff0, const std::vector<f64_array>& level_cutoffs, bool attach_shells,
                         bool shared_shells, bool count_shells, const std::optional<f64_array>& box,
                         int num_threads) {
    const int64_t n = rows3(positions, "positions");
    if (types.ndim() != 1 || types.shape(0) != n) throw py::value_error("types must have shape (n,)");
    if (n_elements < 1) throw py::value_error("n_elements must be >= 1");
    cdml::ClusterSpec spec;
    spec.n_elements = n_elements;
    spec.cutoff0 = square_matrix(cutoff0, 3 * n_elements, "cutoff0");
    for (const auto& m : level_cutoffs) spec.level_cutoffs.push_back(square_matrix(m, 3 * n_elements, "level cutoffs"));
    spec.attach_shells = attach_shells;
    spec.shared_shells = shared_shells;
    spec.count_shells = count_shells;
    const auto b = box_from(box);
    cdml::FrameClusters out;
    {
        py::gil_scoped_release release;
        out = cdml::cluster_counts(positions.data(), n, types.data(), spec, b ? &*b : nullptr, num_threads);
    }
    const auto nc = static_cast<py::ssize_t>(out.n_clusters);
    py::array_t<int32_t> counts({nc, static_cast<py::ssize_t>(n_elements)});
    std::copy(out.counts.begin(), out.counts.end(), counts.mutable_data());
    py::array_t<bool> perc(nc);
    for (py::ssize_t k = 0; k < nc; ++k) perc.mutable_data()[k] = out.percolating[k] != 0;
    return py::make_tuple(counts, perc, to_numpy(std::move(out.cluster_of)), to_numpy(std::move(out.group)),
                          to_numpy(std::move(out.group_first)));
}

py::tuple parse_xyz_atoms(const py::bytes& data, int64_t offset, int64_t n, int species_col, int pos_col, int ncols,
                          bool single) {
    char* buf = nullptr;
    py::ssize_t size = 0;
    if (PyBytes_AsStringAndSize(data.ptr(), &buf, &size) != 0) throw py::error_already_set();
    if (offset < 0 || offset > size) throw py::value_error("offset outside the data");
    cdml::XyzAtoms atoms;
    {
        py::gil_scoped_release release;  // `data` (immutable bytes) is kept alive by the caller
        atoms = cdml::parse_xyz_atoms(buf + offset, static_cast<std::size_t>(size - offset), n, species_col, pos_col,
                                      ncols, single);
    }
    py::array_t<double> pos({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(3)});
    std::copy(atoms.positions.begin(), atoms.positions.end(), pos.mutable_data());
    py::list tokens;
    for (const auto& t : atoms.tokens) tokens.append(py::bytes(t));
    return py::make_tuple(pos, to_numpy(std::move(atoms.species)), tokens);
}

}  // namespace

void bind_frames(py::module_& m) {
    m.def("cluster_counts", &cluster_counts, py::arg("positions"), py::arg("types"), py::arg("n_elements"),
          py::arg("cutoff0"), py::arg("level_cutoffs"), py::arg("attach_shells"), py::arg("shared_shells"),
          py::arg("count_shells"), py::arg("box"), py::arg("num_threads"),
          "Per-cluster element counts (n_clusters, E) int32, percolating (n_clusters,) bool, the cluster "
          "of each atom (n,) int64 (-1: not a node/linker atom), the composition group of each cluster "
          "(n_clusters,) and the first cluster of each group (G,), groups in order of first appearance.");
    m.def("parse_xyz_atoms", &parse_xyz_atoms, py::arg("data"), py::arg("offset"), py::arg("n"),
          py::arg("species_col"), py::arg("pos_col"), py::arg("ncols"), py::arg("single"),
          "Atom lines of one XYZ frame from data[offset:]: positions (n, 3) float64, species codes (n,) int32, "
          "distinct species tokens (bytes). ValueError names the atom line of the frame.");
}
