"""Writing the structure library (the ``extract`` step; SPEC section 2, ref sections 1.7 and 2.6).

Layout (as ref section 1.7)::

    <out_dir>/
      <LABEL>/<frame_stem>_<ID>.xyz|pdb    one whole (unwrapped) finite cluster per file
      cluster_extraction_metadata.json      rules, format, frames, counts per label, version
      extraction_progress.jsonl             one line per finished frame (the resume record)

``ID`` is ``AAA``, ``AAB``, ... over the clusters of one frame in canonical order
(percolating clusters keep their ID but get no file). ``frame_stem`` is the frame file's
stem for one-frame files (``frame_0012``), or ``<file stem>_frame_<source_index>`` for
frames of a multi-frame file.

Resuming: each frame's files are written into ``<out_dir>/.extract_tmp/`` first and
then moved into place with ``os.replace`` (atomic per file); only then is the frame's line
appended (and fsynced) to ``extraction_progress.jsonl``. A restart skips every frame
recorded there and redoes any other frame, whose files have the same names and contents,
so an interrupted run, once resumed, gives the same folder as an uninterrupted run: no
frame lost, none duplicated. A half-written last line of the progress file is dropped.
"""
from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import write_json
from .._paths import safe_name
from ..clusters.extract import Cluster, ClusterRules, cluster_ids, extract_clusters  # noqa: F401
from ..io.frames import _check_structure, _xyz_frame_text, write_pdb
from ..rules import as_rules

__all__ = ["write_library", "LibrarySummary", "frame_stem", "METADATA_NAME", "PROGRESS_NAME"]

METADATA_NAME = "cluster_extraction_metadata.json"
PROGRESS_NAME = "extraction_progress.jsonl"
_TMP_NAME = ".extract_tmp"
_SCHEMA = 1
_MAX_NOTES = 100


@dataclass
class LibrarySummary:
    """What :func:`write_library` wrote.

    out_dir : the library folder.
    n_frames : frames recorded in the library (including ones finished by an earlier run).
    n_frames_resumed : frames skipped because an earlier run had finished them.
    files_per_label : label -> number of structure files.
    n_files : total number of structure files.
    percolating : label -> number of percolating clusters skipped (not finite clusters).
    percolating_notes : up to 100 records {frame_stem, frame_index, cluster_id, label, n_atoms}.
    metadata : the content of ``cluster_extraction_metadata.json``.
    """

    out_dir: Path
    n_frames: int
    n_frames_resumed: int
    files_per_label: dict
    n_files: int
    percolating: dict
    percolating_notes: list = field(default_factory=list)
    metadata: dict = field(default_factory=dict, repr=False)


def frame_stem(frame, shares_source: bool = False) -> str:
    """File-name stem of a frame: the source file stem for a one-frame file, else
    ``<stem>_frame_<source_index>`` (``frame_<index>`` without a source)."""
    src = getattr(frame, "source", "") or ""
    if not src:
        return f"frame_{int(frame.index):05d}"
    stem = safe_name(Path(src).stem, default="frame")
    if shares_source:
        return f"{stem}_frame_{int(frame.source_index):05d}"
    return stem


def _with_lookahead(frames: Iterable):
    """Yield (frame, shares_source) where shares_source tells whether the previous or next
    frame comes from the same file (frames of a multi-frame file are contiguous).

    A failure while reading frame k + 1 propagates before frame k is yielded: frame k's
    stem depends on its neighbour, and guessing it could file the frame under a name that
    a resumed run would not recognise (a duplicate)."""
    it = iter(frames)
    prev_src = None
    try:
        cur = next(it)
    except StopIteration:
        return
    while True:
        try:
            nxt = next(it)
        except StopIteration:
            nxt = None
        src = getattr(cur, "source", "") or None
        next_src = None if nxt is None else (getattr(nxt, "source", "") or None)
        shares = src is not None and (src == prev_src or (nxt is not None and src == next_src))
        yield cur, shares
        if nxt is None:
            return
        prev_src, cur = src, nxt


