"""The value checks of the run file (types, ranges, pair cutoffs, scheduler addresses) and
the TOML writers; :mod:`clusterdynamicsml.pipeline.config` builds the sections from them."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------------------------------
# field specification helpers
# ---------------------------------------------------------------------------------------
_KINDS = {"str", "int", "float", "bool", "path", "choice", "str_list", "int_list", "float_list",
          "path_list", "cutoffs", "path_table"}


def _f(default, kind: str, help: str, *, optional: bool = False, choices: tuple = (),
       minimum: float | None = None, exclusive_minimum: bool = False, example: Any = None,
       lengths: tuple[int, ...] = (), maximum: float | None = None):
    assert kind in _KINDS, kind
    meta = {"kind": kind, "help": help, "optional": optional, "choices": tuple(choices),
            "minimum": minimum, "exclusive_minimum": exclusive_minimum, "example": example,
            "lengths": tuple(lengths), "maximum": maximum}
    return field(default=default, metadata=meta)


def _describe(value) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


_TYPE_WORDS = {"str": "a string", "path": "a path (string)", "int": "an integer", "float": "a number",
               "bool": "true or false", "choice": "one of", "str_list": "a list of strings",
               "int_list": "a list of integers", "float_list": "a list of numbers",
               "path_list": "a list of paths (strings)", "cutoffs": "a table of pair cutoffs",
               "path_table": "a table of element = path"}


@dataclass(frozen=True)
class PairCutoff:
    """A pair cutoff: elements ``a``, ``b`` (symmetric), shell ``level`` (0 = core), angstrom."""

    a: str
    b: str
    level: int
    distance: float


def _nest_cutoffs(cutoffs) -> dict[tuple[str, str], dict[int, float]]:
    """Pair cutoffs grouped per pair in their order: ``{(a, b): {level: angstrom}}``."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for c in cutoffs:
        out.setdefault((c.a, c.b), {})[c.level] = c.distance
    return out


_ELEMENT_RE = re.compile(r"^[A-Z][a-z]?$")
_ATOM_SPEC_RE = re.compile(r"^([A-Z][a-z]?)(?::([A-Za-z0-9_+-]+))?$")


