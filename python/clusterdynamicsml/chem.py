"""Chemical element symbols: the periodic table, token normalisation, PDB atom-name inference.

Every stage that turns a file token into an element symbol goes through this module, so
``Pb1``, ``pb`` and ``PB`` all become ``Pb`` everywhere, and an unknown token is an error
instead of a silently invented element (better than ref V9, which keeps the letters of any
token and title-cases them, so ``C1A`` became ``Ca``).

Rules
-----
``normalize_element(token)`` (XYZ tokens, element columns, user input):
    the leading letters of the token (``Pb1`` -> ``Pb``, ``C1A`` -> ``C``, ``K+`` -> ``K``),
    title-cased (``PB`` -> ``Pb``, ``CA`` -> ``Ca``), must be one of the 118 elements (or
    ``D``/``T`` for hydrogen isotopes, mapped to ``H`` only with ``isotopes_as_hydrogen``).
    A mapping ``element_map`` (raw token -> element) is consulted first, so force-field
    names such as ``OW`` or LAMMPS type numbers can be mapped explicitly.

``element_from_atom_name(name_field, residue)`` (PDB columns 13-16 when the element
columns 77-78 are blank):
    1. a field that starts with a blank or a digit (`` CA ``, ``1HB ``) is a one-letter
       element (the PDB alignment rule): the first letter;
    2. otherwise, if the first two letters form an element and the second letter is lower
       case (``Pb1``, ``Cl``), or the residue name is exactly those letters (``LI`` in
       residue ``LI``, ``NA``/``NA``), or the first letter alone is not an element
       (``ZN``, ``MG``): the two-letter element;
    3. otherwise the first letter if it is an element (``CA1`` in residue ``DMF`` -> ``C``,
       as the reference tool does);
    4. else ``ValueError``.
"""
from __future__ import annotations

import re
from typing import Mapping

#: Element symbols in order of atomic number (index 0 is hydrogen, Z = 1).
SYMBOLS: tuple[str, ...] = (
    "H", "He",
    "Li", "Be", "B", "C", "N", "O", "F", "Ne",
    "Na", "Mg", "Al", "Si", "P", "S", "Cl", "Ar",
    "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
    "Ga", "Ge", "As", "Se", "Br", "Kr",
    "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd",
    "In", "Sn", "Sb", "Te", "I", "Xe",
    "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er",
    "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os", "Ir", "Pt", "Au", "Hg",
    "Tl", "Pb", "Bi", "Po", "At", "Rn",
    "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm",
    "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs", "Mt", "Ds", "Rg", "Cn",
    "Nh", "Fl", "Mc", "Lv", "Ts", "Og",
)

#: Atomic number of each symbol (``ATOMIC_NUMBERS["Pb"] == 82``).
ATOMIC_NUMBERS: dict[str, int] = {s: z for z, s in enumerate(SYMBOLS, start=1)}

_KNOWN = frozenset(SYMBOLS)
_ISOTOPES = {"D": "H", "T": "H"}
_LEADING_LETTERS = re.compile(r"[A-Za-z]+")


def is_element(symbol: str) -> bool:
    """True when ``symbol`` is exactly a known element symbol (case-sensitive, ``"Pb"``)."""
    return symbol in _KNOWN


def atomic_number(symbol: str) -> int:
    """Atomic number Z of an element token (normalised first, so ``"PB"`` gives 82)."""
    return ATOMIC_NUMBERS[normalize_element(symbol)]


def normalize_element(token, element_map: Mapping[str, str] | None = None, *,
                      isotopes_as_hydrogen: bool = False) -> str:
    """Element symbol of a file token, or ``ValueError`` naming the token.

    ``token`` : str (or bytes) such as ``"Pb"``, ``"PB"``, ``"pb"``, ``"Pb1"``, ``"K+"``.
    ``element_map`` : optional {raw token: element} consulted first (exact token, then
    the upper-cased token), for force-field names or type numbers (``{"OW": "O", "2": "H"}``).
    Returns the canonical symbol (``"Pb"``).
    """
    if isinstance(token, bytes):
        token = token.decode("ascii", "replace")
    raw = str(token).strip()
    if element_map:
        mapped = element_map.get(raw)
        if mapped is None:
            mapped = element_map.get(raw.upper())
        if mapped is not None:
            sym = str(mapped).strip().capitalize()
            if sym not in _KNOWN:
                raise ValueError(f"element_map maps {raw!r} to {mapped!r}, which is not an element symbol")
            return sym
    m = _LEADING_LETTERS.match(raw)
    if m is None:
        raise ValueError(f"unknown element {raw!r}: expected a symbol such as 'Pb', 'I', 'O' "
                         "(optionally followed by digits, e.g. 'Pb1')")
    letters = m.group(0)
    sym = letters.capitalize()
    if sym in _KNOWN:
        return sym
    if isotopes_as_hydrogen and sym in _ISOTOPES:
        return _ISOTOPES[sym]
    raise ValueError(f"unknown element {raw!r} (letters {letters!r} are not an element symbol); "
                     "pass element_map={...} to map force-field names or type numbers to elements")


def element_from_atom_name(name_field: str, residue: str | None = None,
                           element_map: Mapping[str, str] | None = None) -> str:
    """Element inferred from a PDB atom name (columns 13-16, unstripped when available).

    See the module docstring for the rules. ``residue`` is the residue name (columns 18-20),
    used to recognise single-atom ion residues such as ``LI``/``NA``/``CL``.
    ``element_map`` (raw atom name -> element) is consulted first.
    """
    if isinstance(name_field, bytes):
        name_field = name_field.decode("ascii", "replace")
    stripped = name_field.strip()
    if not stripped:
        raise ValueError("blank atom name and blank element column: cannot tell the element")
    if element_map:
        mapped = element_map.get(stripped) or element_map.get(stripped.upper())
        if mapped is not None:
            return normalize_element(mapped)
    if name_field[:1] in (" ",) or name_field[:1].isdigit():
        m = _LEADING_LETTERS.search(name_field)
        if m is None:
            raise ValueError(f"atom name {name_field!r} holds no letters: cannot tell the element")
        first = m.group(0)[0].upper()
        if first in _KNOWN:
            return first
        raise ValueError(f"atom name {name_field!r}: {first!r} is not an element symbol")
    m = _LEADING_LETTERS.match(stripped)
    if m is None:
        raise ValueError(f"atom name {name_field!r} does not start with a letter: cannot tell the element")
    letters = m.group(0)
    first = letters[0].upper()
    if len(letters) >= 2:
        two = letters[:2].capitalize()
        if two in _KNOWN:
            res = (residue or "").strip().upper()
            if letters[1].islower() or res == letters.upper() or res == two.upper() or first not in _KNOWN:
                return two
    if first in _KNOWN:
        return first
    raise ValueError(f"atom name {name_field!r}: cannot tell the element (fill the element columns 77-78)")
