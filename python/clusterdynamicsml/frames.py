"""Reading MD frames: folders of XYZ/PDB files, multi-frame (extended) XYZ, CP2K pos files.

The readers are filled in by the frames stage; this module defines the ``Frame`` record
every other stage consumes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .box import Box


class FileFormatError(ValueError):
    """A malformed input file. The message names the file and the 1-based line."""

    def __init__(self, path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


@dataclass
class Frame:
    """One MD frame.

    index : 0-based position in the frame sequence that was read.
    source_index : frame number from the file name or the position in a multi-frame file.
    time_fs : time of the frame (femtoseconds).
    symbols : element symbols (n,).
    positions : float64 (n, 3), angstrom.
    box : periodic cell or None.
    residues, residue_ids, atom_names : PDB residue names (n,), residue numbers (n,), atom names (n,), or None.
    source : file the frame came from.
    info : extra per-frame metadata (extended-XYZ keys such as energy).
    """

    index: int
    source_index: int
    time_fs: float
    symbols: list[str]
    positions: np.ndarray
    box: Box | None = None
    residues: list[str] | None = None
    residue_ids: np.ndarray | None = None
    atom_names: list[str] | None = None
    source: str = ""
    info: dict = field(default_factory=dict)

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[0])
