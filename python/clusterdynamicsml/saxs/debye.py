"""Debye scattering of clusters, Debye-Waller spreads, SAXS components and mixtures.

Equations (absolute units, electrons^2; q in 1/angstrom; r in angstrom):

    I(q) = sum_i sum_j f_i(q) f_j(q) sinc(q r_ij),        sinc(x) = sin(x)/x, sinc(0) = 1

grouped by element type a, b (counts n_a) with the partial sums
S_ab(q) = sum over unordered pairs i < j of types {a, b} of sinc(q r_ij):

    I(q) = sum_a n_a f_a^2 + 2 sum_{a <= b} f_a f_b D_ab(q) S_ab(q)

where D_ab(q) = exp(-sigma_ab^2 q^2 / 2) is the pairwise Debye-Waller damping (B = 8 pi^2 sigma^2).
With ``dw_pairs="all"`` (default, the formula of the reference user guide) every i != j pair
is damped; ``dw_pairs="first_shell"`` damps only first-shell pairs, i.e. pairs with a cutoff
and d <= shell_factor * cutoff plus node-scaffold edges (ref section 5.3, what its code does):

    I(q) = sum_a n_a f_a^2 + 2 sum_{a<=b} f_a f_b [S_ab(q) + (D_ab(q) - 1) S_ab^shell(q)].

The O(N^2 Q) work is done in C++ (see cpp/include/clusterdynamicsml/debye.hpp): an exact kernel
and a histogram kernel (pair distances binned with width w, each bin at its mean distance)
whose error is bounded by

    |I_hist(q) - I_exact(q)| <= e(q) * ((sum_i |f_i|)^2 - sum_i f_i^2)
    e(q) = (q w')^2 / 24 + q (2^-17 w + 1e-12 r_max) / 2,   w' = w + 2e-12 r_max

(r_max: diagonal of the atoms' bounding box; the last terms cover the 16-bit fixed-point bin
offsets and the distance arithmetic and are negligible). That is at most e(q) of the forward
intensity I(0) = (sum f)^2: 1.7e-7 at q = 2 1/A for w = 0.001 A, 1.7e-5 for w = 0.01 A.
Both kernels are bit-identical for any thread count.

A whole ensemble (a label's structures) is one call of
:func:`clusterdynamicsml.saxs.ensemble.debye_partials_ensemble`: the weighted-mean partials,
optionally from one histogram shared by every pair of every structure; the same e(q), with
r_max the largest diagonal, bounds the mean trace's error: |mean I_hist - mean I_exact| <=
e(q) * 2 sum_{a<=b} |f_a f_b| mean(N_ab) <= e(q) * mean I(0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import _core
from .._threads import resolve_threads
from .._validate import as_cutoff, as_positions
from ..saxs.formfactors import _as_q, form_factors, normalize_element

__all__ = [
    "DebyePartials",
    "RankAlignedSpread",
    "b_factor_from_sigma",
    "debye_intensity",
    "debye_partials",
    "first_shell_pairs",
    "rank_aligned_sigma",
    "rank_aligned_spread",
    "read_structure",
    "sigma_from_b_factor",
]

METHODS = ("exact", "histogram")
DW_PAIRS = ("all", "first_shell")


# ----------------------------------------------------------------------------- helpers
def b_factor_from_sigma(sigma):
    """B = 8 pi^2 sigma^2 (angstrom^2) from a pair-distance spread sigma (angstrom)."""
    s = np.asarray(sigma, dtype=np.float64)
    return 8.0 * np.pi**2 * s**2


def sigma_from_b_factor(b):
    """sigma = sqrt(B / (8 pi^2)) (angstrom) from B (angstrom^2 >= 0)."""
    bb = np.asarray(b, dtype=np.float64)
    if np.any(bb < 0) or not np.all(np.isfinite(bb)):
        raise ValueError(f"B factors must be finite and >= 0 angstrom^2, got {b!r}")
    return np.sqrt(bb / (8.0 * np.pi**2))


def _pair_key(key) -> tuple[str, str]:
    from ..chem import parse_pair

    try:
        a, b = parse_pair(key)
        return a, b
    except ValueError as exc:
        raise ValueError(f"element pair must be ('A', 'B') or 'A-B': {exc}") from None


def _pair_dict(values, name: str) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    if values is None:
        return out
    if not isinstance(values, dict):
        raise ValueError(f"{name} must be a dict {{('A', 'B'): value}}, got {type(values).__name__}")
    for k, v in values.items():
        out[_pair_key(k)] = as_cutoff(v, f"{name}[{k!r}]")
    return out


def _symbols(symbols, n: int) -> list[str]:
    if isinstance(symbols, str):
        raise ValueError("symbols must be a sequence of element symbols, not one string")
    syms = [normalize_element(s) for s in symbols]
    if len(syms) != n:
        raise ValueError(f"symbols has {len(syms)} entries but positions has {n} rows")
    return syms


def _types(symbols: list[str]) -> tuple[list[str], np.ndarray]:
    elements = sorted(set(symbols))
    index = {e: k for k, e in enumerate(elements)}
    return elements, np.array([index[s] for s in symbols], dtype=np.int32)


def _pair_list(elements) -> list[tuple[str, str]]:
    return [(elements[a], elements[b]) for a in range(len(elements)) for b in range(a, len(elements))]


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _check_bin_width(w) -> float:
    from .._validate import as_positive

    return as_positive(w, "bin_width", "angstrom")


# ----------------------------------------------------------------------------- first shell
def _add_node_scaffold(edges: set[tuple[int, int]], pos: np.ndarray, syms, node_elements) -> None:
    """Add to ``edges`` the node scaffold: the node atoms, already joined by the node-node
    pairs in ``edges``, are joined component by component by the shortest remaining node-node
    edges (Kruskal), as the reference's _node_scaffold_edges."""
    nodes_el = {normalize_element(e) for e in node_elements}
    nodes = [k for k, s in enumerate(syms) if s in nodes_el]
    parent = {k: k for k in nodes}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    node_set = set(nodes)
    for i, j in edges:
        if i in node_set and j in node_set:
            parent[find(i)] = find(j)
    cand = []
    for x, i in enumerate(nodes):
        for j in nodes[x + 1 :]:
            cand.append((float(np.linalg.norm(pos[i] - pos[j])), i, j))
    for _, i, j in sorted(cand):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[ri] = rj
            edges.add((i, j))