# --------------------------------------------------------------------------- writers


def _cluster_file(cluster: Cluster, frame, fmt: str, path: str | os.PathLike[str], stem: str, cid: str,
                  keep: np.ndarray) -> None:
    idx = cluster.atom_indices[keep]
    pos = cluster.unwrapped_positions(frame)[keep]
    symbols = [frame.symbols[k] for k in idx.tolist()]
    src = Path(frame.source).name if getattr(frame, "source", "") else ""
    n_core = int(cluster.core_indices.size)
    n_shell = int(idx.size) - n_core
    if fmt == "xyz":
        comment = (f'Properties=species:S:1:pos:R:3 label={cluster.label} cluster_id={cid} frame={stem} '
                   f'frame_index={int(frame.index)} source_index={int(frame.source_index)} '
                   f'time_fs={float(frame.time_fs):.6f} source="{src}" n_core={n_core} n_shell={n_shell} pbc="F F F"')
        # the same text as write_xyz, written plainly: the file is already in the frame's
        # temporary folder, moved into the library only when the whole frame is written
        syms, p = _check_structure(symbols, pos)
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(_xyz_frame_text(syms, p, comment, None))
    else:
        def pick(values):
            return None if values is None else [values[k] for k in idx.tolist()]

        rids = getattr(frame, "residue_ids", None)
        comment = (f"cluster {cluster.label} {cid} from {stem}\n"
                   f"frame_index {int(frame.index)} source_index {int(frame.source_index)} "
                   f"time_fs {float(frame.time_fs):.6f}\nsource {src}\nn_core {n_core} n_shell {n_shell}")
        write_pdb(path, symbols, pos, residues=pick(getattr(frame, "residues", None)),
                  residue_ids=None if rids is None else np.asarray(rids)[idx],
                  atom_names=pick(getattr(frame, "atom_names", None)), comment=comment)


# --------------------------------------------------------------------------- progress record


def _read_progress(path: Path):
    """Yield the records of finished frames, streaming; a torn last line (a crash while
    appending) is cut off the file."""
    if not path.exists():
        return
    good_end = 0
    lineno = 0
    torn = False
    with open(path, "rb") as fh:
        for line in fh:
            lineno += 1
            if not line.endswith(b"\n"):  # the last line was being written
                torn = True
                break
            if line.strip():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    if fh.read().strip():
                        raise ValueError(f"{path}, line {lineno}: corrupt progress record; "
                                         "remove the library folder and extract again") from None
                    torn = True
                    break
                yield rec
            good_end += len(line)
    if torn:
        with open(path, "r+b") as fh:
            fh.truncate(good_end)


