"""CP2K ``.ener`` files: temperature, potential and kinetic energy for the dynamics overlay.

A CP2K ``.ener`` file (ref §1.9) is whitespace-separated text; lines starting with ``#``
are comments. Columns (0-based):

====  =============================  ===================
col   quantity                       unit
====  =============================  ===================
0     MD step                        (integer)
1     time                           femtoseconds
2     kinetic energy                 hartree (a.u.)
3     temperature                    kelvin
4     potential energy               hartree (a.u.)
5+    conserved quantity, used time  ignored
====  =============================  ===================

At least five numeric columns are required. Unlike the reference reader (``np.loadtxt``,
whose errors were swallowed by the ML path, ref V7), every problem raises
:class:`~clusterdynamicsml.io.frames.FileFormatError` (a ``ValueError``) naming the file and
the 1-based line.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.frames import FileFormatError

#: Quantities that can be drawn under the heatmap, with their axis labels.
ENERGY_QUANTITIES = {
    "temperature": "Temperature (K)",
    "potential": "Potential energy (Ha)",
    "kinetic": "Kinetic energy (Ha)",
}


@dataclass(eq=False)
class EnergyData:
    """The columns of a CP2K ``.ener`` file.

    filepath : the file that was read (str).
    step : int64 (n,), MD step numbers.
    time_fs : float64 (n,), femtoseconds, non-decreasing.
    kinetic : float64 (n,), hartree.
    temperature : float64 (n,), kelvin.
    potential : float64 (n,), hartree.
    """

    filepath: str
    step: np.ndarray
    time_fs: np.ndarray
    kinetic: np.ndarray
    temperature: np.ndarray
    potential: np.ndarray

    def __len__(self) -> int:
        return int(self.time_fs.shape[0])

    def __eq__(self, other) -> bool:
        if not isinstance(other, EnergyData):
            return NotImplemented
        return self.filepath == other.filepath and all(
            np.array_equal(getattr(self, name), getattr(other, name))
            for name in ("step", "time_fs", "kinetic", "temperature", "potential")
        )

    def series(self, quantity: str, start_fs: float | None = None, stop_fs: float | None = None):
        """Return ``(time_fs, values)`` of one quantity, limited to ``start_fs <= t <= stop_fs``.

        quantity : "temperature" (K), "potential" (Ha) or "kinetic" (Ha).
        """
        if quantity not in ENERGY_QUANTITIES:
            raise ValueError(
                f"energy quantity must be one of {sorted(ENERGY_QUANTITIES)}, got {quantity!r}"
            )
        values = getattr(self, quantity)
        keep = np.ones(len(self), dtype=bool)
        if start_fs is not None:
            keep &= self.time_fs >= start_fs
        if stop_fs is not None:
            keep &= self.time_fs <= stop_fs
        return self.time_fs[keep], values[keep]

    def to_dict(self) -> dict:
        """JSON-ready dict with the keys of the reference dataset (``energy_data``)."""
        return {
            "filepath": self.filepath,
            "step": [int(v) for v in self.step],
            "time_fs": [float(v) for v in self.time_fs],
            "kinetic": [float(v) for v in self.kinetic],
            "temperature": [float(v) for v in self.temperature],
            "potential": [float(v) for v in self.potential],
        }

    @classmethod
    def from_dict(cls, data: dict) -> EnergyData:
        """Inverse of :meth:`to_dict`; raises ValueError on missing keys or unequal lengths."""
        keys = ("filepath", "step", "time_fs", "kinetic", "temperature", "potential")
        missing = [k for k in keys if k not in data]
        if missing:
            raise ValueError(f"energy_data is missing the keys {missing}")
        arrays = {k: np.asarray(data[k], dtype=np.float64) for k in keys[2:]}
        step = np.asarray(data["step"], dtype=np.int64)
        lengths = {step.shape[0], *(a.shape[0] for a in arrays.values())}
        if len(lengths) != 1:
            raise ValueError(f"energy_data columns must have equal lengths, got {sorted(lengths)}")
        return cls(filepath=str(data["filepath"]), step=step, **arrays)


def read_cp2k_ener(path: str | os.PathLike) -> EnergyData:
    """Read a CP2K ``.ener`` file (see the module docstring for columns and units).

    Raises
    ------
    FileNotFoundError
        when the file does not exist.
    FileFormatError (ValueError)
        naming the file and line: fewer than 5 columns, a non-numeric or non-finite value,
        a non-integral step, time going backwards, or no data lines at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CP2K .ener file not found: {path}")
    rows: list[tuple[int, float, float, float, float]] = []
    last_time = -math.inf
    with open(path, encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            fields = text.split()
            if len(fields) < 5:
                raise FileFormatError(
                    path, lineno,
                    f"expected at least 5 numeric columns (step, time_fs, kinetic, temperature, "
                    f"potential), got {len(fields)}: {text!r}",
                )
            try:
                values = [float(f) for f in fields[:5]]
            except ValueError:
                raise FileFormatError(path, lineno, f"expected numbers in the first 5 columns, got {text!r}") from None
            if not all(math.isfinite(v) for v in values):
                raise FileFormatError(path, lineno, f"non-finite value in {text!r}")
            step = values[0]
            if step != int(step) or abs(step) >= 2**63:
                raise FileFormatError(path, lineno, f"the step column must be an integer (< 2^63), got {fields[0]!r}")
            if values[1] < last_time:
                raise FileFormatError(
                    path, lineno,
                    f"time goes backwards ({values[1]} fs after {last_time} fs); "
                    f"a restarted run appended to the file?",
                )
            last_time = values[1]
            rows.append((int(step), values[1], values[2], values[3], values[4]))
    if not rows:
        raise FileFormatError(path, None, "no data lines (expected step, time_fs, kinetic, temperature, potential)")
    table = np.array([r[1:] for r in rows], dtype=np.float64)
    return EnergyData(
        filepath=str(path),
        step=np.array([r[0] for r in rows], dtype=np.int64),
        time_fs=np.ascontiguousarray(table[:, 0]),
        kinetic=np.ascontiguousarray(table[:, 1]),
        temperature=np.ascontiguousarray(table[:, 2]),
        potential=np.ascontiguousarray(table[:, 3]),
    )
