"""Reading the structure library and its per-label descriptors (ref §4.1).

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
The per-label records: :mod:`clusterdynamicsml.library.records`; the lifetime table and the
training rows (ref §4.2, importable from here too): :mod:`clusterdynamicsml.library.training`.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..chem import format_label, parse_label
from ..errors import InsufficientDataError
from ..io.frames import FileFormatError
from ..io.frames import read_structure as _read_frame_file
from ..rules import as_rules
from .descriptors import DESCRIPTOR_NAMES, shape_descriptors, shape_descriptors_batch  # noqa: F401
from .records import LabelRecord, StructureObservation, TrainingRow  # noqa: F401
from .training import LIFETIME_FIELDS, build_training_rows, load_lifetime_table, never_seen_message  # noqa: F401

STRUCTURE_SUFFIXES = (".xyz", ".pdb")


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
    motifs = sorted(
        (p for p in label_dir.iterdir() if p.is_dir() and p.name.startswith("motif_")),
        key=lambda p: _natural_key(p.name),
    )
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
    observations: list[StructureObservation] = []
    warnings: list[str] = []
    label_dirs = sorted(
        (p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("representative_", "."))),
        key=lambda p: _natural_key(p.name),
    )
    for label_dir in label_dirs:
        observation = _read_label(label_dir, types, warnings)
        if observation is not None:
            observations.append(observation)
    if not observations:
        raise InsufficientDataError(
            f"structure library {str(root)!r} holds no label folder with readable "
            f"{'/'.join(STRUCTURE_SUFFIXES)} files containing node atoms"
        )
    if frame_labels is not None:
        seen = set(frame_labels)
        for o in observations:
            if o.label not in seen:
                warnings.append(never_seen_message(o.label))
    return StructureLibrary(root, types, observations, warnings)


def _read_label_files(files, types, warnings: list[str]):
    """Tracked composition (sorted (element, count) tuple), coordinates and atom count of
    every readable structure file of one label, and the readable files; unreadable files are
    skipped with a warning."""
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
    return compositions, descriptors, atom_counts, readable


def _label_composition(label, compositions, atom_counts, readable, folder_counts, types, warnings: list[str]):
    """(element counts, representative file path or None) of one label: the modal file
    composition (ties: larger total, then the lexicographic signature) and its largest file,
    else the folder name's counts. None (with a warning) when neither gives one."""
    if compositions:
        tally = Counter(compositions)
        modal = min(tally, key=lambda c: (-tally[c], -sum(n for _, n in c), "".join(f"{e}{n}" for e, n in c)))
        rep_candidates = [(atom_counts[i], str(readable[i])) for i, c in enumerate(compositions) if c == modal]
        return dict(modal), min(rep_candidates, key=lambda t: (-t[0], t[1]))[1]
    if folder_counts is not None:
        warnings.append(f"label {label}: no readable structure file; composition taken from the folder name")
        return {e: c for e, c in folder_counts.items() if e in types.tracked_elements}, None
    warnings.append(f"label {label}: no readable structure file and the folder name is not a label; skipped")
    return None


def _count_label_mismatches(label, compositions, folder_counts, element_counts, types, warnings: list[str]) -> int:
    """Number of readable files whose label composition differs from the folder label (warned);
    a folder name that is not a label is warned about too."""
    mismatched = 0
    if folder_counts is not None:
        want = {e: c for e, c in folder_counts.items()}
        for comp in compositions:
            if types.label_counts(dict(comp)) != want:
                mismatched += 1
        if mismatched:
            warnings.append(
                f"label {label}: {mismatched} of {len(compositions)} readable files have a composition other "
                f"than the folder label (modal file composition {types.format_label(element_counts)}); "
                "the file counts are used"
            )
    elif compositions:
        warnings.append(
            f"label folder {label!r} is not a stoichiometry label; "
            f"the file composition {types.format_label(element_counts)} is used"
        )
    return mismatched


def _read_label(label_dir: Path, types, warnings: list[str]) -> StructureObservation | None:
    """The observation of one label folder, or None when it has no structure file, no
    composition or no node atoms (the last two with a warning)."""
    files, motifs = _label_files(label_dir)
    if not files:
        return None
    label = label_dir.name
    compositions, descriptors, atom_counts, readable = _read_label_files(files, types, warnings)
    shape = shape_descriptors_batch(descriptors)
    try:
        folder_counts = parse_label_counts(label)
    except ValueError:
        folder_counts = None
    found = _label_composition(label, compositions, atom_counts, readable, folder_counts, types, warnings)
    if found is None:
        return None
    element_counts, representative = found
    node_count = sum(int(element_counts.get(e, 0)) for e in types.node_elements)
    if node_count <= 0:
        warnings.append(
            f"label {label}: no node atoms ({types.node_elements}) in its structures; dropped from the training set"
        )
        return None
    mismatched = _count_label_mismatches(label, compositions, folder_counts, element_counts, types, warnings)

    def mean_of(key):
        return float(np.mean(shape[key])) if len(shape[key]) else 0.0

    def std_of(key):
        return float(np.std(shape[key])) if len(shape[key]) else 0.0

    return StructureObservation(
        label=label,
        node_count=int(node_count),
        element_counts={
            e: int(element_counts[e]) for e in types.tracked_elements if int(element_counts.get(e, 0)) > 0
        },
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
