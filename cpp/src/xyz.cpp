#include "clusterdynamicsml/xyz.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

namespace cdml {
namespace {

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

inline bool blank(const char* a, const char* b) {
    for (; a < b; ++a)
        if (!is_space(*a)) return false;
    return true;
}

/// A whole token as a finite double (a leading '+' is allowed, as Python's float() does).
inline bool to_double(const char* a, const char* b, double& out) {
    if (a < b && *a == '+' && b - a > 1 && a[1] != '-' && a[1] != '+') ++a;
    const auto res = std::from_chars(a, b, out, std::chars_format::general);
    return res.ec == std::errc() && res.ptr == b && std::isfinite(out);
}

}  // namespace

XyzAtoms parse_xyz_atoms(const char* data, std::size_t size, int64_t n, int species_col, int pos_col, int ncols,
                         bool single) {
    if (n < 0) throw XyzParseError(-1, "negative atom count " + std::to_string(n));
    if (species_col < 0 || pos_col < 0 || species_col == pos_col || (species_col > pos_col && species_col < pos_col + 3))
        throw XyzParseError(-1, "bad column layout: species column " + std::to_string(species_col) +
                                    ", position columns from " + std::to_string(pos_col));
    const int need = std::max(species_col, pos_col + 2) + 1;
    if (ncols >= 0 && ncols < need)
        throw XyzParseError(-1, "Properties give " + std::to_string(ncols) + " columns, need at least " +
                                    std::to_string(need));
    XyzAtoms out;
    out.positions.resize(3 * static_cast<std::size_t>(n));
    out.species.resize(static_cast<std::size_t>(n));
    const char* p = data;
    const char* const end = data + size;
    int32_t last_code = -1;
    for (int64_t row = 0; row < n; ++row) {
        const char* le;
        for (;;) {
            if (p >= end)
                throw XyzParseError(row, "the frame ends after " + std::to_string(row) + " of " + std::to_string(n) +
                                             " atom lines");
            le = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
            if (!le) le = end;
            if (single && blank(p, le)) {
                p = le + 1;
                continue;
            }
            break;
        }
        int col = 0;
        const char* q = p;
        double* xyz = out.positions.data() + 3 * row;
        for (;;) {
            while (q < le && is_space(*q)) ++q;
            if (q >= le) break;
            const char* t = q;
            while (q < le && !is_space(*q)) ++q;
            if (col == species_col) {
                const std::size_t len = static_cast<std::size_t>(q - t);
                int32_t code = -1;
                if (last_code >= 0 && out.tokens[last_code].size() == len &&
                    std::memcmp(out.tokens[last_code].data(), t, len) == 0) {
                    code = last_code;
                } else {
                    for (std::size_t k = 0; k < out.tokens.size(); ++k)
                        if (out.tokens[k].size() == len && std::memcmp(out.tokens[k].data(), t, len) == 0) {
                            code = static_cast<int32_t>(k);
                            break;
                        }
                    if (code < 0) {
                        code = static_cast<int32_t>(out.tokens.size());
                        out.tokens.emplace_back(t, len);
                    }
                }
                last_code = code;
                out.species[row] = code;
            } else if (col >= pos_col && col < pos_col + 3) {
                if (!to_double(t, q, xyz[col - pos_col]))
                    throw XyzParseError(row, "non-numeric or non-finite coordinate '" + std::string(t, q) + "'");
            }
            ++col;
            if (ncols >= 0 && col > ncols) break;
        }
        if (ncols >= 0 ? col != ncols : col < need)
            throw XyzParseError(row, "expected " + std::to_string(ncols >= 0 ? ncols : need) + " columns, got " +
                                         std::to_string(col) + (ncols >= 0 && col > ncols ? " or more" : ""));
        p = le + 1;
    }
    if (single) {
        while (p < end) {
            const char* le = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
            if (!le) le = end;
            if (!blank(p, le)) throw XyzParseError(n, "more lines than the atom count " + std::to_string(n));
            p = le + 1;
        }
    }
    return out;
}

}  // namespace cdml
