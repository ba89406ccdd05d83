"""The learned geometry of a structure library (ref §4.7): the :class:`GeometryStatistics`
record, its keys and the lookups the structure builder makes (distances in angstrom, angles in
degrees). :mod:`clusterdynamicsml.build.geomstats` learns it from the library."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..chem import normalize_element, pair_key

ATOM_TYPES = ("node", "linker", "shell")
_KIND = {name: k for k, name in enumerate(ATOM_TYPES)}
ASSOCIATION_SCALE = 1.15
DEFAULT_BOND_LENGTH = 3.0  # angstrom, when neither data nor cutoffs give a node bond length
DEFAULT_NODE_NODE_ANGLE = 180.0
DEFAULT_NODE_ANGLE = 120.0


def element_pair_key(a: str, b: str) -> str:
    """Unordered element pair key, alphabetical: ('Pb', 'I') -> 'I-Pb' (:func:`chem.pair_key`)."""
    return pair_key(a, b)


def type_pair_key(a: str, b: str) -> str:
    """Unordered atom-type pair key in (node, linker, shell) order: ('shell', 'node') -> 'node-shell'."""
    a, b = sorted((a, b), key=_KIND.__getitem__)
    return f"{a}-{b}"


def coordination_key(center: str, neighbor: str) -> str:
    """Ordered (center type, neighbour type) key: 'node>linker'."""
    return f"{center}>{neighbor}"


@dataclass(frozen=True)
class GeometryStatistics:
    """Learned geometry of a structure library (ref §4.7). Distances in angstrom, angles in degrees.

    Keys: element pairs ``'I-Pb'`` (alphabetical, :func:`element_pair_key`), type pairs
    ``'node-linker'`` (node, linker, shell order, :func:`type_pair_key`), ordered coordination
    keys ``'node>linker'`` (centre type > neighbour type), types ``'node'`` and elements ``'I'``.

    atom_type_by_element : element -> 'node' | 'linker' | 'shell'.
    pair_cutoffs : the bond cutoffs used (element pair -> angstrom).
    node_bond_length : median node scaffold edge length (fallback: median node-node cutoff,
        else median of 2 x node/non-node cutoffs, else 3.0).
    bond_length_medians : element pair -> median scaffold / association bond length.
    seed_contact_medians : element pair -> median nearest-neighbour distance (pass 1).
    min_contact_distances : element pair -> shortest distance observed in the library.
    contact_cutoffs : element pair -> pass-2 contact cutoff ``min(1.25 t + 0.15, 1.40 f + 0.20)``.
    contact_distance_medians : element pair -> median contact distance (pass 2).
    geometry_contact_distance_medians : type pair -> median contact distance (pass 2).
    node_angle_medians : type pair -> median node-centred angle.
    node_angle_modes : type pair -> the peaks of the node-centred angle distribution (degrees,
        ascending; see :func:`angle_modes`), e.g. [90, 180] for octahedra, where the median
        alone (90) would make a trans site look 90 degrees wrong.
    node_coordination_medians : type -> median number of neighbours of that type per node.
    non_node_node_coordination_medians : non-node element -> median number of bonded nodes.
    atom_coordination_medians : 'center>neighbor' -> median number of contacts.
    support : '<statistic>:<key>' -> number of samples behind each median.
    n_structures : structures used; labels : distinct labels of the library (sorted).
    rg_relative_spread : pooled within-composition relative standard deviation of the radius of
        gyration (unweighted, all atoms) over the compositions with >= 2 nodes and >= 5
        structures (0: not learned): how far one cluster's Rg scatters about its label's mean.
    """

    atom_type_by_element: dict[str, str]
    pair_cutoffs: dict[str, float]
    node_bond_length: float
    bond_length_medians: dict[str, float] = field(default_factory=dict)
    seed_contact_medians: dict[str, float] = field(default_factory=dict)
    min_contact_distances: dict[str, float] = field(default_factory=dict)
    contact_cutoffs: dict[str, float] = field(default_factory=dict)
    contact_distance_medians: dict[str, float] = field(default_factory=dict)
    geometry_contact_distance_medians: dict[str, float] = field(default_factory=dict)
    node_angle_medians: dict[str, float] = field(default_factory=dict)
    node_angle_modes: dict[str, list[float]] = field(default_factory=dict)
    node_coordination_medians: dict[str, float] = field(default_factory=dict)
    non_node_node_coordination_medians: dict[str, float] = field(default_factory=dict)
    atom_coordination_medians: dict[str, float] = field(default_factory=dict)
    support: dict[str, int] = field(default_factory=dict)
    n_structures: int = 0
    labels: tuple[str, ...] = ()
    rg_relative_spread: float = 0.0

    # ---- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON-compatible dict (labels as a list)."""
        d = asdict(self)
        d["labels"] = list(self.labels)
        return d

    @classmethod
    def from_dict(cls, data: Mapping) -> GeometryStatistics:
        d = dict(data)
        d["labels"] = tuple(d.get("labels", ()))
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown GeometryStatistics fields: {sorted(unknown)}")
        return cls(**d)

    def to_json(self, path=None, indent: int = 2) -> str:
        """JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, sort_keys=True)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, text_or_path) -> GeometryStatistics:
        """From JSON text or from a file path."""
        s = str(text_or_path)
        if not s.lstrip().startswith("{"):
            s = Path(s).read_text(encoding="utf-8")
        return cls.from_dict(json.loads(s))

    # ---- lookups used by the builder ---------------------------------------------
    def atom_type(self, element: str) -> str:
        """'node' / 'linker' / 'shell' of an element; ValueError when the element is unknown."""
        el = normalize_element(element)
        try:
            return self.atom_type_by_element[el]
        except KeyError:
            raise ValueError(
                f"unknown element {el!r}: the geometry statistics know {sorted(self.atom_type_by_element)}"
            ) from None

    @property
    def node_elements(self) -> list[str]:
        return sorted(e for e, t in self.atom_type_by_element.items() if t == "node")

    def pair_distance(self, a: str, b: str) -> float:
        """Target distance of an element pair (ref §4.7 lookup order): contact median, bond median,
        type-pair contact median, pair cutoff, node bond length."""
        key = element_pair_key(a, b)
        for table in (self.contact_distance_medians, self.bond_length_medians):
            if key in table:
                return float(table[key])
        tkey = type_pair_key(self.atom_type(a), self.atom_type(b))
        if tkey in self.geometry_contact_distance_medians:
            return float(self.geometry_contact_distance_medians[tkey])
        if key in self.pair_cutoffs:
            return float(self.pair_cutoffs[key])
        return float(self.node_bond_length)

    def bond_length(self, a: str, b: str) -> float | None:
        """Learned bond length of an element pair: bond median, else None."""
        v = self.bond_length_medians.get(element_pair_key(a, b))
        return None if v is None else float(v)

    def min_distance(self, a: str, b: str) -> float:
        """Shortest acceptable distance of an element pair: the shortest distance observed in the
        library, else 0.75 x :meth:`pair_distance`."""
        v = self.min_contact_distances.get(element_pair_key(a, b))
        return float(v) if v is not None else 0.75 * self.pair_distance(a, b)

    def contact_cutoff(self, a: str, b: str) -> float:
        """Contact cutoff of an element pair (pass 2 rule; computed from the lookups when unseen)."""
        key = element_pair_key(a, b)
        if key in self.contact_cutoffs:
            return float(self.contact_cutoffs[key])
        fallback = self.pair_cutoffs.get(key, self.node_bond_length)
        return min(1.25 * self.pair_distance(a, b) + 0.15, 1.40 * fallback + 0.20)

    def node_angle(self, type_a: str, type_b: str) -> float:
        """Median node-centred angle of a type pair (defaults 180 for node-node, 120 otherwise)."""
        key = type_pair_key(type_a, type_b)
        if key in self.node_angle_medians:
            return float(self.node_angle_medians[key])
        return DEFAULT_NODE_NODE_ANGLE if key == "node-node" else DEFAULT_NODE_ANGLE

    def node_angle_targets(self, type_a: str, type_b: str) -> list[float]:
        """Preferred node-centred angles of a type pair: the learned modes, else [median/default]."""
        modes = self.node_angle_modes.get(type_pair_key(type_a, type_b))
        return [float(m) for m in modes] if modes else [self.node_angle(type_a, type_b)]

    def node_coordination(self, atom_type: str) -> float:
        """Median number of neighbours of ``atom_type`` per node (0 when unseen)."""
        return float(self.node_coordination_medians.get(atom_type, 0.0))

    def non_node_node_coordination(self, element: str) -> float:
        """Median number of nodes a non-node element bonds to (default 1)."""
        return float(self.non_node_node_coordination_medians.get(normalize_element(element), 1.0))

    def atom_coordination(self, center_type: str, neighbor_type: str) -> float:
        """Median number of contacts of ``neighbor_type`` around a ``center_type`` atom (0 when unseen)."""
        return float(self.atom_coordination_medians.get(coordination_key(center_type, neighbor_type), 0.0))
