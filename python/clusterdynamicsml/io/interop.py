"""Frames from other libraries: MDAnalysis Universes (any format MDAnalysis reads: DCD, XTC,
TRR, LAMMPS dump, ...), sequences of ase.Atoms, and lists of ``Frame`` already in memory."""
from __future__ import annotations

import contextlib
import warnings as _warnings

import numpy as np

from ..chem import element_from_token, normalize_element
from ..geometry.box import Box
from .records import SymbolList, _Parsed


class _UniverseBackend:
    """Frames of an MDAnalysis Universe (any format it reads)."""

    def __init__(self, universe, element_map):
        self.universe = universe
        self.element_map = dict(element_map) if element_map else None
        self.symbols = self._symbols()
        table, codes = np.unique(np.asarray(self.symbols, dtype=object), return_inverse=True)
        self._table, self._codes = tuple(table.tolist()), codes.reshape(-1).astype(np.int32)
        atoms = universe.atoms
        self.residues = self.residue_ids = self.atom_names = None
        try:
            self.residues = [str(r) for r in atoms.resnames]
            self.residue_ids = np.asarray(atoms.resids, dtype=np.int64)
        except Exception:  # noqa: BLE001  (MDAnalysis NoDataError when the topology has no residues)
            pass
        with contextlib.suppress(Exception):  # MDAnalysis NoDataError when the topology has no names
            self.atom_names = [str(n) for n in atoms.names]
        traj = universe.trajectory
        self.filename = str(getattr(traj, "filename", "") or getattr(universe, "filename", "") or "Universe")

    def _symbols(self) -> list[str]:
        atoms = self.universe.atoms
        errors = []
        for attr in ("elements", "names", "types"):
            try:
                raw = getattr(atoms, attr)
            except Exception:  # noqa: BLE001
                continue
            raw = np.asarray(raw).astype(str)
            if raw.size and not all(raw):
                continue
            uniq, inv = np.unique(raw, return_inverse=True)
            try:
                mapped = [element_from_token(u, self.element_map) for u in uniq]
            except ValueError as exc:
                errors.append(f"{attr}: {exc}")
                continue
            return np.asarray(mapped, dtype=object)[inv.reshape(-1)].tolist()
        raise ValueError("cannot tell the elements of the Universe's atoms from elements, names or types"
                         + (f" ({'; '.join(errors)})" if errors else "")
                         + "; pass element_map={type or name: element}")

    def __len__(self):
        return len(self.universe.trajectory)

    def location(self, entry):
        return self.filename, None

    def times_ps(self, warn: list) -> tuple[np.ndarray, bool]:
        traj = self.universe.trajectory
        with _warnings.catch_warnings(record=True) as caught:
            _warnings.simplefilter("always")
            dt = float(traj.dt)
            t0 = float(traj[0].time) if len(traj) else 0.0
        guessed = any("dt" in str(w.message) for w in caught)
        return t0 + dt * np.arange(len(traj), dtype=np.float64), guessed

    def read(self, entry, handles=None):
        ts = self.universe.trajectory[int(entry)]
        pos = np.array(ts.positions, dtype=np.float64)
        box = None
        dims = ts.dimensions
        if dims is not None and np.all(np.isfinite(dims)) and np.all(np.asarray(dims[:3]) > 0):
            box = Box.from_parameters(*[float(v) for v in dims])
        parsed = _Parsed(SymbolList.from_codes(self._codes, self._table), pos, box, None,
                         list(self.residues) if self.residues is not None else None,
                         self.residue_ids.copy() if self.residue_ids is not None else None,
                         list(self.atom_names) if self.atom_names is not None else None)
        return parsed, self.filename


class _AtomsBackend:
    """Frames from a sequence of ase.Atoms (kept in memory: they already are)."""

    def __init__(self, images):
        self.images = list(images)

    def __len__(self):
        return len(self.images)

    def location(self, entry):
        return "ase.Atoms", None

    def read(self, entry, handles=None):
        atoms = self.images[int(entry)]
        pbc = np.asarray(atoms.pbc, dtype=bool)
        box = None
        info = {k: v for k, v in atoms.info.items() if k != "time"}
        if pbc.any() and atoms.cell.rank == 3:
            box = Box.from_matrix(np.asarray(atoms.cell[:], dtype=np.float64))
            if not pbc.all():
                info["pbc"] = tuple(bool(v) for v in pbc)
        symbols = [normalize_element(s) for s in atoms.get_chemical_symbols()]
        return _Parsed(symbols, np.array(atoms.positions, dtype=np.float64), box, None, info=info), "ase.Atoms"


class _MemoryBackend:
    """Frames already in memory (a list of Frame)."""

    def __init__(self, frames):
        self.frames = list(frames)

    def __len__(self):
        return len(self.frames)

    def location(self, entry):
        return self.frames[int(entry)].source, None

    def read(self, entry, handles=None):
        f = self.frames[int(entry)]
        return _Parsed(list(f.symbols), np.array(f.positions, dtype=np.float64), f.box, f.time_fs,
                       f.residues, f.residue_ids, f.atom_names, dict(f.info)), f.source
