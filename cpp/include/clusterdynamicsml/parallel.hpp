// Thread-count helpers shared by every kernel. Python-free.
#pragma once
#ifdef CDML_HAVE_OPENMP
#include <omp.h>
#endif

namespace cdml {

/// True when the core was compiled with OpenMP.
inline bool openmp_enabled() {
#ifdef CDML_HAVE_OPENMP
    return true;
#else
    return false;
#endif
}

/// Number of threads OpenMP would use by default (1 without OpenMP).
inline int max_threads() {
#ifdef CDML_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// num_threads <= 0 means "all available".
inline int resolve_threads(int num_threads) {
    return num_threads > 0 ? num_threads : max_threads();
}

}  // namespace cdml
