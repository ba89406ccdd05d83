"""Reading MD frames: folders of XYZ/PDB files, multi-frame (extended) XYZ, CP2K pos files,
multi-model PDB, MDAnalysis Universes and sequences of ase.Atoms; and writing XYZ/PDB.

Entry point: ``read_frames(path_or_object, box=None, timestep_fs=None, ...) -> FrameSource``.
A ``FrameSource`` streams ``Frame`` records (never more than one frame in memory), knows
its length, gives random access (``source[k]``, ``source.chunk(a, b)``, slicing) and pickles
to a few paths and byte offsets, so process-pool or Dask workers read their own chunk.

Units: angstrom, femtoseconds. See ``docs/frames.md`` for the rules (time axis, box
precedence, element tokens, PDB columns) and the reference behaviour they follow
(ref §1.1, §1.2, §1.5) or improve on (ref V8, V9, V10).
"""
from __future__ import annotations

import array
import json
import math
import os
import re
import warnings as _warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..chem import element_from_atom_name, element_from_token, normalize_element
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
_XYZ_SUFFIXES = (".xyz", ".extxyz")
_PDB_SUFFIXES = (".pdb", ".ent")
_BLOCK = 1 << 22  # bytes read at a time while indexing a multi-frame file
_BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark some editors put at the start of a file

# --------------------------------------------------------------------------- names, tags

_LAST_INT = re.compile(r"(\d+)(?!.*\d)")
_FRAME_NAME = re.compile(r"^frame_(\d+)\.(xyz|extxyz|pdb)$", re.IGNORECASE)
_T_TAG = re.compile(r"_t(\d+)(?:[p_](\d+))?fs", re.IGNORECASE)
_F_TAG = re.compile(r"_f(\d+)(?:_(\d+))?fs", re.IGNORECASE)
_PBC_TAG = re.compile(r"_pbc_(\d+(?:p\d+)?)(?:x(\d+(?:p\d+)?)x(\d+(?:p\d+)?))?", re.IGNORECASE)


def natural_sort_key(name: str):
    """Sort key of ref §1.1: by the last integer in the file stem; names without one last."""
    stem = Path(name).stem
    m = _LAST_INT.search(stem)
    if m is None:
        return (1, 0, name.lower())
    return (0, int(m.group(1)), name.lower())


def _tag_number(whole: str, frac: str | None) -> float:
    return float(f"{whole}.{frac}") if frac else float(whole)


def folder_start_time_fs(name: str) -> float | None:
    """Start time from a folder-name tag ``_t<digits>[p|_<digits>]fs`` (``_t497p5fs`` is
    497.5 fs), else the legacy ``_f<digits>[_<digits>]fs``; None when absent (ref §1.2)."""
    m = _T_TAG.search(name) or _F_TAG.search(name)
    return _tag_number(m.group(1), m.group(2)) if m else None


def box_from_pbc_name(name: str) -> Box | None:
    """Box from a CP2K-style name holding ``_pbc_<L>`` or ``_pbc_<Lx>x<Ly>x<Lz>``
    (``p`` is the decimal point, ``_pbc_17p07x`` is a 17.07 A cube), ref §1.5; else None."""
    m = _PBC_TAG.search(name)
    if m is None:
        return None
    lx = float(m.group(1).replace("p", ".").replace("P", "."))
    if m.group(2) and m.group(3):
        ly = float(m.group(2).replace("p", ".").replace("P", "."))
        lz = float(m.group(3).replace("p", ".").replace("P", "."))
    else:
        ly = lz = lx
    if min(lx, ly, lz) <= 0:
        return None
    return Box([lx, ly, lz])


# --------------------------------------------------------------------------- extended XYZ comment

_KV = re.compile(r"""\s*([A-Za-z_][\w\-.:]*)(?:\s*=\s*("(?:[^"\\]|\\.)*"|'[^']*'|\{[^}]*\}|[^\s"'={}]+))?""")
_CP2K = re.compile(r"^\s*i\s*=\s*(-?\d+)\s*,\s*time\s*=\s*([-+0-9.eEdD]+)\s*,\s*E\s*=\s*([-+0-9.eEdD]+)")
_TIME_RE = re.compile(rb"(?:^|[\s,])time\s*=\s*\"?\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eEdD][-+]?\d+)?)",
                      re.IGNORECASE)  # extended-XYZ keys are case-insensitive (LAMMPS: Time=)
_BOOL = {"T": True, "F": False, "TRUE": True, "FALSE": False}


def _scalar(text: str):
    """int, float or bool from a token when possible, else the string."""
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t.replace("d", "e").replace("D", "e"))
    except ValueError:
        pass
    if t.upper() in _BOOL:
        return _BOOL[t.upper()]
    return t


def _value(text: str):
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = re.sub(r"\\(.)", r"\1", text[1:-1])
    elif len(text) >= 2 and text[0] == text[-1] == "'":
        text = text[1:-1]
    elif len(text) >= 2 and text[0] == "{" and text[-1] == "}":
        text = text[1:-1].replace(",", " ")
    parts = text.split()
    if len(parts) > 1:
        vals = [_scalar(p) for p in parts]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            return [float(v) for v in vals] if any(isinstance(v, float) for v in vals) else vals
        if all(isinstance(v, bool) for v in vals):
            return vals
        return text
    return _scalar(text) if parts else ""


def parse_comment(comment: str) -> tuple[str, dict]:
    """Classify and parse an XYZ comment line.

    Returns ``(kind, fields)``; kind is ``"cp2k"`` (``i = N, time = T, E = ...``: fields
    step, time, E), ``"extxyz"`` (``key=value`` pairs, quoted values allowed, bare keys are
    True; numbers converted, several numbers give a list) or ``"plain"`` (fields
    ``{"comment": text}``).
    """
    m = _CP2K.match(comment)
    if m:
        return "cp2k", {"step": int(m.group(1)), "time": _scalar(m.group(2)), "E": _scalar(m.group(3))}
    fields: dict = {}
    pos, n, has_value = 0, len(comment), False
    while pos < n:
        if comment[pos:].strip() == "":
            break
        km = _KV.match(comment, pos)
        if km is None or km.end() == pos:
            return "plain", {"comment": comment.strip()}
        key, val = km.group(1), km.group(2)
        if val is None:
            fields[key] = True
        else:
            has_value = True
            fields[key] = _value(val)
        pos = km.end()
        if pos < n and not comment[pos].isspace():
            return "plain", {"comment": comment.strip()}
    if not has_value:
        return "plain", {"comment": comment.strip()} if comment.strip() else {}
    return "extxyz", fields


def _parse_properties(spec, path, line) -> tuple[int, int, int]:
    """(species column, first position column, total columns) from an extended-XYZ Properties."""
    parts = str(spec).split(":")
    if len(parts) % 3 != 0:
        raise FileFormatError(path, line, f"Properties={spec!r} is not name:type:count triples")
    col, species_col, pos_col = 0, None, None
    for k in range(0, len(parts), 3):
        name, typ, cnt = parts[k], parts[k + 1].upper(), parts[k + 2]
        try:
            count = int(cnt)
        except ValueError:
            raise FileFormatError(path, line, f"Properties={spec!r}: column count {cnt!r} is not an integer") from None
        if name.lower() == "species" and typ == "S" and count == 1:
            species_col = col
        elif name.lower() == "pos" and typ == "R" and count == 3:
            pos_col = col
        col += count
    if species_col is None or pos_col is None:
        raise FileFormatError(path, line, f"Properties={spec!r} must contain species:S:1 and pos:R:3")
    return species_col, pos_col, col


def _lattice_box(value, path, line) -> Box:
    key = tuple(value) if isinstance(value, list) else None
    if key is not None and key in _LATTICE_CACHE:
        return _LATTICE_CACHE[key]
    box = _lattice_box_uncached(value, path, line)
    if key is not None:
        if len(_LATTICE_CACHE) > 64:
            _LATTICE_CACHE.clear()
        _LATTICE_CACHE[key] = box  # Box is immutable, so frames with one cell share it
    return box


_LATTICE_CACHE: dict = {}


