#include "clusterdynamicsml/box.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace cdml {
namespace {

using Mat = std::array<std::array<double, 3>, 3>;

double dot3(const std::array<double, 3>& a, const std::array<double, 3>& b) {
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

// Inverse of a row-matrix (r = s h, s = r inv) and the perpendicular heights; false if singular.
bool invert(const Mat& h, Mat& inv, std::array<double, 3>& heights, double& det) {
    const double c00 = h[1][1] * h[2][2] - h[1][2] * h[2][1];
    const double c01 = h[1][2] * h[2][0] - h[1][0] * h[2][2];
    const double c02 = h[1][0] * h[2][1] - h[1][1] * h[2][0];
    det = h[0][0] * c00 + h[0][1] * c01 + h[0][2] * c02;
    double scale = 0.0;
    for (int i = 0; i < 3; ++i) scale = std::max(scale, std::sqrt(dot3(h[i], h[i])));
    if (!(scale > 0.0) || !(std::fabs(det) > 1e-10 * scale * scale * scale)) return false;
    const double c10 = h[0][2] * h[2][1] - h[0][1] * h[2][2];
    const double c11 = h[0][0] * h[2][2] - h[0][2] * h[2][0];
    const double c12 = h[0][1] * h[2][0] - h[0][0] * h[2][1];
    const double c20 = h[0][1] * h[1][2] - h[0][2] * h[1][1];
    const double c21 = h[0][2] * h[1][0] - h[0][0] * h[1][2];
    const double c22 = h[0][0] * h[1][1] - h[0][1] * h[1][0];
    // inv[i][j] = cofactor[j][i] / det
    inv = {{{c00 / det, c10 / det, c20 / det}, {c01 / det, c11 / det, c21 / det}, {c02 / det, c12 / det, c22 / det}}};
    // height_k = V / |a_i x a_j| = 1 / |column k of inv|
    for (int k = 0; k < 3; ++k)
        heights[k] = 1.0 / std::sqrt(inv[0][k] * inv[0][k] + inv[1][k] * inv[1][k] + inv[2][k] * inv[2][k]);
    return true;
}

// Greedy length reduction of a 3-D lattice basis: replace a vector by itself plus an
// integer combination of the others while that makes it shorter (pairwise Lagrange
// steps, then the +-1 combinations of the other two). Terminates because the sum of
// squared lengths strictly decreases; capped for safety. Any result is a basis of the
// same lattice (unimodular steps), so exactness never depends on how far it got.
Mat reduce_basis(Mat b) {
    for (int iter = 0; iter < 200; ++iter) {
        bool changed = false;
        for (int i = 0; i < 3; ++i)
            for (int j = 0; j < 3; ++j) {
                if (i == j) continue;
                const double bj2 = dot3(b[j], b[j]);
                const double k = std::nearbyint(dot3(b[i], b[j]) / bj2);
                if (k == 0.0) continue;
                std::array<double, 3> c;
                for (int x = 0; x < 3; ++x) c[x] = b[i][x] - k * b[j][x];
                if (dot3(c, c) < dot3(b[i], b[i]) * (1.0 - 1e-12)) {
                    b[i] = c;
                    changed = true;
                }
            }
        for (int i = 0; i < 3; ++i) {
            const int j = (i + 1) % 3, l = (i + 2) % 3;
            for (int sj = -1; sj <= 1; ++sj)
                for (int sl = -1; sl <= 1; ++sl) {
                    if (sj == 0 || sl == 0) continue;
                    std::array<double, 3> c;
                    for (int x = 0; x < 3; ++x) c[x] = b[i][x] + sj * b[j][x] + sl * b[l][x];
                    if (dot3(c, c) < dot3(b[i], b[i]) * (1.0 - 1e-12)) {
                        b[i] = c;
                        changed = true;
                    }
                }
        }
        if (!changed) break;
    }
    return b;
}

}  // namespace

Box Box::from_matrix(const double* m9) {
    Box b;
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            const double v = m9[3 * i + j];
            if (!std::isfinite(v)) throw std::invalid_argument("box matrix has a non-finite entry");
            b.h_[i][j] = v;
        }
    double det = 0.0;
    if (!invert(b.h_, b.inv_, b.heights_, det))
        throw std::invalid_argument("box matrix is singular (volume " + std::to_string(det) + " A^3)");
    b.volume_ = std::fabs(det);
    b.red_ = reduce_basis(b.h_);
    double red_det = 0.0;
    if (!invert(b.red_, b.red_inv_, b.red_heights_, red_det)) {  // cannot happen for a unimodular change
        b.red_ = b.h_;
        b.red_inv_ = b.inv_;
        b.red_heights_ = b.heights_;
    }
    const auto& h = b.h_;
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
    if (ortho_) {
        for (int k = 0; k < 3; ++k) {
            s[k] = d[k] * inv_[k][k];
            d[k] = (s[k] - std::nearbyint(s[k])) * h_[k][k];
        }
        return;
    }
    for (int k = 0; k < 3; ++k) s[k] = d[0] * red_inv_[0][k] + d[1] * red_inv_[1][k] + d[2] * red_inv_[2][k];
    for (int k = 0; k < 3; ++k) s[k] -= std::nearbyint(s[k]);
    double base[3];
    for (int k = 0; k < 3; ++k) base[k] = s[0] * red_[0][k] + s[1] * red_[1][k] + s[2] * red_[2][k];
    double best2 = base[0] * base[0] + base[1] * base[1] + base[2] * base[2];
    // A shorter image v = base + m.red has |s_k + m_k| * height_k <= |v| <= |base|, so
    // |m_k| <= |base| / height_k + 1/2 bounds the search.
    const double r = std::sqrt(best2) * (1.0 + 1e-12);
    int reach[3];
    for (int k = 0; k < 3; ++k) reach[k] = static_cast<int>(std::floor(r / red_heights_[k] + 0.5));
    double best[3] = {base[0], base[1], base[2]};
    for (int i = -reach[0]; i <= reach[0]; ++i)
        for (int j = -reach[1]; j <= reach[1]; ++j)
            for (int k = -reach[2]; k <= reach[2]; ++k) {
                if (i == 0 && j == 0 && k == 0) continue;
                double c[3];
                for (int x = 0; x < 3; ++x) c[x] = base[x] + i * red_[0][x] + j * red_[1][x] + k * red_[2][x];
                const double c2 = c[0] * c[0] + c[1] * c[1] + c[2] * c[2];
                if (c2 < best2) {
                    best2 = c2;
                    best[0] = c[0]; best[1] = c[1]; best[2] = c[2];
                }
            }
    for (int k = 0; k < 3; ++k) d[k] = best[k];
}

}  // namespace cdml