def first_shell_pairs(positions, symbols, cutoffs, shell_factor: float = 1.15, node_elements=None):
    """Pairs damped by ``dw_pairs="first_shell"`` (reference rule, ref section 5.3).

    Every pair whose element pair has a cutoff in ``cutoffs`` ({('Pb', 'I'): 3.36, ...}, angstrom)
    and distance d <= shell_factor * cutoff, plus, when ``node_elements`` is given, the node
    scaffold: node atoms joined component by component by the shortest remaining node-node
    edges (Kruskal), as the reference's _node_scaffold_edges.
    Returns (i, j, d): int64, int64, float64 arrays, i < j, sorted by (i, j).
    """
    pos = as_positions(positions)
    syms = _symbols(symbols, pos.shape[0])
    cut = _pair_dict(cutoffs, "cutoffs")
    if not cut:
        raise ValueError("dw_pairs='first_shell' needs cutoffs={('A', 'B'): angstrom, ...}")
    sf = float(shell_factor)
    if not math.isfinite(sf) or sf <= 0:
        raise ValueError(f"shell_factor must be > 0, got {shell_factor!r}")
    n = pos.shape[0]
    edges: set[tuple[int, int]] = set()
    if n >= 2:
        elements, types = _types(syms)
        T = len(elements)
        cm = np.zeros((T, T))
        for a in range(T):
            for b in range(T):
                cm[a, b] = cut.get(_pair_key((elements[a], elements[b])), 0.0) * sf
        if cm.max() > 0:
            from ..geometry.neighbors import neighbor_pairs_typed

            ii, jj, _ = neighbor_pairs_typed(pos, types, cm, box=None)
            edges.update(zip(ii.tolist(), jj.tolist()))
        if node_elements:
            _add_node_scaffold(edges, pos, syms, node_elements)
    if not edges:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    e = np.array(sorted(edges), dtype=np.int64)
    d = np.linalg.norm(pos[e[:, 1]] - pos[e[:, 0]], axis=1)
    return e[:, 0].copy(), e[:, 1].copy(), d


