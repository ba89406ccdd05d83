"""The dynamics lifetime table (ref §3.7) and the training rows: each library label joined with
its lifetime row (ref §4.0 step 3, §4.2). A library label never seen in the frames (ref V3)
trains with zero dynamics and is reported as a warning."""
from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..dynamics.analyze import LIFETIME_COLUMNS
from .records import TrainingRow

if TYPE_CHECKING:
    from .read import StructureLibrary

#: The lifetime-table columns (ref §3.7), the same tuple as the dynamics stage writes.
LIFETIME_FIELDS = LIFETIME_COLUMNS
_INT_LIFETIME_FIELDS = {
    "cluster_size",
    "completed_lifetime_count",
    "window_truncated_lifetime_count",
    "total_observations",
    "occupied_frames",
    "association_events",
    "dissociation_events",
}
_OPTIONAL_LIFETIME_FIELDS = {"mean_lifetime_fs", "std_lifetime_fs"}


def never_seen_message(label: str) -> str:
    """The warning for a library label without a row in the lifetime table (ref V3)."""
    return (
        f"library label {label} never appears in the frames (no row in the dynamics lifetime table); "
        "it trains with zero dynamics"
    )


def _row_to_dict(row) -> dict:
    if isinstance(row, Mapping):
        return dict(row)
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return dataclasses.asdict(row)
    if hasattr(row, "to_dict"):
        return dict(row.to_dict())
    if hasattr(row, "_asdict"):
        return dict(row._asdict())
    raise ValueError(f"lifetime rows must be mappings or dataclasses, got {type(row).__name__}")


def _coerce_lifetime_value(key, value):
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None if key in _OPTIONAL_LIFETIME_FIELDS else 0
    if key == "label":
        return str(value)
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"lifetime column {key!r} must be numeric, got {value!r}") from None
    if not math.isfinite(num):
        return None if key in _OPTIONAL_LIFETIME_FIELDS else 0.0
    return int(round(num)) if key in _INT_LIFETIME_FIELDS else num


def load_lifetime_table(source) -> dict:
    """Normalise a dynamics lifetime table to ``{label: row dict}`` with the ref §3.7 columns.

    source : a ``DynamicsResult`` (its ``lifetime_by_label``), a list of rows (dicts or
        dataclasses), a ``{label: row}`` mapping, or the path of a ``*_lifetime.csv``.
    Missing numeric columns are 0; missing mean/std lifetimes are None.
    """
    if source is None:
        raise ValueError("lifetime table expected (DynamicsResult, rows, or *_lifetime.csv path), got None")
    if hasattr(source, "lifetime_by_label"):
        source = source.lifetime_by_label
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"lifetime CSV file expected, got {str(source)!r} (no such file)")
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        if rows and "label" not in rows[0]:
            raise ValueError(f"{path}: lifetime CSV needs a 'label' column, got columns {list(rows[0])}")
    elif isinstance(source, Mapping):
        rows = []
        for key, value in source.items():
            d = _row_to_dict(value)
            d.setdefault("label", key)
            rows.append(d)
    else:
        try:
            rows = [_row_to_dict(r) for r in source]
        except TypeError:
            raise ValueError(
                f"lifetime table expected (DynamicsResult, rows, or CSV path), got {type(source).__name__}"
            ) from None
    table = {}
    for r in rows:
        if "label" not in r:
            raise ValueError(f"every lifetime row needs a 'label', got keys {sorted(r)}")
        clean = {k: _coerce_lifetime_value(k, r.get(k)) for k in LIFETIME_FIELDS}
        table[clean["label"]] = clean
    return table


def build_training_rows(library: StructureLibrary, lifetime_table) -> tuple:
    """Join each library label with the dynamics row of the same label (ref §4.0 step 3).

    Returns ``(rows, warnings)``. A library label missing from the lifetime table keeps an
    all-zero dynamics row (it still trains, with weight >= 1) and produces a warning (ref V3).
    """
    table = load_lifetime_table(lifetime_table)
    rows, warnings = [], []
    for obs in library.observations:
        dyn = table.get(obs.label)
        row = TrainingRow(**obs.label_fields(), in_dynamics=dyn is not None)
        if dyn is None:
            warnings.append(never_seen_message(obs.label))
        else:
            for key in LIFETIME_FIELDS:
                if key in ("label", "cluster_size"):
                    continue
                setattr(row, key, dyn[key])
        rows.append(row)
    return rows, warnings
