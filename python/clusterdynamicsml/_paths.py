"""File names made from names read from input files and run files, in one place.

Run names, labels, atom and residue names come from files the user (or someone else) wrote.
Before any of them becomes part of a path it goes through :func:`safe_name`, which keeps a
plain name as it is and turns anything else into a short, portable file-name part: no path
separators, no ``..``, no NUL or control characters, ASCII only, at most ``max_len``
characters. The original name is kept inside the files (run.toml, datasets, comments); only
the path uses the safe form.

:func:`check_run_name` rejects run names that look like paths (``[run] name`` is a name,
not a folder), and :func:`inside` checks that a path stays inside its folder.
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

__all__ = ["safe_name", "check_run_name", "inside", "MAX_NAME_LENGTH"]

#: longest file-name part made from a name (file systems allow 255 bytes per name; the rest
#: is left for the timestamp, suffixes and ``.partial``)
MAX_NAME_LENGTH = 80

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(text, *, default: str = "run", max_len: int = MAX_NAME_LENGTH) -> str:
    """A file-name part made from ``text``: unchanged when ``text`` is already plain
    (letters, digits, ``. _ + -``, not starting with a dot, at most ``max_len`` characters);
    otherwise every other character run becomes ``_``, leading dots and underscores are
    dropped, the result is shortened, and an 8-character hash of the original is appended
    so that different names stay different (``"../x"`` -> ``"x_1b2c..."``). Never empty,
    never ``.`` or ``..``, never contains a path separator."""
    raw = "" if text is None else str(text)
    clean = _UNSAFE.sub("_", raw).strip("._")
    clean = re.sub(r"\.{2,}", ".", clean)
    if clean == raw and 0 < len(clean) <= max_len:
        return clean
    tag = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    if not raw:
        return default
    return f"{(clean or default)[:max_len - 9].rstrip('._') or default}_{tag}"


def check_run_name(name) -> str | None:
    """Why ``name`` cannot be a run name (a message), or None when it can. A run name is a
    name, not a path: no ``/`` or ``\\``, no ``..``, no NUL or control characters, not empty."""
    if not isinstance(name, str):
        return f"expected a string, got {type(name).__name__}"
    if not name.strip():
        return "must not be empty"
    if "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        return (f"{name!r} holds a path separator; the run name is a name, not a folder "
                "(set [run] output_dir for the folder)")
    if ".." in name:
        return f"{name!r} holds '..'; the run name is a name, not a path"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return f"{name!r} holds control characters (NUL, newline, ...)"
    return None


def inside(folder, path) -> Path:
    """``path`` resolved, after checking that it lies inside ``folder`` (ValueError otherwise)."""
    root = Path(folder).resolve()
    p = Path(path).resolve()
    if p != root and root not in p.parents:
        raise ValueError(f"refusing to write {p}: outside the output folder {root}")
    return p
