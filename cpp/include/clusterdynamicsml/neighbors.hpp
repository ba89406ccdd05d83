// Periodic neighbour search (cell list) and connected components. Python-free.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

#include "clusterdynamicsml/box.hpp"

namespace cdml {

/// Allocator for large result arrays of trivial types: elements are default-initialised,
/// not zeroed (the kernels write every element, in parallel, so the first-touch page
/// faults are shared by the threads). Memory comes from std::malloc and goes back with
/// std::free. (Advising transparent huge pages was tried: slower on a busy machine,
/// because the kernel compacts memory synchronously on first touch.)
template <class T>
struct BufferAllocator {
    using value_type = T;
    BufferAllocator() noexcept = default;
    template <class U>
    BufferAllocator(const BufferAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        const std::size_t bytes = n * sizeof(T);
        void* p = std::malloc(bytes ? bytes : 1);
        if (!p) throw std::bad_alloc();
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t) noexcept { std::free(p); }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        if constexpr (sizeof...(Args) == 0) ::new (static_cast<void*>(p)) U;  // default-init: no zeroing
        else ::new (static_cast<void*>(p)) U(static_cast<Args&&>(args)...);
    }
    template <class U>
    bool operator==(const BufferAllocator<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const BufferAllocator<U>&) const noexcept { return false; }
};

/// A std::vector whose resize() does not zero new elements (see BufferAllocator).
template <class T>
using Buffer = std::vector<T, BufferAllocator<T>>;

/// All unordered pairs (i < j) within a cutoff, in canonical order: sorted by (i, j).
/// Use .data() / .size() / iterators like std::vector.
struct PairList {
    Buffer<int64_t> i;
    Buffer<int64_t> j;
    Buffer<double> d;  ///< minimum-image distance, angstrom
    std::size_t size() const { return d.size(); }
};

/// All pairs i < j with minimum-image distance d <= cutoff.
///
/// positions: n x 3 row-major (angstrom), any values (coordinates far outside the
/// cell are wrapped). box: nullptr for an open (non-periodic) system. With a box the
/// cutoff must be < half the smallest perpendicular cell height, so that at most one
/// periodic image of each atom is within the cutoff. The result is identical, bit for
/// bit, for any num_threads (<= 0 means all available).
/// Throws std::invalid_argument on a negative / non-finite cutoff, non-finite
/// positions or a cutoff too large for the box.
PairList neighbor_pairs(const double* positions, int64_t n, double cutoff, const Box* box,
                        int num_threads);

/// Same search with a cutoff per type pair: types[k] in [0, n_types); cutoffs is a
/// symmetric n_types x n_types row-major matrix; a pair (a, b) is kept when
/// d <= cutoffs[ta * n_types + tb] and that cutoff is > 0 (0 or negative: never bonded).
/// types[k] < 0 marks an atom that takes part in no pair.
PairList neighbor_pairs_typed(const double* positions, int64_t n, const int32_t* types,
                              int32_t n_types, const double* cutoffs, const Box* box,
                              int num_threads);

/// Union-find connected components of a graph with n vertices and edges (i[k], j[k]).
/// Returns one label per vertex; components are numbered 0, 1, 2, ... in the order of
/// their smallest vertex index. Throws std::invalid_argument for an index outside [0, n).
std::vector<int64_t> connected_components(int64_t n, const int64_t* i, const int64_t* j,
                                          int64_t n_edges);

}  // namespace cdml
