"""File names and writers of built structures (ref §4.10): XYZ, or PDB with whole shell molecules."""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..chem import normalize_element
from .records import BuiltStructure
from .shells import ShellTemplate, place_shell_molecules


def built_structure_filename(label: str, target_node_count: int, rank: int, ext: str = "xyz") -> str:
    """``NN_rankRR_<label>.<ext>``: NN the target size and RR the rank (2 digits), the label with
    every character outside ``[A-Za-z0-9._-]`` replaced by ``_`` (ref §4.10)."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(label))
    return f"{int(target_node_count):02d}_rank{int(rank):02d}_{safe}.{ext}"


def write_built_structure(
    path,
    structure: BuiltStructure,
    *,
    target_node_count: int | None = None,
    rank: int = 1,
    source_label: str | None = None,
    shell_templates: Mapping | None = None,
    fmt: str | None = None,
) -> Path:
    """Write a built structure as XYZ, or as PDB with full shell molecules.

    path : a directory (the file is named by :func:`built_structure_filename`) or a file path
        ending in .xyz / .pdb.
    target_node_count : NN of the file name and comment (default: the number of node atoms).
    rank, source_label : written to the comment line
        ``label=<L> target_node_count=<n> rank=<r> source_label=<s>`` (ref §4.10).
    shell_templates : ``{element: ShellTemplate or path to a one-molecule PDB}``; each built atom
        of that element becomes a whole molecule (see :func:`place_shell_molecules`); implies PDB.
    fmt : 'xyz' or 'pdb' (default from the path suffix, else 'pdb' with templates, else 'xyz').

    Files are written by :func:`clusterdynamicsml.io.frames.write_xyz` (coordinates with 8 decimals)
    and :func:`~clusterdynamicsml.io.frames.write_pdb` (the comment as a REMARK line). Returns the path.
    """
    if not isinstance(structure, BuiltStructure):
        raise ValueError(f"structure must be a BuiltStructure, got {type(structure).__name__}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 0:
        raise ValueError(f"rank must be a non-negative integer, got {rank!r}")
    if target_node_count is None:
        target_node_count = sum(1 for t in structure.atom_types if t == "node") or len(structure.symbols)
    if (isinstance(target_node_count, bool) or not isinstance(target_node_count, (int, np.integer))
            or target_node_count < 0):
        raise ValueError(f"target_node_count must be a non-negative integer, got {target_node_count!r}")
    templates: dict[str, ShellTemplate] = {}
    for el, t in (shell_templates or {}).items():
        e = normalize_element(el)
        templates[e] = t if isinstance(t, ShellTemplate) else ShellTemplate.from_pdb(t, e)
    path = Path(path)
    if fmt is None:
        fmt = path.suffix.lower().lstrip(".") if path.suffix.lower() in (".xyz", ".pdb") else (
            "pdb" if templates else "xyz")
    fmt = fmt.lower()
    if fmt not in ("xyz", "pdb"):
        raise ValueError(f"fmt must be 'xyz' or 'pdb', got {fmt!r}")
    if templates and fmt != "pdb":
        raise ValueError("shell_templates need the PDB format")
    if path.suffix.lower() not in (".xyz", ".pdb"):
        path.mkdir(parents=True, exist_ok=True)
        path = path / built_structure_filename(structure.label, target_node_count, rank, fmt)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    from ..io.frames import write_pdb, write_xyz

    source = structure.label if source_label is None else source_label
    comment = (f"label={structure.label} target_node_count={int(target_node_count)} rank={int(rank)} "
               f"source_label={source}")
    if fmt == "xyz":
        write_xyz(path, structure.symbols, structure.positions, comment=comment)
    else:
        residues = place_shell_molecules(structure, templates)
        syms, pos, names, resn, rid = [], [], [], [], []
        for k, (resname, rsyms, rpos, rnames) in enumerate(residues, 1):
            syms += rsyms
            pos.append(rpos)
            names += rnames
            resn += [resname] * len(rsyms)
            rid += [k] * len(rsyms)
        write_pdb(path, syms, np.vstack(pos) if pos else np.zeros((0, 3)), residues=resn, residue_ids=rid,
                  atom_names=names, comment=comment)
    return path

