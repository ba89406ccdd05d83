"""Reading the structure library, per-label descriptors and training rows (ref §4.1, §4.2).

The library layout is the one ``write_library`` produces (ref §1.7)::

    <library>/<LABEL>/<frame>_<ID>.xyz|pdb        flat files, and/or
    <library>/<LABEL>/motif_*/<...>.xyz|pdb        motif sub-folders
    <library>/representative_*/, hidden folders    skipped (``.extract_tmp`` of an interrupted run)

Better than the reference: flat files and ``motif_*`` sub-folders are read together, and the
same file set feeds the descriptors and the Debye-Waller estimator (ref V15); descriptors are
computed on tracked atoms only in both XYZ and PDB files (ref N11); a folder label that
disagrees with the file compositions (ref V4) and a library label never seen in the frames
(ref V3) are reported as warnings instead of being accepted silently.

Shape descriptors (Rg, max radius, semiaxes; angstrom): :mod:`clusterdynamicsml.library.descriptors`.

Stability weight of a training row (ref §4.2), with a missing lifetime taken as 0::

    w = 1 + max(file_count, 0)/10 + max(completed_lifetime_count, 0)/5
          + 5 max(mean_count_per_frame, 0) + 5 max(occupancy_fraction, 0) + mean_lifetime_fs/100
"""
from __future__ import annotations

import csv
import dataclasses
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..chem import format_label, parse_label
from ..dynamics.analyze import LIFETIME_COLUMNS
from ..io.frames import FileFormatError
from ..io.frames import read_structure as _read_frame_file
from ..rules import as_rules
from .descriptors import DESCRIPTOR_NAMES, shape_descriptors, shape_descriptors_batch  # noqa: F401

STRUCTURE_SUFFIXES = (".xyz", ".pdb")

#: The lifetime-table columns (ref §3.7), the same tuple as the dynamics stage writes.
LIFETIME_FIELDS = LIFETIME_COLUMNS
_INT_LIFETIME_FIELDS = {
    "cluster_size",
    "completed_lifetime_count",
    "window_truncated_lifetime_count",
    "total_observations",
    "occupied_frames",
    "association_events",
    "dissociation_events",
}
_OPTIONAL_LIFETIME_FIELDS = {"mean_lifetime_fs", "std_lifetime_fs"}


# --------------------------------------------------------------------------------------------
# atom-type rules




@dataclass(frozen=True)
class AtomTypes:
    """The atom-type view of a :class:`~clusterdynamicsml.rules.ClusterRules` that the library
    and the prediction need (a thin conversion: :meth:`from_rules`).

    node, linker, shell : tuples of (element, residue or None).
    shells_in_label : whether shell elements enter the stoichiometry label.
    cutoffs : {(el_a, el_b): level-0 cutoff in angstrom}, both orders present.
    """

    node: tuple
    linker: tuple
    shell: tuple
    shells_in_label: bool = False
    cutoffs: dict = field(default_factory=dict)

    @classmethod
    def from_rules(cls, rules) -> AtomTypes:
        """The view of a ``ClusterRules`` (or of a mapping for ``ClusterRules.from_dict``)."""
        if isinstance(rules, AtomTypes):
            return rules
        r = as_rules(rules, mappings=True)
        cutoffs: dict = {}
        for (a, b), d in r.pair_cutoffs.items():
            cutoffs[(a, b)] = cutoffs[(b, a)] = d
        return cls(r.node, r.linker, r.shell, r.shells_in_label, cutoffs)

    @property
    def node_elements(self) -> tuple:
        return tuple(sorted({e for e, _ in self.node}))

    @property
    def linker_elements(self) -> tuple:
        return tuple(sorted({e for e, _ in self.linker} - set(self.node_elements)))

    @property
    def shell_elements(self) -> tuple:
        used = set(self.node_elements) | set(self.linker_elements)
        return tuple(sorted({e for e, _ in self.shell} - used))

    @property
    def tracked_elements(self) -> tuple:
        return self.node_elements + self.linker_elements + self.shell_elements

    @property
    def label_elements(self) -> tuple:
        """Elements that enter a stoichiometry label, in label order."""
        out = self.node_elements + self.linker_elements
        return out + self.shell_elements if self.shells_in_label else out

    def type_of(self, element: str) -> str | None:
        if element in self.node_elements:
            return "node"
        if element in self.linker_elements:
            return "linker"
        if element in self.shell_elements:
            return "shell"
        return None

    def tracked_mask(self, symbols, residues=None) -> np.ndarray:
        """Boolean mask of the atoms matched by a node, linker or shell entry."""
        specs = self.node + self.linker + self.shell
        by_element: dict = {}
        for el, res in specs:
            by_element.setdefault(el, set()).add(None if res is None else res.upper())
        mask = np.zeros(len(symbols), dtype=bool)
        for i, el in enumerate(symbols):
            allowed = by_element.get(el)
            if not allowed:
                continue
            if None in allowed or residues is None:
                mask[i] = True
            else:  # residue names match case-insensitively, as in ClusterRules
                mask[i] = (residues[i] or "").upper() in allowed
        return mask

    def pair_cutoff(self, a: str, b: str) -> float | None:
        return self.cutoffs.get((a, b))

    def format_label(self, counts: Mapping) -> str:
        """Stoichiometry label of the label part of ``counts`` (:func:`chem.format_label`: node
        elements, then linkers, then shells if in the label, each alphabetical, count 1
        omitted). ValueError when no label element is present."""
        return format_label(self.label_counts(counts), self)

    def label_counts(self, counts: Mapping) -> dict:
        """The part of a composition that enters the label."""
        return {el: int(counts[el]) for el in self.label_elements if int(counts.get(el, 0)) > 0}


