// Per-frame cluster composition: components of the node/linker bond graph, shell
// attachment, percolation and element counts per cluster, in one call. Python-free.
//
// The definitions are those of the Python module clusterdynamicsml.clusters.extract (its
// docstring is the specification); this kernel reproduces them exactly, so the label counts
// of a frame are the same whichever path computed them.
#pragma once
#include <cstdint>
#include <vector>

#include "clusterdynamicsml/box.hpp"

namespace cdml {

/// Cluster rules in the kernel's terms. Atom types are role * E + element id with role 0
/// (node), 1 (linker), 2 (shell) and element ids 0 .. E-1 in label order; -1 is an atom
/// with no role. Cutoff matrices are (3E x 3E), row-major, symmetric, angstrom; 0 = no bond.
struct ClusterSpec {
    int32_t n_elements = 0;               ///< E
    std::vector<double> cutoff0;          ///< level 0: node/linker bonds and core-shell contacts
    std::vector<std::vector<double>> level_cutoffs;  ///< node-shell cutoffs of each extra shell level
    bool attach_shells = false;           ///< search shell atoms at all
    bool shared_shells = false;           ///< a level > 0 shell atom may join several clusters
    bool count_shells = false;            ///< shell atoms enter the element counts
};

/// Result of cluster_counts for one frame. Clusters in canonical order: clusters with node
/// atoms first, by their smallest node atom index; then linker-only clusters by their
/// smallest atom index.
struct FrameClusters {
    int64_t n_clusters = 0;
    int32_t n_elements = 0;
    std::vector<int32_t> counts;       ///< n_clusters x E element counts (core, + shells if counted)
    std::vector<uint8_t> percolating;  ///< 1 when the cluster's bonds wrap the periodic box onto itself
    std::vector<int64_t> cluster_of;   ///< per atom: cluster id of node/linker atoms, -1 for others
    /// Distinct compositions (rows of counts) numbered in order of first appearance:
    /// group[c] for each cluster, group_first[g] = the first cluster with composition g.
    std::vector<int64_t> group;
    std::vector<int64_t> group_first;
};

/// Clusters of one frame. positions: n x 3 row-major (angstrom); types: n entries (see
/// ClusterSpec); box: nullptr for open boundaries. Every cutoff must be < half the smallest
/// box height. Identical results for any num_threads (<= 0: all available).
/// Throws std::invalid_argument on a type outside [-1, 3E), a matrix of the wrong size,
/// negative / non-finite cutoffs or positions, or a cutoff too large for the box.
FrameClusters cluster_counts(const double* positions, int64_t n, const int32_t* types, const ClusterSpec& spec,
                             const Box* box, int num_threads);

}  // namespace cdml