def _lattice_box_uncached(value, path, line) -> Box:
    try:
        vals = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise FileFormatError(path, line, f"Lattice={value!r} must hold 9 numbers") from None
    if vals.size != 9:
        raise FileFormatError(path, line, f"Lattice must hold 9 numbers (rows a, b, c), got {vals.size}")
    try:
        return Box.from_matrix(vals.reshape(3, 3))
    except ValueError as exc:
        raise FileFormatError(path, line, f"bad Lattice: {exc}") from None


# --------------------------------------------------------------------------- element tokens

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


# --------------------------------------------------------------------------- XYZ frame parser

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


def _parse_xyz(data: bytes, path: str, line0: int, single: bool, elements: _ElementCache) -> _Parsed:
    """Parse one XYZ frame held in ``data`` (starting at 1-based file line ``line0``).

    ``single``: the frame is a whole one-frame file: blank atom lines are dropped (ref §1.1)
    and anything but blank lines after the last atom is an error.
    """
    if data.startswith(_BOM):
        data = data[3:]
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    k = 0
    if single:  # leading blank lines in a one-frame file
        while k < len(lines) and not lines[k].strip():
            k += 1
    if k >= len(lines):
        raise FileFormatError(path, line0, "empty file: expected an atom count line")
    count_line = lines[k]
    try:
        n = int(count_line.split()[0])
        if n < 0:
            raise ValueError
    except (ValueError, IndexError):
        raise FileFormatError(path, line0 + k,
                              f"expected the atom count (a non-negative integer), got {_decode(count_line)!r}") from None
    count_lineno = line0 + k
    if k + 1 >= len(lines):
        raise FileFormatError(path, count_lineno, "truncated frame: the file ends before the comment line")
    comment = _decode(lines[k + 1])
    body = lines[k + 2:]
    body_line0 = count_lineno + 2
    if single:
        keep = [i for i, ln in enumerate(body) if ln.strip()]
        atom_rows = [body[i] for i in keep[:n]]
        extra = keep[n:]
        if len(atom_rows) < n:
            raise FileFormatError(path, count_lineno,
                                  f"truncated frame: the count line (line {count_lineno}) says {n} atoms, "
                                  f"found {len(atom_rows)} atom lines")
        if extra:
            raise FileFormatError(path, body_line0 + extra[0],
                                  f"more lines than the atom count {n} on line {count_lineno} "
                                  "(a one-frame file must hold exactly one frame; pass a multi-frame file itself)")

        def line_of(row):
            return body_line0 + keep[row]
    else:
        atom_rows = body[:n]
        if len(atom_rows) < n:
            raise FileFormatError(path, count_lineno,
                                  f"truncated frame: the count line (line {count_lineno}) says {n} atoms, "
                                  f"found {len(atom_rows)} atom lines")

        def line_of(row):
            return body_line0 + row

    kind, fields = parse_comment(comment)
    info: dict = {}
    time_fs = None
    file_box = None
    species_col, pos_col, ncols = 0, 1, None
    if kind == "cp2k":
        time_fs = float(fields["time"])
        info = {"step": fields["step"], "E": fields["E"]}
    elif kind == "extxyz":
        for key, val in fields.items():
            lk = key.lower()
            if lk == "lattice":
                file_box = _lattice_box(val, path, count_lineno + 1)
            elif lk == "properties":
                species_col, pos_col, ncols = _parse_properties(val, path, count_lineno + 1)
            elif lk == "time":
                try:
                    time_fs = float(val)
                except (TypeError, ValueError):
                    raise FileFormatError(path, count_lineno + 1, f"time={val!r} is not a number") from None
            elif lk == "pbc":
                pbc = val if isinstance(val, list) else [val] * 3
                info["pbc"] = tuple(bool(v) for v in pbc)
            else:
                info[key] = val
        if file_box is not None and "pbc" in info and not any(info["pbc"]):
            info["lattice"] = file_box.matrix.copy()
            file_box = None  # a lattice with pbc="F F F" is not a periodic box
    else:
        info = fields

    rows = [r.split() for r in atom_rows]
    widths = set(map(len, rows))
    need = ncols if ncols is not None else 4
    positions = None
    if n and len(widths) == 1 and (ncols is None and min(widths) >= 4 or ncols is not None and min(widths) == ncols):
        try:
            positions = np.array([r[pos_col:pos_col + 3] for r in rows], dtype=np.float64)
        except ValueError:
            positions = None
        tokens = [r[species_col] for r in rows]
    if positions is None:  # slow path: find the first bad line
        tokens = []
        positions = np.empty((n, 3), dtype=np.float64)
        for row, parts in enumerate(rows):
            if len(parts) < need or (ncols is not None and len(parts) != ncols):
                if len(parts) == 1 and parts[0].lstrip(b"+-").isdigit():
                    msg = (f"expected an atom line, got an atom count {_decode(parts[0])!r}: the frame has "
                           f"fewer atom lines than its count line (line {count_lineno}) says ({n})")
                else:
                    want = f"{ncols} columns (Properties)" if ncols is not None else "'element x y z'"
                    msg = f"expected {want}, got {_decode(atom_rows[row])!r}"
                raise FileFormatError(path, line_of(row), msg)
            try:
                positions[row] = [float(t) for t in parts[pos_col:pos_col + 3]]
            except ValueError:
                raise FileFormatError(path, line_of(row),
                                      f"non-numeric coordinate in {_decode(atom_rows[row])!r}") from None
            tokens.append(parts[species_col])
    if n == 0:
        positions = np.zeros((0, 3), dtype=np.float64)
        symbols: list[str] = []
    else:
        finite = np.isfinite(positions).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise FileFormatError(path, line_of(row), f"coordinate is NaN or infinite: {_decode(atom_rows[row])!r}")
        symbols = elements.symbols(tokens, path, body_line0, line_of)
    return _Parsed(symbols, np.ascontiguousarray(positions), file_box, time_fs, info=info)


# --------------------------------------------------------------------------- PDB frame parser

def hybrid36_decode(field: str) -> int:
    """Integer of a PDB number field: decimal, or hybrid-36 (``A0000`` is 100000 in a
    5-wide serial, ``A000`` is 10000 in a 4-wide residue number). ValueError otherwise."""
    s = field.strip()
    width = len(field)
    if not s:
        raise ValueError("blank number field")
    if s[0] in "-0123456789":
        return int(s)
    if len(s) != width or not s.isalnum():
        raise ValueError(f"{field!r} is neither decimal nor hybrid-36")
    upper = s[0].isupper()
    if any((c.islower() if upper else c.isupper()) for c in s):
        raise ValueError(f"{field!r} mixes upper and lower case (not hybrid-36)")
    value = int(s, 36) - 10 * 36 ** (width - 1) + 10 ** width
    return value if upper else value + 26 * 36 ** (width - 1)


def hybrid36_encode(value: int, width: int) -> str:
    """Hybrid-36 text of ``value`` in ``width`` columns (decimal while it fits)."""
    value = int(value)
    if -(10 ** (width - 1)) < value < 10 ** width:
        return f"{value:>{width}d}"
    v = value - 10 ** width
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    span = 26 * 36 ** (width - 1)
    if v < span:
        v += 10 * 36 ** (width - 1)
    elif v < 2 * span:
        v += 10 * 36 ** (width - 1) - span
        digits = digits.lower()
    else:
        raise ValueError(f"{value} does not fit in a {width}-column hybrid-36 field")
    out = ""
    while v:
        v, r = divmod(v, 36)
        out = digits[r] + out
    return out


def _cryst1_box(line: str, path, lineno) -> Box | None:
    try:
        vals = [float(line[6:15]), float(line[15:24]), float(line[24:33]),
                float(line[33:40]), float(line[40:47]), float(line[47:54])]
    except ValueError:
        parts = line.split()
        try:
            vals = [float(v) for v in parts[1:7]]
        except ValueError:
            vals = []
        if len(vals) != 6:
            raise FileFormatError(path, lineno, f"CRYST1 needs a b c alpha beta gamma, got {line.rstrip()!r}") from None
    if vals[0] == vals[1] == vals[2] == 1.0:
        return None  # the PDB convention for "no unit cell"
    try:
        return Box.from_parameters(*vals)
    except ValueError as exc:
        raise FileFormatError(path, lineno, f"bad CRYST1 cell: {exc}") from None