#: Counts of a stoichiometry label, ``"Pb2I5"`` -> {"Pb": 2, "I": 5} (:func:`chem.parse_label`).
parse_label_counts = parse_label


# --------------------------------------------------------------------------------------------
# single-structure readers


#: A structure file that cannot be read; the message names the file and the line.
StructureFileError = FileFormatError


def read_structure(path, types: AtomTypes | None = None):
    """Read one XYZ or PDB structure file.

    Returns ``(symbols, positions)``: element symbols and float64 (n, 3) positions in angstrom.
    With ``types`` given, only tracked atoms (node, linker, shell entries, residue-aware for
    PDB) are returned.
    """
    path = Path(path)
    if path.suffix.lower() not in (".xyz", ".pdb"):
        raise ValueError(f"structure file must end in .xyz or .pdb, got {path.name!r}")
    frame = _read_frame_file(path)  # the package's one structure-file parser (errors name the file and line)
    symbols, pos, residues = list(frame.symbols), frame.positions, frame.residues
    if types is not None:
        mask = types.tracked_mask(symbols, residues)
        symbols = [s for s, m in zip(symbols, mask) if m]
        pos = pos[mask]
    return symbols, np.ascontiguousarray(pos)


# --------------------------------------------------------------------------------------------
# the library


def _natural_key(text: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


@dataclass
class StructureObservation:
    """One label folder of the structure library (ref §4.1), descriptors in angstrom.

    element_counts : modal tracked composition over the readable files.
    node_count : sum of node-element counts; cluster_size : sum of label-element counts.
    file_count : files listed (readable or not); readable_count : files read.
    mean_* / std_* : mean and population std of the descriptors over readable files.
    mismatched_file_count : readable files whose label composition differs from the folder label.
    """

    label: str
    node_count: int
    element_counts: dict
    cluster_size: int
    file_count: int
    readable_count: int
    representative_path: str | None
    structure_dir: str
    motifs: list
    files: list
    mean_atom_count: float
    mean_radius_of_gyration: float
    mean_max_radius: float
    mean_semiaxis_a: float
    mean_semiaxis_b: float
    mean_semiaxis_c: float
    std_radius_of_gyration: float = 0.0
    std_max_radius: float = 0.0
    mismatched_file_count: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> StructureObservation:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


class StructureLibrary:
    """The observed structure library: one ``StructureObservation`` per label folder.

    ``warnings`` lists unreadable files and folder-label / file-composition mismatches.
    ``structures(label)`` re-reads that label's files, tracked atoms only, as a list of
    ``(symbols, positions)`` (positions float64 (n, 3), angstrom).
    """

    def __init__(self, root, types: AtomTypes, observations, warnings=()):
        self.root = str(root)
        self.types = types
        self.observations = list(observations)
        self.warnings = list(warnings)

    @property
    def labels(self) -> list:
        return [o.label for o in self.observations]

    def __len__(self) -> int:
        return len(self.observations)

    def __iter__(self):
        return iter(self.observations)

    def __getitem__(self, label: str) -> StructureObservation:
        for o in self.observations:
            if o.label == label:
                return o
        raise KeyError(f"label {label!r} not in the structure library (labels: {self.labels})")

    def to_pandas(self):
        """One row per label (:class:`StructureObservation` fields) as a ``pandas.DataFrame``
        (pandas is optional)."""
        from .._io import to_pandas

        return to_pandas([o.to_dict() for o in self.observations])

    def structures(self, label: str) -> list:
        out = []
        for f in self[label].files:
            try:
                out.append(read_structure(f, self.types))
            except (OSError, ValueError):
                continue
        return out


def _label_files(label_dir: Path):
    motifs = sorted((p for p in label_dir.iterdir() if p.is_dir() and p.name.startswith("motif_")), key=lambda p: _natural_key(p.name))
    files = [p for p in label_dir.iterdir() if p.is_file() and p.suffix.lower() in STRUCTURE_SUFFIXES]
    for m in motifs:
        files.extend(p for p in m.rglob("*") if p.is_file() and p.suffix.lower() in STRUCTURE_SUFFIXES)
    prefix = len(str(label_dir)) + 1
    files.sort(key=lambda p: _natural_key(str(p)[prefix:]))
    return files, [m.name for m in motifs]


def read_library(library_dir, rules, frame_labels: Iterable[str] | None = None) -> StructureLibrary:
    """Read a structure library folder (ref §1.7, §4.1).

    library_dir : folder with one sub-folder per stoichiometry label.
    rules : ``ClusterRules`` (node, linker, shell, cutoffs, shells_in_label).
    frame_labels : optional labels seen in the frames; library labels not among them get a
        warning (ref V3).

    Element counts are the modal tracked composition over the readable files (ties: larger
    total, then the lexicographic signature); the representative file is, among the files with
    that composition, the one with most tracked atoms, then the smallest path. Labels whose
    node count is 0 are dropped (with a warning). Raises ValueError when the folder does not
    exist or holds no label folder with structure files.
    """
    types = AtomTypes.from_rules(rules)
    root = Path(library_dir)
    if not root.is_dir():
        raise ValueError(f"structure library folder expected, got {str(library_dir)!r} (not a directory)")
    observations, warnings = [], []
    label_dirs = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("representative_", "."))), key=lambda p: _natural_key(p.name))
    for label_dir in label_dirs:
        files, motifs = _label_files(label_dir)
        if not files:
            continue
        label = label_dir.name
        compositions, descriptors, atom_counts, readable = [], [], [], []
        for f in files:
            try:
                symbols, pos = read_structure(f, types)
            except (OSError, ValueError) as exc:
                warnings.append(f"unreadable structure file skipped: {exc}")
                continue
            counts = Counter(symbols)
            compositions.append(tuple(sorted(counts.items())))
            descriptors.append(pos)
            atom_counts.append(len(symbols))
            readable.append(f)
        shape = shape_descriptors_batch(descriptors)
        try:
            folder_counts = parse_label_counts(label)
        except ValueError:
            folder_counts = None
        if compositions:
            tally = Counter(compositions)
            # modal composition; ties: larger total, then the lexicographic signature
            modal = min(tally, key=lambda c: (-tally[c], -sum(n for _, n in c), "".join(f"{e}{n}" for e, n in c)))
            element_counts = dict(modal)
            rep_candidates = [(atom_counts[i], str(readable[i])) for i, c in enumerate(compositions) if c == modal]
            representative = min(rep_candidates, key=lambda t: (-t[0], t[1]))[1]
        elif folder_counts is not None:
            element_counts = {e: c for e, c in folder_counts.items() if e in types.tracked_elements}
            representative = None
            warnings.append(f"label {label}: no readable structure file; composition taken from the folder name")
        else:
            warnings.append(f"label {label}: no readable structure file and the folder name is not a label; skipped")
            continue
        node_count = sum(int(element_counts.get(e, 0)) for e in types.node_elements)
        if node_count <= 0:
            warnings.append(f"label {label}: no node atoms ({types.node_elements}) in its structures; dropped from the training set")
            continue
        mismatched = 0
        if folder_counts is not None:
            want = {e: c for e, c in folder_counts.items()}
            for comp in compositions:
                if types.label_counts(dict(comp)) != want:
                    mismatched += 1
            if mismatched:
                warnings.append(
                    f"label {label}: {mismatched} of {len(compositions)} readable files have a composition other than the "
                    f"folder label (modal file composition {types.format_label(element_counts)}); the file counts are used"
                )
        elif compositions:
            warnings.append(f"label folder {label!r} is not a stoichiometry label; the file composition {types.format_label(element_counts)} is used")
        def mean_of(key):
            return float(np.mean(shape[key])) if len(shape[key]) else 0.0

        def std_of(key):
            return float(np.std(shape[key])) if len(shape[key]) else 0.0

        observations.append(
            StructureObservation(
                label=label,
                node_count=int(node_count),
                element_counts={e: int(element_counts[e]) for e in types.tracked_elements if int(element_counts.get(e, 0)) > 0},
                cluster_size=int(sum(types.label_counts(element_counts).values())),
                file_count=len(files),
                readable_count=len(readable),
                representative_path=representative,
                structure_dir=str(label_dir),
                motifs=motifs,
                files=[str(f) for f in files],
                mean_atom_count=float(np.mean(atom_counts)) if atom_counts else float(sum(element_counts.values())),
                mean_radius_of_gyration=mean_of("radius_of_gyration"),
                mean_max_radius=mean_of("max_radius"),
                mean_semiaxis_a=mean_of("semiaxis_a"),
                mean_semiaxis_b=mean_of("semiaxis_b"),
                mean_semiaxis_c=mean_of("semiaxis_c"),
                std_radius_of_gyration=std_of("radius_of_gyration"),
                std_max_radius=std_of("max_radius"),
                mismatched_file_count=mismatched,
            )
        )
    if not observations:
        raise ValueError(f"structure library {str(root)!r} holds no label folder with readable {'/'.join(STRUCTURE_SUFFIXES)} files containing node atoms")
    if frame_labels is not None:
        seen = set(frame_labels)
        for o in observations:
            if o.label not in seen:
                warnings.append(_never_seen_message(o.label))
    return StructureLibrary(root, types, observations, warnings)


