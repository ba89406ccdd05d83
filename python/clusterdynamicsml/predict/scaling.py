"""Size, shape, lifetime and rate laws of clusters versus size, with physical bounds.

Shape (angstrom). With ``N`` the number of tracked atoms of a composition, power laws fitted
by weighted least squares in log-log space on the observed labels with at least two atoms
(four for the two smaller semiaxes, which vanish for two and three atoms)::

    Rg(N) = A N^nu,    max_radius(N) = A_r N^nu_r,    semiaxis_k(N) = A_k N^nu_k

fitted on the scaling regime only (``scaling_regime_labels``: the labels whose node count is in
the upper half of the observed sizes, at least the three largest), weighted by the clusters
observed of each label. The smallest clusters (ion pairs, rings, short chains) are more open
than the large ones and, with most clusters and files, used to set the exponent: on the
1450 K NaCl melt (train n <= 6) Rg was then 17 % high at n = 12, 8.7 % with the scaling regime.
``nu`` and ``nu_r`` are kept between the compact (1/3) and straight-chain (1) exponents.

bounded by the two limits at the learned bond length ``d`` (the median nearest node-linker
distance in the library structures):

* compact sphere: ``N`` atoms at close packing (number density sqrt(2)/d^3) fill a sphere of
  radius ``R_c = d (3 N / (4 pi sqrt 2))^(1/3)``; ``Rg_min = sqrt(3/5) R_c``, max radius >= R_c;
* straight chain: ``N`` atoms a distance ``d`` apart on a line; ``Rg_max = d sqrt((N^2 - 1)/12)``,
  max radius <= ``d (N - 1)/2``.

The semiaxes (square roots of the covariance eigenvalues) satisfy ``a^2 + b^2 + c^2 = Rg^2``;
the predicted semiaxes are rescaled to that identity after the power laws. A predicted max
radius above half the shortest box length of the source trajectory is flagged: such a cluster
would touch its own periodic image.

Lifetimes (fs) per node count ``n``: the count-weighted mean lifetime of the labels at ``n``,
``log tau = alpha + beta log n`` fitted on the sizes whose lifetime is above 1.1 dt (sizes at
the frame-spacing floor only bound the lifetime from above and are left out). A prediction at
or below ``dt`` is set to ``dt`` and flagged (``at_dt_floor``): the cluster lives shorter than
one frame spacing, so only the bound is known.

Rates (1/ps): in a steady state every cluster that appears also disappears, so the
dissociation (and association) events per ps at size ``n`` are ``c(n) / tau(n)`` times a
constant ``k`` (frames per ps, and how often a lifetime is cut short); ``k`` is the
count-weighted geometric mean of ``rate / (c / tau)`` over the observed sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SHAPE_KEYS = ("rg", "max_radius", "semiaxis_a", "semiaxis_b", "semiaxis_c")


def compact_rg(n_atoms, bond):
    return math.sqrt(3.0 / 5.0) * compact_radius(n_atoms, bond)


def compact_radius(n_atoms, bond):
    return float(bond) * (3.0 * float(n_atoms) / (4.0 * math.pi * math.sqrt(2.0))) ** (1.0 / 3.0)


def chain_rg(n_atoms, bond):
    return float(bond) * math.sqrt(max(float(n_atoms) ** 2 - 1.0, 0.0) / 12.0)


def chain_radius(n_atoms, bond):
    return float(bond) * max(float(n_atoms) - 1.0, 0.0) / 2.0


def learned_bond_length(library, types, max_structures: int = 200) -> float | None:
    """Median nearest node-linker distance (angstrom) over library structures with both
    roles (at most ``max_structures``, the labels with most files first); None if none."""
    if library is None:
        return None
    node, linker = set(types.node_elements), set(types.linker_elements) or set(types.shell_elements)
    obs = sorted((o for o in library if o.node_count >= 1), key=lambda o: (-o.readable_count, o.label))
    dists, used = [], 0
    for o in obs:
        if used >= max_structures:
            break
        if not any(e in linker for e in o.element_counts):
            continue
        for symbols, pos in library.structures(o.label)[:20]:
            sym = np.asarray(symbols)
            a = pos[np.isin(sym, list(node))]
            b = pos[np.isin(sym, list(linker))]
            if len(a) == 0 or len(b) == 0:
                continue
            d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
            dists.extend(d.min(axis=1).tolist())
            used += 1
    return float(np.median(dists)) if dists else None


def _loglog(x, y, w, bounds=None):
    """Weighted least squares ``log y = a + b log x``; with ``bounds = (lo, hi)`` the exponent
    ``b`` is kept in ``[lo, hi]`` (an exponent outside is replaced by the nearest bound and ``a``
    refitted at that fixed exponent)."""
    x, y, w = (np.asarray(v, dtype=np.float64) for v in (x, y, w))
    ok = (x > 0) & (y > 0) & (w > 0)
    x, y, w = x[ok], y[ok], w[ok]
    if x.size == 0:
        return None
    if np.unique(x).size < 2:
        if bounds is None:
            return (float(np.log(np.average(y, weights=w))), 0.0)
        b = float(bounds[0])  # one size: the compact exponent (the least extrapolating one)
        return float(np.average(np.log(y) - b * np.log(x), weights=w)), b
    sw = np.sqrt(w)
    X = np.column_stack([np.ones_like(x), np.log(x)])
    (a, b), *_ = np.linalg.lstsq(X * sw[:, None], np.log(y) * sw, rcond=None)
    if bounds is not None and not (bounds[0] <= b <= bounds[1]):
        b = float(min(max(b, bounds[0]), bounds[1]))
        a = float(np.average(np.log(y) - b * np.log(x), weights=w))
    return float(a), float(b)


#: exponent bounds of Rg and max radius versus atom count: compact sphere (1/3) and straight chain (1)
NU_BOUNDS = (1.0 / 3.0, 1.0)


def scaling_regime_labels(labs):
    """The labels of the scaling regime: node counts in the upper half of the observed sizes
    with a shape (at least the three largest sizes when there are that many; all sizes when
    fewer than three). The smallest clusters (ion pairs, rings) follow their own geometry,
    not the large-n power law."""
    sizes = sorted({o.node_count for o in labs})
    keep = max(min(3, len(sizes)), int(math.ceil(len(sizes) / 2)))
    lo = sizes[len(sizes) - keep]
    return [o for o in labs if o.node_count >= lo]


@dataclass
class ShapeLaws:
    """Power laws of the shape descriptors versus tracked-atom count, and their bounds."""

    laws: dict  # {key: (log A, exponent)}
    bond_length: float | None
    half_box: float | None = None
    notes: list = field(default_factory=list)
    fit_sizes: list = field(default_factory=list)  # node counts of the labels behind the laws

    @classmethod
    def fit(cls, observed, bond_length=None, box_lengths=None, regime_sizes=None) -> ShapeLaws:
        """Fit the shape laws (module docs). ``regime_sizes``: node counts of the scaling regime
        to use instead of choosing them from ``observed`` (the bootstrap passes the regime of
        the full data, so that a replicate that misses the largest sizes does not move the fit
        to the small, open clusters; a replicate with none of them chooses its own)."""
        labs = [
            o
            for o in observed.labels
            if o.rg is not None and o.atom_count is not None and o.atom_count >= 2 and o.rg > 0
        ]
        half = None
        if box_lengths is not None:
            lengths = [float(v) for v in np.ravel(box_lengths) if v is not None and float(v) > 0]
            half = 0.5 * min(lengths) if lengths else None
        if not labs:
            return cls(
                {}, bond_length, half, ["no library structure with >= 2 atoms: sizes and shapes are not predicted"]
            )
        fixed = [o for o in labs if regime_sizes is not None and o.node_count in set(regime_sizes)]
        labs = fixed or scaling_regime_labels(labs)
        x = [o.atom_count for o in labs]
        w = [
            max(o.observations, 1) for o in labs
        ]  # clusters observed: the label mean's weight in the size's population
        values = {"rg": [o.rg for o in labs], "max_radius": [o.max_radius for o in labs]}
        for k, key in enumerate(("semiaxis_a", "semiaxis_b", "semiaxis_c")):
            values[key] = [o.semiaxes[k] for o in labs]
        laws = {}
        for key, v in values.items():
            if key in ("semiaxis_b", "semiaxis_c"):  # 2 atoms have b = c = 0, 3 atoms c = 0
                sel = [i for i, o in enumerate(labs) if o.atom_count >= 4]
                laws[key] = _loglog([x[i] for i in sel], [v[i] for i in sel], [w[i] for i in sel]) if sel else None
            else:
                laws[key] = _loglog(x, v, w, NU_BOUNDS if key in ("rg", "max_radius") else None)
        return cls(
            {k: v for k, v in laws.items() if v is not None},
            bond_length,
            half,
            [],
            sorted({o.node_count for o in labs}),
        )

    def predict(self, n_atoms: float) -> dict:
        """Shape of a composition with ``n_atoms`` tracked atoms: values (angstrom), the bounds
        and flags ``clipped`` (a power law crossed a limit) and ``exceeds_half_box``."""
        out: dict[str, Any] = {}
        if "rg" not in self.laws:
            return {}
        for key, (la, nu) in self.laws.items():
            out[key] = math.exp(la + nu * math.log(n_atoms))
        clipped = []
        if self.bond_length:
            d = self.bond_length
            lo_rg, hi_rg = compact_rg(n_atoms, d), max(chain_rg(n_atoms, d), compact_rg(n_atoms, d))
            lo_r, hi_r = compact_radius(n_atoms, d), max(chain_radius(n_atoms, d), compact_radius(n_atoms, d))
            for key, lo, hi in (("rg", lo_rg, hi_rg), ("max_radius", lo_r, hi_r)):
                v = min(max(out[key], lo), hi)
                if v != out[key]:
                    clipped.append(key)
                out[key] = v
            out.update(
                rg_compact_limit=lo_rg, rg_chain_limit=hi_rg, max_radius_compact_limit=lo_r, max_radius_chain_limit=hi_r
            )
        out["max_radius"] = max(out["max_radius"], out["rg"])
        known = [out[k] for k in ("semiaxis_a", "semiaxis_b", "semiaxis_c") if out.get(k) is not None]
        if len(known) == 3:
            axes = sorted(known, reverse=True)
            scale = out["rg"] / math.sqrt(sum(v * v for v in axes))
            out["semiaxis_a"], out["semiaxis_b"], out["semiaxis_c"] = (v * scale for v in axes)
        out["clipped"] = clipped
        out["exceeds_half_box"] = bool(self.half_box is not None and out["max_radius"] > self.half_box)
        return out

    def to_dict(self) -> dict:
        return {
            "laws": {k: {"log_prefactor": v[0], "exponent": v[1]} for k, v in self.laws.items()},
            "bond_length": self.bond_length,
            "half_box": self.half_box,
            "notes": list(self.notes),
            "fit_sizes": [int(v) for v in self.fit_sizes],
        }


@dataclass
class DynamicsLaws:
    """Lifetime power law in n, the rate constant k, and the dt floor (module docs)."""

    lifetime_law: tuple | None  # (alpha, beta) of log tau = alpha + beta log n
    rate_constant: dict  # {"association_rate_per_ps": k, "dissociation_rate_per_ps": k}
    timestep_fs: float
    fit_sizes: list = field(default_factory=list)
    floor_sizes: list = field(default_factory=list)

    @classmethod
    def fit(cls, observed, timestep_fs: float) -> DynamicsLaws:
        dt = float(timestep_fs)
        by_size = observed.by_size()
        ns, taus, ws, floor = [], [], [], []
        for n, d in by_size.items():
            tau = observed.size_lifetime(n)
            if tau is None:
                continue
            if tau <= 1.1 * dt:
                floor.append(n)
                continue
            ns.append(n)
            taus.append(tau)
            ws.append(max(sum(o.completed_lifetimes for o in d["labels"]), 1))
        law = _loglog(ns, taus, ws) if ns else None
        ks = {}
        for key in ("association_rate_per_ps", "dissociation_rate_per_ps"):
            logs, wts = [], []
            for n, d in by_size.items():
                tau = observed.size_lifetime(n)
                rate = sum(getattr(o, key) for o in d["labels"])
                if tau and rate > 0 and d["count_per_frame"] > 0:
                    logs.append(math.log(rate / (d["count_per_frame"] / tau)))
                    wts.append(d["count_per_frame"])
            ks[key] = float(math.exp(np.average(logs, weights=wts))) if logs else None
        return cls(law, ks, dt, ns, floor)

    def lifetime_at(self, n: float) -> tuple:
        """(lifetime fs, at_dt_floor) at node count ``n``."""
        if self.lifetime_law is None:
            return self.timestep_fs, True
        a, b = self.lifetime_law
        tau = math.exp(a + b * math.log(n))
        return (tau, False) if tau > self.timestep_fs else (self.timestep_fs, True)

    def rates(self, count_per_frame: float, lifetime_fs: float) -> dict:
        return {k: (None if v is None else v * count_per_frame / lifetime_fs) for k, v in self.rate_constant.items()}

    def to_dict(self) -> dict:
        law = (
            None
            if self.lifetime_law is None
            else {"log_prefactor_fs": self.lifetime_law[0], "exponent": self.lifetime_law[1]}
        )
        return {
            "lifetime_law": law,
            "rate_constant": dict(self.rate_constant),
            "timestep_fs": self.timestep_fs,
            "fit_sizes": list(self.fit_sizes),
            "floor_sizes": list(self.floor_sizes),
        }


def check_candidate_shapes(candidates, bond_length, box_lengths, tracked_elements) -> list:
    """Physical checks of predicted candidates whose shapes were not bounded by ``ShapeLaws``
    (the reference ridge): the max radius against half the shortest box width and against the
    straight-chain and compact-sphere limits, Rg against the same limits, at ``bond_length``
    (angstrom; None skips the limits). The numbers are left as predicted; each violation is
    appended to the candidate's ``notes`` and returned as a warning sentence."""
    half = None
    if box_lengths is not None:
        lengths = [float(v) for v in np.ravel(box_lengths) if v is not None and float(v) > 0]
        half = 0.5 * min(lengths) if lengths else None
    tracked = set(tracked_elements)
    out: list[str] = []
    for c in candidates:
        n_atoms = float(sum(v for e, v in c.counts.items() if e in tracked))
        rg, rmax = c.predicted.get("mean_radius_of_gyration"), c.predicted.get("mean_max_radius")
        found = []
        if half is not None and rmax is not None and rmax > half:
            found.append(
                f"max radius {rmax:.3g} A exceeds half the source box ({half:.3g} A): "
                "the cluster would touch its own periodic image"
            )
        if bond_length and n_atoms >= 2:
            d = float(bond_length)
            for name, v, lo, hi in (
                (
                    "max radius",
                    rmax,
                    compact_radius(n_atoms, d),
                    max(chain_radius(n_atoms, d), compact_radius(n_atoms, d)),
                ),
                ("Rg", rg, compact_rg(n_atoms, d), max(chain_rg(n_atoms, d), compact_rg(n_atoms, d))),
            ):
                if v is None or not math.isfinite(v):
                    continue
                if v > hi:
                    found.append(
                        f"{name} {v:.3g} A exceeds the straight-chain limit {hi:.3g} A "
                        f"of {n_atoms:.0f} atoms at bond {d:.3g} A"
                    )
                elif v < lo:
                    found.append(
                        f"{name} {v:.3g} A is below the compact-sphere limit {lo:.3g} A "
                        f"of {n_atoms:.0f} atoms at bond {d:.3g} A"
                    )
        if found:
            c.notes = "; ".join(([c.notes] if c.notes else []) + found)
            out.extend(
                f"predicted {c.label} (n = {c.node_count}): {f} (reference model: not corrected, kept for comparison)"
                for f in found
            )
    return out
