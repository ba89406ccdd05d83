// Bindings of the scattering kernels (Debye sums, rank-aligned spreads).
#include "common.hpp"

void bind_scattering(py::module_& m) { (void)m; }