def _parse_pdb(data: bytes, path: str, line0: int, single: bool, elements: _ElementCache,
               header_box: Box | None = None) -> _Parsed:
    """Parse the ATOM/HETATM records of one PDB frame (fixed columns, ref §1.1).

    Serial numbers are not used (atoms are kept in file order), so overflowed, hybrid-36
    or duplicate serials are harmless (better than ref V8). ``single``: a whole one-frame
    file, where a second MODEL or atoms after END are an error.
    """
    file_box = header_box
    info: dict = {}
    models = 0
    ended = False
    if data.startswith(_BOM):
        data = data[3:]
    lines = data.split(b"\n")
    atom_rows: list[int] = []
    for i, ln in enumerate(lines):
        if ln[:4] == b"ATOM" or ln[:6] == b"HETATM":
            if ended and single:
                raise FileFormatError(path, line0 + i, "atoms after END/ENDMDL: a one-frame file must hold one frame "
                                                       "(pass a multi-model file itself to read_frames)")
            atom_rows.append(i)
        elif ln[:6] == b"CRYST1":
            file_box = _cryst1_box(_decode(ln), path, line0 + i)
        elif ln[:5] == b"MODEL":
            models += 1
            if single and models > 1:
                raise FileFormatError(path, line0 + i, "second MODEL in a one-frame file "
                                                       "(pass a multi-model file itself to read_frames)")
            parts = ln.split()
            if len(parts) > 1 and parts[1].isdigit():
                info["model"] = int(parts[1])
        elif ln[:6] == b"ENDMDL" or ln.rstrip() == b"END":
            ended = True
    n = len(atom_rows)
    if n == 0:
        raise FileFormatError(path, line0, "no ATOM/HETATM records in this frame")
    rows = [lines[i].rstrip(b"\r") for i in atom_rows]
    for k, r in enumerate(rows):
        if len(r) < 54:
            raise FileFormatError(path, line0 + atom_rows[k],
                                  f"ATOM/HETATM record shorter than 54 columns: {_decode(r)!r}")
    # fixed columns, vectorised: one (n, 80) byte table
    table = np.frombuffer(b"".join(r[:80].ljust(80) for r in rows), dtype="S1").reshape(n, 80)

    def columns(a: int, b: int) -> np.ndarray:
        return np.ascontiguousarray(table[:, a:b]).view(f"S{b - a}").reshape(n)

    try:
        positions = np.ascontiguousarray(table[:, 30:54]).view("S8").reshape(n, 3).astype(np.float64)
    except ValueError:
        for k, r in enumerate(rows):
            try:
                float(r[30:38]), float(r[38:46]), float(r[46:54])
            except ValueError:
                raise FileFormatError(path, line0 + atom_rows[k],
                                      f"non-numeric coordinate in columns 31-54: {_decode(r[30:54])!r}") from None
        raise
    finite = np.isfinite(positions).all(axis=1)
    if not finite.all():
        k = int(np.flatnonzero(~finite)[0])
        raise FileFormatError(path, line0 + atom_rows[k], f"coordinate is NaN or infinite: {_decode(rows[k][30:54])!r}")

    # elements: the element columns 77-78, else the atom name (with the residue as a hint)
    keys = np.ascontiguousarray(np.concatenate([table[:, 76:78], table[:, 12:21]], axis=1)).view("S11").reshape(n)
    ukeys, inverse = np.unique(keys, return_inverse=True)
    usyms = []
    for u in ukeys:
        text = u.decode("ascii", "replace").ljust(11)
        el_field, name_field, resname = text[:2].strip(), text[2:6], text[7:11].strip()
        try:
            if el_field:
                sym = normalize_element(el_field, elements.element_map)
            else:
                sym = element_from_atom_name(name_field, resname, elements.element_map)
        except ValueError as exc:
            k = int(np.flatnonzero(keys == u)[0])
            raise FileFormatError(path, line0 + atom_rows[k], str(exc)) from None
        usyms.append(sym)
    symbols = np.asarray(usyms, dtype=object)[inverse.reshape(-1)].tolist()

    def strings(col: np.ndarray) -> list[str]:
        uniq, inv = np.unique(col, return_inverse=True)
        return np.asarray([u.decode("ascii", "replace").strip() for u in uniq], dtype=object)[inv.reshape(-1)].tolist()

    residues = strings(columns(17, 21))
    names = strings(columns(12, 16))
    res_fields = columns(22, 26)
    try:
        resids = res_fields.astype(np.int64)
    except ValueError:
        resids = np.empty(n, dtype=np.int64)
        prev_key, prev_id = None, 0
        for k, (field_b, resname) in enumerate(zip(res_fields.tolist(), residues)):
            field_s = field_b.decode("ascii", "replace").ljust(4)
            try:
                rid = hybrid36_decode(field_s)
            except ValueError:
                # overflowed field ("****" etc.): continue the numbering at each change
                rid = prev_id + (1 if (field_s, resname) != prev_key else 0)
            prev_key, prev_id = (field_s, resname), rid
            resids[k] = rid
    return _Parsed(symbols, positions, file_box, None, residues, resids, names, info)


# --------------------------------------------------------------------------- indexing multi-frame files

class _Blocks:
    """Newline offsets of a binary file, one fixed-size block at a time."""

    def __init__(self, fh, size: int):
        self.fh, self.size = fh, size
        self.start = self.end = 0
        self.buf = b""
        self.nl = np.zeros(0, dtype=np.int64)

    def load(self, pos: int) -> None:
        self.fh.seek(pos)
        buf = self.fh.read(_BLOCK)
        nl = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == 10).astype(np.int64)
        nl += pos
        if pos + len(buf) >= self.size and buf and not buf.endswith(b"\n"):
            nl = np.append(nl, np.int64(self.size))  # the last line has no newline
        self.buf, self.nl, self.start, self.end = buf, nl, pos, pos + len(buf)

    def newline(self, pos: int, k: int = 1) -> tuple[int | None, int]:
        """Offset of the k-th line end at or after ``pos`` and the number of line ends found."""
        found = 0
        while True:
            if not (self.start <= pos < self.end):
                if pos >= self.size:
                    return None, found
                self.load(pos)
            i = int(np.searchsorted(self.nl, pos))
            avail = len(self.nl) - i
            if avail >= k - found:
                return int(self.nl[i + k - found - 1]), k
            found += avail
            if self.end >= self.size:
                return None, found
            pos = self.end
            self.load(pos)

    def bytes(self, a: int, b: int) -> bytes:
        if self.start <= a and b <= self.end:
            return self.buf[a - self.start:b - self.start]
        self.fh.seek(a)
        return self.fh.read(b - a)


def _index_xyz(path: str, skip_bad: bool, skipped: list) -> dict:
    """Byte offsets, end offsets, first lines and comment-line times of every frame."""
    offsets, ends, lines = array.array("q"), array.array("q"), array.array("q")
    times = array.array("d")
    first_comment = None
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        blk = _Blocks(fh, size)
        pos, line, resync = (3 if fh.read(3) == _BOM else 0), 1, False
        while pos < size:
            e, _ = blk.newline(pos)
            count_bytes = blk.bytes(pos, e)
            if not count_bytes.strip():
                pos, line = e + 1, line + 1
                continue
            parts = count_bytes.split()
            try:
                n = int(parts[0])
                if n < 0 or (resync and len(parts) != 1):
                    raise ValueError
            except ValueError:
                if resync:
                    pos, line = e + 1, line + 1
                    continue
                prev = f"; the frame at line {lines[-1]} probably has a wrong atom count" if lines else ""
                msg = f"expected an atom count line, got {_decode(count_bytes)!r}{prev}"
                if not skip_bad:
                    raise FileFormatError(path, line, msg) from None
                if lines:  # the previous frame is suspect too
                    skipped.append(SkippedFrame(path, int(lines[-1]), "frame followed by a bad atom count line"))
                    for arr in (offsets, ends, lines, times):
                        arr.pop()
                skipped.append(SkippedFrame(path, line, msg))
                pos, line, resync = e + 1, line + 1, True
                continue
            resync = False
            c_end, got = blk.newline(e + 1)
            if c_end is None:
                msg = f"truncated frame: file ends before the comment line (count line {line} says {n} atoms)"
                if not skip_bad:
                    raise FileFormatError(path, line, msg)
                skipped.append(SkippedFrame(path, line, msg))
                break
            comment = blk.bytes(e + 1, c_end)
            if n:
                a_end, got = blk.newline(c_end + 1, n)
            else:
                a_end, got = c_end, 0
            if a_end is None:
                msg = (f"truncated frame: the count line (line {line}) says {n} atoms, "
                       f"the file ends after {got} atom lines")
                if not skip_bad:
                    raise FileFormatError(path, line, msg)
                skipped.append(SkippedFrame(path, line, msg))
                break
            if first_comment is None:
                first_comment = comment
            m = _TIME_RE.search(comment)
            times.append(float(m.group(1).replace(b"d", b"e").replace(b"D", b"e")) if m else math.nan)
            offsets.append(pos)
            ends.append(min(a_end + 1, size))
            lines.append(line)
            pos, line = a_end + 1, line + n + 2
    return {
        "offsets": np.frombuffer(offsets, dtype=np.int64).copy() if offsets else np.zeros(0, np.int64),
        "ends": np.frombuffer(ends, dtype=np.int64).copy() if ends else np.zeros(0, np.int64),
        "lines": np.frombuffer(lines, dtype=np.int64).copy() if lines else np.zeros(0, np.int64),
        "times": np.frombuffer(times, dtype=np.float64).copy() if times else np.zeros(0),
        "first_comment": _decode(first_comment) if first_comment is not None else "",
    }


