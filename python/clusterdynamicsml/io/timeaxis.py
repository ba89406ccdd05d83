"""The time axis of frame folders and files: natural file order, ``_t<T>fs`` / ``_f<A>_<B>fs``
folder tags, export metadata, frame-name numbers and the timestep (fs); see docs/frames.md."""
from __future__ import annotations

import contextlib
import json
import math
import re
from pathlib import Path

import numpy as np

from .records import DEFAULT_TIMESTEP_FS, EXPORT_METADATA_NAME
from .xyz import _TIME_RE

_LAST_INT = re.compile(r"(\d+)(?!.*\d)")


_FRAME_NAME = re.compile(r"^frame_(\d+)\.(xyz|extxyz|pdb)$", re.IGNORECASE)


_T_TAG = re.compile(r"_t(\d+)(?:[p_](\d+))?fs", re.IGNORECASE)


_F_TAG = re.compile(r"_f(\d+)(?:_(\d+))?fs", re.IGNORECASE)


def natural_sort_key(name: str):
    """Sort key of ref §1.1: by the last integer in the file stem; names without one last."""
    stem = Path(name).stem
    m = _LAST_INT.search(stem)
    if m is None:
        return (1, 0, name.lower())
    return (0, int(m.group(1)), name.lower())


def _tag_number(whole: str, frac: str | None) -> float:
    return float(f"{whole}.{frac}") if frac else float(whole)


def folder_start_time_fs(name: str) -> float | None:
    """Start time from a folder-name tag ``_t<digits>[p|_<digits>]fs`` (``_t497p5fs`` is
    497.5 fs), else the legacy ``_f<digits>[_<digits>]fs``; None when absent (ref §1.2)."""
    m = _T_TAG.search(name) or _F_TAG.search(name)
    return _tag_number(m.group(1), m.group(2)) if m else None


def _check_timestep(timestep_fs) -> float | None:
    from .._validate import as_timestep_fs

    return None if timestep_fs is None else as_timestep_fs(timestep_fs)


def _selection(n: int, start, stop, stride) -> np.ndarray:
    for name, v in (("start", start), ("stop", stop)):
        if v is not None and not isinstance(v, (int, np.integer)):
            raise ValueError(f"{name} must be an integer frame position or None, got {v!r}")
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    return np.arange(n, dtype=np.int64)[slice(start, stop, int(stride))]


def _file_times(times: np.ndarray, dt_given, kind_label: str, warnings: list, where=None):
    """Time axis from per-frame file times, if every frame has one. Times that do not
    increase (a CP2K REFTRAJ run writes 0 for every frame) are replaced by the given timestep
    (with a warning naming ``where``), or kept with a warning naming ``where`` without one."""
    have = np.isfinite(times)
    if times.size == 0 or not have.any():
        return None
    if not have.all():
        warnings.append(f"only {int(have.sum())} of {times.size} frames carry a {kind_label} time; "
                        "using sequential times instead")
        return None
    diffs = np.diff(times)
    if diffs.size and np.any(diffs <= 0):
        k = int(np.flatnonzero(diffs <= 0)[0])
        what = (f"{kind_label} times in {where or 'the input'} are not strictly increasing (frame {k + 1} at "
                f"{times[k + 1]:g} fs after {times[k]:g} fs)")
        if dt_given is None:
            warnings.append(f"{what}; used as they are (give the time between frames, --timestep-fs / [frames] "
                            "timestep_fs / timestep_fs=, to use sequential times instead)")
            return times
        warnings.append(f"{what}; the given timestep {dt_given:g} fs is used instead")
        return None
    return times


def _infer_dt(times: np.ndarray, dt_given, warnings: list) -> float:
    diffs = np.diff(times)
    if dt_given is not None:
        if diffs.size and not np.allclose(diffs, dt_given, rtol=1e-6, atol=1e-9):
            warnings.append(f"frame times in the file are spaced by {float(np.median(diffs)):g} fs, "
                            f"not the given timestep {dt_given:g} fs; the file times are used")
        return dt_given
    if diffs.size and np.all(diffs > 0):
        med = float(np.median(diffs))
        if not np.allclose(diffs, med, rtol=1e-6, atol=1e-9):
            warnings.append(f"frame times in the file are unevenly spaced (median {med:g} fs)")
        return med
    return DEFAULT_TIMESTEP_FS


