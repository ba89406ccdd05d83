// Embedding the clusterdynamicsml C++ core in another code (no Python involved).
// Builds a small periodic NaCl-like lattice, finds neighbour pairs within 3 A and
// labels the connected components.  Prints "pairs=<n> components=<m>".
#include <clusterdynamicsml/box.hpp>
#include <clusterdynamicsml/neighbors.hpp>
#include <clusterdynamicsml/parallel.hpp>

#include <cstdio>
#include <vector>

int main() {
    const int cells = 4;
    const double a = 2.82;  // nearest-neighbour spacing, angstrom
    std::vector<double> pos;
    for (int x = 0; x < 2 * cells; ++x)
        for (int y = 0; y < 2 * cells; ++y)
            for (int z = 0; z < 2 * cells; ++z) {
                pos.push_back(x * a);
                pos.push_back(y * a);
                pos.push_back(z * a);
            }
    const auto n = static_cast<int64_t>(pos.size() / 3);
    const double L = 2 * cells * a;
    const cdml::Box box = cdml::Box::orthorhombic(L, L, L);
    const cdml::PairList pairs = cdml::neighbor_pairs(pos.data(), n, 3.0, &box, 0);
    const std::vector<int64_t> labels = cdml::connected_components(n, pairs.i.data(), pairs.j.data(),
                                                                   static_cast<int64_t>(pairs.size()));
    int64_t ncomp = 0;
    for (int64_t l : labels) ncomp = l + 1 > ncomp ? l + 1 : ncomp;
    std::printf("atoms=%lld pairs=%zu components=%lld openmp=%d\n", static_cast<long long>(n), pairs.size(),
                static_cast<long long>(ncomp), cdml::openmp_enabled() ? 1 : 0);
    // simple cubic lattice: 3 bonds per atom
    return (pairs.size() == static_cast<std::size_t>(3 * n) && ncomp == 1) ? 0 : 1;
}
