"""Is a built structure a valid cluster of the run? (issue 12 item 5)

:func:`validate_structure` checks a structure with the package's own cluster extraction
(:func:`clusterdynamicsml.clusters.extract_clusters`, open boundaries, the run's own
:class:`~clusterdynamicsml.clusters.ClusterRules`):

* **connected**: exactly one cluster, and it holds every atom (a shell atom farther than its
  cutoff from every cluster atom is left out of every cluster and counts as a component);
* **composition**: the element counts are exactly the requested ones;
* **contacts**: no pair closer than the shortest distance of that element pair in the
  library (:meth:`GeometryStatistics.min_distance`, or an explicit ``min_distances`` table);
* **size**: the radius of gyration (unweighted, over all atoms, as the library descriptors)
  lies in ``rg_interval`` when one is given (:func:`build_valid_structure` widens the predicted
  band of the mean Rg by the library's per-structure spread, :func:`structure_rg_interval`).

:func:`build_valid_structure` builds, validates and rebuilds with other seeds (a bounded
number of attempts); it returns the first structure that passes or, when none does, the
least bad one with ``passed = False`` so that the caller can report it and keep it out.
Distances in angstrom.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .._validate import as_positions
from ..chem import normalize_element
from .geomrecord import GeometryStatistics, element_pair_key

RG_TOLERANCE = 1e-6  # angstrom, slack on the Rg interval ends
RG_STRUCTURE_Z = 1.645  # two-sided 90 % normal quantile: one structure's Rg about the label mean
CONTACT_TOLERANCE = 1e-6  # angstrom, slack on the learned minimum distances


@dataclass(frozen=True)
class ValidityResult:
    """Outcome of :func:`validate_structure`.

    passed : every check passed. reasons : one sentence per failed check (empty when passed).
    n_components : clusters found plus atoms left out of every cluster (1 for a valid structure).
    component_labels : labels of the clusters found (package labels), largest first.
    counts / expected_counts : element counts of the structure / of the request (None: not checked).
    shortest_contact : shortest interatomic distance (angstrom); shortest_contact_pair its
        element pair; min_distance_ratio : min over pairs of d / learned minimum (>= 1 passes).
    rg : radius of gyration (angstrom); rg_interval : the (lo, hi) it was checked against, or None.
    """

    passed: bool
    reasons: tuple[str, ...]
    n_components: int
    component_labels: tuple[str, ...]
    counts: dict
    expected_counts: dict | None
    shortest_contact: float | None
    shortest_contact_pair: str | None
    min_distance_ratio: float | None
    rg: float
    rg_interval: tuple[float, float] | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["reasons"] = list(self.reasons)
        d["component_labels"] = list(self.component_labels)
        d["rg_interval"] = list(self.rg_interval) if self.rg_interval is not None else None
        return d

    def summary(self) -> str:
        """One line: 'valid' or the reasons joined by '; '."""
        return "valid" if self.passed else "; ".join(self.reasons)


def open_rules(rules):
    """The run's rules for one isolated structure: open boundaries (``pbc=False``), roles by element
    only (built structures have no residue names) and no whole shell molecules."""
    from ..clusters import ClusterRules

    if isinstance(rules, Mapping):
        rules = ClusterRules.from_dict(rules)
    if not isinstance(rules, ClusterRules):
        raise ValueError(f"rules must be a ClusterRules or its dict, got {type(rules).__name__}")
    if rules.uses_residues:
        roles = {r: list(dict.fromkeys(rules.role_elements(r))) for r in ("node", "linker", "shell")}
        return ClusterRules(node=roles["node"], linker=roles["linker"], shell=roles["shell"], cutoffs=rules.cutoffs,
                            default_cutoff=rules.default_cutoff, shell_levels=rules.shell_levels,
                            shared_shells=rules.shared_shells, shells_in_label=rules.shells_in_label, pbc=False)
    if not rules.pbc and not rules.shell_molecules:
        return rules
    return dataclasses.replace(rules, pbc=False, shell_molecules=False)


def _interval(rg_interval) -> tuple[float, float] | None:
    if rg_interval is None:
        return None
    try:
        lo, hi = (float(v) if v is not None else math.nan for v in rg_interval)
    except (TypeError, ValueError):
        raise ValueError(f"rg_interval must be (lo, hi) in angstrom, got {rg_interval!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None  # the prediction gives no interval
    if lo > hi:
        raise ValueError(f"rg_interval must have lo <= hi, got {rg_interval!r}")
    return lo, hi


def structure_rg_interval(rg_interval, stats: GeometryStatistics | None = None,
                          relative_spread: float | None = None) -> tuple[float, float] | None:
    """The Rg interval (angstrom) one built structure is checked against.

    A predicted interval (the bootstrap 5-95 % band of ``predict``) bounds the *mean* Rg of a
    size; single clusters of one label scatter about their mean by a relative standard deviation
    ``s`` (``stats.rg_relative_spread``, learned from the library; 0.14-0.15 in molten NaCl),
    several times the width of that band. The band is widened to
    ``[lo (1 - z s), hi (1 + z s)]`` with z = 1.645, so that 90 % of real clusters whose label
    mean lies in the band pass. Without a learned spread the band is returned unchanged."""
    interval = _interval(rg_interval)
    if interval is None:
        return None
    s = relative_spread if relative_spread is not None else float(getattr(stats, "rg_relative_spread", 0.0) or 0.0)
    if not (math.isfinite(s) and s > 0):
        return interval
    f = RG_STRUCTURE_Z * s
    return interval[0] * max(1.0 - f, 0.0), interval[1] * (1.0 + f)


def _min_distance(a: str, b: str, stats, min_distances) -> float | None:
    if min_distances is not None:
        v = min_distances.get(element_pair_key(a, b))
        if v is None:
            v = min_distances.get((a, b), min_distances.get((b, a)))
        return None if v is None else float(v)
    return stats.min_distance(a, b) if stats is not None else None


def validate_structure(symbols, positions, rules, *, counts: Mapping[str, int] | None = None,
                       stats: GeometryStatistics | None = None, min_distances: Mapping | None = None,
                       rg_interval=None) -> ValidityResult:
    """Check one structure against the run's rules (see the module docstring).

    symbols (n,), positions (n, 3) angstrom; rules : the run's ClusterRules (or its dict);
    counts : the requested composition (None: not checked); stats or min_distances
    (``{'Cl-Na': 2.05}`` or ``{('Na', 'Cl'): 2.05}``): learned minimum distances (neither: not
    checked); rg_interval : (lo, hi) angstrom or None (a NaN end means "no interval").
    Returns a :class:`ValidityResult`; raises ValueError for malformed input only.
    """
    from ..clusters import extract_clusters
    from ..io.frames import Frame
    from ..library.read import shape_descriptors

    syms = [normalize_element(s) for s in symbols]
    pos = as_positions(positions, "positions")
    if len(syms) != pos.shape[0]:
        raise ValueError(f"{len(syms)} symbols but {pos.shape[0]} positions")
    interval = _interval(rg_interval)
    reasons: list[str] = []
    have: dict[str, int] = {}
    for s in syms:
        have[s] = have.get(s, 0) + 1
    have = dict(sorted(have.items()))
    expected = None
    if counts is not None:
        expected = {normalize_element(e): int(n) for e, n in counts.items() if int(n) > 0}
        expected = dict(sorted(expected.items()))
        if expected != have:
            reasons.append(f"composition {have} is not the requested {expected}")

    # connectivity with the package's own extraction
    n = len(syms)
    clusters = extract_clusters(Frame(index=0, source_index=0, time_fs=0.0, symbols=syms, positions=pos),
                                open_rules(rules)) if n else []
    clusters = sorted(clusters, key=lambda c: (-c.n_atoms, c.label))
    covered = sum(c.n_atoms for c in clusters)
    n_components = len(clusters) + (n - covered)
    if n and n_components != 1:
        parts = [c.label for c in clusters]
        if n - covered:
            parts.append(f"{n - covered} atom(s) in no cluster")
        reasons.append(f"not one cluster under the run's rules: {n_components} components ({', '.join(parts)})")

    # contacts
    shortest = shortest_pair = ratio = None
    if n >= 2:
        diff = pos[:, None, :] - pos[None, :, :]
        d = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        iu = np.triu_indices(n, 1)
        dd = d[iu]
        k = int(np.argmin(dd))
        shortest = float(dd[k])
        shortest_pair = element_pair_key(syms[iu[0][k]], syms[iu[1][k]])
        if stats is not None or min_distances is not None:
            els = sorted(have)
            table = np.full((len(els), len(els)), np.nan)
            for a, ea in enumerate(els):
                for b, eb in enumerate(els):
                    v = _min_distance(ea, eb, stats, min_distances)
                    table[a, b] = np.nan if v is None or v <= 0 else v
            idx = np.array([els.index(s) for s in syms])
            lim = table[idx[iu[0]], idx[iu[1]]]
            known = np.isfinite(lim)
            if np.any(known):
                r = dd[known] / lim[known]
                j = int(np.argmin(r))
                ratio = float(r[j])
                if dd[known][j] < lim[known][j] - CONTACT_TOLERANCE:
                    a, b = iu[0][known][j], iu[1][known][j]
                    reasons.append(f"{element_pair_key(syms[a], syms[b])} contact {dd[known][j]:.3f} A is shorter than "
                                   f"the learned minimum {lim[known][j]:.3f} A")

    rg = float(shape_descriptors(pos)["radius_of_gyration"]) if n else 0.0
    if interval is not None and not (interval[0] - RG_TOLERANCE <= rg <= interval[1] + RG_TOLERANCE):
        reasons.append(f"Rg {rg:.2f} A is outside the predicted interval [{interval[0]:.2f}, {interval[1]:.2f}] A")
    return ValidityResult(passed=not reasons, reasons=tuple(reasons), n_components=int(n_components),
                          component_labels=tuple(c.label for c in clusters), counts=have, expected_counts=expected,
                          shortest_contact=shortest, shortest_contact_pair=shortest_pair, min_distance_ratio=ratio,
                          rg=rg, rg_interval=interval)


COMPACTNESS_LEVELS = (0.0, 0.25, 0.5, 1.0, 2.0)


def build_valid_structure(counts: Mapping[str, int], stats: GeometryStatistics, rules, *, representative=None,
                          label: str | None = None, seed: int = 0, max_attempts: int = 6, rg_interval=None,
                          on_crowding: str = "relax"):
    """Build with :func:`~clusterdynamicsml.build.grow.build_structure` under the run's ``rules``,
    validate (:func:`validate_structure`) and rebuild until one passes or ``max_attempts`` builds
    were made. Attempt k uses seed ``seed + k`` (the second half without the representative's seed
    nodes) and a compactness from :data:`COMPACTNESS_LEVELS`: it starts at 0 (the reference growth)
    and moves one level up after a structure larger than ``rg_interval``, one down after a smaller
    one.

    ``rg_interval`` is the predicted band of the mean Rg; a single structure is checked against it
    widened by the library's per-structure spread (:func:`structure_rg_interval`).

    Returns ``(BuiltStructure or None, ValidityResult or None, attempts)``: the first structure that
    passes, else the one with the fewest failed checks (then fewest components, then Rg nearest the
    interval; ``passed`` False).
    ``result.extra`` holds the ``seed`` and ``compactness`` of the returned build. When no attempt
    could place every atom (ValueError from the builder) the structure and result are None, or the
    last error is raised with ``on_crowding='raise'``.
    """
    from .grow import build_structure

    if isinstance(max_attempts, bool) or not isinstance(max_attempts, (int, np.integer)) or max_attempts < 1:
        raise ValueError(f"max_attempts must be a positive integer, got {max_attempts!r}")
    interval = structure_rg_interval(rg_interval, stats)
    best = None
    error: ValueError | None = None
    level = 0
    for k in range(int(max_attempts)):
        rep = representative if k < max(1, (max_attempts + 1) // 2) else None
        c = COMPACTNESS_LEVELS[level]
        try:
            built = build_structure(counts, stats, representative=rep, label=label, seed=int(seed) + k,
                                    on_crowding=on_crowding, rules=rules, compactness=c)
        except ValueError as exc:
            error = exc
            continue
        res = validate_structure(built.symbols, built.positions, rules, counts=counts, stats=stats,
                                 rg_interval=interval)
        res = dataclasses.replace(res, extra={**res.extra, "seed": int(seed) + k, "compactness": c})
        if res.passed:
            return built, res, k + 1
        miss = 0.0 if interval is None else max(interval[0] - res.rg, res.rg - interval[1], 0.0)
        key = (len(res.reasons), res.n_components, miss)
        if best is None or key < best[2]:
            best = (built, res, key)
        if interval is not None and res.rg > interval[1] and level < len(COMPACTNESS_LEVELS) - 1:
            level += 1
        elif interval is not None and res.rg < interval[0] and level > 0:
            level -= 1
    if best is None:
        if on_crowding == "raise" and error is not None:
            raise error
        return None, None, int(max_attempts)
    return best[0], best[1], int(max_attempts)


def rg_interval_of(candidate) -> tuple[float, float] | None:
    """The predicted Rg interval (angstrom) of a prediction candidate, or None when it gives none.

    Looked up in this order: an attribute or key ``rg_interval`` / ``radius_of_gyration_interval``
    ((lo, hi)); then the bootstrap interval ``uncertainty['radius_of_gyration' or
    'mean_radius_of_gyration']`` ``['p05'], ['p95']``. Non-finite ends mean no interval."""
    def get(obj, name):
        return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)

    for name in ("rg_interval", "radius_of_gyration_interval"):
        v = get(candidate, name)
        if v is not None:
            return _interval(v)
    unc = get(candidate, "uncertainty") or {}
    for name in ("radius_of_gyration", "mean_radius_of_gyration"):
        band = unc.get(name) if isinstance(unc, Mapping) else None
        if isinstance(band, Mapping) and band.get("p05") is not None and band.get("p95") is not None:
            return _interval((band["p05"], band["p95"]))
    return None
