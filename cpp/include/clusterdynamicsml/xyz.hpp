// Atom lines of one XYZ / extended-XYZ / CP2K-pos frame -> arrays. Python-free.
//
// The caller has read the atom-count and comment lines (and knows the species and position
// columns from an extended-XYZ Properties key); this parses the n atom lines that follow:
// one whitespace-separated token per column, the species token (kept as a code into a table
// of the distinct tokens, in order of first appearance) and three coordinates, correctly
// rounded (std::from_chars). No locale, no per-atom allocation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace cdml {

/// Where and why the atom lines could not be read. `row` is the 0-based atom line of the
/// frame (blank lines not counted in a one-frame file), or -1 for a frame-level problem.
class XyzParseError : public std::invalid_argument {
public:
    XyzParseError(int64_t row, const std::string& what)
        : std::invalid_argument(row >= 0 ? "atom line " + std::to_string(row + 1) + " of the frame: " + what : what),
          row_(row) {}
    int64_t row() const { return row_; }

private:
    int64_t row_;
};

struct XyzAtoms {
    std::vector<double> positions;       ///< n x 3, angstrom, as written
    std::vector<int32_t> species;        ///< n codes into tokens
    std::vector<std::string> tokens;     ///< distinct species tokens, in order of first appearance
};

/// Parse n atom lines starting at data[0] (data holds at least the frame; size bytes).
/// species_col / pos_col: 0-based token columns of the species and of x (y, z follow);
/// ncols: exact token count per line, or -1 for "at least max(species_col, pos_col + 2) + 1"
/// (plain XYZ: "element x y z", extra columns ignored). single: a whole one-frame file:
/// blank lines are skipped and only blank lines may follow the last atom.
/// Throws XyzParseError for a missing or short line, a bad or non-finite coordinate, or
/// (single) extra lines.
XyzAtoms parse_xyz_atoms(const char* data, std::size_t size, int64_t n, int species_col, int pos_col, int ncols,
                         bool single);

}  // namespace cdml