def _check_scalar(kind: str, value, meta, fail):
    if kind in ("str", "path"):
        if not isinstance(value, str):
            fail(f"expected {_TYPE_WORDS[kind]}, got {_describe(value)}")
        return value
    if kind == "choice":
        if not isinstance(value, str) or value not in meta["choices"]:
            fail(f"expected one of {', '.join(repr(c) for c in meta['choices'])}, got {_describe(value)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            fail(f"expected true or false, got {_describe(value)}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                fail(f"expected an integer, got {_describe(value)}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"expected a number, got {_describe(value)}")
        value = float(value)
        if not math.isfinite(value):
            fail(f"expected a finite number, got {value!r}")
    return _check_bounds(value, meta, fail)


def _check_bounds(value, meta, fail):
    """``value`` against meta's minimum (exclusive or not) and maximum."""
    minimum = meta["minimum"]
    if minimum is not None:
        if meta["exclusive_minimum"] and not value > minimum:
            fail(f"must be > {minimum:g}, got {value!r}")
        if not meta["exclusive_minimum"] and value < minimum:
            fail(f"must be >= {minimum:g}, got {value!r}")
    maximum = meta.get("maximum")
    if maximum is not None and value > maximum:
        fail(f"must be <= {maximum:g}, got {value!r}")
    return value


def _check_value(kind: str, value, meta, fail):
    if kind.endswith("_list"):
        item_kind = kind[: -len("_list")]
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            fail(f"expected {_TYPE_WORDS[kind]}, got {_describe(value)}")
        out = []
        for k, item in enumerate(value):
            def item_fail(msg, k=k):
                fail(f"item {k + 1}: {msg}")
            out.append(_check_scalar(item_kind, item, {**meta, "choices": meta["choices"]}, item_fail))
        if meta["lengths"] and len(out) not in meta["lengths"]:
            allowed = " or ".join(str(n) for n in meta["lengths"])
            fail(f"expected {allowed} values, got {len(out)}")
        return tuple(out)
    if kind == "cutoffs":
        return _check_cutoffs(value, fail)
    if kind == "path_table":
        return _check_path_table(value, fail)
    return _check_scalar(kind, value, meta, fail)


def _check_path_table(value, fail) -> tuple[tuple[str, str], ...]:
    """TOML form: {O = "dmf.pdb"} (element -> path); stored as sorted (element, path) pairs."""
    if isinstance(value, (tuple, list)) and all(isinstance(v, (tuple, list)) and len(v) == 2 for v in value):
        items = [tuple(v) for v in value]
    elif isinstance(value, dict):
        items = list(value.items())
    else:
        fail(f"expected a table such as {{O = \"dmf.pdb\"}}, got {_describe(value)}")
    out = {}
    for el, path in items:
        if not isinstance(el, str) or not _ELEMENT_RE.match(el):
            fail(f"{el!r} is not an element symbol (such as \"O\")")
        if not isinstance(path, str) or not path:
            fail(f"{el}: expected a path (string), got {_describe(path)}")
        out[el] = path
    return tuple(sorted(out.items()))


def _split_pair(key: str, fail):
    from ..chem import split_pair

    try:
        parts = split_pair(key)
    except ValueError:
        parts = ("", "")
    if not all(_ELEMENT_RE.match(p) for p in parts):
        fail(f"pair {key!r}: expected two element symbols such as \"Pb-I\"")
    return parts[0], parts[1]


def _check_cutoffs(value, fail) -> tuple[PairCutoff, ...]:
    """TOML form: {"Pb-I" = 3.36, "Pb-O" = {0 = 3.36, 1 = 5.0}} (level -> angstrom)."""
    if isinstance(value, (tuple, list)) and all(isinstance(v, PairCutoff) for v in value):
        items = [(c.a, c.b, c.level, c.distance) for c in value]
    elif isinstance(value, dict):
        items = []
        for key, spec in value.items():
            a, b = _split_pair(str(key), fail)
            levels: list[tuple[Any, Any]] = list(spec.items()) if isinstance(spec, dict) else [(0, spec)]
            for level, dist in levels:
                try:
                    lev = int(level)
                except (TypeError, ValueError):
                    fail(f"pair {key!r}: shell level must be an integer, got {level!r}")
                if lev < 0:
                    fail(f"pair {key!r}: shell level must be >= 0, got {lev}")
                if isinstance(dist, bool) or not isinstance(dist, (int, float)):
                    fail(f"pair {key!r}: expected a distance in angstrom, got {_describe(dist)}")
                items.append((a, b, lev, float(dist)))
    else:
        fail(f"expected a table such as {{\"Pb-I\" = 3.36}}, got {_describe(value)}")
    out: dict[tuple[Any, ...], tuple[str, str, float]] = {}
    for a, b, lev, dist in items:
        if not math.isfinite(dist) or dist <= 0:
            fail(f"pair {a}-{b}: cutoff must be a positive distance in angstrom, got {dist!r}")
        key = (*sorted((a, b)), lev)
        if key in out and out[key][2] != dist:
            fail(f"pair {a}-{b} level {lev} given twice with different distances")
        out.setdefault(key, (a, b, dist))
    return tuple(PairCutoff(a, b, key[2], d) for key, (a, b, d) in sorted(out.items()))


_SCHEDULER_PROTOCOLS = ("tcp", "tls", "inproc", "ucx", "ws", "wss")


def scheduler_problem(address) -> str | None:
    """Why ``address`` is not a Dask scheduler address (a message), or None. Accepted: "local"
    (a LocalCluster on this machine) or PROTOCOL://HOST:PORT with PROTOCOL one of tcp, tls,
    inproc, ucx, ws, wss and PORT in 1..65535. A scheduler runs the code it is sent: connect only
    to schedulers you trust."""
    if not isinstance(address, str):
        return f"expected an address such as \"tcp://127.0.0.1:8786\" or \"local\", got {address!r}"
    if address == "local" or (address.startswith("inproc://") and len(address) > 9 and address.isprintable()):
        return None  # an in-process scheduler of this Python process
    m = re.fullmatch(r"([a-z]+)://([^\s/:]+|\[[0-9a-fA-F:.]+\])(?::(\d{1,6}))?/?", address)
    if m is None:
        return f"{address!r} is not PROTOCOL://HOST:PORT (e.g. \"tcp://127.0.0.1:8786\") or \"local\""
    proto, _, port = m.groups()
    if proto not in _SCHEDULER_PROTOCOLS:
        return f"{address!r}: protocol {proto!r} is not one of {', '.join(_SCHEDULER_PROTOCOLS)}"
    if proto != "inproc" and port is None:
        return f"{address!r}: no port (e.g. {proto}://HOST:8786)"
    if port is not None and not 1 <= int(port) <= 65535:
        return f"{address!r}: port {port} is not in 1..65535"
    return None


def _toml_scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if ("." in text or "e" in text or "inf" in text or "nan" in text) else text + ".0"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot write {value!r} to TOML")


def _toml_value(value, kind: str) -> str:
    if kind == "cutoffs":
        parts = []
        for (a, b), levels in _nest_cutoffs(value).items():
            if list(levels) == [0]:
                parts.append(f'"{a}-{b}" = {_toml_scalar(levels[0])}')
            else:
                inner = ", ".join(f"{lev} = {_toml_scalar(d)}" for lev, d in sorted(levels.items()))
                parts.append(f'"{a}-{b}" = {{ {inner} }}')
        return "{ " + ", ".join(parts) + " }" if parts else "{}"
    if kind == "path_table":
        return "{ " + ", ".join(f"{el} = {_toml_scalar(p)}" for el, p in value) + " }" if value else "{}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_scalar(v) for v in value) + "]"
    return _toml_scalar(value)
