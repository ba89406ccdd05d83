"""Direction sets and small vector helpers of the structure builder (unit vectors, angles in
degrees, distances in angstrom)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_N_SPHERE = 48
_CONE_SAMPLES = 10


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross has a large per-call overhead)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _cross_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross products of (m, 3) arrays (np.cross spends most of its time on axis handling)."""
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    out[..., 0] = a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1]
    out[..., 1] = a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2]
    out[..., 2] = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    if v.ndim == 1:
        n = math.sqrt(float(v @ v))
        return v / n if n > 1e-12 else np.zeros(3)
    n = np.sqrt((v * v).sum(axis=-1, keepdims=True))
    return np.divide(v, n, out=np.zeros_like(v), where=n > 1e-12)


def _fibonacci_sphere(n: int) -> np.ndarray:
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    r = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    phi = k * math.pi * (3.0 - math.sqrt(5.0))
    return np.column_stack([r * np.cos(phi), r * np.sin(phi), z])


_SPHERE = _fibonacci_sphere(_N_SPHERE)
_DENSE_SPHERE = _fibonacci_sphere(400)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """Uniformly random rotation matrix from a normalised Gaussian quaternion (w, x, y, z)."""
    w, x, y, z = rng.standard_normal(4)
    n = math.sqrt(w * w + x * x + y * y + z * z) or 1.0
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Orthonormal (axis, u, v); a fixed axis when ``axis`` is zero."""
    a = _unit(np.asarray(axis, float))
    if not np.any(a):
        a = np.array([1.0, 0.0, 0.0])
    helper = np.array([0.0, 0.0, 1.0]) if abs(a[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = _unit(_cross(a, helper))
    v = _cross(a, u)
    return a, u, v


def _basis_directions(axis: np.ndarray) -> np.ndarray:
    """The 12 directions of ref §4.8 around an axis: +-a, +-u, +-v, a+-u, a+-v, u+-v (normalised)."""
    a, u, v = _basis(axis)
    d = np.array([a, -a, u, -u, v, -v, a + u, a - u, a + v, a - v, u + v, u - v])
    return _unit(d)


def _cone(axis: np.ndarray, angle_deg: float, n: int = _CONE_SAMPLES, phase: float = 0.0) -> np.ndarray:
    a, u, v = _basis(axis)
    t = math.radians(angle_deg)
    phi = phase + 2.0 * math.pi * np.arange(n) / n
    return math.cos(t) * a + math.sin(t) * (np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v)


def _cone_angles(targets: Sequence[float]) -> list[float]:
    """Target angles that define a cone (a 0 or 180 degree target is a single direction)."""
    return [t for t in targets if 15.0 < t < 165.0]


def _cones(axis: np.ndarray, angles_deg: Sequence[float], n: int = _CONE_SAMPLES, phase: float = 0.0) -> np.ndarray:
    """``_cone(axis, t, n, phase)`` for every t of ``angles_deg``, stacked in that order ((len * n, 3))."""
    if len(angles_deg) == 0:
        return np.zeros((0, 3))
    a, u, v = _basis(axis)
    t = np.radians(np.asarray(angles_deg, dtype=float))
    phi = phase + 2.0 * math.pi * np.arange(n) / n
    ring = np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * v          # (n, 3)
    out = np.cos(t)[:, None, None] * a + np.sin(t)[:, None, None] * ring[None]
    return out.reshape(-1, 3)


def _bases(axes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_basis` for every row of ``axes`` (m, 3) at once: (a, u, v), each (m, 3)."""
    a = _unit(np.asarray(axes, float))
    zero = ~np.any(a, axis=1)
    a[zero] = (1.0, 0.0, 0.0)
    helper = np.where((np.abs(a[:, 2]) < 0.9)[:, None], (0.0, 0.0, 1.0), (0.0, 1.0, 0.0))
    u = _unit(_cross_rows(a, helper))
    v = _cross_rows(a, u)
    return a, u, v


