"""Reading MD frames: folders of XYZ/PDB files, multi-frame (extended) XYZ, CP2K pos files,
multi-model PDB, MDAnalysis Universes and sequences of ase.Atoms; and writing XYZ/PDB.

Entry point: ``read_frames(path_or_object, box=None, timestep_fs=None, ...) -> FrameSource``.
A ``FrameSource`` streams ``Frame`` records (never more than one frame in memory), knows
its length, gives random access (``source[k]``, ``source.chunk(a, b)``, slicing) and pickles
to a few paths and byte offsets, so process-pool or Dask workers read their own chunk.

Units: angstrom, femtoseconds. See ``docs/frames.md`` for the rules (time axis, box
precedence, element tokens, PDB columns) and the reference behaviour they follow
(ref §1.1, §1.2, §1.5) or improve on (ref V8, V9, V10).

This module gathers the public names of the reader modules (one job each):
:mod:`.records` (Frame, SymbolList, FileFormatError), :mod:`.xyz` (XYZ / extended XYZ / CP2K
pos, atom lines parsed in C++), :mod:`.pdb`, :mod:`.cp2k` (cells in file names),
:mod:`.timeaxis`, :mod:`.interop` (MDAnalysis, ase, frames in memory) and :mod:`.source`
(``read_frames``, ``FrameSource``).
"""
from __future__ import annotations

from .cp2k import box_from_pbc_name
from .pdb import hybrid36_decode, hybrid36_encode, write_pdb
from .records import (
    DEFAULT_TIMESTEP_FS,
    EXPORT_METADATA_NAME,
    FileFormatError,
    Frame,
    SkippedFrame,
    SymbolList,
)
from .source import FrameSource, read_frames, read_structure
from .timeaxis import folder_start_time_fs, natural_sort_key
from .xyz import (  # noqa: F401  (private names used by library.write and io.__init__)
    _LATTICE_CACHE,
    _check_structure,
    _xyz_frame_text,
    parse_comment,
    write_frames,
    write_xyz,
)

__all__ = ["Frame", "FrameSource", "FileFormatError", "SkippedFrame", "SymbolList", "read_frames", "read_structure",
           "write_xyz", "write_pdb", "write_frames", "parse_comment", "natural_sort_key", "box_from_pbc_name",
           "folder_start_time_fs", "hybrid36_decode", "hybrid36_encode", "DEFAULT_TIMESTEP_FS", "EXPORT_METADATA_NAME"]
