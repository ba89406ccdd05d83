r"""Lifetimes, occupancy and association/dissociation rates of cluster count series (ref §3.5).

Units: femtoseconds, rates per picosecond.

Lifetimes per label (ref §3.5), from the count series ``c[0..F-1]`` at times ``t``, window
``[start, T_obs]`` with ``T_obs = max(stop, t[F-1])``:

* occupancy = #{c > 0} / F; mean count per frame = mean(c);
* association events = sum max(c[f] - c[f-1], 0); dissociation events = sum max(c[f-1] - c[f], 0)
  (the initial count is not an association); rates = events / T, with
  ``T = max((T_obs - start) / 1000, 1e-12)`` ps;
* anonymous instances in a FIFO queue: ``c[0]`` instances born at ``t[0]`` flagged
  left-censored; an increase pushes new instances born at ``t[f]``; a decrease pops the
  oldest, with lifetime ``t[f] - birth`` (window-truncated if left-censored, else completed);
  instances alive at the end are window-truncated with lifetime ``T_obs - birth``;
* ``mean_lifetime_fs``, ``std_lifetime_fs`` (population, ddof=0): completed lifetimes only,
  None when there are none.

Censoring-aware estimates (extra columns; the reference mean ignores truncated lifetimes
and is biased short for long-lived labels, ref N6):

* ``km_mean_lifetime_fs``: the Kaplan-Meier mean of the instances born inside the window,
  completed lifetimes as events and right-truncated ones as censored,
  :math:`\int_0^{t_{max}} \hat S(t)\,dt` with :math:`\hat S(t) = \prod_{u_i \le t}(1 - d_i / n_i)`.
  When the longest observation is censored the curve has not reached 0 and the value is a
  restricted mean, a lower bound (``km_mean_is_restricted`` True).
* ``mle_lifetime_fs``: the exponential (constant hazard) maximum-likelihood lifetime using
  every instance, truncated ones included: total observed exposure / observed deaths,

  .. math:: \hat\tau = \frac{\sum_i \ell_i}{D} = \frac{\int_{t_0}^{T_{obs}} c(t)\,dt}{\text{dissociation events}},

  (``c`` held constant between frames, ``t_0`` the first selected frame) with standard
  error :math:`\hat\tau / \sqrt{D}`. Left-censored instances enter through
  their observed exposure, which the memoryless exponential model allows. It does not depend
  on the FIFO pairing. None when there are no deaths.

Lifetimes by size: the same quantities on the summed series of all labels of one size.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np


@dataclass(frozen=True)
class SeriesLifetimes:
    """Per-instance lifetimes (fs) of one count series, by kind (see the module docstring)."""

    completed: np.ndarray  # born and died inside the window
    left_truncated: np.ndarray  # present at the first frame, died inside the window
    right_truncated: np.ndarray  # born inside the window, alive at the end
    spanning: np.ndarray  # present at the first frame and alive at the end

    @property
    def window_truncated(self) -> np.ndarray:
        return np.concatenate([self.left_truncated, self.right_truncated, self.spanning])


def series_lifetimes(counts, times_fs, stop_obs_fs: float) -> SeriesLifetimes:
    """FIFO instance bookkeeping of ref §3.5, vectorised.

    counts : non-negative ints (F,); times_fs : increasing floats (F,);
    stop_obs_fs : end of the observed window (fs), ``>= times_fs[-1]``.

    Since the count never goes negative, the k-th death always pops the k-th birth (FIFO),
    so births and deaths can be paired by rank.
    """
    c = np.asarray(counts, dtype=np.int64)
    t = np.asarray(times_fs, dtype=np.float64)
    if c.size == 0:
        empty = np.zeros(0)
        return SeriesLifetimes(empty, empty, empty, empty)
    delta = np.diff(c)
    births = np.concatenate([np.repeat(t[:1], c[0]), np.repeat(t[1:], np.clip(delta, 0, None))])
    deaths = np.repeat(t[1:], np.clip(-delta, 0, None))
    n_dead = deaths.size
    n_left = int(c[0])
    lived = np.maximum(deaths - births[:n_dead], 0.0)
    alive = stop_obs_fs - births[n_dead:]
    left_dead = min(n_left, n_dead)
    return SeriesLifetimes(
        completed=lived[left_dead:],
        left_truncated=lived[:left_dead],
        right_truncated=alive[max(n_left - n_dead, 0):],
        spanning=alive[: max(n_left - n_dead, 0)],
    )


def kaplan_meier_mean(durations, observed) -> tuple[float | None, bool]:
    """Kaplan-Meier mean of right-censored durations (fs).

    durations : (n,) >= 0; observed : (n,) bool, True for an observed end (event).
    Returns ``(mean, restricted)``: the area under the KM survival curve up to the longest
    duration, and whether the curve was still above 0 there (then the mean is restricted,
    a lower bound). ``(None, False)`` for no durations.
    """
    d = np.asarray(durations, dtype=np.float64)
    e = np.asarray(observed, dtype=bool)
    if d.size == 0:
        return None, False
    order = np.argsort(d, kind="stable")
    d, e = d[order], e[order]
    event_times = np.unique(d[e])
    survival = 1.0
    area = 0.0
    previous = 0.0
    for u in event_times:
        at_risk = d.size - int(np.searchsorted(d, u, side="left"))
        n_events = int(np.count_nonzero(d[e] == u))
        area += survival * (u - previous)
        previous = float(u)
        survival *= 1.0 - n_events / at_risk
    t_max = float(d[-1])
    area += survival * (t_max - previous)
    return float(area), bool(survival > 0.0)


@dataclass(frozen=True)
class LifetimeSummary:
    """Kinetics of one label (``label`` set) or of one cluster size (``label`` None); ref §3.5.

    Times in femtoseconds, rates per picosecond. The four last fields are the
    censoring-aware estimates (see the module docstring).
    """

    label: str | None
    cluster_size: int
    total_observations: int
    occupied_frames: int
    mean_count_per_frame: float
    occupancy_fraction: float
    association_events: int
    dissociation_events: int
    association_rate_per_ps: float
    dissociation_rate_per_ps: float
    completed_lifetime_count: int
    window_truncated_lifetime_count: int
    mean_lifetime_fs: float | None
    std_lifetime_fs: float | None
    km_mean_lifetime_fs: float | None = None
    km_mean_is_restricted: bool = False
    mle_lifetime_fs: float | None = None
    mle_lifetime_stderr_fs: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> LifetimeSummary:
        data = dict(data)
        if "censored_lifetime_count" in data and "window_truncated_lifetime_count" not in data:
            data["window_truncated_lifetime_count"] = data.pop("censored_lifetime_count")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"lifetime row has unknown keys {unknown}")
        return cls(**data)


def summarize_series(
    counts, times_fs, start_fs: float, stop_fs: float, *, label: str | None = None, cluster_size: int = 0
) -> LifetimeSummary:
    """Occupancy, events, rates and lifetimes of one count series (ref §3.5 plus extra columns).

    counts : non-negative ints (F,); times_fs : increasing (F,), femtoseconds;
    start_fs, stop_fs : the analysis window; the observed end is ``max(stop_fs, times_fs[-1])``.
    """
    c = np.asarray(counts, dtype=np.int64)
    t = np.asarray(times_fs, dtype=np.float64)
    if c.ndim != 1 or c.shape != t.shape or c.size == 0:
        raise ValueError(
            f"counts and times_fs must be non-empty 1-D arrays of equal length, got {c.shape} and {t.shape}"
        )
    if np.any(c < 0):
        raise ValueError("counts must be non-negative")
    stop_obs = max(float(stop_fs), float(t[-1]))
    span_ps = max((stop_obs - float(start_fs)) / 1000.0, 1e-12)
    delta = np.diff(c)
    assoc = int(np.clip(delta, 0, None).sum())
    dissoc = int(np.clip(-delta, 0, None).sum())
    life = series_lifetimes(c, t, stop_obs)
    completed = life.completed
    truncated = life.window_truncated
    mean = float(np.mean(completed)) if completed.size else None
    std = float(np.std(completed)) if completed.size else None
    km_durations = np.concatenate([completed, life.right_truncated])
    km_observed = np.concatenate([np.ones(completed.size, bool), np.zeros(life.right_truncated.size, bool)])
    km_mean, km_restricted = kaplan_meier_mean(km_durations, km_observed)
    exposure = float(completed.sum() + truncated.sum())
    mle: float | None = None
    mle_se: float | None = None
    if dissoc > 0:
        mle = exposure / dissoc
        mle_se = mle / math.sqrt(dissoc)
    return LifetimeSummary(
        label=label,
        cluster_size=int(cluster_size),
        total_observations=int(c.sum()),
        occupied_frames=int(np.count_nonzero(c > 0)),
        mean_count_per_frame=float(np.mean(c)),
        occupancy_fraction=float(np.count_nonzero(c > 0) / c.size),
        association_events=assoc,
        dissociation_events=dissoc,
        association_rate_per_ps=assoc / span_ps,
        dissociation_rate_per_ps=dissoc / span_ps,
        completed_lifetime_count=int(completed.size),
        window_truncated_lifetime_count=int(truncated.size),
        mean_lifetime_fs=mean,
        std_lifetime_fs=std,
        km_mean_lifetime_fs=km_mean,
        km_mean_is_restricted=km_restricted,
        mle_lifetime_fs=mle,
        mle_lifetime_stderr_fs=mle_se,
    )

