// Periodic simulation cell. Python-free.
//
// The cell is stored as a 3x3 matrix whose ROWS are the lattice vectors a, b, c
// (angstrom). A Cartesian position r (row vector) has fractional coordinates
// s = r H^-1, and r = s H.
#pragma once
#include <array>

namespace cdml {

class Box {
public:
    /// Build from a row-major 3x3 matrix (rows a, b, c). Throws std::invalid_argument
    /// for non-finite entries or a singular / left-handed-degenerate cell.
    static Box from_matrix(const double* m9);
    /// Orthorhombic box with the given edge lengths.
    static Box orthorhombic(double lx, double ly, double lz);

    const std::array<std::array<double, 3>, 3>& matrix() const { return h_; }
    const std::array<std::array<double, 3>, 3>& inverse() const { return inv_; }
    double volume() const { return volume_; }
    /// Perpendicular distance between the two faces spanned by the other two vectors.
    double height(int k) const { return heights_[k]; }
    double min_height() const;
    bool is_orthorhombic() const { return ortho_; }

    void to_fractional(const double* r, double* s) const;
    void to_cartesian(const double* s, double* r) const;
    /// Wrap one position into the primary cell [0, 1) in fractional coordinates.
    void wrap(double* r) const;
    /// Replace the displacement d by its shortest periodic image. Exact for any cell,
    /// however skewed: it works in a length-reduced basis of the same lattice, rounds
    /// in that basis, then tries every lattice shift that could still be shorter (the
    /// projection of a vector on face normal k is s_k * height_k, which bounds the shift
    /// range; usually -1..1 per axis).
    void minimum_image(double* d) const;
    /// Rows of a length-reduced basis of the same lattice (used by minimum_image).
    const std::array<std::array<double, 3>, 3>& reduced_matrix() const { return red_; }

private:
    std::array<std::array<double, 3>, 3> h_{};
    std::array<std::array<double, 3>, 3> inv_{};
    std::array<double, 3> heights_{};
    std::array<std::array<double, 3>, 3> red_{};
    std::array<std::array<double, 3>, 3> red_inv_{};
    std::array<double, 3> red_heights_{};
    double volume_ = 0.0;
    bool ortho_ = false;
};

}  // namespace cdml