# ----------------------------------------------------------------------------- Debye
@dataclass(frozen=True)
class DebyePartials:
    """Partial Debye sums of one structure, from which I(q) is assembled for any damping.

    q : float64 (nq,), 1/angstrom.  elements : element of each type (sorted).
    counts : int64 (T,), atoms per element.  pairs : the P = T (T + 1) / 2 element pairs.
    s : float64 (P, nq), S_ab(q) over all pairs (dimensionless).
    s_shell : float64 (P, nq) over first-shell pairs only, or None.
    method : 'exact' or 'histogram'; bin_width : angstrom (histogram) or None.
    r_max : diagonal of the atoms' bounding box (angstrom), used by the histogram error bound.
    """

    q: np.ndarray
    elements: tuple
    counts: np.ndarray
    pairs: tuple
    s: np.ndarray
    s_shell: np.ndarray | None = None
    method: str = "exact"
    bin_width: float | None = None
    pair_counts: np.ndarray | None = None
    r_max: float = 0.0

    def form_factor_table(self, ff=None) -> np.ndarray:
        """(T, nq) form factors (electrons), from xraydb unless ``ff`` {element: (nq,)} is given."""
        table = ff if ff is not None else form_factors(self.elements, self.q)
        rows = []
        for e in self.elements:
            if e not in table:
                raise ValueError(f"form factors given for {sorted(table)} but not for {e!r}")
            v = np.asarray(table[e], dtype=np.float64)
            if v.shape != self.q.shape:
                raise ValueError(f"form factor of {e} has shape {v.shape}, expected {self.q.shape}")
            rows.append(v)
        return np.array(rows).reshape(len(self.elements), self.q.size)

    def intensity(self, sigma=None, dw_pairs: str = "all", sigma_scale: float = 1.0, ff=None) -> np.ndarray:
        """I(q) in electrons^2, float64 (nq,).

        sigma : {('A', 'B'): sigma_ab in angstrom} (missing pairs: no damping) or None.
        dw_pairs : 'all' (damp every i != j pair) or 'first_shell' (needs partials computed
        with cutoffs). sigma_scale : common factor on every sigma (used by the fit).
        """
        if dw_pairs not in DW_PAIRS:
            raise ValueError(f"dw_pairs must be one of {DW_PAIRS}, got {dw_pairs!r}")
        sg = _pair_dict(sigma, "sigma")
        f = self.form_factor_table(ff)
        q2 = self.q**2
        out = (self.counts[:, None] * f * f).sum(axis=0)
        scale = float(sigma_scale)
        if not math.isfinite(scale) or scale < 0:
            raise ValueError(f"sigma_scale must be finite and >= 0, got {sigma_scale!r}")
        index = {e: k for k, e in enumerate(self.elements)}
        for p, (a, b) in enumerate(self.pairs):
            ff_ab = f[index[a]] * f[index[b]]
            s_ab = self.s[p]
            sig = sg.get((a, b), 0.0) * scale
            if sig > 0:
                damp = np.exp(-0.5 * sig * sig * q2)
                if dw_pairs == "all":
                    s_ab = damp * s_ab
                else:
                    if self.s_shell is None:
                        raise ValueError("dw_pairs='first_shell' needs partials computed with cutoffs")
                    s_ab = s_ab + (damp - 1.0) * self.s_shell[p]
            out = out + 2.0 * ff_ab * s_ab
        return out

    def histogram_error_bound(self, ff=None) -> np.ndarray:
        """Bound on |I_hist - I_exact| (electrons^2, (nq,)) for the undamped trace:
        e(q) ((sum_i |f_i|)^2 - sum_i f_i^2) with e(q) from the module docstring; zeros for the
        exact method. Damping by exp(-sigma^2 q^2 / 2) <= 1 only shrinks each pair's error."""
        if self.method != "histogram":
            return np.zeros_like(self.q)
        if self.bin_width is None:
            raise ValueError("histogram partials need their bin_width (angstrom)")
        f = self.form_factor_table(ff)
        sum_abs = (self.counts[:, None] * np.abs(f)).sum(axis=0)
        sum_sq = (self.counts[:, None] * f * f).sum(axis=0)
        return histogram_error_per_pair(self.q, self.bin_width, self.r_max) * (sum_abs**2 - sum_sq)


