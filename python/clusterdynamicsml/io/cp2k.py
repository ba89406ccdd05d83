"""CP2K naming conventions: the ``_pbc_<L>`` (or ``<a>x<b>x<c>``) cell in a file or folder name
(angstrom). CP2K ``-pos-`` comment lines (``i = N, time = T, E = ...``) are read by :mod:`.xyz`."""
from __future__ import annotations

import re
from pathlib import Path

from ..geometry.box import Box

_PBC_TAG = re.compile(r"_pbc_(\d+(?:p\d+)?)(?:x(\d+(?:p\d+)?)x(\d+(?:p\d+)?))?", re.IGNORECASE)


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
