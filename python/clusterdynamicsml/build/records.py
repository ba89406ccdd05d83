"""Records of a built structure: :class:`BuiltStructure` and its :class:`BuildQuality`
(distances in angstrom), and the composition label of a build."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from .geomrecord import GeometryStatistics
from .measure import measure_structure


@dataclass(frozen=True)
class BuildQuality:
    """How well a built structure matches the learned geometry (measured with
    :func:`~clusterdynamicsml.build.geomstats.measure_structure`).

    shortest_contact : shortest interatomic distance (angstrom) and shortest_contact_pair its
        element pair. min_distance_ratio : min over pairs of d / learned minimum distance
        (>= 1: no contact is shorter than anything seen in the library).
    bond_length_medians / bond_length_deviations : built median bond length per element pair
        and (built - learned) in angstrom. max_abs_bond_deviation : largest absolute deviation.
    node_coordination_deviations : type -> built - learned median node coordination.
    non_node_node_coordination_deviations : element -> built - learned.
    atom_coordination_deviations : 'center>neighbor' -> built - learned median contact count.
    relaxed_atoms : atoms placed by the relaxed mode (farther than 1.5 x their bond length, or at
        the least violating position); 0 for a normal build.
    """

    shortest_contact: float
    shortest_contact_pair: str | None
    min_distance_ratio: float
    bond_length_medians: dict[str, float] = field(default_factory=dict)
    bond_length_deviations: dict[str, float] = field(default_factory=dict)
    max_abs_bond_deviation: float = 0.0
    node_coordination_deviations: dict[str, float] = field(default_factory=dict)
    non_node_node_coordination_deviations: dict[str, float] = field(default_factory=dict)
    atom_coordination_deviations: dict[str, float] = field(default_factory=dict)
    relaxed_atoms: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BuiltStructure:
    """A built cluster: symbols (n,), positions float64 (n, 3) in angstrom (centroid at the
    origin; nodes first, then non-node atoms in placement order), its label and quality."""

    symbols: list[str]
    positions: np.ndarray
    label: str
    quality: BuildQuality
    atom_types: list[str] = field(default_factory=list)  # 'node' / 'linker' / 'shell' per atom

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.symbols:
            out[s] = out.get(s, 0) + 1
        return dict(sorted(out.items()))

    @property
    def n_atoms(self) -> int:
        return len(self.symbols)


def _deviations(measured: Mapping, learned: Mapping) -> dict:
    """``measured - learned`` for every key both have (in the order of ``measured``)."""
    return {k: v - learned[k] for k, v in measured.items() if k in learned}


def build_quality(symbols, positions, stats: GeometryStatistics, relaxed_atoms: int = 0) -> BuildQuality:
    """Measure ``symbols``/``positions`` against the learned medians of ``stats``."""
    m = measure_structure(symbols, positions, stats)
    bond_dev = _deviations(m["bond_length_medians"], stats.bond_length_medians)
    node_dev = _deviations(m["node_coordination_medians"], stats.node_coordination_medians)
    nn_dev = _deviations(m["non_node_node_coordination_medians"], stats.non_node_node_coordination_medians)
    atom_dev = _deviations(m["atom_coordination_medians"], stats.atom_coordination_medians)
    return BuildQuality(
        shortest_contact=float(m["shortest_contact"]),
        shortest_contact_pair=m["shortest_contact_pair"],
        min_distance_ratio=float(m["min_distance_ratio"]),
        bond_length_medians=m["bond_length_medians"],
        bond_length_deviations=bond_dev,
        max_abs_bond_deviation=float(max((abs(v) for v in bond_dev.values()), default=0.0)),
        node_coordination_deviations=node_dev,
        non_node_node_coordination_deviations=nn_dev,
        atom_coordination_deviations=atom_dev,
        relaxed_atoms=int(relaxed_atoms),
    )


def format_counts_label(counts: Mapping[str, int], stats: GeometryStatistics) -> str:
    """Label of a composition: node elements, then linkers, then shells, each alphabetical,
    count 1 omitted (the convention of ``clusters.format_label``)."""
    from ..chem import format_label

    return format_label(counts, stats.atom_type_by_element)

