"""Periodic simulation cells (orthorhombic and triclinic)."""
from __future__ import annotations

import numpy as np

from .. import _core


class Box:
    """A periodic cell.

    The canonical form is ``matrix``: a (3, 3) float64 array whose rows are the
    lattice vectors a, b, c in angstrom. Build one with ``Box(lengths)`` (orthorhombic),
    ``Box.from_matrix(m)`` or ``Box.from_parameters(a, b, c, alpha, beta, gamma)``
    (angles in degrees, a along x, b in the xy plane).
    """

    __slots__ = ("_matrix",)

    def __init__(self, lengths):
        try:
            arr = np.asarray(lengths, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"Box(lengths) needs 3 edge lengths in angstrom, got {lengths!r}") from None
        if arr.shape != (3,):
            raise ValueError(f"Box(lengths) needs 3 edge lengths in angstrom, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"box lengths must be finite and positive (angstrom), got {arr.tolist()}")
        self._set(np.diag(arr))

    def _set(self, matrix: np.ndarray) -> None:
        m = np.ascontiguousarray(matrix, dtype=np.float64)
        if m.shape != (3, 3):
            raise ValueError(f"box matrix must have shape (3, 3), got {m.shape}")
        if not np.all(np.isfinite(m)):
            raise ValueError(f"box matrix must be finite, got {m.tolist()}")
        lengths = np.linalg.norm(m, axis=1)
        det = float(np.linalg.det(m))
        if np.any(lengths <= 0) or abs(det) <= 1e-10 * float(np.max(lengths)) ** 3:
            raise ValueError(f"box is singular (volume {det:g} A^3): rows a, b, c = {m.tolist()}")
        m.setflags(write=False)
        self._matrix = m

    @classmethod
    def from_matrix(cls, matrix) -> Box:
        """Triclinic box from a (3, 3) matrix whose rows are the lattice vectors a, b, c."""
        try:
            m = np.asarray(matrix, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"box matrix must be a numeric (3, 3) array, got {matrix!r}") from None
        box = cls.__new__(cls)
        box._set(m)
        return box

    @classmethod
    def from_parameters(cls, a, b, c, alpha=90.0, beta=90.0, gamma=90.0) -> Box:
        """Box from edge lengths (angstrom) and angles (degrees): alpha = angle(b, c), etc."""
        try:
            vals = np.array([a, b, c, alpha, beta, gamma], dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"box parameters must be numbers, got {(a, b, c, alpha, beta, gamma)!r}") from None
        if not np.all(np.isfinite(vals)) or np.any(vals[:3] <= 0) or np.any(vals[3:] <= 0) or np.any(vals[3:] >= 180):
            raise ValueError(f"box parameters must be positive lengths and angles in (0, 180) degrees, got {vals.tolist()}")
        al, be, ga = np.radians(vals[3:])
        ax = np.array([a, 0.0, 0.0])
        bx = np.array([b * np.cos(ga), b * np.sin(ga), 0.0])
        cx = c * np.cos(be)
        cy = c * (np.cos(al) - np.cos(be) * np.cos(ga)) / np.sin(ga)
        cz2 = c * c - cx * cx - cy * cy
        if cz2 <= 0:
            raise ValueError(f"box angles {vals[3:].tolist()} do not describe a valid cell")
        m = np.array([ax, bx, [cx, cy, np.sqrt(cz2)]])
        m[np.abs(m) < 1e-12 * max(a, b, c)] = 0.0
        return cls.from_matrix(m)

    @classmethod
    def coerce(cls, box) -> Box | None:
        """Accept None, a Box, 3 lengths, 6 parameters (lengths + angles) or a (3, 3) matrix."""
        if box is None or isinstance(box, Box):
            return box
        try:
            arr = np.asarray(box, dtype=np.float64)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.dtype != np.float64:
            raise ValueError(
                "box must be None, a Box, 3 lengths, 6 parameters (a, b, c, alpha, beta, gamma) "
                f"or a (3, 3) matrix of row vectors; got {box!r}"
            )
        if arr.shape == (3,):
            return cls(arr)
        if arr.shape == (6,):
            return cls.from_parameters(*arr)
        if arr.shape == (3, 3):
            return cls.from_matrix(arr)
        raise ValueError(
            "box must be None, a Box, 3 lengths, 6 parameters (a, b, c, alpha, beta, gamma) "
            f"or a (3, 3) matrix of row vectors; got shape {arr.shape}"
        )

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) float64, rows are the lattice vectors a, b, c (angstrom)."""
        return self._matrix

    @property
    def lengths(self) -> np.ndarray:
        """Edge lengths |a|, |b|, |c| (angstrom)."""
        return np.linalg.norm(self._matrix, axis=1)

    @property
    def angles(self) -> np.ndarray:
        """alpha = angle(b, c), beta = angle(a, c), gamma = angle(a, b), degrees."""
        a, b, c = self._matrix
        def ang(u, v):
            return float(np.degrees(np.arccos(np.clip(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v), -1, 1))))
        return np.array([ang(b, c), ang(a, c), ang(a, b)])

    @property
    def volume(self) -> float:
        """Cell volume (cubic angstrom)."""
        return float(abs(np.linalg.det(self._matrix)))

    @property
    def heights(self) -> np.ndarray:
        """Perpendicular distances between opposite faces (angstrom)."""
        inv = np.linalg.inv(self._matrix)
        return 1.0 / np.linalg.norm(inv, axis=0)

    @property
    def is_orthorhombic(self) -> bool:
        m = self._matrix
        return bool(np.all(m[~np.eye(3, dtype=bool)] == 0.0))

    def to_fractional(self, positions) -> np.ndarray:
        """Fractional coordinates s (n, 3) with positions = s @ matrix."""
        from .._validate import as_positions

        return as_positions(positions) @ np.linalg.inv(self._matrix)

    def wrap(self, positions) -> np.ndarray:
        """Positions (n, 3) moved into the primary cell (fractional coordinates in [0, 1))."""
        from .._validate import as_positions

        pos = as_positions(positions)
        s = pos @ np.linalg.inv(self._matrix)
        s -= np.floor(s)
        s[s >= 1.0] = 0.0
        return s @ self._matrix

    def minimum_image(self, displacements) -> np.ndarray:
        """Shortest periodic image of each displacement vector (n, 3), exact for triclinic cells."""
        from .._validate import as_positions

        d = as_positions(displacements, "displacements")
        return _core.minimum_image(d, self._matrix)

    def __eq__(self, other) -> bool:
        return isinstance(other, Box) and np.array_equal(self._matrix, other._matrix)

    def __hash__(self) -> int:
        return hash(self._matrix.tobytes())

    def __repr__(self) -> str:
        if self.is_orthorhombic:
            return f"Box({np.diag(self._matrix).tolist()})"
        return f"Box.from_matrix({self._matrix.tolist()})"
