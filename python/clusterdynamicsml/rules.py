"""The one definition of what a cluster is made of: :class:`ClusterRules`.

Atom roles (node, linker, shell; optionally per PDB residue) and pair cutoffs in angstrom.
Every stage takes these rules: cluster extraction, the structure library, the geometry
statistics and the builder (through :meth:`ClusterRules.role_of` / ``pair_cutoffs``), the
run file (``[clusters]`` -> :meth:`ClusterRules.from_dict`).

There is no chemistry default: ``node`` (at least one element) and ``cutoffs`` (or a
``default_cutoff``) must be given; ``ClusterRules()`` is an error that says so.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import chem
from ._validate import as_cutoff

__all__ = ["ClusterRules", "ROLES", "AtomSpec", "as_rules"]

ROLES = chem.ROLES

AtomSpec = tuple  # (element: str, residue: str | None)


# --------------------------------------------------------------------------- rules


def _element(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected an element symbol such as 'Pb', got {value!r}")
    try:
        return chem.normalize_element(value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _atom_spec(value, where: str) -> AtomSpec:
    """'Pb', 'O:DMF', ('O', 'DMF'), ['O', None] or {'element': 'O', 'residue': 'DMF'}."""
    residue = None
    if isinstance(value, Mapping):
        if "element" not in value:
            raise ValueError(f"{where}: expected {{'element': ..., 'residue': ...}}, got {dict(value)!r}")
        extra = set(value) - {"element", "residue"}
        if extra:
            raise ValueError(f"{where}: unexpected keys {sorted(extra)} in {dict(value)!r}")
        el, residue = value["element"], value.get("residue")
    elif isinstance(value, str):
        el, _, residue = value.partition(":")
    elif isinstance(value, (tuple, list)) and len(value) in (1, 2):
        el = value[0]
        residue = value[1] if len(value) == 2 else None
    else:
        raise ValueError(f"{where}: expected 'EL', 'EL:RESIDUE' or (element, residue), got {value!r}")
    if residue is not None:
        if not isinstance(residue, str):
            raise ValueError(f"{where}: residue name must be a string or None, got {residue!r}")
        residue = residue.strip().upper() or None
    return (_element(el, where), residue)


def _role_list(value, role: str) -> tuple[AtomSpec, ...]:
    """A role's entries. A single string or mapping is one entry; any other sequence is a
    list of entries (wrap a single (element, residue) pair in a list)."""
    if value is None:
        return ()
    if isinstance(value, (str, Mapping)):
        value = [value]
    try:
        items = list(value)
    except TypeError:
        raise ValueError(f"{role}: expected a list of element symbols or (element, residue) pairs, "
                         f"got {value!r}") from None
    out: list[AtomSpec] = []
    for k, item in enumerate(items):
        spec = _atom_spec(item, f"{role}[{k}]")
        if spec in out:
            raise ValueError(f"{role}: {_spec_str(spec)!r} is listed twice")
        out.append(spec)
    return tuple(out)


def _spec_str(spec: AtomSpec) -> str:
    return spec[0] if spec[1] is None else f"{spec[0]}:{spec[1]}"


def _distance(value, where: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected a distance in angstrom, got {value!r}")
    return as_cutoff(value, f"{where}: cutoff (0 means no bond)")


def _level(value, where: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{where}: shell level must be a non-negative integer, got {value!r}")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{where}: shell level must be a non-negative integer, got {value!r}")
    return int(value)


def _pair_key(key, where: str) -> tuple[str, str]:
    try:
        return chem.parse_pair(key, ordered=True)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _cutoff_entries(cutoffs) -> list[tuple[tuple[str, str], object]]:
    """Flatten the accepted cutoff forms into [(pair, value-or-level-map)]."""
    if cutoffs is None:
        return []
    if isinstance(cutoffs, Mapping):
        return [(_pair_key(k, f"cutoffs[{k!r}]"), v) for k, v in cutoffs.items()]
    entries = []
    try:
        items = list(cutoffs)
    except TypeError:
        raise ValueError(f"cutoffs: expected a mapping {{('Pb', 'I'): 3.36}} or a list of "
                         f"{{'atom1', 'atom2', 'shell_cutoffs'}} records, got {cutoffs!r}") from None
    for k, rec in enumerate(items):
        if not isinstance(rec, Mapping) or not {"atom1", "atom2"} <= set(rec):
            raise ValueError(f"cutoffs[{k}]: expected {{'atom1': 'Pb', 'atom2': 'I', 'shell_cutoffs': {{'0': 3.36}}}}, "
                             f"got {rec!r}")
        value = rec.get("shell_cutoffs", rec.get("cutoff"))
        if value is None:
            raise ValueError(f"cutoffs[{k}]: record needs 'shell_cutoffs' (or 'cutoff'), got {rec!r}")
        pair = (_element(rec["atom1"], f"cutoffs[{k}].atom1"), _element(rec["atom2"], f"cutoffs[{k}].atom2"))
        entries.append((pair, value))
    return entries


def _check_roles(node, linker, shell) -> dict[str, int]:
    """{element: index of its first role}; ValueError for no node or an element in two roles
    that residue names do not tell apart."""
    if not node:
        raise ValueError("ClusterRules needs at least one node element, got node=[] "
                         "(clusters are grown from node atoms)")
    seen: dict[AtomSpec, str] = {}
    bare: dict[str, str] = {}
    for role, specs in (("node", node), ("linker", linker), ("shell", shell)):
        for spec in specs:
            if spec in seen:
                raise ValueError(f"{_spec_str(spec)!r} is given two roles: {seen[spec]} and {role}")
            seen[spec] = role
            if spec[1] is None:
                if spec[0] in bare:
                    raise ValueError(f"element {spec[0]!r} is given two roles: {bare[spec[0]]} and {role} "
                                     "(use (element, residue) pairs to tell them apart)")
                bare[spec[0]] = role
    rank: dict[str, int] = {}
    for k, specs in enumerate((node, linker, shell)):
        for el, _ in specs:
            rank.setdefault(el, k)
    return rank


def _shell_levels(value) -> list[int]:
    if isinstance(value, (int, str)):
        value = [value]
    try:
        levels = sorted({_level(v, "shell_levels") for v in value})
    except TypeError:
        raise ValueError(f"shell_levels must be a list of integers >= 1, got {value!r}") from None
    if 0 in levels:
        raise ValueError("shell_levels lists the extra levels > 0 (level 0 is always used), got 0")
    return levels


def _canonical_cutoffs(cutoffs, role_rank: dict[str, int], roles) -> dict[tuple[str, str], dict[int, float]]:
    """{(el_a, el_b) in role order: {level: angstrom}} of every accepted cutoff form."""
    canon: dict[tuple[str, str], dict[int, float]] = {}
    for pair, value in _cutoff_entries(cutoffs):
        where = f"cutoffs[{pair[0]}-{pair[1]}]"
        for el in pair:
            if el not in role_rank:
                node, linker, shell = ([_spec_str(s) for s in specs] for specs in roles)
                raise ValueError(f"{where}: element {el!r} has no role (node {node}, linker {linker}, shell {shell})")
        x, y = sorted(pair, key=lambda e: (role_rank[e], e))
        if isinstance(value, Mapping):
            levmap = {_level(lv, where): _distance(d, f"{where}[level {lv}]") for lv, d in value.items()}
            if not levmap:
                raise ValueError(f"{where}: empty level map")
        else:
            levmap = {0: _distance(value, where)}
        entry = canon.setdefault((x, y), {})
        for lv, d in levmap.items():
            if lv in entry and entry[lv] != d:
                raise ValueError(f"{where}: level {lv} cutoff given twice with different values ({entry[lv]} and {d})")
            entry[lv] = d
    return canon


def _check_levels(canon, levels: list[int], default: float | None, node, shell) -> None:
    # Level > 0 cutoffs only act between node and shell atoms.
    node_el = {s[0] for s in node}
    shell_el = {s[0] for s in shell}
    for (a, b), levmap in canon.items():
        for lv in levmap:
            if lv > 0 and not ((a in node_el and b in shell_el) or (b in node_el and a in shell_el)):
                raise ValueError(f"cutoffs[{a}-{b}]: a level-{lv} cutoff is only used between a node and a shell "
                                 "element (shell growth around nodes); this pair is never searched at that level")
    for lv in levels:
        if not shell:
            raise ValueError(f"shell_levels={levels} needs shell elements, got shell=[]")
        if default is None and not any(lv in m and m[lv] > 0 for m in canon.values()):
            raise ValueError(f"shell level {lv} has no cutoff: add e.g. cutoffs[('Pb', 'O')] = {{0: ..., {lv}: ...}}")
    if not any(m.get(0, 0) > 0 for m in canon.values()) and default is None:
        raise ValueError("no positive level-0 cutoff: every atom would be its own cluster; "
                         "give e.g. cutoffs={('Pb', 'I'): 3.36}")


@dataclass(frozen=True, eq=True)
class ClusterRules:
    """Atom roles and pair cutoffs that define clusters. Frozen and validated.

    Parameters
    ----------
    node, linker, shell : lists of element symbols (``"Pb"``) or (element, residue) pairs
        (``("O", "DMF")`` or ``"O:DMF"``) for PDB input with residue names. Residue names
        match case-insensitively; a residue-qualified entry wins over a bare element.
        The same element may appear in two roles only when residue names tell them apart.
    cutoffs : ``{(el_a, el_b): distance}`` (shell level 0) or
        ``{(el_a, el_b): {level: distance}}``, angstrom, symmetric in the pair. Keys may
        also be strings ``"Pb-I"``; the reference run-file list
        ``[{"atom1": "Pb", "atom2": "I", "shell_cutoffs": {"0": 3.36}}]`` is accepted too.
        A distance of 0 means "no bond". Stored canonically: pair ordered node, linker,
        shell then alphabetically, value a ``{level: distance}`` dict.
    default_cutoff : angstrom or None. Used for every pair of role elements (at any level)
        that has no entry at that level, as in ref section 1.4 (note: that includes
        node-node and linker-linker pairs at level 0, which then bond).
    shell_levels : shell levels > 0 to grow around node atoms (ref section 2.3 step 5).
    shared_shells : let a shell atom found at a level > 0 join several clusters.
    shells_in_label : count shell atoms in the label (and so in the cluster size).
    pbc : use the frame's periodic box (minimum image). A frame without a box is then an
        error; set ``pbc=False`` for open boundaries.
    shell_molecules : for frames with residues (PDB), attach whole shell molecules (every
        non-core atom of the residue of an attached shell atom).

    There are no chemistry defaults: ``node`` and ``cutoffs`` (or ``default_cutoff``) are
    required, e.g. ``ClusterRules(node=["Pb"], linker=["I"], shell=["O"],
    cutoffs={("Pb", "I"): 3.36, ("Pb", "O"): 3.36})``.
    """

    node: Any = None
    linker: Any = ()
    shell: Any = ()
    cutoffs: Any = None
    default_cutoff: float | None = None
    shell_levels: tuple = ()
    shared_shells: bool = False
    shells_in_label: bool = False
    pbc: bool = True
    shell_molecules: bool = False

    # {element: index of its first role in ROLES}, set by __post_init__
    _role_rank: dict = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.node is None or (self.cutoffs is None and self.default_cutoff is None):
            missing = [n for n, v in (("node", self.node), ("cutoffs", self.cutoffs)) if v is None]
            raise ValueError(f"ClusterRules needs {' and '.join(missing)}: there is no default chemistry; give e.g. "
                             "ClusterRules(node=['Pb'], linker=['I'], shell=['O'], cutoffs={('Pb', 'I'): 3.36})")
        node = _role_list(self.node, "node")
        linker = _role_list(self.linker, "linker")
        shell = _role_list(self.shell, "shell")
        role_rank = _check_roles(node, linker, shell)
        for flag in ("shared_shells", "shells_in_label", "pbc", "shell_molecules"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise ValueError(f"{flag} must be True or False, got {getattr(self, flag)!r}")
            object.__setattr__(self, flag, bool(getattr(self, flag)))
        default = None if self.default_cutoff is None else _distance(self.default_cutoff, "default_cutoff")
        if default == 0.0:
            default = None
        levels = _shell_levels(self.shell_levels)
        canon = _canonical_cutoffs(self.cutoffs, role_rank, (node, linker, shell))
        _check_levels(canon, levels, default, node, shell)
        ordered = {k: dict(sorted(canon[k].items()))
                   for k in sorted(canon, key=lambda p: (role_rank[p[0]], p[0], role_rank[p[1]], p[1]))}
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "linker", linker)
        object.__setattr__(self, "shell", shell)
        object.__setattr__(self, "cutoffs", ordered)
        object.__setattr__(self, "default_cutoff", default)
        object.__setattr__(self, "shell_levels", tuple(levels))
        object.__setattr__(self, "_role_rank", role_rank)

    def __hash__(self):
        return hash(repr(self.to_dict()))

    # ---- queries
    def cutoff(self, el_a: str, el_b: str, level: int = 0) -> float | None:
        """Cutoff (angstrom) for the pair at a shell level: the exact entry, else
        ``default_cutoff``, else None (no bond). Symmetric in the pair."""
        key = tuple(sorted((el_a, el_b), key=lambda e: (self._role_rank.get(e, 9), e)))
        value = self.cutoffs.get(key, {}).get(level)
        if value is None:
            value = self.default_cutoff
        return value if value else None

    def role_of(self, element: str) -> str | None:
        """'node', 'linker' or 'shell' of an element symbol (its first role), else None."""
        rank = self._role_rank.get(element)
        return None if rank is None else ROLES[rank]

    @property
    def atom_type_by_element(self) -> dict[str, str]:
        """{element: 'node' | 'linker' | 'shell'} (an element's first role), in label order."""
        return {el: ROLES[self._role_rank[el]] for el in self.label_order()}

    def role_elements(self, role: str) -> tuple[str, ...]:
        """Distinct element symbols of a role ('node', 'linker' or 'shell'), in given order."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        out: list[str] = []
        for el, _ in getattr(self, role):
            if el not in out:
                out.append(el)
        return tuple(out)

    @property
    def node_elements(self) -> tuple[str, ...]:
        """Distinct node element symbols."""
        return self.role_elements("node")

    @property
    def linker_elements(self) -> tuple[str, ...]:
        """Distinct linker element symbols."""
        return self.role_elements("linker")

    @property
    def shell_elements(self) -> tuple[str, ...]:
        """Distinct shell element symbols."""
        return self.role_elements("shell")

    @property
    def pair_cutoffs(self) -> dict[tuple[str, str], float]:
        """One bond cutoff per listed element pair (angstrom): the level-0 value, else the
        smallest positive level value (the reference ML helper, ref section 1.4). Used by
        the geometry statistics and the builder; ``default_cutoff`` is not expanded here."""
        out = {}
        for pair, levmap in self.cutoffs.items():
            d = levmap.get(0) or min((v for v in levmap.values() if v > 0), default=None)
            if d:
                out[pair] = d
        return out

    @property
    def uses_residues(self) -> bool:
        """True when some role entry names a residue (needs PDB frames)."""
        return any(s[1] is not None for s in self.node + self.linker + self.shell)

    def label_order(self) -> tuple[str, ...]:
        """Element order of labels: nodes, linkers, shells, each alphabetical."""
        cached = self.__dict__.get("_label_order")
        if cached is not None:
            return cached
        out: list[str] = []
        for role in ROLES:
            for el in sorted(set(self.role_elements(role))):
                if el not in out:
                    out.append(el)
        self.__dict__["_label_order"] = tuple(out)
        return self.__dict__["_label_order"]

    # ---- (de)serialisation for the TOML run file and JSON metadata
    def to_dict(self) -> dict:
        """A JSON- and TOML-friendly dict (no None values); ``from_dict`` reads it back.

        ``{"node": ["Pb"], "linker": ["I"], "shell": ["O"], "cutoffs": {"Pb-I": 3.36, "Pb-O":
        {"0": 3.36, "1": 5.0}}, "shell_levels": [], "shared_shells": false, ...}``
        """
        cut = {}
        for (a, b), levmap in self.cutoffs.items():
            cut[f"{a}-{b}"] = levmap[0] if list(levmap) == [0] else {str(k): v for k, v in levmap.items()}
        out = {
            "node": [_spec_str(s) for s in self.node],
            "linker": [_spec_str(s) for s in self.linker],
            "shell": [_spec_str(s) for s in self.shell],
            "cutoffs": cut,
            "shell_levels": list(self.shell_levels),
            "shared_shells": self.shared_shells,
            "shells_in_label": self.shells_in_label,
            "pbc": self.pbc,
            "shell_molecules": self.shell_molecules,
        }
        if self.default_cutoff is not None:
            out["default_cutoff"] = self.default_cutoff
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> ClusterRules:
        """Rules from a run-file table or metadata dict (see :meth:`to_dict`).

        Also reads the reference forms (ref section 1.3/1.4): role entries
        ``{"element": "Pb", "residue": null}`` or ``["O", "DMF"]``, cutoffs as
        ``[{"atom1": "Pb", "atom2": "I", "shell_cutoffs": {"0": 3.36}}]``, and the key
        ``include_shell_atoms_in_stoichiometry`` for ``shells_in_label``.
        ``node`` and ``cutoffs`` are required (no default chemistry); a missing linker or
        shell list is empty.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"cluster rules must be a mapping (a TOML table / JSON object), got {type(data).__name__}")
        d = dict(data)
        aliases = {"include_shell_atoms_in_stoichiometry": "shells_in_label", "use_pbc": "pbc",
                   "pair_cutoffs": "cutoffs", "pair_cutoff_definitions": "cutoffs"}
        for old, new in aliases.items():
            if old in d:
                if new in d:
                    raise ValueError(f"cluster rules give both {old!r} and {new!r}")
                d[new] = d.pop(old)
        known = {"node", "linker", "shell", "cutoffs", "default_cutoff", "shell_levels", "shared_shells",
                 "shells_in_label", "pbc", "shell_molecules"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown cluster-rule keys {sorted(unknown)}; expected some of {sorted(known)}")
        return cls(**d)


def as_rules(rules: Any, *, mappings: bool = False) -> ClusterRules:
    """``rules`` when it is a :class:`ClusterRules`; with ``mappings=True`` a run-file / JSON
    mapping is read by :meth:`ClusterRules.from_dict`. ValueError for None or anything else."""
    if isinstance(rules, ClusterRules):
        return rules
    if mappings and isinstance(rules, Mapping):
        return ClusterRules.from_dict(rules)
    raise ValueError("rules must be a ClusterRules (node, linker, shell elements and pair cutoffs)"
                     f"{' or a mapping for ClusterRules.from_dict' if mappings else ''}, got {type(rules).__name__}")
