"""PDB: ATOM/HETATM columns, hybrid-36 serials and residue numbers, CRYST1 boxes, MODEL/END
frame boundaries, and the PDB writer. Units: angstrom."""
from __future__ import annotations

import os
import re

import numpy as np

from ..chem import element_from_atom_name, normalize_element
from ..geometry.box import Box
from .records import _BOM, FileFormatError, _decode, _ElementCache, _Parsed
from .xyz import _BLOCK, _atomic_write, _check_structure

_PDB_SUFFIXES = (".pdb", ".ent")


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


def _scan_pdb_records(lines: list[bytes], path: str, line0: int, single: bool,
                      header_box: Box | None) -> tuple[list[int], Box | None, dict]:
    """Line indices of the ATOM/HETATM records, the box (last CRYST1, else ``header_box``)
    and the MODEL number of one PDB frame. With ``single``, a second MODEL or atoms after
    END/ENDMDL raise FileFormatError."""
    file_box = header_box
    info: dict = {}
    models = 0
    ended = False
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
    return atom_rows, file_box, info


def _pdb_positions(table: np.ndarray, rows: list[bytes], atom_rows: list[int], path: str, line0: int) -> np.ndarray:
    """float64 (n, 3) coordinates (angstrom) from columns 31-54 of the (n, 80) record table;
    a non-numeric or non-finite coordinate raises FileFormatError naming its line."""
    n = table.shape[0]
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
        raise FileFormatError(path, line0 + atom_rows[k],
                              f"coordinate is NaN or infinite: {_decode(rows[k][30:54])!r}")
    return positions


def _pdb_symbols(table: np.ndarray, atom_rows: list[int], elements: _ElementCache, path: str,
                 line0: int) -> list[str]:
    """Element symbol per record: the element columns 77-78, else the atom name (columns
    13-16) with the residue name as a hint; each distinct (element, name, residue) key is
    resolved once."""
    n = table.shape[0]
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
    return np.asarray(usyms, dtype=object)[inverse.reshape(-1)].tolist()


def _pdb_residue_ids(res_fields: np.ndarray, residues: list[str]) -> np.ndarray:
    """int64 residue numbers from columns 23-26: plain integers, else hybrid-36; an
    overflowed field ("****" etc.) continues the numbering at each change of (field, name)."""
    try:
        return res_fields.astype(np.int64)
    except ValueError:
        pass
    resids = np.empty(res_fields.shape[0], dtype=np.int64)
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
    return resids


def _parse_pdb(data: bytes, path: str, line0: int, single: bool, elements: _ElementCache,
               header_box: Box | None = None) -> _Parsed:
    """Parse the ATOM/HETATM records of one PDB frame (fixed columns, ref §1.1).

    Serial numbers are not used (atoms are kept in file order), so overflowed, hybrid-36
    or duplicate serials are harmless (better than ref V8). ``single``: a whole one-frame
    file, where a second MODEL or atoms after END are an error.
    """
    if data.startswith(_BOM):
        data = data[3:]
    lines = data.split(b"\n")
    atom_rows, file_box, info = _scan_pdb_records(lines, path, line0, single, header_box)
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

    positions = _pdb_positions(table, rows, atom_rows, path, line0)

    # elements: the element columns 77-78, else the atom name (with the residue as a hint)
    symbols = _pdb_symbols(table, atom_rows, elements, path, line0)

    def strings(col: np.ndarray) -> list[str]:
        uniq, inv = np.unique(col, return_inverse=True)
        return np.asarray([u.decode("ascii", "replace").strip() for u in uniq], dtype=object)[inv.reshape(-1)].tolist()

    residues = strings(columns(17, 21))
    names = strings(columns(12, 16))
    res_fields = columns(22, 26)
    resids = _pdb_residue_ids(res_fields, residues)
    return _Parsed(symbols, positions, file_box, None, residues, resids, names, info)


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
