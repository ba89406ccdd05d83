"""The package's chemistry vocabulary: element symbols, compositions and their labels, element pairs.

Every stage that turns text into an element, a composition or an element pair goes through
this module, so the same input gives the same answer everywhere.

Elements
--------
``normalize_element(symbol)`` - a *symbol*, strictly (user input, rules, counts, labels,
    form factors, PDB element columns): surrounding blanks are dropped and the case is
    fixed (``"pb"``, ``"PB"``, ``" Pb "`` -> ``"Pb"``); anything that is not one of the 118
    symbols is a ``ValueError`` (``"OW"``, ``"Pb1"``, ``"Nä"``, ``"N_a"``, ``""``). An
    ``element_map`` (raw token -> element) is consulted first; ``D``/``T`` map to ``H`` only
    with ``isotopes_as_hydrogen``.

``element_from_token(token)`` - an atom token of an XYZ-type file: a symbol in any case,
    optionally followed by an index or a charge (``"Pb1"``, ``"PB12"``, ``"C1A"``, ``"K+"``,
    ``"Cl-"``). The letters before the suffix must be a symbol, so force-field names such as
    ``"OW"`` are an error (pass ``element_map={"OW": "O"}``) instead of a silent guess; so are
    ``"Nä"`` and ``"N_a"`` (not nitrogen).

``element_from_atom_name(name_field, residue)`` - a PDB atom name (columns 13-16, unstripped
    when available) or a force-field atom name, leniently (``"OW"`` -> ``"O"``, ``"Pb1"`` ->
    ``"Pb"``), used when the PDB element columns 77-78 are blank:

    0. the name must be ASCII letters, digits and ``+-'*`` (``"Nä"``, ``"N_a"``: ValueError);
    1. a field that starts with a blank or a digit (`` CA ``, ``1HB ``) is a one-letter
       element (the PDB alignment rule): the first letter;
    2. otherwise, if the first two letters form an element and the second letter is lower
       case (``Pb1``, ``Cl``), or the residue name is exactly those letters (``LI`` in
       residue ``LI``, ``NA``/``NA``), or the first letter alone is not an element
       (``ZN``, ``MG``): the two-letter element;
    3. otherwise the first letter if it is an element (``OW`` -> ``O``; ``CA1`` in residue
       ``DMF`` -> ``C``, as the reference tool does);
    4. else ``ValueError``.

Compositions and labels
-----------------------
A :class:`Composition` is an immutable {element: count > 0} mapping. Its label follows ONE
rule: node elements, then linker elements, then shell elements, each group alphabetical,
then elements in no role, alphabetical; a count of 1 is written without a number
(``Pb2I5``, ``PbI3``, ``Na2Cl``). Without roles every element is alphabetical. An empty
composition has no label (``ValueError``). :func:`parse_label` reads a label back strictly:
tokens ``([A-Z][a-z]?)(\\d*)`` with known symbols, each element once, counts >= 1
(``"PbIPb"``, ``"Pb0I"``, ``"pbI"``, ``""`` are errors).

Element pairs
-------------
:class:`ElementPair` is an unordered pair of element symbols stored alphabetically, so
``parse_pair("Pb-I") == parse_pair("I-Pb") == ElementPair("I", "Pb")``; ``str()`` gives
``"I-Pb"`` (the key of the geometry-statistics tables). Strings may separate the two
symbols by ``-``, ``:``, ``/``, ``,``, ``_`` or blanks; tuples and lists are accepted too.
``parse_pair(key, ordered=True)`` keeps the given order (for role-ordered cutoffs).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["SYMBOLS", "ATOMIC_NUMBERS", "ROLES", "is_element", "atomic_number", "normalize_element",
           "element_from_token", "element_from_atom_name", "Composition", "format_label", "parse_label",
           "label_order", "ElementPair", "parse_pair", "split_pair", "pair_key"]

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
_ASCII_LETTERS = re.compile(r"[A-Za-z]+")
_TOKEN = re.compile(r"([A-Za-z]+)(\d[A-Za-z0-9]*)?([+-]\d*)?")
_ATOM_NAME = re.compile(r"[A-Za-z0-9+\-'*]+")

#: The roles of :class:`~clusterdynamicsml.rules.ClusterRules`, in label order.
ROLES = ("node", "linker", "shell")


def is_element(symbol: str) -> bool:
    """True when ``symbol`` is exactly a known element symbol (case-sensitive, ``"Pb"``)."""
    return symbol in _KNOWN


def atomic_number(symbol: str) -> int:
    """Atomic number Z of an element symbol (normalised first, so ``"PB"`` gives 82)."""
    return ATOMIC_NUMBERS[normalize_element(symbol)]


def _text(token: Any) -> str:
    if isinstance(token, bytes):
        token = token.decode("utf-8", "replace")  # a non-ASCII name is shown as written
    if not isinstance(token, str):
        raise ValueError(f"element symbol must be a non-empty string such as 'Pb', got {token!r}")
    return token


def _mapped(raw: str, element_map: Mapping[str, str] | None) -> str | None:
    if not element_map:
        return None
    mapped = element_map.get(raw)
    if mapped is None:
        mapped = element_map.get(raw.upper())
    if mapped is None:
        return None
    sym = str(mapped).strip().capitalize()
    if sym not in _KNOWN:
        raise ValueError(f"element_map maps {raw!r} to {mapped!r}, which is not an element symbol")
    return sym


def _symbol(letters: str, raw: str, isotopes_as_hydrogen: bool, hint: str) -> str:
    sym = letters.capitalize()
    if sym in _KNOWN:
        return sym
    if isotopes_as_hydrogen and sym in _ISOTOPES:
        return _ISOTOPES[sym]
    raise ValueError(f"unknown element {raw!r}{hint}")


def normalize_element(symbol: Any, element_map: Mapping[str, str] | None = None, *,
                      isotopes_as_hydrogen: bool = False) -> str:
    """The canonical element symbol of ``symbol`` (``"pb"`` -> ``"Pb"``), strictly.

    ``symbol`` : str (or bytes); surrounding blanks are ignored, the case is not significant.
    ``element_map`` : optional {raw token: element} consulted first (exact, then upper-cased).
    Raises ValueError for anything that is not exactly a symbol: ``"OW"``, ``"Pb1"``,
    ``"Nä"``, ``"N_a"``, ``""`` (see :func:`element_from_token` and
    :func:`element_from_atom_name` for atom names in files).
    """
    raw = _text(symbol).strip()
    if not raw:
        raise ValueError(f"element symbol must be a non-empty string such as 'Pb', got {symbol!r}")
    mapped = _mapped(raw, element_map)
    if mapped is not None:
        return mapped
    if not _ASCII_LETTERS.fullmatch(raw):
        raise ValueError(f"unknown element {raw!r}: expected a symbol such as 'Pb', 'I', 'O' "
                         "(atom names such as 'Pb1' or 'OW' are read by element_from_token / element_from_atom_name)")
    return _symbol(raw, raw, isotopes_as_hydrogen, " (not a symbol of the periodic table); pass element_map={...} "
                   "to map force-field names to elements")


def element_from_token(token: Any, element_map: Mapping[str, str] | None = None, *,
                       isotopes_as_hydrogen: bool = False) -> str:
    """Element of an XYZ-type atom token: a symbol, optionally followed by an index or a
    charge (``"Pb1"``, ``"PB"``, ``"C1A"``, ``"K+"`` -> ``"Pb"``, ``"Pb"``, ``"C"``, ``"K"``).

    ``element_map`` (raw token -> element) is consulted first. The letters before the suffix
    must be a symbol: ``"OW"``, ``"Xx1"``, ``"Nä"``, ``"N_a"`` raise ValueError.
    """
    raw = _text(token).strip()
    if not raw:
        raise ValueError(f"unknown element {raw!r}: empty atom token")
    mapped = _mapped(raw, element_map)
    if mapped is not None:
        return mapped
    m = _TOKEN.fullmatch(raw)
    if m is None:
        raise ValueError(f"unknown element {raw!r}: expected a symbol such as 'Pb', 'I', 'O' "
                         "(optionally followed by digits or a charge, e.g. 'Pb1', 'K+')")
    return _symbol(m.group(1), raw, isotopes_as_hydrogen,
                   f" (letters {m.group(1)!r} are not an element symbol); pass element_map={{...}} "
                   "to map force-field names or type numbers to elements")


def element_from_atom_name(name_field: Any, residue: str | None = None,
                           element_map: Mapping[str, str] | None = None) -> str:
    """Element inferred from a PDB or force-field atom name, leniently (``"OW"`` -> ``"O"``).

    See the module docstring for the rules. ``residue`` is the residue name (PDB columns
    18-20), used to recognise single-atom ion residues such as ``LI``/``NA``/``CL``.
    ``element_map`` (raw atom name -> element) is consulted first.
    """
    name_field = _text(name_field)
    stripped = name_field.strip()
    if not stripped:
        raise ValueError("blank atom name and blank element column: cannot tell the element")
    if element_map:
        mapped = element_map.get(stripped) or element_map.get(stripped.upper())
        if mapped is not None:
            return normalize_element(mapped)
    if not _ATOM_NAME.fullmatch(stripped):
        raise ValueError(f"atom name {name_field!r}: only ASCII letters, digits and +-'* are allowed "
                         "(cannot tell the element)")
    if name_field[:1] == " " or name_field[:1].isdigit():
        m = _ASCII_LETTERS.search(name_field)
        if m is None:
            raise ValueError(f"atom name {name_field!r} holds no letters: cannot tell the element")
        first = m.group(0)[0].upper()
        if first in _KNOWN:
            return first
        raise ValueError(f"atom name {name_field!r}: {first!r} is not an element symbol")
    m = _ASCII_LETTERS.match(stripped)
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


# --------------------------------------------------------------------------- compositions and labels

_LABEL_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*)")


def _role_of(roles: Any) -> dict[str, int]:
    """{element: rank} from the accepted role descriptions (see :func:`label_order`)."""
    if roles is None:
        return {}
    if isinstance(roles, Mapping):  # {element: 'node' | 'linker' | 'shell'}
        rank: dict[str, int] = {}
        for el, role in roles.items():
            if role not in ROLES:
                raise ValueError(f"role of {el!r} must be one of {ROLES}, got {role!r}")
            rank.setdefault(normalize_element(el), ROLES.index(role))
        return rank
    groups = [getattr(roles, f"{r}_elements", None) for r in ROLES]
    if any(g is None for g in groups):
        raise ValueError("roles must be a ClusterRules (node/linker/shell elements) or a mapping "
                         f"{{element: 'node' | 'linker' | 'shell'}}, got {type(roles).__name__}")
    rank = {}
    for k, group in enumerate(groups):
        for el in group or ():
            rank.setdefault(normalize_element(el), k)
    return rank


def label_order(elements: Iterable[str], roles: Any = None) -> list[str]:
    """``elements`` in label order: node, linker, shell elements (each alphabetical), then the
    rest alphabetical. ``roles``: a ``ClusterRules`` (or any object with ``node_elements``,
    ``linker_elements``, ``shell_elements``), a mapping {element: role}, or None (alphabetical)."""
    rank = _role_of(roles)
    return sorted(elements, key=lambda e: (rank.get(e, len(ROLES)), e))


class Composition(Mapping[str, int]):
    """An immutable element composition {symbol: count >= 1} (zero counts are dropped).

    ``Composition({"pb": 2, "I": 5})``, ``Composition(["Pb", "I", "I"])`` (a list of
    symbols is counted) or ``Composition.parse("Pb2I5")``. Element keys are normalised
    strictly; counts must be non-negative integers. Equal compositions compare and hash
    equal whatever the key order. ``label(roles)`` formats with the one label rule.
    """

    __slots__ = ("_counts",)

    def __init__(self, counts: Mapping[str, int] | Iterable[str] = ()):
        clean: dict[str, int] = {}
        if isinstance(counts, Mapping):
            items = list(counts.items())
        elif isinstance(counts, (str, bytes)):
            raise ValueError(f"Composition of a label: use Composition.parse({counts!r})")
        else:
            items = [(el, 1) for el in counts]
        for el, n in items:
            if isinstance(n, bool) or not hasattr(n, "__index__") or int(n) < 0:
                raise ValueError(f"count of {el!r} must be a non-negative integer, got {n!r}")
            sym = normalize_element(el)
            if int(n):
                clean[sym] = clean.get(sym, 0) + int(n)
        self._counts = dict(sorted(clean.items()))

    @classmethod
    def parse(cls, label: str) -> Composition:
        """Composition of a label (see :func:`parse_label`)."""
        return cls(parse_label(label))

    def __getitem__(self, element: str) -> int:
        return self._counts[element]

    def __iter__(self) -> Iterator[str]:
        return iter(self._counts)

    def __len__(self) -> int:
        return len(self._counts)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._counts == {k: v for k, v in other.items() if v}
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._counts.items()))

    def __repr__(self) -> str:
        return f"Composition({self._counts!r})"

    @property
    def size(self) -> int:
        """Total number of atoms."""
        return sum(self._counts.values())

    def restrict(self, elements: Iterable[str]) -> Composition:
        """The part of the composition made of ``elements``."""
        keep = set(elements)
        return Composition({e: n for e, n in self._counts.items() if e in keep})

    def label(self, roles: Any = None) -> str:
        """The label: nodes, linkers, shells (each alphabetical), then the rest; count 1 omitted.
        ValueError for an empty composition."""
        if not self._counts:
            raise ValueError("cannot label an empty composition")
        return "".join(el if self._counts[el] == 1 else f"{el}{self._counts[el]}"
                       for el in label_order(self._counts, roles))


def format_label(counts: Mapping[str, int], roles: Any = None) -> str:
    """Label of a composition {element: count}: ``{"Pb": 2, "I": 5}`` -> ``"Pb2I5"``.

    ``roles`` orders the elements (see :func:`label_order`): node elements, then linkers, then
    shells, each alphabetical; without roles all alphabetical. Zero counts are dropped; an
    empty composition is a ValueError.
    """
    if not isinstance(counts, Mapping):
        raise ValueError(f"counts must be a mapping element -> count, got {type(counts).__name__}")
    comp = Composition(counts)
    if not comp:
        raise ValueError(f"cannot label an empty composition: {dict(counts)!r}")
    return comp.label(roles)


def parse_label(label: str) -> dict[str, int]:
    """Element counts of a label, in label order: ``"Pb2I5"`` -> ``{"Pb": 2, "I": 5}``.

    Strict: tokens ``([A-Z][a-z]?)(\\d*)`` of known symbols, each element once, counts >= 1;
    anything else (``"PbIPb"``, ``"Pb0"``, ``"pb2"``, ``"Pb2 I"``, ``""``) is a ValueError.
    """
    if not isinstance(label, str) or not label:
        raise ValueError(f"label must be a non-empty string such as 'Pb2I5', got {label!r}")
    out: dict[str, int] = {}
    pos = 0
    for m in _LABEL_TOKEN.finditer(label):
        if m.start() != pos:
            break
        el, num = m.group(1), m.group(2)
        if el not in _KNOWN:
            raise ValueError(f"label {label!r}: unknown element {el!r}")
        if el in out:
            raise ValueError(f"label {label!r}: element {el!r} appears twice")
        n = int(num) if num else 1
        if n == 0:
            raise ValueError(f"label {label!r}: count 0 for {el!r}")
        out[el] = n
        pos = m.end()
    if pos != len(label):
        raise ValueError(f"label {label!r} is not a stoichiometry label (expected tokens like 'Pb2', 'I5'; "
                         f"stuck at {label[pos:]!r})")
    return out


# --------------------------------------------------------------------------- element pairs

_PAIR_SEP = re.compile(r"\s*[-:,/_ ]\s*")


class ElementPair(tuple):
    """An unordered pair of element symbols, stored alphabetically: ``ElementPair("Pb", "I")``
    is ``("I", "Pb")``; ``str()`` is ``"I-Pb"``. Use :func:`parse_pair` for text keys."""

    __slots__ = ()

    def __new__(cls, a: str, b: str):
        x, y = normalize_element(a), normalize_element(b)
        return super().__new__(cls, (x, y) if x <= y else (y, x))

    @property
    def a(self) -> str:
        return self[0]

    @property
    def b(self) -> str:
        return self[1]

    def __str__(self) -> str:
        return f"{self[0]}-{self[1]}"

    def __repr__(self) -> str:
        return f"ElementPair({self[0]!r}, {self[1]!r})"


def split_pair(key: Any) -> tuple[str, str]:
    """The two raw (not normalised) parts of a pair key ``"Pb-I"`` / ``("Pb", "I")``."""
    if isinstance(key, str):
        parts = _PAIR_SEP.split(key.strip())
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"expected an element pair such as 'Pb-I' or ('Pb', 'I'), got {key!r}")
        return parts[0], parts[1]
    if isinstance(key, (tuple, list)) and len(key) == 2:
        return key[0], key[1]
    raise ValueError(f"expected an element pair such as 'Pb-I' or ('Pb', 'I'), got {key!r}")


def parse_pair(key: Any, *, ordered: bool = False) -> tuple[str, str]:
    """Element pair of ``"Pb-I"``, ``"Pb:I"``, ``"Pb I"``, ``("Pb", "I")``: an
    :class:`ElementPair` (alphabetical), or with ``ordered=True`` the two normalised symbols in
    the given order. ValueError naming the key for anything else."""
    a, b = split_pair(key)
    try:
        if ordered:
            return (normalize_element(a), normalize_element(b))
        return ElementPair(a, b)
    except ValueError as exc:
        raise ValueError(f"element pair {key!r}: {exc}") from None


def pair_key(a: str, b: str) -> str:
    """Canonical text key of an unordered element pair: ``pair_key("Pb", "I") == "I-Pb"``."""
    return str(ElementPair(a, b))
