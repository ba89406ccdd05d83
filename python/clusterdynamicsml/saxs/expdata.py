"""Experimental SAXS/WAXS curves: loading (ref 1.8, with the checks it lacks) and stitching.

Files are plain text with whitespace, comma, semicolon or tab separated columns; ``#`` lines are
comments; header lines before the data (or a last '#' line with one name per column) are recognised (the first line whose first two tokens
are numbers starts the data). Columns are chosen by header names when present (q: a name
containing 'q' or 'scatteringvector'; I: 'intensity', 'i_', 'iq', 'int' or 'i'; sigma:
'error', 'err', 'sigma', 'uncert', 'e_'), otherwise columns 0, 1 and 2.

q must be in 1/angstrom (q = 4 pi sin(theta) / lambda). Units named in the header (``1/nm``,
``nm^-1``, ``1/A``, ``A^-1``, ``1/angstrom``) are honoured; without them a curve whose q
reaches beyond 6 (a range typical of nm^-1 data, where Waasmaier-Kirfel form factors and
cluster WAXS are not used) is rejected unless ``q_unit`` is given (better than ref V6,
which would silently be wrong by a factor of 10). The sigma column is kept and must be > 0.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..io.frames import FileFormatError

__all__ = ["SaxsData", "load_saxs_data", "stitch_saxs", "Q_MAX_ANGSTROM_HEURISTIC"]

Q_MAX_ANGSTROM_HEURISTIC = 6.0
_SPLIT = re.compile(r"[\s,;]+")
_NM = re.compile(r"(1\s*/\s*nm|nm\s*\^?\s*-\s*1|nm\u207b\u00b9|inverse\s+nanomet)", re.I)
_ANG = re.compile(r"(1\s*/\s*(a|\u00c5|ang)|(a|\u00c5)\s*\^?\s*-\s*1|\u00c5\u207b\u00b9|inverse\s+angstr|1/angstrom)", re.I)


@dataclass(frozen=True)
class SaxsData:
    """One experimental curve.

    q : float64 (n,), 1/angstrom, ascending. intensity : float64 (n,), the file's units.
    sigma : float64 (n,) > 0 (one standard deviation of the intensity) or None.
    source : file name(s). scale_factors : for stitched data, the factor applied to each input
    (in input order). segments : for stitched data, (q_lo, q_hi) kept from each input.
    """

    q: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray | None
    source: str = ""
    scale_factors: tuple = ()
    segments: tuple = ()
    notes: tuple = field(default=())

    def __len__(self) -> int:
        return int(self.q.size)

    def select(self, q_min: float | None = None, q_max: float | None = None) -> SaxsData:
        """The points with q_min <= q <= q_max (1/angstrom)."""
        lo = -np.inf if q_min is None else float(q_min)
        hi = np.inf if q_max is None else float(q_max)
        if not lo < hi:
            raise ValueError(f"empty q range [{q_min}, {q_max}]")
        m = (self.q >= lo) & (self.q <= hi)
        if not np.any(m):
            raise ValueError(f"no data points in q range [{q_min}, {q_max}] (data: {self.q[0]:.4g}..{self.q[-1]:.4g})")
        return replace(self, q=self.q[m], intensity=self.intensity[m],
                       sigma=None if self.sigma is None else self.sigma[m])


def _is_float(tok: str) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return False


def _pick_columns(names: list[str]) -> tuple[int | None, int | None, int | None]:
    low = [n.lower().strip("#()[] ") for n in names]
    err = next((k for k, n in enumerate(low) if any(t in n for t in ("error", "err", "sigma", "uncert", "e_"))), None)
    q = next((k for k, n in enumerate(low) if k != err and ("scatteringvector" in n or "q" in n)), None)
    inten = next((k for k, n in enumerate(low) if k not in (err, q)
                  and (n in ("i", "i(q)") or any(t in n for t in ("intensity", "i_", "iq", "int")))), None)
    return q, inten, err


def _unit_from_text(text: str) -> str | None:
    if _NM.search(text):
        return "nm^-1"
    if _ANG.search(text):
        return "A^-1"
    return None


def _norm_unit(q_unit) -> str | None:
    if q_unit is None:
        return None
    u = str(q_unit).strip().lower().replace(" ", "")
    if u in ("a^-1", "1/a", "a-1", "angstrom^-1", "1/angstrom", "\u00e5^-1", "1/\u00e5", "a"):
        return "A^-1"
    if u in ("nm^-1", "1/nm", "nm-1", "nanometer^-1", "nm"):
        return "nm^-1"
    raise ValueError(f"q_unit must be 'A^-1' or 'nm^-1', got {q_unit!r}")


def load_saxs_data(path, q_unit: str | None = None, columns: tuple[int, int, int | None] | None = None) -> SaxsData:
    """Load an experimental curve (ref 1.8).

    path : text file. q_unit : None (detect from the header, else apply the nm^-1 check),
    'A^-1' or 'nm^-1' (converted to 1/angstrom: q / 10). columns : (q, I, sigma or None)
    0-based column indices, overriding the header names.
    Returns :class:`SaxsData` with q ascending. Raises FileFormatError (a ValueError naming
    file and line) for malformed lines, non-finite values, sigma <= 0 or too few points.
    """
    p = Path(path)
    try:
        text = p.read_text(errors="replace")
    except OSError as exc:
        raise ValueError(f"cannot read SAXS data file {p}: {exc}") from None
    unit = _norm_unit(q_unit)
    header_text = []
    names: list[str] | None = None
    rows: list[list[float]] = []
    lines_of_rows: list[int] = []
    started = False
    for ln, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            header_text.append(line)
            continue
        toks = [t for t in _SPLIT.split(line) if t]
        if not started and (len(toks) < 2 or not (_is_float(toks[0]) and _is_float(toks[1]))):
            header_text.append(line)
            if len(toks) >= 2:
                names = toks
            continue
        started = True
        try:
            vals = [float(t) for t in toks]
        except ValueError:
            raise FileFormatError(p, ln, f"expected numbers, got {line[:60]!r}") from None
        rows.append(vals)
        lines_of_rows.append(ln)
    if len(rows) < 3:
        raise FileFormatError(p, None, f"found {len(rows)} data rows; need at least 3")
    if names is None and header_text:
        # a '#' line right before the data naming exactly one token per column ("# q I sigma")
        toks = [t for t in _SPLIT.split(header_text[-1].lstrip("#").strip()) if t]
        if len(toks) == len(rows[0]) and not any(_is_float(t) for t in toks):
            names = toks
    if columns is not None:
        try:
            qc, ic, ec = columns
        except (TypeError, ValueError):
            raise ValueError(f"columns must be (q, I, sigma or None), got {columns!r}") from None
    else:
        qc, ic, ec = (None, None, None)
        if names is not None:
            qc, ic, ec = _pick_columns(names)
        if qc is None or ic is None:
            qc, ic = 0, 1
            ec = 2 if min(len(r) for r in rows) >= 3 else None
    need = max(c for c in (qc, ic, ec) if c is not None)
    for r, ln in zip(rows, lines_of_rows):
        if len(r) <= need:
            raise FileFormatError(p, ln, f"expected at least {need + 1} columns, got {len(r)}")
    arr = np.array([[r[qc], r[ic]] + ([r[ec]] if ec is not None else []) for r in rows], dtype=np.float64)
    bad = ~np.all(np.isfinite(arr), axis=1)
    if np.any(bad):
        raise FileFormatError(p, lines_of_rows[int(np.argmax(bad))], "non-finite value")
    q, inten = arr[:, 0], arr[:, 1]
    sigma = arr[:, 2] if ec is not None else None
    if sigma is not None and np.any(sigma <= 0):
        k = int(np.argmax(sigma <= 0))
        raise FileFormatError(p, lines_of_rows[k], f"sigma must be > 0, got {sigma[k]!r}")
    if np.any(q < 0):
        raise FileFormatError(p, lines_of_rows[int(np.argmax(q < 0))], "negative q")
    notes = []
    if unit is None:
        unit = _unit_from_text("\n".join(header_text) + " " + " ".join(names or []))
        if unit is not None:
            notes.append(f"q unit {unit} read from the header")
    if unit is None and q.max() > Q_MAX_ANGSTROM_HEURISTIC:
        raise ValueError(
            f"{p}: q runs up to {q.max():.4g}, which looks like nm^-1 (1/angstrom data for cluster "
            f"scattering stay below {Q_MAX_ANGSTROM_HEURISTIC}); pass q_unit='nm^-1' to convert or "
            "q_unit='A^-1' to accept"
        )
    if unit == "nm^-1":
        q = q / 10.0
    order = np.argsort(q, kind="stable")
    q, inten = q[order], inten[order]
    sigma = None if sigma is None else sigma[order]
    if np.any(np.diff(q) == 0):
        raise FileFormatError(p, None, "duplicate q values")
    return SaxsData(q, inten, sigma, p.name, (1.0,), ((float(q[0]), float(q[-1])),), tuple(notes))


def _overlap_scale(lo: SaxsData, hi: SaxsData, min_points: int) -> float:
    """Factor s minimising sum w (I_lo(q) - s I_hi(q))^2 over hi's points inside lo's q range,
    with I_lo and its sigma linearly interpolated; w = 1 / (sigma_lo^2 + sigma_hi^2) (or 1)."""
    m = (hi.q >= lo.q[0]) & (hi.q <= lo.q[-1])
    if m.sum() < min_points:
        raise ValueError(
            f"{lo.source} (q {lo.q[0]:.4g}..{lo.q[-1]:.4g}) and {hi.source} (q {hi.q[0]:.4g}..{hi.q[-1]:.4g}) "
            f"overlap in {int(m.sum())} points of the second; need at least {min_points} to scale"
        )
    qh = hi.q[m]
    a = np.interp(qh, lo.q, lo.intensity)
    b = hi.intensity[m]
    if lo.sigma is not None and hi.sigma is not None:
        w = 1.0 / (np.interp(qh, lo.q, lo.sigma) ** 2 + hi.sigma[m] ** 2)
    else:
        w = np.ones_like(qh)
    den = float(np.sum(w * b * b))
    if den <= 0:
        raise ValueError(f"cannot scale {hi.source} onto {lo.source}: zero intensity in the overlap")
    s = float(np.sum(w * a * b)) / den
    if not s > 0:
        raise ValueError(f"overlap scale of {hi.source} onto {lo.source} is {s:.4g} (not positive)")
    return s


def stitch_saxs(datasets, reference: int | None = None, min_overlap_points: int = 2) -> SaxsData:
    """Join curves from several detectors into one by overlap scaling.

    datasets : SaxsData objects or paths (loaded with :func:`load_saxs_data`).
    Curves are ordered by their first q. Each consecutive pair must overlap in at least
    ``min_overlap_points`` points of the higher-q curve; the higher curve is scaled onto the
    lower one by weighted least squares in the overlap (see _overlap_scale) and the scales
    are chained. ``reference`` (index into ``datasets``; default: the curve starting at the
    lowest q) keeps scale 1. In each overlap the join is at the midpoint of the overlap:
    points of the lower curve below it, of the upper curve from it on. Sigma is scaled with
    the intensity. The result records the factor applied to each input (input order).
    """
    ds = [d if isinstance(d, SaxsData) else load_saxs_data(d) for d in datasets]
    if not ds:
        raise ValueError("stitch_saxs needs at least one curve")
    order = sorted(range(len(ds)), key=lambda k: float(ds[k].q[0]))
    ref = order[0] if reference is None else int(reference)
    if not 0 <= ref < len(ds):
        raise ValueError(f"reference must index one of the {len(ds)} curves, got {reference!r}")
    chain = [1.0]
    for a, b in zip(order[:-1], order[1:]):
        if ds[b].q[0] <= ds[a].q[0] or ds[b].q[-1] <= ds[a].q[-1]:
            raise ValueError(f"{ds[b].source} lies inside the q range of {ds[a].source}; cannot stitch")
        chain.append(chain[-1] * _overlap_scale(ds[a], ds[b], int(min_overlap_points)))
    rel = dict(zip(order, chain))
    factors = {k: rel[k] / rel[ref] for k in order}
    qs, Is, Ss, segs = [], [], [], []
    lower_cut = -np.inf
    any_sigma_missing = any(d.sigma is None for d in ds)
    for pos, k in enumerate(order):
        d = ds[k]
        upper_cut = np.inf
        if pos + 1 < len(order):
            nxt = ds[order[pos + 1]]
            upper_cut = 0.5 * (nxt.q[0] + d.q[-1])
        m = (d.q >= lower_cut) & (d.q < upper_cut)
        qs.append(d.q[m])
        Is.append(d.intensity[m] * factors[k])
        if not any_sigma_missing:
            Ss.append(d.sigma[m] * factors[k])
        segs.append((float(d.q[m][0]), float(d.q[m][-1])) if m.any() else (np.nan, np.nan))
        lower_cut = upper_cut
    seg_by_input = [None] * len(ds)
    for pos, k in enumerate(order):
        seg_by_input[k] = segs[pos]
    return SaxsData(
        np.concatenate(qs), np.concatenate(Is), None if any_sigma_missing else np.concatenate(Ss),
        " + ".join(d.source for d in ds), tuple(factors[k] for k in range(len(ds))), tuple(seg_by_input),
        (f"stitched {len(ds)} curves; reference {ds[ref].source}",),
    )