_PDB_MARK = re.compile(rb"^(MODEL|ENDMDL|END)(?![A-Z])", re.MULTILINE)


def _index_pdb(path: str) -> dict:
    """Frame boundaries of a PDB file: MODEL records, else END records followed by atoms.
    Records before the first MODEL (CRYST1) are the header shared by all models."""
    size = os.path.getsize(path)
    models, ends_after = [], []  # (offset, line)
    with open(path, "rb") as fh:
        pos, line = 0, 1
        while pos < size:
            want = _BLOCK
            while True:  # whole lines only
                fh.seek(pos)
                buf = fh.read(want)
                cut = buf.rfind(b"\n") + 1 if pos + len(buf) < size else len(buf)
                if cut:
                    break
                want *= 2
            buf = buf[:cut]
            last, lcount = 0, line
            for m in _PDB_MARK.finditer(buf):
                lcount += buf.count(b"\n", last, m.start())
                last = m.start()
                kind = m.group(1)
                if kind == b"MODEL":
                    models.append((pos + m.start(), lcount))
                elif kind == b"END":
                    nl = buf.find(b"\n", m.start())
                    nxt = pos + (nl + 1 if nl >= 0 else len(buf))
                    ends_after.append((nxt, lcount + 1))
            line += buf.count(b"\n")
            pos += cut
        header = b""
        if models:
            starts = models
            fh.seek(0)
            header = fh.read(models[0][0])
        else:
            starts = [(0, 1)] + [p for p in ends_after if p[0] < size]
            # drop trailing segments that hold no atoms
            while len(starts) > 1:
                fh.seek(starts[-1][0])
                tail = fh.read(size - starts[-1][0])
                if re.search(rb"^(ATOM  |HETATM)", tail, re.MULTILINE):
                    break
                starts.pop()
    offsets = np.array([s[0] for s in starts], dtype=np.int64)
    lines = np.array([s[1] for s in starts], dtype=np.int64)
    ends = np.append(offsets[1:], size).astype(np.int64)
    header_box = None
    for k, ln in enumerate(header.decode("utf-8", "replace").split("\n"), start=1):
        if ln.startswith("CRYST1"):
            header_box = _cryst1_box(ln, path, k)
    return {"offsets": offsets, "ends": ends, "lines": lines, "header_box": header_box}


# --------------------------------------------------------------------------- backends

class _FileBackend:
    """Frames stored in files: entry k is (file, byte range, first line). Picklable."""

    def __init__(self, files, kind, file_ids, offsets, ends, lines, single, element_map, header_boxes):
        self.files = list(files)
        self.kind = kind  # "xyz" or "pdb"
        self.file_ids = np.asarray(file_ids, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.int64)  # -1: to the end of the file
        self.lines = np.asarray(lines, dtype=np.int64)
        self.single = single  # one frame per file (a folder)
        self.element_map = dict(element_map) if element_map else None
        self.header_boxes = header_boxes  # {file id: Box} from PDB headers

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_elements"}

    def _cache(self) -> _ElementCache:
        cache = getattr(self, "_elements", None)
        if cache is None:
            cache = self._elements = _ElementCache(self.element_map)
        return cache

    def location(self, entry: int) -> tuple[str, int]:
        return self.files[self.file_ids[entry]], int(self.lines[entry])

    def read(self, entry: int, handles: dict | None = None) -> tuple[_Parsed, str]:
        fid = int(self.file_ids[entry])
        path = self.files[fid]
        start, end = int(self.offsets[entry]), int(self.ends[entry])
        fh = handles.get(fid) if handles is not None else None
        if fh is None:
            if handles is not None:
                for old in handles.values():
                    old.close()
                handles.clear()
            fh = open(path, "rb")
            if handles is not None:
                handles[fid] = fh
        try:
            fh.seek(start)
            data = fh.read() if end < 0 else fh.read(end - start)
        finally:
            if handles is None:
                fh.close()
        line0 = int(self.lines[entry])
        if self.kind == "xyz":
            parsed = _parse_xyz(data, path, line0, self.single, self._cache())
        else:
            parsed = _parse_pdb(data, path, line0, self.single, self._cache(), self.header_boxes.get(fid))
        return parsed, path