def _append_progress(path: Path, record: dict) -> None:
    """Append one frame record. Flushed, not fsynced per frame (the moved cluster files are
    not fsynced either): a process that dies loses nothing recorded, and a record lost with
    the machine only makes a resume redo that frame (same files, replaced). The file is
    fsynced once when the library is complete."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()


def _fsync_file(path: Path) -> None:
    if path.exists():
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())


def _write_json_atomic(path: Path, data: dict) -> None:
    write_json(path, data, indent=2, sort_keys=True)


# --------------------------------------------------------------------------- main entry


def _settings(rules: ClusterRules, fmt: str, include_shell_levels) -> dict:
    return {"rules": rules.to_dict(), "format": fmt,
            "include_shell_levels": None if include_shell_levels is None else list(include_shell_levels)}


def _frames_info(frames) -> dict:
    """What a FrameSource knows about the time axis (absent for plain iterables)."""
    info: dict[str, object] = {}
    for key in ("timestep_fs", "time_source"):
        val = getattr(frames, key, None)
        if isinstance(val, (int, float, str)):
            info[key] = val
    warns = getattr(frames, "warnings", None)
    if warns:
        info["warnings"] = [str(w) for w in warns]
    n_frames = _frame_count(frames)
    if n_frames is not None:
        info["n_frames_expected"] = int(n_frames)  # a killed extract says how far it got
    return info


class _Aggregate:
    """Running totals over finished frames (memory per frame: its identity only)."""

    def __init__(self):
        self.done: dict[str, tuple] = {}
        self.files = Counter()
        self.clusters = Counter()
        self.perc = Counter()
        self.notes: list[dict] = []
        self.folders: set[str] = set()
        self.n_sources = 0
        self._last_source = None
        self.first_source = self.last_source = None
        self.t_min = self.t_max = None

    def add(self, rec: dict) -> None:
        self.done[rec["stem"]] = (rec.get("frame_index"), rec.get("source_index"), rec.get("source"))
        self.files.update(rec["files_per_label"])
        self.clusters.update(rec["clusters_per_label"])
        for p in rec["percolating"]:
            self.perc[p["label"]] += 1
            if len(self.notes) < _MAX_NOTES:
                self.notes.append({"frame_stem": rec["stem"], "frame_index": rec["frame_index"], **p})
        src = rec.get("source") or None
        if src is not None:
            if src != self._last_source:
                self.n_sources += 1  # frames of one file are contiguous
            self.folders.add(str(Path(src).parent))
            if self.first_source is None:
                self.first_source = src
            self.last_source = src
        self._last_source = src
        t = rec["time_fs"]
        self.t_min = t if self.t_min is None else min(self.t_min, t)
        self.t_max = t if self.t_max is None else max(self.t_max, t)


def _metadata(settings: dict, agg: _Aggregate, status: str, frames_info: dict | None = None) -> dict:
    from .. import __version__

    return {
        "format": "clusterdynamicsml cluster library",
        "schema_version": _SCHEMA,
        "clusterdynamicsml_version": __version__,
        "status": status,
        "settings": settings,
        "frames": {
            "n_frames": len(agg.done),
            "n_source_files": agg.n_sources,
            "source_folders": sorted(agg.folders),
            "first_source": agg.first_source,
            "last_source": agg.last_source,
            "first_time_fs": agg.t_min,
            "last_time_fs": agg.t_max,
            **(frames_info or {}),
        },
        "labels": {lab: {"files": agg.files[lab], "clusters": agg.clusters[lab]}
                   for lab in sorted(set(agg.files) | set(agg.clusters))},
        "n_files": int(sum(agg.files.values())),
        "percolating": {
            "note": "percolating clusters wrap around the periodic box onto themselves; they are "
                    "infinite networks, not finite clusters, and have no structure file",
            "n_clusters": int(sum(agg.perc.values())),
            "per_label": dict(sorted(agg.perc.items())),
            "first_notes": list(agg.notes),
        },
        "progress_file": PROGRESS_NAME,
    }


def _check_write_arguments(fmt: str, max_files_per_label, include_shell_levels) -> list[int] | None:
    """Validate ``write_library``'s format and file cap; returns the sorted shell levels to
    include (None: all)."""
    if fmt not in ("xyz", "pdb"):
        raise ValueError(f"fmt must be 'xyz' or 'pdb', got {fmt!r}")
    if max_files_per_label is not None and (isinstance(max_files_per_label, bool)
                                            or not isinstance(max_files_per_label, int) or max_files_per_label < 1):
        raise ValueError(f"max_files_per_label must be None or a positive integer, got {max_files_per_label!r}")
    if include_shell_levels is None:
        return None
    try:
        return sorted({int(v) for v in include_shell_levels})
    except (TypeError, ValueError):
        raise ValueError(
            f"include_shell_levels must be a list of shell levels (integers), got {include_shell_levels!r}"
        ) from None


def _check_library_folder(out: Path, settings: dict, resume: bool) -> None:
    """``out`` must be missing, empty (but for the temporary folder), or a library written
    with the same ``settings`` (then only with ``resume``)."""
    meta_path, prog_path = out / METADATA_NAME, out / PROGRESS_NAME
    if meta_path.exists() or prog_path.exists():
        if not resume:
            raise ValueError(f"{out} already holds a cluster library; pass resume=True to continue it, "
                             "or choose an empty folder")
        try:
            old = json.loads(meta_path.read_text()) if meta_path.exists() else None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{meta_path}: not valid JSON ({exc}); remove the folder and extract again") from None
        if old is None or old.get("settings") != settings:
            raise ValueError(f"{out} holds a library made with other settings ({_settings_diff(old, settings)}); "
                             "use another folder")
    elif out.exists() and any(p.name != _TMP_NAME for p in out.iterdir()):
        raise ValueError(f"out_dir {out} is not empty and holds no cluster library; choose an empty or new folder")


def _settings_diff(old, new: dict) -> str:
    """'key: saved -> now' for every setting that differs (nested keys joined by '.')."""
    if old is None or not isinstance(old.get("settings"), dict):
        return "no settings recorded"

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(old["settings"]), flat(new)
    unset = object()

    def show(v):
        return "unset" if v is unset else repr(v)

    keys = sorted(k for k in set(a) | set(b) if a.get(k, unset) != b.get(k, unset))
    return "; ".join(f"{k}: {show(a.get(k, unset))} then, {show(b.get(k, unset))} now" for k in keys)


def _frame_count(frames) -> int | None:
    """Number of frames when the iterable knows it (a FrameSource or a list), else None."""
    try:
        return len(frames)
    except TypeError:
        return None


def write_library(frames: Iterable, rules: ClusterRules | None, out_dir, *, fmt: str = "xyz", resume: bool = True,
                  progress: bool | Callable[[int, int | None], None] | None = None,
                  include_shell_levels: Iterable[int] | None = None, num_threads: int | None = None,
                  max_files_per_label: int | None = None) -> LibrarySummary:
    """Extract the clusters of every frame and write the structure library (ref section 1.7).

    Parameters
    ----------
    frames : iterable of :class:`~clusterdynamicsml.io.frames.Frame` (streamed; e.g. the
        ``FrameSource`` of :func:`~clusterdynamicsml.io.frames.read_frames`).
    rules : :class:`~clusterdynamicsml.rules.ClusterRules` (or a mapping for ``ClusterRules.from_dict``).
    out_dir : library folder; created if missing. It must be empty, missing, or a library
        written earlier with the same rules and format (then it is resumed).
    fmt : "xyz" (extended-XYZ comment naming label, cluster id, source frame and time) or
        "pdb" (keeps atom names, residue names and numbers of PDB frames).
    resume : continue an interrupted (or extend a finished) library in ``out_dir``. With
        ``resume=False`` an existing library there is an error, never overwritten.
    progress : None, True (a tqdm bar) or a callable ``progress(frames_done, total_or_None)``.
    include_shell_levels : shell levels whose atoms go into the files (None: all).
    num_threads : threads of the neighbour search (None: package default).
    max_files_per_label : write at most this many structure files per label (None: no cap):
        the first ones in frame order (canonical cluster order within a frame), so the choice
        is deterministic and survives a resume. The cluster counts per label in the metadata
        still count every cluster; ``files`` counts the files written.

    Clusters are written whole (unwrapped across the box, coordinates in angstrom).
    Percolating clusters are not written; each one is recorded in the progress file and
    the metadata. Returns a :class:`LibrarySummary`.
    """
    rules = as_rules(rules)
    levels = _check_write_arguments(fmt, max_files_per_label, include_shell_levels)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {out} exists and is not a folder")
    meta_path, prog_path, tmp_root = out / METADATA_NAME, out / PROGRESS_NAME, out / _TMP_NAME
    settings = _settings(rules, fmt, levels)
    if max_files_per_label is not None:
        settings["max_files_per_label"] = int(max_files_per_label)
    _check_library_folder(out, settings, resume)
    out.mkdir(parents=True, exist_ok=True)

    agg = _Aggregate()
    for rec in _read_progress(prog_path):
        agg.add(rec)
    _write_json_atomic(meta_path, _metadata(settings, agg, "in_progress", _frames_info(frames)))
    if tmp_root.exists():
        shutil.rmtree(tmp_root)

    total = _frame_count(frames)
    bar = None
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="frame", desc="extract")
    n_seen = 0
    n_resumed = 0
    seen_stems: set[str] = set()
    try:
        for frame, shares in _with_lookahead(frames):
            stem = frame_stem(frame, shares)
            if stem in seen_stems:
                raise ValueError(f"two frames map to the same file stem {stem!r} (frame {frame.index}); "
                                 "frame names must be unique")
            seen_stems.add(stem)
            ident = {"frame_index": int(frame.index), "source_index": int(frame.source_index),
                     "source": str(getattr(frame, "source", "") or "")}
            if stem in agg.done:
                recorded = dict(zip(("frame_index", "source_index", "source"), agg.done[stem]))
                if recorded != ident:
                    raise ValueError(f"{prog_path}: frame stem {stem!r} was recorded for another frame "
                                     f"({recorded}), not {ident}")
                n_resumed += 1
            else:
                rec = _write_frame(frame, stem, rules, fmt, levels, out, tmp_root, num_threads,
                                   None if max_files_per_label is None else (max_files_per_label, agg.files))
                rec.update(ident)
                _append_progress(prog_path, rec)
                agg.add(rec)
            n_seen += 1
            if bar is not None:
                bar.update(1)
            elif callable(progress):
                progress(n_seen, total)
    finally:
        if bar is not None:
            bar.close()
    if tmp_root.exists():
        shutil.rmtree(tmp_root)
    _fsync_file(prog_path)
    meta = _metadata(settings, agg, "completed", _frames_info(frames))
    _write_json_atomic(meta_path, meta)
    return LibrarySummary(
        out_dir=out, n_frames=len(agg.done), n_frames_resumed=n_resumed,
        files_per_label={k: v["files"] for k, v in meta["labels"].items() if v["files"]},
        n_files=meta["n_files"], percolating=meta["percolating"]["per_label"],
        percolating_notes=meta["percolating"]["first_notes"], metadata=meta,
    )


def _write_frame(frame, stem, rules, fmt, levels, out: Path, tmp_root: Path, num_threads, cap=None) -> dict:
    """Write one frame's cluster files; ``cap`` = (max files per label, files already written
    per label) or None."""
    clusters = extract_clusters(frame, rules, num_threads)
    ids = cluster_ids(len(clusters))
    # files are written into the run's temporary folder (emptied when a run starts; the
    # names carry the frame stem) and moved into the library when the whole frame is written
    tmp_root.mkdir(parents=True, exist_ok=True)
    tmp_s = os.fspath(tmp_root)
    written = []  # (label, file name)
    files_per_label: Counter[str] = Counter()
    clusters_per_label: Counter[str] = Counter()
    perc = []
    for c, cid in zip(clusters, ids):
        if c.percolating:
            perc.append({"cluster_id": cid, "label": c.label, "n_atoms": c.n_atoms})
            continue
        clusters_per_label[c.label] += 1
        if cap is not None and cap[1][c.label] + files_per_label[c.label] >= cap[0]:
            continue
        keep = np.ones(c.n_atoms, dtype=bool)
        if levels is not None:
            keep[c.core_indices.size:] = np.isin(np.asarray(c.shell_levels), levels)  # set by extract_clusters
        name = f"{stem}_{cid}.{fmt}"
        _cluster_file(c, frame, fmt, os.path.join(tmp_s, name), stem, cid, keep)
        written.append((c.label, name))
        files_per_label[c.label] += 1
    out_s = os.fspath(out)
    folders = {label: safe_name(label, default="label") for label in files_per_label}  # labels stay in the files
    for label in files_per_label:
        os.makedirs(os.path.join(out_s, folders[label]), exist_ok=True)
    for label, name in written:
        os.replace(os.path.join(tmp_s, name), os.path.join(out_s, folders[label], name))
    return {
        "stem": stem,
        "time_fs": float(frame.time_fs),
        "files": [f"{folders[label]}/{name}" for label, name in written],
        "files_per_label": dict(sorted(files_per_label.items())),
        "clusters_per_label": dict(sorted(clusters_per_label.items())),
        "percolating": perc,
    }
