#include "common.hpp"
#include "clusterdynamicsml/parallel.hpp"

#ifndef CDML_VERSION_INFO
#define CDML_VERSION_INFO "dev"
#endif

PYBIND11_MODULE(_core, m) {
    m.doc() = "clusterdynamicsml C++ core (private; use the clusterdynamicsml package)";
    m.attr("__version__") = CDML_VERSION_INFO;
    m.def("openmp_enabled", &cdml::openmp_enabled, "True when the core was compiled with OpenMP.");
    m.def("max_threads", &cdml::max_threads, "Threads OpenMP uses by default (1 without OpenMP).");
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const std::out_of_range& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        }
    });
    bind_geometry(m);
    bind_scattering(m);
    bind_stats(m);
    bind_frames(m);
}