class _UniverseBackend:
    """Frames of an MDAnalysis Universe (any format it reads)."""

    def __init__(self, universe, element_map):
        self.universe = universe
        self.element_map = dict(element_map) if element_map else None
        self.symbols = self._symbols()
        atoms = universe.atoms
        self.residues = self.residue_ids = self.atom_names = None
        try:
            self.residues = [str(r) for r in atoms.resnames]
            self.residue_ids = np.asarray(atoms.resids, dtype=np.int64)
        except Exception:  # noqa: BLE001  (MDAnalysis NoDataError when the topology has no residues)
            pass
        try:
            self.atom_names = [str(n) for n in atoms.names]
        except Exception:  # noqa: BLE001
            pass
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
        parsed = _Parsed(list(self.symbols), pos, box, None,
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


# --------------------------------------------------------------------------- FrameSource

class FrameSource:
    """A streamed, indexable, picklable sequence of ``Frame``.

    Built by ``read_frames``. Iterating reads one frame at a time; ``len(source)`` and
    ``source[k]`` use the index built once (byte offsets), ``source[a:b:s]`` (or an integer
    array) is a new FrameSource over that selection, ``source.chunk(a, b)`` iterates frames ``a..b-1``
    (their ``Frame.index`` is their position in this source). Pickling keeps paths and
    offsets, never frames (Universe / ase backends pickle their objects).

    Attributes
    ----------
    timestep_fs : float, the frame spacing (fs) used for the time axis.
    time_source : where the times came from: ``"metadata"`` (export JSON), ``"file"``
        (extended-XYZ ``time=`` or CP2K comments), ``"frame_names"`` (``frame_<N>``
        times the timestep), ``"sequential"`` (start + k x timestep), ``"universe"``,
        ``"frames"`` (Frame objects given).
    box_source : ``"argument"``, ``"file"`` (Lattice / CRYST1 / Universe dimensions / ase
        cell), ``"name"`` (CP2K ``_pbc_<L>`` naming), ``"extent"`` (opt-in estimate) or
        ``"none"``.
    warnings : list[str] of time-axis and box notes.
    skipped : list[SkippedFrame] (with ``skip_bad_frames=True``).
    times_fs : float64 (len,) times of the selected frames (no frame is read).
    source_indices : int64 (len,) frame numbers of the selected frames.
    """

    def __init__(self, backend, times, src_index, *, box=None, fallback_box=None, box_source="none",
                 time_source="sequential", timestep_fs=DEFAULT_TIMESTEP_FS, path="", warnings=None,
                 skipped=None, selection=None):
        self._backend = backend
        self._times = np.asarray(times, dtype=np.float64)
        self._src = np.asarray(src_index, dtype=np.int64)
        self._sel = (np.arange(len(self._times), dtype=np.int64) if selection is None
                     else np.asarray(selection, dtype=np.int64))
        self._box = box
        self._fallback_box = fallback_box
        self.box_source = box_source
        self.time_source = time_source
        self.timestep_fs = float(timestep_fs)
        self._base_timestep_fs = self.timestep_fs   # spacing of consecutive file frames
        self.path = str(path)
        self.warnings: list[str] = list(warnings or [])
        self.skipped: list[SkippedFrame] = list(skipped or [])

    # -- sequence protocol
    def __len__(self) -> int:
        return int(self._sel.size)

    def __iter__(self) -> Iterator[Frame]:
        return self.chunk(0, len(self))

    def __getitem__(self, key):
        if isinstance(key, slice):
            return self._with_selection(self._sel[key])
        if isinstance(key, (int, np.integer)):
            k = int(key)
            n = len(self)
            if k < 0:
                k += n
            if not 0 <= k < n:
                raise IndexError(f"frame index {key} out of range for {n} frames")
            return self._frame(k, None)
        if isinstance(key, (list, tuple, np.ndarray)):
            idx = np.asarray(key)
            if idx.size == 0:
                idx = idx.astype(np.int64)
            if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
                raise TypeError(f"FrameSource index arrays must be 1-D integers, got {idx.dtype} {idx.shape}")
            return self._with_selection(self._sel[idx])
        raise TypeError(f"FrameSource indices must be integers, slices or integer arrays, not {type(key).__name__}")

    def chunk(self, start: int, stop: int) -> Iterator[Frame]:
        """Iterate frames ``start .. stop - 1`` of this source (clipped to its length), one at
        a time, keeping the file open between frames. ``Frame.index`` is the position in
        this source, so chunk results can be put back in order."""
        n = len(self)
        start, stop = max(0, int(start)), min(n, int(stop))
        handles: dict = {}
        try:
            for k in range(start, stop):
                yield self._frame(k, handles)
        finally:
            for fh in handles.values():
                fh.close()

    def chunks(self, size: int) -> list[tuple[int, int]]:
        """(start, stop) ranges of at most ``size`` frames covering the source in order."""
        size = int(size)
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        n = len(self)
        return [(a, min(a + size, n)) for a in range(0, n, size)]

    # -- metadata
    @property
    def times_fs(self) -> np.ndarray:
        return self._times[self._sel].copy()

    @property
    def source_indices(self) -> np.ndarray:
        return self._src[self._sel].copy()

    @property
    def box(self) -> Box | None:
        """The box applied to frames that carry none of their own (explicit, name, extent)."""
        return self._box if self._box is not None else self._fallback_box

    def __repr__(self) -> str:
        return (f"FrameSource({self.path!r}, frames={len(self)}, time_source={self.time_source!r}, "
                f"box_source={self.box_source!r}, timestep_fs={self.timestep_fs})")

    def __getstate__(self):
        """Pickle only what the selection needs: a chunk ``source[a:b]`` sent to a worker
        carries b - a entries of the index (and only their files), not the whole trajectory's."""
        state = self.__dict__.copy()
        backend, sel = self._backend, self._sel
        if len(sel) == len(self._times):
            return state
        if isinstance(backend, _FileBackend):
            fids = backend.file_ids[sel]
            used, inverse = np.unique(fids, return_inverse=True)
            state["_backend"] = _FileBackend(
                [backend.files[i] for i in used], backend.kind, inverse.reshape(-1), backend.offsets[sel],
                backend.ends[sel], backend.lines[sel], backend.single, backend.element_map,
                {new: backend.header_boxes[int(old)] for new, old in enumerate(used)
                 if int(old) in backend.header_boxes})
        elif isinstance(backend, _AtomsBackend):
            state["_backend"] = _AtomsBackend([backend.images[i] for i in sel])
        elif isinstance(backend, _MemoryBackend):
            state["_backend"] = _MemoryBackend([backend.frames[i] for i in sel])
        else:  # a Universe pickles as a whole anyway
            return state
        state["_times"], state["_src"] = self._times[sel], self._src[sel]
        state["_sel"] = np.arange(len(sel), dtype=np.int64)
        return state

    # -- internals
    def _with_selection(self, sel) -> FrameSource:
        new = FrameSource.__new__(FrameSource)
        new.__dict__.update(self.__dict__)
        new._sel = np.asarray(sel, dtype=np.int64)
        # a uniform selection (stride s) of frames dt apart is frames s x dt apart: the
        # timestep follows, so frames_per_bin and the last-frame exposure of the dynamics
        # count selected frames; other selections keep the timestep they came with
        step = np.diff(new._sel)
        if step.size and step[0] > 0 and np.all(step == step[0]):
            base = getattr(self, "_base_timestep_fs", self.timestep_fs)
            new.timestep_fs = float(base * int(step[0]))
        new.warnings = list(self.warnings)
        new.skipped = list(self.skipped)
        return new

    def _frame(self, k: int, handles) -> Frame:
        entry = int(self._sel[k])
        parsed, src = self._backend.read(entry, handles)
        if self._box is not None:
            box = self._box
        elif parsed.file_box is not None:
            box = parsed.file_box
        else:
            box = self._fallback_box
        return Frame(index=k, source_index=int(self._src[entry]), time_fs=float(self._times[entry]),
                     symbols=parsed.symbols, positions=parsed.positions, box=box,
                     residues=parsed.residues, residue_ids=parsed.residue_ids, atom_names=parsed.atom_names,
                     source=src, info=parsed.info)


# --------------------------------------------------------------------------- read_frames

def _check_timestep(timestep_fs) -> float | None:
    from .._validate import as_timestep_fs

    return None if timestep_fs is None else as_timestep_fs(timestep_fs)


def _selection(n: int, start, stop, stride) -> np.ndarray:
    for name, v in (("start", start), ("stop", stop)):
        if v is not None and not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name} must be an integer frame position or None, got {v!r}")
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    return np.arange(n, dtype=np.int64)[slice(start, stop, int(stride))]


def _file_times(times: np.ndarray, dt_given, kind_label: str, warnings: list):
    """Time axis from per-frame file times, if every frame has one."""
    have = np.isfinite(times)
    if times.size == 0 or not have.any():
        return None
    if not have.all():
        warnings.append(f"only {int(have.sum())} of {times.size} frames carry a {kind_label} time; "
                        "using sequential times instead")
        return None
    diffs = np.diff(times)
    if diffs.size and np.any(diffs <= 0):
        warnings.append(f"{kind_label} times are not increasing; using them as they are")
    return times


def _infer_dt(times: np.ndarray, dt_given, warnings: list) -> float:
    diffs = np.diff(times)
    if dt_given is not None:
        if diffs.size and not np.allclose(diffs, dt_given, rtol=1e-6, atol=1e-9):
            warnings.append(f"frame times in the file are spaced by {float(np.median(diffs)):g} fs, "
                            f"not the given timestep {dt_given:g} fs; the file times are used")
        return dt_given
    if diffs.size and np.all(diffs > 0):
        med = float(np.median(diffs))
        if not np.allclose(diffs, med, rtol=1e-6, atol=1e-9):
            warnings.append(f"frame times in the file are unevenly spaced (median {med:g} fs)")
        return med
    return DEFAULT_TIMESTEP_FS


