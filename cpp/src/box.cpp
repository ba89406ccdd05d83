#include "clusterdynamicsml/box.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace cdml {

Box Box::from_matrix(const double* m9) {
    Box b;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            const double v = m9[3 * i + j];
            if (!std::isfinite(v)) throw std::invalid_argument("box matrix has a non-finite entry");
            b.h_[i][j] = v;
        }
    const auto& h = b.h_;
    // cofactors: inverse = adj / det
    const double c00 = h[1][1] * h[2][2] - h[1][2] * h[2][1];
    const double c01 = h[1][2] * h[2][0] - h[1][0] * h[2][2];
    const double c02 = h[1][0] * h[2][1] - h[1][1] * h[2][0];
    const double det = h[0][0] * c00 + h[0][1] * c01 + h[0][2] * c02;
    double scale = 0.0;
    for (int i = 0; i < 3; ++i) {
        const double n = std::sqrt(h[i][0] * h[i][0] + h[i][1] * h[i][1] + h[i][2] * h[i][2]);
        scale = std::max(scale, n);
    }
    if (!(scale > 0.0) || std::fabs(det) <= 1e-10 * scale * scale * scale)
        throw std::invalid_argument("box matrix is singular (volume " + std::to_string(det) + " A^3)");
    const double c10 = h[0][2] * h[2][1] - h[0][1] * h[2][2];
    const double c11 = h[0][0] * h[2][2] - h[0][2] * h[2][0];
    const double c12 = h[0][1] * h[2][0] - h[0][0] * h[2][1];
    const double c20 = h[0][1] * h[1][2] - h[0][2] * h[1][1];
    const double c21 = h[0][2] * h[1][0] - h[0][0] * h[1][2];
    const double c22 = h[0][0] * h[1][1] - h[0][1] * h[1][0];
    // inv[i][j] = cofactor[j][i] / det
    b.inv_ = {{{c00 / det, c10 / det, c20 / det},
               {c01 / det, c11 / det, c21 / det},
               {c02 / det, c12 / det, c22 / det}}};
    b.volume_ = std::fabs(det);
    // height_k = V / |a_i x a_j| = 1 / |column k of inv|
    for (int k = 0; k < 3; ++k) {
        const double n = std::sqrt(b.inv_[0][k] * b.inv_[0][k] + b.inv_[1][k] * b.inv_[1][k] +
                                   b.inv_[2][k] * b.inv_[2][k]);
        b.heights_[k] = 1.0 / n;
    }
    b.ortho_ = h[0][1] == 0.0 && h[0][2] == 0.0 && h[1][0] == 0.0 && h[1][2] == 0.0 &&
               h[2][0] == 0.0 && h[2][1] == 0.0;
    return b;
}

Box Box::orthorhombic(double lx, double ly, double lz) {
    const double m[9] = {lx, 0, 0, 0, ly, 0, 0, 0, lz};
    return from_matrix(m);
}

double Box::min_height() const { return std::min({heights_[0], heights_[1], heights_[2]}); }

void Box::to_fractional(const double* r, double* s) const {
    for (int k = 0; k < 3; ++k) s[k] = r[0] * inv_[0][k] + r[1] * inv_[1][k] + r[2] * inv_[2][k];
}

void Box::to_cartesian(const double* s, double* r) const {
    for (int k = 0; k < 3; ++k) r[k] = s[0] * h_[0][k] + s[1] * h_[1][k] + s[2] * h_[2][k];
}

void Box::wrap(double* r) const {
    double s[3];
    to_fractional(r, s);
    for (int k = 0; k < 3; ++k) {
        s[k] -= std::floor(s[k]);
        if (s[k] >= 1.0) s[k] = 0.0;  // -tiny wraps to 1.0 in floating point
    }
    to_cartesian(s, r);
}

void Box::minimum_image(double* d) const {
    double s[3];
    to_fractional(d, s);
    for (int k = 0; k < 3; ++k) s[k] -= std::nearbyint(s[k]);
    double base[3];
    to_cartesian(s, base);
    if (ortho_) {
        for (int k = 0; k < 3; ++k) d[k] = base[k];
        return;
    }
    double best[3] = {base[0], base[1], base[2]};
    double best2 = base[0] * base[0] + base[1] * base[1] + base[2] * base[2];
    for (int i = -1; i <= 1; ++i)
        for (int j = -1; j <= 1; ++j)
            for (int k = -1; k <= 1; ++k) {
                if (i == 0 && j == 0 && k == 0) continue;
                double c[3];
                for (int x = 0; x < 3; ++x) c[x] = base[x] + i * h_[0][x] + j * h_[1][x] + k * h_[2][x];
                const double c2 = c[0] * c[0] + c[1] * c[1] + c[2] * c[2];
                if (c2 < best2) {
                    best2 = c2;
                    best[0] = c[0]; best[1] = c[1]; best[2] = c[2];
                }
            }
    for (int k = 0; k < 3; ++k) d[k] = best[k];
}

}  // namespace cdml