def _read_export_metadata(meta_path: Path, warnings: list) -> object:
    """Parsed export metadata JSON, or None when the file is absent or unreadable (warned)."""
    if not meta_path.is_file():
        return None
    try:
        return json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        warnings.append(f"{meta_path}: unreadable export metadata ({exc}); ignored")
        return None


def _positive_timestep(value) -> float | None:
    """``value`` as a frame timestep in fs when it is a positive finite number, else None."""
    try:
        cand = float(value)
    except (TypeError, ValueError):
        return None
    return cand if cand > 0 and math.isfinite(cand) else None


def _metadata_frame_times(written) -> dict[str, float]:
    """File name -> time (fs) from the export metadata's ``written_frames`` list; entries
    without a file name or a numeric time are skipped."""
    table: dict[str, float] = {}
    if isinstance(written, list):
        for item in written:
            if isinstance(item, dict) and item.get("filename") is not None and item.get("time_fs") is not None:
                with contextlib.suppress(TypeError, ValueError):
                    table[Path(str(item["filename"])).name] = float(item["time_fs"])
    return table


def _selection_start_time(selection: dict) -> float | None:
    """Start time (fs) of an export selection: ``first_time_fs``, else ``applied_cutoff_fs``
    (the first one that is a number), else None."""
    for key in ("first_time_fs", "applied_cutoff_fs"):
        if selection.get(key) is not None:
            try:
                return float(selection[key])
            except (TypeError, ValueError):
                pass
    return None


def _folder_time_axis(folder: Path, names: list[str], dt_given, start_time_fs, file_times, warnings):
    """Times of a frames folder as ref §1.2 (metadata JSON, file ``time=``, ``frame_<N>``
    names, sequential). Returns (times, time_source, timestep_fs)."""
    meta_path = folder / EXPORT_METADATA_NAME
    meta = _read_export_metadata(meta_path, warnings)
    selection = meta.get("selection", {}) if isinstance(meta, dict) and isinstance(meta.get("selection"), dict) else {}
    dt = dt_given
    if dt is None and selection.get("frame_timestep_fs") is not None:
        dt = _positive_timestep(selection["frame_timestep_fs"])
    # 1. export metadata with every frame's time
    if isinstance(meta, dict):
        table = _metadata_frame_times(meta.get("written_frames"))
        if names and all(nm in table for nm in names):
            times = np.array([table[nm] for nm in names], dtype=np.float64)
            return times, "metadata", dt if dt is not None else _infer_dt(times, None, [])
        warnings.append(f"{meta_path}: written_frames does not give a time for every frame file; ignored")
    if dt is None:
        dt = DEFAULT_TIMESTEP_FS
    # 2. extended-XYZ time= in every file
    if file_times is not None:
        t = _file_times(file_times, dt_given, "time=", warnings, where=str(folder))
        if t is not None:
            return t, "file", _infer_dt(t, dt_given, warnings)
    # 3. frame_<N> names
    frame_numbers = [int(m.group(1)) for m in map(_FRAME_NAME.match, names) if m is not None]
    folder_start = start_time_fs
    if folder_start is None:
        folder_start = _selection_start_time(selection)
    if folder_start is None:
        folder_start = folder_start_time_fs(folder.name)
    if names and len(frame_numbers) == len(names):
        times = np.array([k * dt for k in frame_numbers], dtype=np.float64)
        source = "frame_names"
    else:
        start = folder_start if folder_start is not None else 0.0
        times = start + dt * np.arange(len(names), dtype=np.float64)
        source = "sequential"
        if dt_given is None:  # a given timestep is what the user asked for: nothing to warn about
            warnings.append(f"no per-frame times found; frame times are {start:g} fs + k x {dt:g} fs")
    if folder_start is not None and times.size and abs(times[0] - folder_start) > max(0.5 * dt, 1e-9):
        warnings.append(f"first frame time {times[0]:g} fs differs from the folder start time {folder_start:g} fs")
    return times, source, dt


def _folder_file_times(files: list[Path]) -> np.ndarray | None:
    """``time=`` of every one-frame XYZ file, read only when the first file has one."""
    def comment_time(p: Path):
        with open(p, "rb") as fh:
            fh.readline()
            m = _TIME_RE.search(fh.readline())
        return float(m.group(1).replace(b"d", b"e").replace(b"D", b"e")) if m else math.nan

    if not files or math.isnan(comment_time(files[0])):
        return None
    return np.array([comment_time(p) for p in files], dtype=np.float64)