# --------------------------------------------------------------------------------------------
# dynamics lifetime table and training rows


def _never_seen_message(label: str) -> str:
    return f"library label {label} never appears in the frames (no row in the dynamics lifetime table); it trains with zero dynamics"


def _row_to_dict(row) -> dict:
    if isinstance(row, Mapping):
        return dict(row)
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return dataclasses.asdict(row)
    if hasattr(row, "to_dict"):
        return dict(row.to_dict())
    if hasattr(row, "_asdict"):
        return dict(row._asdict())
    raise ValueError(f"lifetime rows must be mappings or dataclasses, got {type(row).__name__}")


def _coerce_lifetime_value(key, value):
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None if key in _OPTIONAL_LIFETIME_FIELDS else 0
    if key == "label":
        return str(value)
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"lifetime column {key!r} must be numeric, got {value!r}") from None
    if not math.isfinite(num):
        return None if key in _OPTIONAL_LIFETIME_FIELDS else 0.0
    return int(round(num)) if key in _INT_LIFETIME_FIELDS else num


def load_lifetime_table(source) -> dict:
    """Normalise a dynamics lifetime table to ``{label: row dict}`` with the ref §3.7 columns.

    source : a ``DynamicsResult`` (its ``lifetime_by_label``), a list of rows (dicts or
        dataclasses), a ``{label: row}`` mapping, or the path of a ``*_lifetime.csv``.
    Missing numeric columns are 0; missing mean/std lifetimes are None.
    """
    if source is None:
        raise ValueError("lifetime table expected (DynamicsResult, rows, or *_lifetime.csv path), got None")
    if hasattr(source, "lifetime_by_label"):
        source = source.lifetime_by_label
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"lifetime CSV file expected, got {str(source)!r} (no such file)")
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if rows and "label" not in rows[0]:
            raise ValueError(f"{path}: lifetime CSV needs a 'label' column, got columns {list(rows[0])}")
    elif isinstance(source, Mapping):
        rows = []
        for key, value in source.items():
            d = _row_to_dict(value)
            d.setdefault("label", key)
            rows.append(d)
    else:
        try:
            rows = [_row_to_dict(r) for r in source]
        except TypeError:
            raise ValueError(f"lifetime table expected (DynamicsResult, rows, or CSV path), got {type(source).__name__}") from None
    table = {}
    for r in rows:
        if "label" not in r:
            raise ValueError(f"every lifetime row needs a 'label', got keys {sorted(r)}")
        clean = {k: _coerce_lifetime_value(k, r.get(k)) for k in LIFETIME_FIELDS}
        table[clean["label"]] = clean
    return table


