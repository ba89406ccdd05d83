// Shared helpers of the thin binding layer: numpy arrays in, pointers to the C++ core,
// numpy arrays out. No algorithm lives here.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "clusterdynamicsml/box.hpp"

namespace py = pybind11;

namespace cdml_bind {

using f64_array = py::array_t<double, py::array::c_style | py::array::forcecast>;
using i64_array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;
using i32_array = py::array_t<int32_t, py::array::c_style | py::array::forcecast>;

/// Move a std::vector (any allocator) into a 1-D numpy array without copying.
template <class T, class A>
py::array_t<T> to_numpy(std::vector<T, A>&& v) {
    auto* heap = new std::vector<T, A>(std::move(v));
    py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T, A>*>(p); });
    return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, {sizeof(T)}, heap->data(), owner);
}

/// Check an (n, 3) float64 array and return n.
inline int64_t rows3(const f64_array& a, const char* name) {
    if (a.ndim() != 2 || a.shape(1) != 3)
        throw py::value_error(std::string(name) + " must have shape (n, 3)");
    return static_cast<int64_t>(a.shape(0));
}

/// Optional 3x3 box matrix (rows a, b, c) -> Box.
inline std::optional<cdml::Box> box_from(const std::optional<f64_array>& m) {
    if (!m) return std::nullopt;
    if (m->ndim() != 2 || m->shape(0) != 3 || m->shape(1) != 3)
        throw py::value_error("box matrix must have shape (3, 3)");
    try {
        return cdml::Box::from_matrix(m->data());
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
}

}  // namespace cdml_bind

void bind_geometry(py::module_& m);
void bind_scattering(py::module_& m);
void bind_stats(py::module_& m);
void bind_frames(py::module_& m);
