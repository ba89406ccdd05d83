"""Whole shell molecules (e.g. DMF) on the built shell atoms (ref §4.8 step 6)."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..chem import normalize_element
from .directions import _SPHERE, _basis, _cone, _cross, _unit
from .records import BuiltStructure


@dataclass(frozen=True)
class ShellTemplate:
    """A full shell molecule (e.g. DMF) anchored on one of its atoms.

    symbols (m,), positions float64 (m, 3) angstrom, atom_names (m,), residue_name, and
    anchor_index: the atom that sits on the built shell atom (for DMF: its O).
    """

    symbols: list[str]
    positions: np.ndarray
    atom_names: list[str]
    residue_name: str
    anchor_index: int

    @classmethod
    def from_pdb(cls, path, anchor_element: str) -> ShellTemplate:
        """Read a one-molecule PDB (or XYZ) with :func:`clusterdynamicsml.io.frames.read_frames`; the
        anchor is the first atom of ``anchor_element``. ValueError when the file cannot be read, has
        no atoms or no such element."""
        from ..io.frames import read_frames

        path = Path(path)
        source = read_frames(path)
        if len(source) < 1:
            raise ValueError(f"{path}: no structure in the shell template file")
        frame = source[0]
        syms = [normalize_element(s) for s in frame.symbols]
        if not syms:
            raise ValueError(f"{path}: the shell template has no atoms")
        anchor = normalize_element(anchor_element)
        if anchor not in syms:
            raise ValueError(
                f"{path}: the shell template has no {anchor} atom to anchor on (elements {sorted(set(syms))})"
            )
        names = list(frame.atom_names) if frame.atom_names else [f"{s}{k + 1}" for k, s in enumerate(syms)]
        resname = (frame.residues[0] if frame.residues else "") or "SOL"
        return cls(syms, np.asarray(frame.positions, float), [n[:4] for n in names], resname[:4], syms.index(anchor))


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation matrix R with R @ unit(a) = unit(b) (Rodrigues)."""
    a, b = _unit(a), _unit(b)
    v = _cross(a, b)
    c = float(a @ b)
    if c < -1.0 + 1e-12:
        _, u, _ = _basis(a)
        return 2.0 * np.outer(u, u) - np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1.0 + c)


def _axis_rotations(axis: np.ndarray, n: int) -> np.ndarray:
    """(n, 3, 3) rotations by 2 pi k / n about a unit axis."""
    a = _unit(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = 2.0 * math.pi * np.arange(n) / n
    return np.eye(3)[None] + np.sin(t)[:, None, None] * k[None] + (1 - np.cos(t))[:, None, None] * (k @ k)[None]


def _best_orientation(others, out_t, anchor, radial, axes, env):
    """Best placement of a template (non-anchor atoms ``others`` relative to the anchor) with its
    outward vector along one of ``axes`` and 24 rotations about it. Returns
    (score, positions (m-1, 3), clash penalty)."""
    best = None
    for ax in axes:
        r0 = _rotation_between(out_t, ax)
        rots = _axis_rotations(ax, 24) @ r0  # (24, 3, 3)
        mols = np.einsum("rij,mj->rmi", rots, others) + anchor  # (24, m-1, 3)
        if len(env):
            d = np.sqrt(((mols[:, :, None, :] - env[None, None, :, :]) ** 2).sum(-1))
            clash = 800.0 * (np.clip(1.2 - d, 0, None) ** 2).sum((1, 2)) + 15.0 * (
                np.clip(1.5 - d, 0, None) ** 2).sum((1, 2))
            score = clash - 0.5 * np.minimum(d.min((1, 2)), 8.0)
        else:
            clash = np.zeros(len(rots))
            score = np.zeros(len(rots))
        score = score - 10.0 * float(_unit(ax) @ radial)
        j = int(np.argmin(score))
        if best is None or score[j] < best[0] - 1e-12:
            best = (float(score[j]), mols[j], float(clash[j]))
    return best


def place_shell_molecules(structure: BuiltStructure, templates: Mapping[str, ShellTemplate]):
    """Replace every built atom of a templated shell element by a full molecule (ref §4.8 step 6).

    Each molecule is rotated so that its outward vector (mean of the non-anchor atoms - anchor)
    points away from the cluster centroid, then the best of 24 rotations about that axis (and
    about 6 axes tilted by 25 degrees) is kept; if that leaves a contact under 1.5 A, 48 axes
    over the whole sphere are tried as well. Score against the cluster, the molecules already
    placed and the anchors still to be expanded::

        800 sum clip(1.2 - d, 0)^2 + 15 sum clip(1.5 - d, 0)^2 - 0.5 min(min d, 8) - 10 u . outward

    Returns a list of residues ``(residue_name, symbols, positions (m, 3), atom_names)`` in atom
    order: templated atoms become whole molecules, the others single-atom residues.
    """
    pos = structure.positions
    syms = structure.symbols
    anchors = [k for k, s in enumerate(syms) if s in templates]
    anchor_set = set(anchors)
    solute_idx = [k for k in range(len(syms)) if k not in anchor_set]
    centroid = pos.mean(axis=0) if len(syms) else np.zeros(3)
    placed_solvent: list[np.ndarray] = []
    molecules: dict[int, np.ndarray] = {}
    for k in anchors:
        t = templates[syms[k]]
        local = t.positions - t.positions[t.anchor_index]
        others = np.delete(local, t.anchor_index, axis=0)
        out_t = others.mean(axis=0) if len(others) else np.array([1.0, 0.0, 0.0])
        radial = pos[k] - centroid
        if np.linalg.norm(radial) < 1e-9:
            radial = np.array([0.0, 0.0, 1.0])
        radial = _unit(radial)
        axes = [radial] + [_unit(math.cos(math.radians(25)) * radial + math.sin(math.radians(25)) * w)
                           for w in _cone(radial, 90.0, 6)]
        env_parts = [pos[solute_idx]] + placed_solvent + [pos[[j for j in anchors if j != k and j not in molecules]]]
        env = np.vstack([e for e in env_parts if len(e)]) if any(len(e) for e in env_parts) else np.zeros((0, 3))
        # atoms farther than (template extent + 8 A) cannot change the score: drop them
        reach = (np.linalg.norm(others, axis=1).max() if len(others) else 0.0) + 8.0
        if len(env):
            env = env[np.linalg.norm(env - pos[k], axis=1) <= reach]
        best = _best_orientation(others, out_t, pos[k], radial, axes, env)
        if best[2] > 0.0:  # a contact under 1.5 A: search axes over the whole sphere
            wide = _best_orientation(others, out_t, pos[k], radial, list(_SPHERE), env)
            if wide[0] < best[0]:
                best = wide
        full = np.insert(best[1], t.anchor_index, pos[k], axis=0)
        molecules[k] = full
        placed_solvent.append(np.delete(full, t.anchor_index, axis=0))
    residues = []
    tags = {"node": "NOD", "linker": "LNK", "shell": "SOL"}
    for k, s in enumerate(syms):
        if k in molecules:
            t = templates[s]
            residues.append((t.residue_name, list(t.symbols), molecules[k], list(t.atom_names)))
        else:
            kind = structure.atom_types[k] if structure.atom_types else "node"
            residues.append((tags.get(kind, "UNK"), [s], pos[k][None, :], [f"{s}{k + 1}"[:4] if k < 99 else s]))
    return residues

