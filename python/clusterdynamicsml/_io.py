"""The package's one persistence toolbox: atomic writes, JSON of numpy values, CSV tables.

Every file the package writes goes through :func:`atomic_path` (or its wrappers): the data is
written to a hidden temporary file in the target folder and moved into place with
``os.replace``, so a reader never sees a half-written file and an interrupted run leaves the
previous version (or nothing) behind.

* :func:`atomic_write` - text or bytes to a path.
* :func:`atomic_path` - a context manager yielding a temporary path for writers that want a
  path (``numpy.savetxt``, ``Presentation.save``, ``Figure.savefig``); the suffix is kept so
  writers that infer the format from it still work.
* :func:`to_jsonable` / :func:`write_json` / :func:`read_json` - numpy scalars and arrays,
  paths, dataclasses and objects with ``to_dict`` become plain JSON; non-finite floats become
  ``null`` (JSON has no NaN).
* :func:`write_csv` / :func:`csv_text` - dict rows (or sequences with ``columns``) to CSV,
  None as an empty cell.
* :func:`to_pandas` - rows to a ``pandas.DataFrame`` (pandas is optional).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_path", "atomic_write", "to_jsonable", "dumps_json", "write_json", "read_json",
           "csv_text", "write_csv", "to_pandas"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    The temporary name is unique (``.<stem>.<random>.tmp<suffix>``, so concurrent writers of the
    same target never share it) and keeps the suffix for writers that infer the format from
    it. The parent folder is created; the file gets mode 0644. On an exception the temporary
    file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: str | os.PathLike, data: str | bytes | Iterable[str], *, encoding: str = "utf-8") -> Path:
    """Write text (``encoding``, newlines untranslated), bytes, or an iterable of text pieces
    (written one by one, so a large file never has to be one string) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            with open(tmp, "w", encoding=encoding, newline="") as fh:
                if isinstance(data, str):
                    fh.write(data)
                else:
                    fh.writelines(data)
    return Path(path)


def to_jsonable(obj: Any, *, nan_as_null: bool = True, fallback: Callable[[Any], Any] | None = None) -> Any:
    """Plain JSON types of ``obj``: dict keys become strings; numpy scalars/arrays, tuples and
    paths become numbers/lists/strings; dataclasses and objects with ``to_dict()`` are
    converted through their dict. NaN and infinities become None unless ``nan_as_null=False``.
    Any other object is returned as is, or ``fallback(obj)`` when given (e.g. ``repr``)."""
    def conv(o: Any) -> Any:
        return to_jsonable(o, nan_as_null=nan_as_null, fallback=fallback)

    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return None if nan_as_null and not math.isfinite(obj) else obj
    if isinstance(obj, Mapping):
        return {str(k): conv(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [conv(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, np.ndarray):
        return conv(obj.tolist())
    if isinstance(obj, np.generic):
        return conv(obj.item())
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict) and not isinstance(obj, type):
        return conv(to_dict())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return conv(dataclasses.asdict(obj))
    return fallback(obj) if fallback is not None else obj


def dumps_json(obj: Any, *, indent: int | None = 1, sort_keys: bool = False) -> str:
    """JSON text of ``to_jsonable(obj)`` (strict: no NaN in the output), newline-terminated."""
    return json.dumps(to_jsonable(obj), indent=indent, sort_keys=sort_keys, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 1, sort_keys: bool = False) -> Path:
    """Write ``obj`` as JSON (see :func:`dumps_json`) atomically; returns the path."""
    atomic_write(path, dumps_json(obj, indent=indent, sort_keys=sort_keys))
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """Parsed JSON of a file; ValueError naming the file when it is not valid JSON."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: not valid JSON ({exc})") from None


def _columns_of(rows: Sequence[Mapping]) -> list[str]:
    cols: list[str] = []
    seen: set[str] = set()
    for r in rows:
        for k in r:
            if k not in seen:
                seen.add(k)
                cols.append(k)
    return cols


def csv_text(rows: Iterable[Mapping | Sequence], columns: Sequence[str] | None = None, *,
             float_format: str | None = None, lineterminator: str = "\n") -> str:
    """CSV text of ``rows``.

    rows : dicts (missing keys and None give empty cells) or sequences in ``columns`` order.
    columns : header; default the union of the dict keys in first-seen order.
    float_format : e.g. ``"%.12g"`` for floats (non-finite floats then give empty cells);
        default ``str`` (the shortest repr that round-trips).
    """
    rows = list(rows)
    if columns is None:
        if rows and not all(isinstance(r, Mapping) for r in rows):
            raise ValueError("csv_text: rows that are not dicts need columns=[...]")
        columns = _columns_of(rows)  # type: ignore[arg-type]

    def cell(v):
        if v is None:
            return ""
        if float_format is not None and isinstance(v, (float, np.floating)):
            return float_format % v if math.isfinite(v) else ""
        return v

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=lineterminator)
    w.writerow(columns)
    for r in rows:
        values = [r.get(c) for c in columns] if isinstance(r, Mapping) else list(r)
        w.writerow([cell(v) for v in values])
    return buf.getvalue()


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping | Sequence], columns: Sequence[str] | None = None, *,
              float_format: str | None = None, lineterminator: str = "\n") -> Path:
    """Write :func:`csv_text` of ``rows`` to ``path`` atomically; returns the path."""
    return atomic_write(path, csv_text(rows, columns, float_format=float_format, lineterminator=lineterminator))


def to_pandas(rows: Iterable[Mapping], columns: Sequence[str] | None = None):
    """A ``pandas.DataFrame`` of dict rows. pandas is optional: ImportError says how to get it."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError("to_pandas() needs pandas, which is not installed: "
                          "pip install pandas (or pip install 'clusterdynamicsml[pandas]')") from None
    rows = [dict(r) for r in rows]
    return pd.DataFrame(rows, columns=list(columns) if columns is not None else None)