@dataclass
class TrainingRow:
    """A training observation: structure descriptors (angstrom) joined with dynamics (ref §4.2).

    Dynamics fields are zero (lifetime None) for a label never seen in the frames.
    """

    label: str
    node_count: int
    element_counts: dict
    cluster_size: int
    file_count: int
    representative_path: str | None
    structure_dir: str
    mean_atom_count: float
    mean_radius_of_gyration: float
    mean_max_radius: float
    mean_semiaxis_a: float
    mean_semiaxis_b: float
    mean_semiaxis_c: float
    total_observations: int = 0
    occupied_frames: int = 0
    mean_count_per_frame: float = 0.0
    occupancy_fraction: float = 0.0
    association_events: int = 0
    dissociation_events: int = 0
    association_rate_per_ps: float = 0.0
    dissociation_rate_per_ps: float = 0.0
    completed_lifetime_count: int = 0
    window_truncated_lifetime_count: int = 0
    mean_lifetime_fs: float | None = None
    std_lifetime_fs: float | None = None
    in_dynamics: bool = True

    @property
    def stability_weight(self) -> float:
        """Ref §4.2 stability weight (dimensionless, >= 1)."""
        lifetime = self.mean_lifetime_fs if self.mean_lifetime_fs is not None else 0.0
        return (
            1.0
            + max(self.file_count, 0) / 10.0
            + max(self.completed_lifetime_count, 0) / 5.0
            + 5.0 * max(self.mean_count_per_frame, 0.0)
            + 5.0 * max(self.occupancy_fraction, 0.0)
            + lifetime / 100.0
        )

    @property
    def observed_weight(self) -> float:
        """Ref §4.9 population weight ``max(mean_count, 0) * max(occupancy, 0.05)``."""
        return max(self.mean_count_per_frame, 0.0) * max(self.occupancy_fraction, 0.05)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["stability_weight"] = self.stability_weight
        return d

    @classmethod
    def from_dict(cls, data: Mapping) -> TrainingRow:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def build_training_rows(library: StructureLibrary, lifetime_table) -> tuple:
    """Join each library label with the dynamics row of the same label (ref §4.0 step 3).

    Returns ``(rows, warnings)``. A library label missing from the lifetime table keeps an
    all-zero dynamics row (it still trains, with weight >= 1) and produces a warning (ref V3).
    """
    table = load_lifetime_table(lifetime_table)
    rows, warnings = [], []
    for obs in library.observations:
        dyn = table.get(obs.label)
        row = TrainingRow(
            label=obs.label,
            node_count=obs.node_count,
            element_counts=dict(obs.element_counts),
            cluster_size=obs.cluster_size,
            file_count=obs.file_count,
            representative_path=obs.representative_path,
            structure_dir=obs.structure_dir,
            mean_atom_count=obs.mean_atom_count,
            mean_radius_of_gyration=obs.mean_radius_of_gyration,
            mean_max_radius=obs.mean_max_radius,
            mean_semiaxis_a=obs.mean_semiaxis_a,
            mean_semiaxis_b=obs.mean_semiaxis_b,
            mean_semiaxis_c=obs.mean_semiaxis_c,
            in_dynamics=dyn is not None,
        )
        if dyn is None:
            warnings.append(_never_seen_message(obs.label))
        else:
            for key in LIFETIME_FIELDS:
                if key in ("label", "cluster_size"):
                    continue
                setattr(row, key, dyn[key])
        rows.append(row)
    return rows, warnings