def _folder_time_axis(folder: Path, names: list[str], dt_given, start_time_fs, file_times, warnings):
    """Times of a frames folder as ref §1.2 (metadata JSON, file ``time=``, ``frame_<N>``
    names, sequential). Returns (times, time_source, timestep_fs)."""
    meta = None
    meta_path = folder / EXPORT_METADATA_NAME
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            warnings.append(f"{meta_path}: unreadable export metadata ({exc}); ignored")
            meta = None
    selection = meta.get("selection", {}) if isinstance(meta, dict) and isinstance(meta.get("selection"), dict) else {}
    dt = dt_given
    if dt is None and selection.get("frame_timestep_fs") is not None:
        try:
            cand = float(selection["frame_timestep_fs"])
            if cand > 0 and math.isfinite(cand):
                dt = cand
        except (TypeError, ValueError):
            pass
    # 1. export metadata with every frame's time
    if isinstance(meta, dict):
        written = meta.get("written_frames")
        table = {}
        if isinstance(written, list):
            for item in written:
                if isinstance(item, dict) and item.get("filename") is not None and item.get("time_fs") is not None:
                    try:
                        table[Path(str(item["filename"])).name] = float(item["time_fs"])
                    except (TypeError, ValueError):
                        pass
        if names and all(nm in table for nm in names):
            times = np.array([table[nm] for nm in names], dtype=np.float64)
            return times, "metadata", dt if dt is not None else _infer_dt(times, None, [])
        warnings.append(f"{meta_path}: written_frames does not give a time for every frame file; ignored")
    if dt is None:
        dt = DEFAULT_TIMESTEP_FS
    # 2. extended-XYZ time= in every file
    if file_times is not None:
        t = _file_times(file_times, dt_given, "time=", warnings)
        if t is not None:
            return t, "file", _infer_dt(t, dt_given, warnings)
    # 3. frame_<N> names
    matches = [_FRAME_NAME.match(nm) for nm in names]
    folder_start = start_time_fs
    if folder_start is None:
        for key in ("first_time_fs", "applied_cutoff_fs"):
            if selection.get(key) is not None:
                try:
                    folder_start = float(selection[key])
                    break
                except (TypeError, ValueError):
                    pass
    if folder_start is None:
        folder_start = folder_start_time_fs(folder.name)
    if names and all(matches):
        times = np.array([int(m.group(1)) * dt for m in matches], dtype=np.float64)
        source = "frame_names"
    else:
        start = folder_start if folder_start is not None else 0.0
        times = start + dt * np.arange(len(names), dtype=np.float64)
        source = "sequential"
        warnings.append(f"no per-frame times found; frame times are {start:g} fs + k x {dt:g} fs")
    if folder_start is not None and times.size and abs(times[0] - folder_start) > max(0.5 * dt, 1e-9):
        warnings.append(f"first frame time {times[0]:g} fs differs from the folder start time {folder_start:g} fs")
    return times, source, dt


def _name_box(path: Path, warnings: list) -> tuple[Box | None, str | None]:
    """CP2K ``_pbc_`` naming (ref §1.5): the path's own name, else sibling ``*-pos-*.xyz``
    files in the parent folder (all naming the same box)."""
    box = box_from_pbc_name(path.name)
    if box is not None:
        return box, path.name
    parent = path.parent if path.is_dir() else None
    if parent is None:
        return None, None
    found = {}
    try:
        for sib in sorted(parent.glob("*-pos-*.xyz")):
            b = box_from_pbc_name(sib.name)
            if b is not None:
                found[sib.name] = b
    except OSError:
        return None, None
    boxes = set(found.values())
    if len(boxes) == 1:
        name = next(iter(found))
        return next(iter(boxes)), name
    if len(boxes) > 1:
        warnings.append(f"sibling CP2K files name different boxes ({', '.join(sorted(found))}); none used")
    return None, None


def read_frames(path, box=None, timestep_fs=None, *, start=None, stop=None, stride=1,
                allow_box_from_extent=False, skip_bad_frames=False, start_time_fs=None,
                element_map: Mapping[str, str] | None = None, require_box=False) -> FrameSource:
    """Open MD frames for streaming.

    Parameters
    ----------
    path : a folder of one-frame ``.xyz`` or ``.pdb`` files (natural sort on the last integer
        in the name), a multi-frame (extended) XYZ or CP2K ``*-pos-*.xyz`` file, a PDB file
        (MODEL/ENDMDL models are frames), an MDAnalysis ``Universe``, a sequence of
        ``ase.Atoms``, a sequence of ``Frame`` or a ``FrameSource``.
    box : explicit periodic cell (anything ``Box.coerce`` accepts: 3 lengths, 6 parameters,
        (3, 3) rows a, b, c in angstrom); it overrides every box in the files.
    timestep_fs : frame spacing in femtoseconds (default: from the file times, the export
        metadata, else 0.5 fs).
    start, stop, stride : frame selection (Python slice semantics) applied after the time
        axis is resolved, so frame times keep their true values.
    allow_box_from_extent : with no other box, estimate one from the coordinate extent of the
        first frame (recorded in ``warnings``; it underestimates the true box). Off by default.
    skip_bad_frames : leave malformed frames out, recording (file, line, reason) in
        ``source.skipped``; all frames are validated once while indexing.
    start_time_fs : start time for sequential time axes (overrides folder tags / metadata).
    element_map : {raw token: element} for names the rules cannot read (``{"OW": "O"}``,
        LAMMPS type numbers in a Universe).
    require_box : raise ``ValueError`` when no box can be found.

    Returns
    -------
    FrameSource (see its docstring): iterate for ``Frame`` records.

    Box precedence: ``box`` argument, then per-frame Lattice / CRYST1 / Universe dimensions /
    ase cell, then CP2K ``_pbc_<L>`` naming, then (opt-in) the coordinate extent.
    """
    dt_given = _check_timestep(timestep_fs)
    explicit = Box.coerce(box)
    if start_time_fs is not None:
        start_time_fs = float(start_time_fs)
    warnings: list[str] = []
    skipped: list[SkippedFrame] = []

    if isinstance(path, FrameSource):
        src = path
        if explicit is not None:
            src = src._with_selection(src._sel)
            src._box, src.box_source = explicit, "argument"
        return src._with_selection(src._sel[_selection(len(src), start, stop, stride)])

    if isinstance(path, (str, os.PathLike)):
        source = _open_path(Path(path), explicit, dt_given, start_time_fs, element_map, skip_bad_frames,
                            warnings, skipped)
    elif type(path).__module__.split(".")[0] == "MDAnalysis" and hasattr(path, "trajectory"):
        source = _open_universe(path, explicit, dt_given, start_time_fs, element_map, warnings)
    elif isinstance(path, Sequence) or hasattr(path, "__iter__"):
        items = list(path)
        if not items:
            raise ValueError("read_frames got an empty sequence; expected ase.Atoms or Frame objects")
        if all(isinstance(x, Frame) for x in items):
            source = _open_memory(items, explicit, dt_given, warnings)
        elif all(type(x).__module__.split(".")[0] == "ase" and hasattr(x, "get_chemical_symbols") for x in items):
            source = _open_atoms(items, explicit, dt_given, start_time_fs, warnings)
        else:
            raise ValueError("read_frames accepts a path, an MDAnalysis Universe, a sequence of ase.Atoms or of "
                             f"Frame; got a sequence of {type(items[0]).__name__}")
    else:
        raise ValueError("read_frames accepts a path, an MDAnalysis Universe, a sequence of ase.Atoms or of Frame; "
                         f"got {type(path).__name__}")

    if len(source._times) and source.box_source in ("none",) and explicit is None:
        if allow_box_from_extent:
            first = source._frame(0, None) if len(source._sel) else None
            if first is not None and first.n_atoms:
                ext = np.ptp(first.positions, axis=0)
                if np.all(ext > 0):
                    source._fallback_box = Box(ext)
                    source.box_source = "extent"
                    source.warnings.append(
                        f"no box in the input; estimated {ext.round(4).tolist()} A from the coordinate extent of "
                        "the first frame (allow_box_from_extent=True); this underestimates the true box")
    if require_box and source.box_source == "none":
        raise ValueError(f"{source.path}: no periodic box found (no box argument, Lattice/CRYST1, _pbc_ naming); "
                         "pass box=... or allow_box_from_extent=True")
    return source._with_selection(source._sel[_selection(len(source), start, stop, stride)])


def _set_box(source: FrameSource, explicit: Box | None, first: _Parsed | None, name_box, name_label,
             warnings: list) -> None:
    if explicit is not None:
        source._box, source.box_source = explicit, "argument"
        if first is not None and first.file_box is not None and first.file_box != explicit:
            warnings.append("the box argument overrides the box given in the input")
    elif first is not None and first.file_box is not None:
        source.box_source = "file"
        source._fallback_box = name_box
    elif name_box is not None:
        source._fallback_box, source.box_source = name_box, "name"
        warnings.append(f"box {name_box.lengths.round(6).tolist()} A taken from the name {name_label!r}")
    else:
        source.box_source = "none"