def histogram_error_per_pair(q, bin_width: float, r_max: float) -> np.ndarray:
    """e(q): bound on |sinc(q r) - its histogram bin's share| per pair (dimensionless), for bin
    width ``bin_width`` and bounding-box diagonal ``r_max`` (angstrom); see the module docstring."""
    q = np.asarray(q, dtype=np.float64)
    w_eff = bin_width + 2e-12 * r_max
    return (q * w_eff) ** 2 / 24.0 + q * (2.0**-17 * bin_width + 1e-12 * r_max) / 2.0


def debye_partials(positions, symbols, q, method: str = "exact", bin_width: float = 0.001,
                   cutoffs=None, shell_factor: float = 1.15, node_elements=None,
                   num_threads=None) -> DebyePartials:
    """Partial sums S_ab(q) of one structure (see the module docstring).

    positions : (n, 3) angstrom; symbols : (n,) element symbols; q : (nq,) 1/angstrom >= 0.
    method : 'exact' (all pairs; sin recurrence on uniform grids) or 'histogram' (pair distances
    binned per element pair with width ``bin_width`` angstrom; error bound in the module doc).
    cutoffs : {('A', 'B'): angstrom} to also compute the first-shell sums (``dw_pairs='first_shell'``).
    """
    pos = as_positions(positions)
    syms = _symbols(symbols, pos.shape[0])
    qa = _as_q(q)
    _check_method(method)
    bw = _check_bin_width(bin_width)
    nt = resolve_threads(num_threads)
    elements, types = _types(syms) if syms else ([], np.zeros(0, np.int32))
    if not elements:
        raise ValueError("a structure needs at least one atom")
    s, counts, pair_counts, _uniform = _core.debye_partials(pos, types, len(elements), qa, method, bw, nt)
    pairs = tuple(_pair_list(elements))
    s_shell = None
    if cutoffs is not None:
        i, j, d = first_shell_pairs(pos, syms, cutoffs, shell_factor, node_elements)
        T = len(elements)
        a, b = np.minimum(types[i], types[j]).astype(np.int64), np.maximum(types[i], types[j]).astype(np.int64)
        ptype = a * T - a * (a - 1) // 2 + (b - a)
        s_shell = _core.debye_pairlist_partials(np.ascontiguousarray(d), np.ascontiguousarray(ptype),
                                                len(pairs), qa, nt)
    r_max = float(np.linalg.norm(np.ptp(pos, axis=0))) if pos.shape[0] else 0.0
    return DebyePartials(q=qa, elements=tuple(elements), counts=np.asarray(counts), pairs=pairs, s=s,
                         s_shell=s_shell, method=method, bin_width=bw if method == "histogram" else None,
                         pair_counts=np.asarray(pair_counts), r_max=r_max)


def debye_intensity(positions, symbols, q, sigma=None, method: str = "exact", *, dw_pairs: str = "all",
                    cutoffs=None, shell_factor: float = 1.15, node_elements=None, bin_width: float = 0.001,
                    num_threads=None) -> np.ndarray:
    """Debye intensity I(q) in absolute units (electrons^2), float64 (nq,).

    positions : (n, 3) float, angstrom.  symbols : (n,) element symbols ('Pb', 'I', ...).
    q : (nq,) 1/angstrom, q = 4 pi sin(theta) / lambda, >= 0.
    sigma : {('I', 'Pb'): 0.08, ...} pair-distance spreads in angstrom; off-diagonal terms of the
        pair are multiplied by exp(-sigma^2 q^2 / 2). None: no damping.
    method : 'exact' or 'histogram' (bin width ``bin_width`` angstrom; error bound above).
    dw_pairs : 'all' (default) or 'first_shell' (reference rule; needs ``cutoffs`` and uses
        ``shell_factor`` and optional ``node_elements``).
    num_threads : None (package default) or a positive int. The result is bit-identical for any value.

    Self terms are included: I(0) = (sum_i f_i(0))^2.
    """
    if dw_pairs not in DW_PAIRS:
        raise ValueError(f"dw_pairs must be one of {DW_PAIRS}, got {dw_pairs!r}")
    if dw_pairs == "first_shell" and cutoffs is None:
        raise ValueError("dw_pairs='first_shell' needs cutoffs={('A', 'B'): angstrom, ...}")
    _pair_dict(sigma, "sigma")
    parts = debye_partials(positions, symbols, q, method=method, bin_width=bin_width,
                           cutoffs=cutoffs if dw_pairs == "first_shell" else None, shell_factor=shell_factor,
                           node_elements=node_elements, num_threads=num_threads)
    return parts.intensity(sigma=sigma, dw_pairs=dw_pairs)


