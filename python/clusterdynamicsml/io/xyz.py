"""XYZ, extended XYZ and CP2K pos files: the comment line (``key=value`` pairs, Lattice,
Properties, time; CP2K ``i =, time =, E =``), frames parsed in C++ (``_core.parse_xyz_atoms``)
with a careful Python reader that names the file and line of any problem, the byte-offset
index of multi-frame files, and the XYZ writers. Units: angstrom, fs."""
from __future__ import annotations

import array
import math
import os
import re

import numpy as np

from .. import _core
from ..chem import element_from_token
from ..geometry.box import Box
from .records import _BOM, FileFormatError, SkippedFrame, SymbolList, _decode, _ElementCache, _Parsed

_XYZ_SUFFIXES = (".xyz", ".extxyz")


_BLOCK = 1 << 22  # bytes read at a time while indexing a multi-frame file


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


def _comment_meta(comment: str, path, count_lineno: int):
    """(time_fs, file_box, info, species_col, pos_col, ncols) from an XYZ comment line."""
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

    return time_fs, file_box, info, species_col, pos_col, ncols


def _parse_xyz_fast(data: bytes, path: str, line0: int, single: bool, elements: _ElementCache) -> _Parsed | None:
    """The atom lines in C++ (``_core.parse_xyz_atoms``), no Python loop per atom. Returns None
    whenever anything is irregular (leading blank lines, a short or bad atom line, an unknown
    element, ...): :func:`_parse_xyz` then reads the frame the careful way and names the line."""
    start = 3 if data.startswith(_BOM) else 0
    e1 = data.find(b"\n", start)
    e2 = data.find(b"\n", e1 + 1) if e1 >= 0 else -1
    if e2 < 0:
        return None
    parts = data[start:e1].split()
    if not parts or not parts[0].isdigit():
        return None
    n = int(parts[0])
    if n > len(data):  # more atoms than bytes (or beyond int64): the careful reader names the line
        return None
    comment = _decode(data[e1 + 1:e2])
    try:
        time_fs, file_box, info, species_col, pos_col, ncols = _comment_meta(comment, path, line0)
    except FileFormatError:
        return None  # the careful reader reports the first problem of the frame, in file order
    try:
        positions, codes, tokens = _core.parse_xyz_atoms(data, e2 + 1, n, species_col, pos_col,
                                                         -1 if ncols is None else ncols, single)
    except ValueError:
        return None
    table = elements.table(tokens)
    if table is None:
        return None
    return _Parsed(SymbolList.from_codes(codes, table), positions, file_box, time_fs, info=info)


def _split_xyz_frame(data: bytes, path: str, line0: int, single: bool):
    """Split one XYZ frame into (atom count, comment line, atom lines, count-line number,
    line number of the first body line, row -> file line function). ``single``: a whole
    one-frame file (leading and blank atom lines skipped, trailing non-blank lines an error).
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
        raise FileFormatError(
            path, line0 + k, f"expected the atom count (a non-negative integer), got {_decode(count_line)!r}"
        ) from None
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
    return n, comment, atom_rows, count_lineno, body_line0, line_of


def _xyz_atom_columns(atom_rows: list[bytes], n: int, species_col: int, pos_col: int, ncols: int | None,
                      path: str, count_lineno: int, line_of):
    """float64 (n, 3) positions (angstrom) and species tokens of the atom lines: one
    vectorised conversion when every line has the expected width, else line by line to name
    the first bad line in a FileFormatError."""
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
    return positions, tokens


def _parse_xyz(data: bytes, path: str, line0: int, single: bool, elements: _ElementCache) -> _Parsed:
    """Parse one XYZ frame held in ``data`` (starting at 1-based file line ``line0``).

    ``single``: the frame is a whole one-frame file: blank atom lines are dropped (ref §1.1)
    and anything but blank lines after the last atom is an error.
    """
    fast = _parse_xyz_fast(data, path, line0, single, elements)
    if fast is not None:
        return fast
    n, comment, atom_rows, count_lineno, body_line0, line_of = _split_xyz_frame(data, path, line0, single)
    time_fs, file_box, info, species_col, pos_col, ncols = _comment_meta(comment, path, count_lineno)
    positions, tokens = _xyz_atom_columns(atom_rows, n, species_col, pos_col, ncols, path, count_lineno, line_of)
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


class _Blocks:
    """Newline offsets of a binary file, one fixed-size block at a time. The block buffer and
    the newline mask are allocated once and reused (so indexing a long file leaves no trail of
    freed 4 MiB buffers in the process heap)."""

    def __init__(self, fh, size: int):
        self.fh, self.size = fh, size
        self.start = self.end = 0
        self.block = bytearray(min(_BLOCK, max(size, 1)))
        self.view = memoryview(self.block)
        self.mask = np.zeros(len(self.block), dtype=bool)
        self.buf = self.view[:0]
        self.nl = np.zeros(0, dtype=np.int64)

    def load(self, pos: int) -> None:
        self.fh.seek(pos)
        got = self.fh.readinto(self.block)
        raw = np.frombuffer(self.block, dtype=np.uint8, count=got)
        mask = self.mask[:got]
        np.equal(raw, 10, out=mask)
        nl = np.flatnonzero(mask)
        nl += pos
        if pos + got >= self.size and got and self.block[got - 1] != 10:
            nl = np.append(nl, np.int64(self.size))  # the last line has no newline
        self.buf, self.nl, self.start, self.end = self.view[:got], nl, pos, pos + got

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

    def line_end(self, pos: int) -> int:
        """Offset of the first line end at or after ``pos`` (< size); the end of a file
        without a final newline counts as one, so there always is one."""
        e, _ = self.newline(pos)
        return self.size if e is None else e

    def bytes(self, a: int, b: int) -> bytes:
        if self.start <= a and b <= self.end:
            return bytes(self.buf[a - self.start:b - self.start])
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
            e = blk.line_end(pos)
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