def _open_path(path: Path, explicit, dt_given, start_time_fs, element_map, skip_bad, warnings, skipped):
    if not path.exists():
        raise FileNotFoundError(f"frames input not found: {path}")
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file()]
        xyz = [p for p in files if p.suffix.lower() in _XYZ_SUFFIXES]
        pdb = [p for p in files if p.suffix.lower() in _PDB_SUFFIXES]
        if xyz and pdb:
            raise ValueError(f"{path}: the frames folder mixes {len(xyz)} XYZ and {len(pdb)} PDB files; "
                             "keep one format per folder")
        if not xyz and not pdb:
            raise ValueError(f"{path}: no .xyz or .pdb frame files in the folder")
        kind = "xyz" if xyz else "pdb"
        chosen = sorted(xyz or pdb, key=lambda p: natural_sort_key(p.name))
        names = [p.name for p in chosen]
        n = len(chosen)
        backend = _FileBackend([str(p) for p in chosen], kind, np.arange(n), np.zeros(n), np.full(n, -1),
                               np.ones(n), True, element_map, {})
        file_times = None
        if kind == "xyz":
            file_times = _folder_file_times(chosen)
        src_index = []
        for pos_k, nm in enumerate(names):
            m = _LAST_INT.search(Path(nm).stem)
            src_index.append(int(m.group(1)) if m else pos_k)
        times, tsource, dt = _folder_time_axis(path, names, dt_given, start_time_fs, file_times, warnings)
        source = FrameSource(backend, times, src_index, time_source=tsource, timestep_fs=dt, path=str(path),
                             warnings=warnings, skipped=skipped)
    else:
        suffix = path.suffix.lower()
        if suffix in _PDB_SUFFIXES:
            idx = _index_pdb(str(path))
            hb = {0: idx["header_box"]} if idx["header_box"] is not None else {}
            backend = _FileBackend([str(path)], "pdb", np.zeros(len(idx["offsets"])), idx["offsets"], idx["ends"],
                                   idx["lines"], False, element_map, hb)
            n = len(idx["offsets"])
            st = start_time_fs if start_time_fs is not None else 0.0
            dt = dt_given if dt_given is not None else DEFAULT_TIMESTEP_FS
            times = st + dt * np.arange(n, dtype=np.float64)
            if n > 1:
                warnings.append(f"no per-frame times in a PDB file; frame times are {st:g} fs + k x {dt:g} fs")
            source = FrameSource(backend, times, np.arange(n), time_source="sequential", timestep_fs=dt,
                                 path=str(path), warnings=warnings, skipped=skipped)
        else:
            if suffix not in _XYZ_SUFFIXES:
                warnings.append(f"{path.name}: unknown extension {suffix!r}; read as XYZ")
            idx = _index_xyz(str(path), skip_bad, skipped)
            n = len(idx["offsets"])
            if n == 0 and not skipped:
                raise FileFormatError(path, 1, "no frames in the file")
            kind, _ = parse_comment(idx["first_comment"])
            label = "CP2K" if kind == "cp2k" else "time="
            times = _file_times(idx["times"], dt_given, label, warnings)
            if times is not None:
                tsource = "file"
                dt = _infer_dt(times, dt_given, warnings)
            else:
                dt = dt_given if dt_given is not None else DEFAULT_TIMESTEP_FS
                st = start_time_fs if start_time_fs is not None else 0.0
                times = st + dt * np.arange(n, dtype=np.float64)
                tsource = "sequential"
                if n > 1:
                    warnings.append(f"no per-frame times in the file; frame times are {st:g} fs + k x {dt:g} fs")
            backend = _FileBackend([str(path)], "xyz", np.zeros(n), idx["offsets"], idx["ends"], idx["lines"],
                                   False, element_map, {})
            source = FrameSource(backend, times, np.arange(n), time_source=tsource, timestep_fs=dt, path=str(path),
                                 warnings=warnings, skipped=skipped)
    if skip_bad:
        _validate_all(source)
    first = None
    if len(source._sel):
        first, _ = source._backend.read(int(source._sel[0]))
    name_box, name_label = _name_box(path, source.warnings)
    _set_box(source, explicit, first, name_box, name_label, source.warnings)
    return source


def _folder_file_times(files: list[Path]) -> np.ndarray | None:
    """``time=`` of every one-frame XYZ file, read only when the first file has one."""
    def comment_time(p: Path):
        with open(p, "rb") as fh:
            fh.readline()
            m = _TIME_RE.search(fh.readline())
        return float(m.group(1).replace(b"d", b"e").replace(b"D", b"e")) if m else math.nan

    if not files or math.isnan(comment_time(files[0])):
        return None
    return np.array([comment_time(p) for p in files], dtype=np.float64)


def _validate_all(source: FrameSource) -> None:
    """Read every frame once; drop the malformed ones into ``source.skipped``."""
    keep = []
    backend = source._backend
    handles: dict = {}
    try:
        for entry in source._sel:
            try:
                backend.read(int(entry), handles)
            except FileFormatError as exc:
                source.skipped.append(SkippedFrame(exc.path, exc.line, exc.reason))
                continue
            keep.append(int(entry))
    finally:
        for fh in handles.values():
            fh.close()
    source._sel = np.asarray(keep, dtype=np.int64)


def _open_universe(u, explicit, dt_given, start_time_fs, element_map, warnings):
    backend = _UniverseBackend(u, element_map)
    n = len(backend)
    if dt_given is not None:
        st = start_time_fs if start_time_fs is not None else 0.0
        times, tsource, dt = st + dt_given * np.arange(n), "sequential", dt_given
    else:
        t_ps, guessed = backend.times_ps(warnings)
        times, tsource = t_ps * 1000.0, "universe"
        dt = float(np.median(np.diff(times))) if n > 1 else DEFAULT_TIMESTEP_FS
        if guessed:
            warnings.append("the trajectory has no time step; MDAnalysis assumed 1 ps per frame "
                            "(pass timestep_fs to set it)")
    source = FrameSource(backend, times, np.arange(n), time_source=tsource, timestep_fs=dt,
                         path=backend.filename, warnings=warnings)
    first = backend.read(0)[0] if n else None
    _set_box(source, explicit, first, None, None, source.warnings)
    return source


def _open_atoms(images, explicit, dt_given, start_time_fs, warnings):
    backend = _AtomsBackend(images)
    n = len(backend)
    t = np.array([float(a.info["time"]) if isinstance(a.info.get("time"), (int, float)) else math.nan
                  for a in backend.images])
    times = _file_times(t, dt_given, "atoms.info['time']", warnings)
    if times is not None:
        tsource, dt = "file", _infer_dt(times, dt_given, warnings)
    else:
        dt = dt_given if dt_given is not None else DEFAULT_TIMESTEP_FS
        st = start_time_fs if start_time_fs is not None else 0.0
        times, tsource = st + dt * np.arange(n), "sequential"
        if n > 1:
            warnings.append(f"no per-frame times in the ase.Atoms; frame times are {st:g} fs + k x {dt:g} fs")
    source = FrameSource(backend, times, np.arange(n), time_source=tsource, timestep_fs=dt, path="ase.Atoms",
                         warnings=warnings)
    first = backend.read(0)[0]
    if first.info.get("pbc") is not None:
        source.warnings.append("partly periodic ase cell (pbc not all True) is treated as fully periodic")
    _set_box(source, explicit, first, None, None, source.warnings)
    return source


def _open_memory(frames, explicit, dt_given, warnings):
    backend = _MemoryBackend(frames)
    times = np.array([f.time_fs for f in frames], dtype=np.float64)
    dt = _infer_dt(times, dt_given, warnings) if len(frames) > 1 else (dt_given or DEFAULT_TIMESTEP_FS)
    source = FrameSource(backend, times, [f.source_index for f in frames], time_source="frames", timestep_fs=dt,
                         path="frames", warnings=warnings)
    _set_box(source, explicit, backend.read(0)[0], None, None, source.warnings)
    return source


