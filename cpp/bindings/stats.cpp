// Bindings of the pair-statistics kernels (geometry statistics of structure libraries).
#include "common.hpp"

void bind_stats(py::module_& m) { (void)m; }