# ----------------------------------------------------------------------------- spreads
@dataclass(frozen=True)
class RankAlignedSpread:
    """Result of :func:`rank_aligned_spread`: sigma (angstrom), B = 8 pi^2 sigma^2 (angstrom^2),
    aligned_count n*, support (structures containing the pair), per-rank sigma_k and mean d_k."""

    pair: tuple
    sigma: float
    b_factor: float
    aligned_count: int
    support: int
    rank_sigma: np.ndarray
    rank_mean: np.ndarray


def _structure(obj, k: int):
    if hasattr(obj, "symbols") and hasattr(obj, "positions"):
        syms, pos = obj.symbols, obj.positions
    else:
        try:
            syms, pos = obj
        except (TypeError, ValueError):
            raise ValueError(f"structure {k} must be (symbols, positions) or have .symbols/.positions") from None
    p = as_positions(pos, name=f"positions of structure {k}")
    return _symbols(syms, p.shape[0]), p


def rank_aligned_spread(structures, pair, cutoff=None, num_threads=None) -> RankAlignedSpread:
    """Rank-aligned spread of one element pair's first-shell distances over an ensemble.

    structures : sequence of (symbols, positions) (or objects with .symbols and .positions),
        positions (n, 3) angstrom. pair : ('Pb', 'I') or 'Pb-I'.
    cutoff : keep pairs with d <= cutoff (angstrom; the reference uses 1.15 x the pair cutoff);
        None keeps every pair of the two elements.
    Per structure the distances are sorted; structures without the pair are skipped and at
    least two must remain; ranks k < n* = min count are aligned; sigma_k is the population std
    over structures; sigma = sqrt(mean_k sigma_k^2); B = 8 pi^2 sigma^2.
    """
    key = _pair_key(pair)
    structs = [_structure(s, k) for k, s in enumerate(structures)]
    if len(structs) < 2:
        raise ValueError(f"rank_aligned_sigma needs at least two structures, got {len(structs)}")
    if cutoff is None:
        cut = 0.0
    else:
        cut = float(cutoff)
        if not math.isfinite(cut) or cut <= 0:
            raise ValueError(f"cutoff must be a positive distance in angstrom or None, got {cutoff!r}")
    index = {key[0]: 0}
    if key[1] != key[0]:
        index[key[1]] = 1
    pos_list, type_list = [], []
    for syms, pos in structs:
        pos_list.append(pos)
        type_list.append(np.array([index.get(s, -1) for s in syms], dtype=np.int32))
    sigma, b, nstar, support, rank_sigma, rank_mean = _core.rank_aligned_sigma(
        pos_list, type_list, 0, index[key[1]], cut, resolve_threads(num_threads))
    return RankAlignedSpread(key, float(sigma), float(b), int(nstar), int(support), rank_sigma, rank_mean)


def rank_aligned_sigma(structures, pair, cutoff=None, num_threads=None) -> float:
    """sigma (angstrom) of :func:`rank_aligned_spread`; e.g. Pb-I distances 1.0 and 1.1 in two
    structures give 0.05."""
    return rank_aligned_spread(structures, pair, cutoff, num_threads).sigma


# ----------------------------------------------------------------------------- structures
def read_structure(path) -> tuple[list[str], np.ndarray]:
    """Read one structure file (.xyz or .pdb) -> (symbols, positions (n, 3) angstrom).

    A thin wrapper of :func:`clusterdynamicsml.io.frames.read_structure` (same parsing rules;
    errors are FileFormatError naming the file and the line)."""
    from ..library.read import read_structure as _read_structure

    return _read_structure(path)


def _load(struct, k: int):
    if isinstance(struct, (str, Path)):
        return read_structure(struct)
    return _structure(struct, k)
