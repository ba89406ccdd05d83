"""What the frame readers produce: ``Frame`` (one MD frame), ``SymbolList`` (element symbols
that also carry codes), ``SkippedFrame``, ``FileFormatError`` (names the file and line), and the
parsed-frame record and element-token cache the format modules share. Units: angstrom, fs."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..chem import element_from_token
from ..geometry.box import Box


class FileFormatError(ValueError):
    """A malformed input file. The message names the file and the 1-based line."""

    def __init__(self, path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # picklable across process pools
        return (type(self), (self.path, self.line, self.reason))


class SymbolList(list):
    """The element symbols of a frame (a ``list`` of str) that also remembers them as codes:
    ``codes`` int32 (n,) into ``table`` (a tuple of symbols). Readers that parse in C++ return
    one, so the cluster stage can type atoms with array lookups instead of string compares.
    Any change to the list drops the codes (``codes`` and ``table`` become None)."""

    __slots__ = ("codes", "table")

    @classmethod
    def from_codes(cls, codes: np.ndarray, table) -> SymbolList:
        table = tuple(table)
        out = cls(np.asarray(table, dtype=object)[codes].tolist() if len(table) else [])
        out.codes = np.asarray(codes, dtype=np.int32)
        out.table = table
        return out

    def __init__(self, *args):
        super().__init__(*args)
        self.codes = None
        self.table = None

    def __reduce__(self):  # pickles as a plain list plus its codes
        return (_symbol_list, (list(self), self.codes, self.table))

    def _changed(self):
        self.codes = None
        self.table = None


def _symbol_list(items, codes, table):
    out = SymbolList(items)
    out.codes, out.table = codes, table
    return out


def _invalidating(name):
    base = getattr(list, name)

    def method(self, *args, **kwargs):
        self._changed()
        return base(self, *args, **kwargs)

    method.__name__ = name
    return method


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert", "pop", "remove",
              "clear", "sort", "reverse"):
    setattr(SymbolList, _name, _invalidating(_name))


del _name


@dataclass
class Frame:
    """One MD frame.

    index : 0-based position in the FrameSource it was read from.
    source_index : frame number from the file name, or the position in a multi-frame file
        (before any start/stop/stride selection), or the trajectory frame of a Universe.
    time_fs : time of the frame (femtoseconds).
    symbols : element symbols (n,), canonical case (``"Pb"``).
    positions : float64 (n, 3), angstrom, exactly as in the file (never wrapped).
    box : periodic cell or None.
    residues, residue_ids, atom_names : PDB residue names (n,), residue numbers int64 (n,)
        (hybrid-36 decoded), atom names (n,), or None for formats without them.
    source : file the frame came from.
    info : extra per-frame metadata: extended-XYZ keys (numbers converted, e.g.
        ``energy``), CP2K ``step`` and ``E``, or ``comment`` for a plain XYZ comment line.
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


@dataclass(frozen=True)
class SkippedFrame:
    """A frame left out because ``skip_bad_frames=True``: file, 1-based line, reason."""

    file: str
    line: int | None
    reason: str


DEFAULT_TIMESTEP_FS = 0.5


EXPORT_METADATA_NAME = "mdtrajectory_export.json"


_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark some editors put at the start of a file


class _ElementCache:
    """Maps raw tokens to element symbols once per distinct token."""

    def __init__(self, element_map):
        self.element_map = dict(element_map) if element_map else None
        self.cache: dict = {}

    def symbols(self, tokens: list, path, first_line: int, line_of=None) -> list[str]:
        cache = self.cache
        try:
            return [cache[t] for t in tokens]
        except KeyError:
            pass
        for row, tok in enumerate(tokens):
            if tok not in cache:
                try:
                    cache[tok] = element_from_token(tok, self.element_map)
                except ValueError as exc:
                    line = line_of(row) if line_of else first_line + row
                    raise FileFormatError(path, line, str(exc)) from None
        return [cache[t] for t in tokens]

    def table(self, tokens: list) -> tuple | None:
        """Element symbols of distinct raw tokens; None when one is not an element."""
        cache = self.cache
        out = []
        for tok in tokens:
            sym = cache.get(tok)
            if sym is None:
                try:
                    sym = cache[tok] = element_from_token(tok, self.element_map)
                except ValueError:
                    return None
            out.append(sym)
        return tuple(out)


@dataclass
class _Parsed:
    symbols: list
    positions: np.ndarray
    file_box: Box | None = None
    time_fs: float | None = None
    residues: list | None = None
    residue_ids: np.ndarray | None = None
    atom_names: list | None = None
    info: dict = field(default_factory=dict)


def _decode(b: bytes) -> str:
    return b.decode("utf-8", "replace").rstrip("\r")
