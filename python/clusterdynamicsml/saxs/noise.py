"""Measurement noise estimated from the curve itself, compared with the file's sigma column.

For three neighbouring points (q_{i-1}, q_i, q_{i+1}) the linear interpolation residual

    r_i = y_i - (a_i y_{i-1} + b_i y_{i+1}),   a_i = (q_{i+1} - q_i) / (q_{i+1} - q_{i-1}),  b_i = 1 - a_i

removes any locally linear signal; for independent noise of local standard deviation s it has
variance s^2 (1 + a_i^2 + b_i^2). The local noise is the running median of
|r_i| / (0.6745 sqrt(1 + a_i^2 + b_i^2)) over ``window`` points (0.6745 = the median of |N(0, 1)|,
so a median is robust against the curvature of the signal and against outliers); it is
computed on each detector segment of a stitched curve on its own (no difference straddles a
join), so stitching keeps each detector's own noise. The comparison with the file's sigma is
the median of sigma_file / sigma_estimate, per segment and overall.

``choose_noise`` uses the estimate for the statistics when the file's sigma and the estimate
disagree by more than ``factor`` (default 2) in either direction, otherwise the file's sigma.
The curvature term of a smooth curve sampled at spacing h is of order h^2 |y''| / 4, which on
the APS PbI2/DMF data (h ~ 0.002 1/A) is well below the counting noise; a curve sampled too
coarsely for that would make the estimate an upper bound (reported as such).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NoiseEstimate", "choose_noise", "estimate_noise"]

_MAD = 0.6744897501960817  # median of |N(0, 1)|


@dataclass(frozen=True)
class NoiseEstimate:
    """Noise of one curve on its own q points.

    sigma : (n,) the estimated standard deviation per point (data units).
    file_sigma : (n,) the file's sigma column, or None.
    ratio : median of file_sigma / sigma (None without a sigma column).
    segment_ratios : the same ratio per detector segment [(q_lo, q_hi, ratio, points)].
    used : 'estimate' or 'file'; used_sigma : (n,) the sigma the statistics use.
    note : one sentence for the report.
    """

    q: np.ndarray
    sigma: np.ndarray
    file_sigma: np.ndarray | None
    ratio: float | None
    segment_ratios: tuple
    used: str
    used_sigma: np.ndarray
    note: str

    def select(self, mask) -> NoiseEstimate:
        m = np.asarray(mask, dtype=bool)
        return NoiseEstimate(self.q[m], self.sigma[m], None if self.file_sigma is None else self.file_sigma[m],
                             self.ratio, self.segment_ratios, self.used, self.used_sigma[m], self.note)

    def to_dict(self) -> dict:
        return {"file_sigma_over_estimate": self.ratio, "used": self.used, "note": self.note,
                "segments": [{"q_min": a, "q_max": b, "file_sigma_over_estimate": r, "points": n}
                             for a, b, r, n in self.segment_ratios]}


def _running_median(x: np.ndarray, window: int) -> np.ndarray:
    n = x.size
    h = max(int(window) // 2, 1)
    if n <= 2 * h + 1:
        return np.full(n, float(np.median(x)))
    from numpy.lib.stride_tricks import sliding_window_view

    core = np.median(sliding_window_view(x, 2 * h + 1), axis=1)
    return np.concatenate([np.full(h, core[0]), core, np.full(h, core[-1])])


def _segment_noise(q: np.ndarray, y: np.ndarray, window: int) -> np.ndarray:
    """Local noise of one detector segment (>= 3 points) by the running median of the
    normalised second differences (module docstring); end points take their neighbour's value."""
    dq1, dq2 = q[1:-1] - q[:-2], q[2:] - q[1:-1]
    a = dq2 / (dq1 + dq2)
    b = 1.0 - a
    r = y[1:-1] - (a * y[:-2] + b * y[2:])
    s = np.abs(r) / (_MAD * np.sqrt(1.0 + a * a + b * b))
    local = _running_median(s, window)
    out = np.empty_like(y)
    out[1:-1] = local
    out[0], out[-1] = local[0], local[-1]
    return out


def estimate_noise(data, window: int = 41, factor: float = 2.0) -> NoiseEstimate:
    """Estimate the noise of a curve (SaxsData: q, intensity, optional sigma and segments).

    Segments of a stitched curve (``data.segments``, one (q_lo, q_hi) per detector) are
    treated separately; a segment with fewer than 5 points takes the overall median.
    Returns a :class:`NoiseEstimate` with the choice of :func:`choose_noise`.
    """
    q = np.asarray(data.q, dtype=np.float64)
    y = np.asarray(data.intensity, dtype=np.float64)
    if q.size < 5:
        raise ValueError(f"noise estimate needs at least 5 points, got {q.size}")
    seg_id = np.full(q.size, -1)
    segs = [s for s in (getattr(data, "segments", ()) or ()) if s and np.all(np.isfinite(s))]
    for k, (lo, hi) in enumerate(sorted(segs)):
        seg_id[(q >= lo) & (q <= hi) & (seg_id < 0)] = k
    if np.any(seg_id < 0):  # points outside the recorded segments (or no segments): their own run
        seg_id[seg_id < 0] = len(segs)
    sigma = np.full(q.size, np.nan)
    for k in np.unique(seg_id):
        m = seg_id == k
        if m.sum() >= 5:
            sigma[m] = _segment_noise(q[m], y[m], window)
    if np.all(np.isnan(sigma)):
        sigma[:] = np.median(_segment_noise(q, y, window))
    sigma[np.isnan(sigma)] = np.nanmedian(sigma)
    floor = 1e-12 * max(float(np.max(np.abs(y))), 1e-300)
    sigma = np.maximum(sigma, floor)
    fs = getattr(data, "sigma", None)
    fs = None if fs is None else np.asarray(fs, dtype=np.float64)
    ratios = []
    for k in np.unique(seg_id):
        m = seg_id == k
        r = float(np.median(fs[m] / sigma[m])) if fs is not None else None
        ratios.append((float(q[m][0]), float(q[m][-1]), r, int(m.sum())))
    ratio = float(np.median(fs / sigma)) if fs is not None else None
    return choose_noise(q, sigma, fs, ratio, tuple(ratios), factor)


def choose_noise(q, sigma, file_sigma, ratio, segment_ratios=(), factor: float = 2.0) -> NoiseEstimate:
    """Pick the sigma used for the statistics: the estimate when there is no file sigma or when
    the median ratio file / estimate lies outside [1 / factor, factor]; else the file's."""
    if file_sigma is None:
        return NoiseEstimate(q, sigma, None, None, segment_ratios, "estimate", sigma,
                             "the file has no sigma column; the noise estimated from the point-to-point "
                             "scatter is used")
    if ratio > factor or ratio < 1.0 / factor:
        note = (f"the file's sigma is {ratio:.3g} x the noise estimated from the point-to-point scatter "
                f"(disagreement > {factor:g}x): the statistics use the estimate")
        return NoiseEstimate(q, sigma, file_sigma, ratio, segment_ratios, "estimate", sigma, note)
    note = (f"the file's sigma is {ratio:.3g} x the noise estimated from the point-to-point scatter "
            f"(within {factor:g}x): the statistics use the file's sigma")
    return NoiseEstimate(q, sigma, file_sigma, ratio, segment_ratios, "file", file_sigma, note)