def _neighbour_cones(w: np.ndarray, targets: Sequence[Sequence[float]], n: int = _CONE_SAMPLES,
                     phase: float = 0.0) -> np.ndarray:
    """The cones of every row of w at its own cone angles (:func:`_cone_angles` of its targets),
    stacked row by row as ``_cones(w[k], _cone_angles(targets[k]), n, phase)`` would give them."""
    if len(w) == 0:
        return np.zeros((0, 3))
    angles = [_cone_angles(t) for t in targets]
    width = max((len(x) for x in angles), default=0)
    if width == 0:
        return np.zeros((0, 3))
    tab = np.full((len(w), width), np.nan)
    for k, x in enumerate(angles):
        tab[k, : len(x)] = x
    a, u, v = _bases(w)
    t = np.radians(tab)                                               # (m, T)
    phi = phase + 2.0 * math.pi * np.arange(n) / n
    ring = np.cos(phi)[None, :, None] * u[:, None, :] + np.sin(phi)[None, :, None] * v[:, None, :]  # (m, n, 3)
    out = np.cos(t)[:, :, None, None] * a[:, None, None, :] + np.sin(t)[:, :, None, None] * ring[:, None, :, :]
    return out[np.isfinite(tab)].reshape(-1, 3)


def _cone_intersections(w: np.ndarray, targets: Sequence[Sequence[float]]) -> np.ndarray:
    """Unit directions x that make a target angle with two neighbours at once: for every pair
    (a, b) of the unit rows of w and every pair of their target angles (up to two solutions
    each), plus the opposite -w_a of every row. These are the sites that complete a polyhedron
    around a centre whose neighbours point along w (e.g. the free corners of an octahedron).

    Solved for all pairs at once: x = alpha w_a + beta w_b + gamma n with n = unit(w_a x w_b),
    alpha = (c_a - c_b g) / (1 - g^2), beta = (c_b - c_a g) / (1 - g^2), g = w_a . w_b and
    gamma^2 = 1 - (alpha^2 + beta^2 + 2 alpha beta g) >= 0. Output order: -w, then pair (a < b),
    target of a, target of b, (+gamma, -gamma)."""
    m = w.shape[0]
    if m < 2:
        return _unit(-w) if m else np.zeros((0, 3))
    cones = [np.cos(np.radians(_cone_angles(t))) for t in targets]
    width = max((len(c) for c in cones), default=0)
    if width == 0:
        return _unit(-w)
    tab = np.full((m, width), np.nan)
    for k, c in enumerate(cones):
        tab[k, : len(c)] = c
    ia, ib = np.triu_indices(m, 1)
    g = np.einsum("ij,ij->i", w[ia], w[ib])
    good = 1.0 - g * g >= 1e-6
    ia, ib, g = ia[good], ib[good], g[good]
    if ia.size == 0:
        return _unit(-w)
    n = _cross_rows(w[ia], w[ib])
    n /= np.sqrt(np.einsum("ij,ij->i", n, n))[:, None]
    ca = tab[ia][:, :, None]                     # (P, T, 1)
    cb = tab[ib][:, None, :]                     # (P, 1, T)
    gg = g[:, None, None]
    den = 1.0 - gg * gg
    alpha = (ca - cb * gg) / den
    beta = (cb - ca * gg) / den
    gamma2 = 1.0 - (alpha * alpha + beta * beta + 2.0 * alpha * beta * gg)
    ok = np.isfinite(gamma2) & (gamma2 >= 0.0)   # padded targets are NaN
    gamma = np.sqrt(np.where(ok, gamma2, 0.0))
    base = alpha[..., None] * w[ia][:, None, None, :] + beta[..., None] * w[ib][:, None, None, :]
    sol = np.stack([base + gamma[..., None] * n[:, None, None, :], base - gamma[..., None] * n[:, None, None, :]],
                   axis=3)                       # (P, T, T, 2, 3)
    return _unit(np.vstack([-w, sol[ok].reshape(-1, 3)]))


def _angle_cost(dirs: np.ndarray, nb_vec: np.ndarray, targets: Sequence[Sequence[float]]) -> np.ndarray:
    """sum over neighbours of min over that neighbour's target angles |angle - target| (degrees),
    for every unit direction in dirs (K, 3); nb_vec (m, 3) unit neighbour vectors."""
    if len(nb_vec) == 0:
        return np.zeros(len(dirs))
    width = max(len(t) for t in targets)
    tab = np.full((len(targets), width), 1e9)
    for k, t in enumerate(targets):
        tab[k, : len(t)] = t
    ang = _angles_deg(dirs, nb_vec)
    return np.abs(ang[:, :, None] - tab[None, :, :]).min(axis=2).sum(axis=1)


def _angles_deg(u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Angles (K, m) in degrees between unit rows of u (K, 3) and unit rows of w (m, 3)."""
    return np.degrees(np.arccos(np.clip(u @ w.T, -1.0, 1.0)))


def _pairwise(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Distances (K, n) between rows of p (K, 3) and q (n, 3), angstrom."""
    diff = p[:, None, :] - q[None, :, :]
    return np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))

