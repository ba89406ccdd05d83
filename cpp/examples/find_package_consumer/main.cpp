// Consumer of the installed clusterdynamicsml package: a ring of 12 atoms 1.5 A apart in an
// open system plus one isolated atom. Prints "pairs=12 components=2" and returns 0 when right.
#include <clusterdynamicsml/neighbors.hpp>
#include <clusterdynamicsml/parallel.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
    const int ring = 12;
    const double pi = 3.14159265358979323846;
    const double radius = 1.5 / (2.0 * std::sin(pi / ring));  // chord length 1.5 A
    std::vector<double> pos;
    for (int k = 0; k < ring; ++k) {
        pos.push_back(radius * std::cos(2 * pi * k / ring));
        pos.push_back(radius * std::sin(2 * pi * k / ring));
        pos.push_back(0.0);
    }
    pos.insert(pos.end(), {50.0, 50.0, 50.0});
    const int64_t n = static_cast<int64_t>(pos.size() / 3);
    const cdml::PairList p = cdml::neighbor_pairs(pos.data(), n, 1.6, nullptr, 0);
    const std::vector<int64_t> lab = cdml::connected_components(n, p.i.data(), p.j.data(), static_cast<int64_t>(p.size()));
    std::printf("pairs=%zu components=%lld openmp=%d\n", p.size(), static_cast<long long>(lab.back() + 1),
                cdml::openmp_enabled() ? 1 : 0);
    return (p.size() == static_cast<std::size_t>(ring) && lab.back() == 1) ? 0 : 1;
}
