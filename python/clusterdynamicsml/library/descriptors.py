"""Shape descriptors of a structure (ref section 4.1), the one implementation in the package.

With tracked positions ``r_i`` (angstrom), ``i = 1..N``, centroid ``c = mean_i r_i``
(unweighted)::

    Rg         = sqrt( mean_i |r_i - c|^2 )
    max_radius = max_i |r_i - c|
    a >= b >= c = sqrt( eigenvalues of C ),   C = (1/N) sum_i (r_i - c)(r_i - c)^T

The semiaxes are the square roots of the population covariance eigenvalues (not scaled to
ellipsoid semi-axes), as ref section 4.1. A set of fewer than two points gives zeros.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["DESCRIPTOR_NAMES", "shape_descriptors", "shape_descriptors_batch", "descriptor_matrix"]

DESCRIPTOR_NAMES = ("radius_of_gyration", "max_radius", "semiaxis_a", "semiaxis_b", "semiaxis_c")


def shape_descriptors(positions) -> dict:
    """Rg, max radius and semiaxes (angstrom) of a point set, unweighted (see module docs).

    An empty set gives zeros.
    """
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    if pos.shape[0] == 0:
        return {"radius_of_gyration": 0.0, "max_radius": 0.0, "semiaxis_a": 0.0, "semiaxis_b": 0.0, "semiaxis_c": 0.0}
    d = pos - pos.mean(axis=0)
    r2 = np.einsum("ij,ij->i", d, d)
    cov = d.T @ d / pos.shape[0]
    eig = np.sort(np.clip(np.linalg.eigvalsh(cov), 0.0, None))[::-1]
    a, b, c = np.sqrt(eig)
    return {
        "radius_of_gyration": float(math.sqrt(r2.mean())),
        "max_radius": float(math.sqrt(r2.max())),
        "semiaxis_a": float(a),
        "semiaxis_b": float(b),
        "semiaxis_c": float(c),
    }


def shape_descriptors_batch(position_sets) -> dict:
    """``shape_descriptors`` of many point sets at once: {name: float64 array (k,)}.

    One batched 3x3 eigen-decomposition instead of one per structure (libraries hold
    thousands of small clusters).
    """
    k = len(position_sets)
    out = {name: np.zeros(k) for name in DESCRIPTOR_NAMES}
    if k == 0:
        return out
    covs = np.zeros((k, 3, 3))
    for i, pos in enumerate(position_sets):
        n = pos.shape[0]
        if n < 2:
            continue
        d = pos - pos.sum(axis=0) / n
        r2 = np.einsum("ij,ij->i", d, d)
        out["max_radius"][i] = math.sqrt(r2.max())
        out["radius_of_gyration"][i] = math.sqrt(r2.mean())
        covs[i] = d.T @ d / n
    eig = np.sort(np.clip(np.linalg.eigvalsh(covs), 0.0, None), axis=1)[:, ::-1]
    out["semiaxis_a"], out["semiaxis_b"], out["semiaxis_c"] = np.sqrt(eig).T
    return out


def descriptor_matrix(position_sets) -> np.ndarray:
    """(k, 5) float64 array of :data:`DESCRIPTOR_NAMES` columns for ``k`` point sets."""
    out = shape_descriptors_batch([np.asarray(p, dtype=np.float64).reshape(-1, 3) for p in position_sets])
    return np.column_stack([out[name] for name in DESCRIPTOR_NAMES]).reshape(-1, len(DESCRIPTOR_NAMES))
