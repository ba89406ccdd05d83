// Pair statistics over a batch of open (non-periodic) structures: the kernels behind
// the geometry statistics of a structure library (bond, contact, angle and coordination
// medians). Python-free.
//
// A batch is given as concatenated positions, structure offsets and per-atom element
// ids; every structure is treated as an isolated cluster (no box). Work is split over
// structures (one structure is owned by one thread) and the per-structure results are
// concatenated in structure order, so every output is identical, bit for bit, for any
// thread count.
#pragma once
#include <cstdint>
#include <vector>

namespace cdml {

/// Atom kinds of the geometry statistics (ref §4.7): node, linker, shell.
enum AtomKind : int32_t { kNode = 0, kLinker = 1, kShell = 2 };
constexpr int32_t kNumKinds = 3;

/// A batch of structures. Pointers are borrowed; nothing is copied.
struct StructureBatch {
    const double* positions = nullptr;   ///< n_atoms x 3 row-major, angstrom
    int64_t n_atoms = 0;
    const int64_t* offsets = nullptr;    ///< n_structures + 1 prefix offsets: 0 = o[0] <= ... <= o[S] = n_atoms
    int64_t n_structures = 0;
    const int32_t* elements = nullptr;   ///< n_atoms element ids in [0, n_elements)
    int32_t n_elements = 0;
    const int32_t* element_kind = nullptr;  ///< n_elements kinds (AtomKind), may be null for contact_statistics
};

/// Throws std::invalid_argument when the batch is malformed (non-finite positions, bad
/// offsets, element ids or kinds out of range). Called by both kernels before any
/// parallel region.
void validate_batch(const StructureBatch& batch, bool need_kinds);

/// Result of scaffold_statistics. Atom indices are global (into the concatenated batch).
struct ScaffoldStats {
    /// n_atoms x n_elements: distance from each atom to the nearest OTHER atom of each
    /// element in the same structure (+inf when there is none).
    std::vector<double> nearest;
    /// Node scaffold edges, i < j, sorted by (i, j) within a structure; structures in order.
    std::vector<int64_t> edge_i, edge_j;
    std::vector<double> edge_d;
    /// Non-node -> node associations: for every non-node atom, the nodes within the
    /// association cutoff sorted by (distance, index), or the nearest node alone.
    std::vector<int64_t> assoc_atom, assoc_node;
    std::vector<double> assoc_d;
    /// n_atoms x kNumKinds neighbour counts by kind. For a node: scaffold neighbours
    /// (node column) and associated non-node atoms (linker / shell columns). For a
    /// non-node atom: the number of nodes it is associated with (node column).
    std::vector<int32_t> coordination;
    /// Node-centred angles (degrees) between every pair of neighbour vectors of a node,
    /// with the sorted kinds (kind_a <= kind_b) of the two neighbours.
    std::vector<int64_t> angle_center;
    std::vector<int32_t> angle_kind_a, angle_kind_b;
    std::vector<double> angle_deg;
};

/// Pass 1 of the geometry statistics (ref §4.7), per structure:
///  * nearest distance from every atom to each element;
///  * node scaffold: node pairs with d <= assoc_cutoffs[el_a, el_b] are explicit edges,
///    then components are joined by the shortest remaining node pairs (Kruskal, ties by
///    (i, j)); with no explicit edges this is the minimum spanning tree;
///  * association of every non-node atom with nodes (d <= assoc_cutoffs[el, node_el],
///    else the nearest node);
///  * coordination counts and node-centred angles.
/// assoc_cutoffs: symmetric n_elements x n_elements (angstrom), entries <= 0 never bond
/// (already scaled, e.g. 1.15 x the pair cutoff). Structures without a node get only
/// the nearest distances. num_threads <= 0: all available.
ScaffoldStats scaffold_statistics(const StructureBatch& batch, const double* assoc_cutoffs, int num_threads);

/// Result of contact_statistics. Atom indices are global.
struct ContactStats {
    std::vector<int64_t> i, j;  ///< contact pairs, i < j, sorted by (i, j)
    std::vector<double> d;      ///< distances (angstrom)
    std::vector<int32_t> counts;  ///< n_atoms x n_elements: contacts of each atom by element
};

/// Pass 2 (ref §4.7): every pair i < j within a structure with
/// d <= contact_cutoffs[el_i, el_j] (symmetric n_elements x n_elements, <= 0: never).
ContactStats contact_statistics(const StructureBatch& batch, const double* contact_cutoffs, int num_threads);

}  // namespace cdml