def read_structure(path, *, element_map: Mapping[str, str] | None = None) -> Frame:
    """Read one structure (a one-frame ``.xyz``/``.extxyz`` or ``.pdb`` file, e.g. a
    structure-library file) without building a FrameSource.

    Same rules and errors as the one-frame files of a frames folder (blank atom lines
    dropped; a second frame is a FileFormatError). Returns a Frame with index 0,
    source_index 0, ``time_fs`` from an extended-XYZ ``time=`` or CP2K comment (else 0.0),
    and the box of the file's Lattice / CRYST1 (else None).
    """
    path = Path(path)
    data = path.read_bytes()
    cache = _ElementCache(element_map)
    if path.suffix.lower() in _PDB_SUFFIXES:
        parsed = _parse_pdb(data, str(path), 1, True, cache)
    else:
        parsed = _parse_xyz(data, str(path), 1, True, cache)
    return Frame(index=0, source_index=0, time_fs=float(parsed.time_fs) if parsed.time_fs is not None else 0.0,
                 symbols=parsed.symbols, positions=parsed.positions, box=parsed.file_box, residues=parsed.residues,
                 residue_ids=parsed.residue_ids, atom_names=parsed.atom_names, source=str(path), info=parsed.info)


# --------------------------------------------------------------------------- writers

def _atomic_write(path, chunks) -> None:
    """Write text chunks to ``path`` through a temporary file in the same folder, then rename,
    so a failure never leaves a half-written file."""
    from .._io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        for c in chunks:
            fh.write(c)


def _check_structure(symbols, positions) -> tuple[list[str], np.ndarray]:
    from .._validate import as_positions

    pos = as_positions(positions)
    syms = [str(s) for s in symbols]
    if len(syms) != pos.shape[0]:
        raise ValueError(f"symbols and positions disagree: {len(syms)} symbols, {pos.shape[0]} positions")
    out = []
    for s in syms:
        try:
            out.append(element_from_token(s))
        except ValueError as exc:
            raise ValueError(f"cannot write {s!r}: {exc}") from None
    return out, pos


def _xyz_frame_text(symbols, pos, comment, box, info=None, time_fs=None) -> str:
    if "\n" in comment or "\r" in comment:
        raise ValueError("the XYZ comment must be one line")
    if box is not None or info or time_fs is not None:
        head = []
        if box is not None:
            head.append('Lattice="' + " ".join(f"{v:.10g}" for v in box.matrix.reshape(-1)) + '"')
        head.append("Properties=species:S:1:pos:R:3")
        if time_fs is not None:
            head.append(f"time={float(time_fs)!r}")
        for key, val in (info or {}).items():
            if not re.fullmatch(r"[A-Za-z_][\w\-.:]*", str(key)):
                raise ValueError(f"extended-XYZ key {key!r} must be a word")
            if isinstance(val, bool):
                head.append(f"{key}={'T' if val else 'F'}")
            elif isinstance(val, (int, float, np.integer, np.floating)):
                head.append(f"{key}={val!r}" if isinstance(val, float) else f"{key}={val}")
            elif isinstance(val, (list, tuple, np.ndarray)):
                head.append(f'{key}="' + " ".join(str(v) for v in np.ravel(val)) + '"')
            else:
                sval = str(val).replace("\\", "\\\\").replace('"', '\\"')
                if "\n" in sval:
                    raise ValueError(f"extended-XYZ value of {key!r} must be one line")
                head.append(f'{key}="{sval}"')
        if box is not None:
            head.append('pbc="T T T"')
        if comment:
            sval = comment.replace("\\", "\\\\").replace('"', '\\"')
            head.append(f'comment="{sval}"')
        comment = " ".join(head)
    lines = [f"{len(symbols)}\n", comment + "\n"]
    lines.extend(f"{s:<2s} {x:16.8f} {y:16.8f} {z:16.8f}\n" for s, (x, y, z) in zip(symbols, pos.tolist()))
    return "".join(lines)


def write_xyz(path, symbols, positions, comment: str = "", box=None) -> None:
    """Write one frame as XYZ (extended XYZ with ``Lattice``/``pbc`` when a box is given).

    symbols : (n,) element symbols (validated); positions : (n, 3) angstrom; comment : one
    line (stored as ``comment="..."`` when a box is given); box : anything ``Box.coerce``
    accepts. Written atomically (temporary file then rename).
    """
    syms, pos = _check_structure(symbols, positions)
    b = Box.coerce(box)
    _atomic_write(path, [_xyz_frame_text(syms, pos, str(comment), b)])


def write_frames(path, frames) -> int:
    """Write frames (any iterable of ``Frame``, e.g. a FrameSource) into one multi-frame
    extended-XYZ file, streaming, atomically. Keeps box, time and scalar info. Returns the
    number of frames written."""
    count = [0]

    def chunks():
        for f in frames:
            syms, pos = _check_structure(f.symbols, f.positions)
            info = {k: v for k, v in f.info.items()
                    if k != "comment" and isinstance(v, (bool, int, float, str, np.integer, np.floating))}
            yield _xyz_frame_text(syms, pos, str(f.info.get("comment", "")), f.box, info, f.time_fs)
            count[0] += 1

    _atomic_write(path, chunks())
    return count[0]


def write_pdb(path, symbols, positions, residues=None, residue_ids=None, box=None, *, atom_names=None,
              comment: str = "") -> None:
    """Write one frame as PDB: HETATM records with fixed columns, element columns 77-78,
    ``CRYST1`` when a box is given, serials and residue numbers past the decimal range in
    hybrid-36. Written atomically.

    symbols : (n,) elements; positions : (n, 3) angstrom, each within -999.999 .. 9999.999
    (the PDB columns; otherwise ValueError, write XYZ instead); residues : (n,) residue names
    of at most 4 characters (default ``"MOL"``); residue_ids : (n,) ints (default 1);
    box : a box in the PDB orientation (a along x, b in the xy plane); atom_names : (n,)
    names of at most 4 characters (default element + running number per element, ``Pb1``);
    comment : text written as ``REMARK`` lines (one per line of the text).
    """
    syms, pos = _check_structure(symbols, positions)
    n = len(syms)
    if np.any(pos < -999.999) or np.any(pos > 9999.999):
        raise ValueError("coordinates outside -999.999 .. 9999.999 A do not fit the PDB columns; write XYZ instead")
    res = ["MOL"] * n if residues is None else [str(r) for r in residues]
    rid = np.ones(n, dtype=np.int64) if residue_ids is None else np.asarray(residue_ids, dtype=np.int64).reshape(-1)
    if len(res) != n or rid.size != n:
        raise ValueError(f"residues and residue_ids need {n} entries, got {len(res)} and {rid.size}")
    if any(len(r) > 4 for r in res):
        raise ValueError("residue names must have at most 4 characters")
    if atom_names is None:
        counter: dict = {}
        names = []
        for s in syms:
            counter[s] = counter.get(s, 0) + 1
            nm = f"{s if len(s) == 2 else s.upper()}{counter[s]}"  # "Pb1": unambiguous without columns 77-78
            names.append(nm if len(nm) <= 4 else nm[:len(s)])
    else:
        names = [str(a) for a in atom_names]
        if len(names) != n or any(len(a) > 4 for a in names):
            raise ValueError(f"atom_names need {n} entries of at most 4 characters")
    b = Box.coerce(box)
    out = [f"REMARK   {ln}\n" for ln in str(comment).splitlines()]
    if b is not None:
        params = np.concatenate([b.lengths, b.angles])
        if not np.allclose(Box.from_parameters(*params).matrix, b.matrix, atol=1e-6 * float(b.lengths.max())):
            raise ValueError("the box is not in the PDB orientation (a along x, b in the xy plane); "
                             "rotate the structure first or write XYZ")
        out.append("CRYST1{:9.3f}{:9.3f}{:9.3f}{:7.2f}{:7.2f}{:7.2f} P 1           1\n".format(*params))
    for k, (s, (x, y, z)) in enumerate(zip(syms, pos.tolist())):
        name = names[k]
        name_field = f" {name:<3s}" if len(s) == 1 and len(name) < 4 else f"{name:<4s}"
        out.append(f"HETATM{hybrid36_encode(k + 1, 5)} {name_field} {res[k]:<4s}X{hybrid36_encode(int(rid[k]), 4)}    "
                   f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00          {s.upper():>2s}\n")
    out.append("END\n")
    _atomic_write(path, out)


__all__ = ["Frame", "FrameSource", "FileFormatError", "SkippedFrame", "read_frames", "read_structure", "write_xyz",
           "write_pdb",
           "write_frames", "parse_comment", "natural_sort_key", "box_from_pbc_name", "folder_start_time_fs",
           "hybrid36_decode", "hybrid36_encode", "DEFAULT_TIMESTEP_FS"]
