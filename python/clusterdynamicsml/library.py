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
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .clusters import Cluster, ClusterRules, cluster_ids, extract_clusters

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
    stem = re.sub(r"[^A-Za-z0-9_.+-]", "_", Path(src).stem)
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
        shares = src is not None and (src == prev_src or (nxt is not None and src == (getattr(nxt, "source", "") or None)))
        yield cur, shares
        if nxt is None:
            return
        prev_src, cur = src, nxt


# --------------------------------------------------------------------------- writers


def _fmt_float(x: float) -> str:
    return f"{x:.8f}"


def _write_xyz(path: Path, symbols, positions, comment: str) -> None:
    lines = [str(len(symbols)), comment]
    for s, (x, y, z) in zip(symbols, positions.tolist()):
        lines.append(f"{s:<2s} {x:16.8f} {y:16.8f} {z:16.8f}")
    path.write_text("\n".join(lines) + "\n")


def _pdb_atom_name(name: str, element: str) -> str:
    name = name.strip()[:4]
    if len(name) < 4 and len(element) == 1 and name.upper().startswith(element.upper()):
        return " " + name.ljust(3)
    return name.ljust(4)


def _write_pdb(path: Path, symbols, positions, remarks: list[str], atom_names=None, residues=None, residue_ids=None) -> None:
    lines = [f"REMARK   {r}"[:80] for r in remarks]
    for k, (s, (x, y, z)) in enumerate(zip(symbols, positions.tolist())):
        serial = (k + 1) % 100000
        name = _pdb_atom_name(atom_names[k] if atom_names is not None else s, s)
        res = (residues[k] if residues is not None else "UNK")[:3]
        rid = int(residue_ids[k]) % 10000 if residue_ids is not None else 1
        lines.append(f"HETATM{serial:5d} {name} {res:>3s} A{rid:4d}    {x:8.3f}{y:8.3f}{z:8.3f}{1.0:6.2f}{0.0:6.2f}          {s:>2s}")
    lines.append("END")
    path.write_text("\n".join(lines) + "\n")


def _cluster_file(cluster: Cluster, frame, fmt: str, path: Path, stem: str, cid: str, keep: np.ndarray) -> None:
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
        _write_xyz(path, symbols, pos, comment)
    else:
        def pick(values):
            return None if values is None else [values[k] for k in idx.tolist()]

        rids = getattr(frame, "residue_ids", None)
        _write_pdb(path, symbols, pos,
                   [f"cluster {cluster.label} {cid} from {stem}", f"frame_index {int(frame.index)} source_index "
                    f"{int(frame.source_index)} time_fs {float(frame.time_fs):.6f}", f"source {src}",
                    f"n_core {n_core} n_shell {n_shell}"],
                   atom_names=pick(getattr(frame, "atom_names", None)), residues=pick(getattr(frame, "residues", None)),
                   residue_ids=None if rids is None else np.asarray(rids)[idx])


# --------------------------------------------------------------------------- progress record


def _read_progress(path: Path) -> list[dict]:
    """Records of finished frames; a torn last line (crash while appending) is cut off."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    records = []
    good_end = 0
    pos = 0
    while pos < len(raw):
        end = raw.find(b"\n", pos)
        if end < 0:  # no newline: the last line was being written
            break
        line = raw[pos:end]
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if raw[end + 1:].strip():
                    raise ValueError(f"{path}, line {len(records) + 1}: corrupt progress record; "
                                     "remove the library folder and extract again") from None
                break
        pos = end + 1
        good_end = pos
    if good_end != len(raw):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
    return records


def _append_progress(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- main entry


def _settings(rules: ClusterRules, fmt: str, include_shell_levels) -> dict:
    return {"rules": rules.to_dict(), "format": fmt,
            "include_shell_levels": None if include_shell_levels is None else list(include_shell_levels)}


def _metadata(settings: dict, records: list[dict], status: str) -> dict:
    from . import __version__

    files = Counter()
    clusters = Counter()
    perc = Counter()
    notes = []
    sources = set()
    for rec in records:
        files.update(rec["files_per_label"])
        clusters.update(rec["clusters_per_label"])
        for p in rec["percolating"]:
            perc[p["label"]] += 1
            if len(notes) < _MAX_NOTES:
                notes.append({"frame_stem": rec["stem"], "frame_index": rec["frame_index"], **p})
        if rec.get("source"):
            sources.add(rec["source"])
    times = [r["time_fs"] for r in records]
    return {
        "format": "clusterdynamicsml cluster library",
        "schema_version": _SCHEMA,
        "clusterdynamicsml_version": __version__,
        "status": status,
        "settings": settings,
        "frames": {
            "n_frames": len(records),
            "n_source_files": len(sources),
            "source_folders": sorted({str(Path(s).parent) for s in sources}),
            "first_time_fs": min(times) if times else None,
            "last_time_fs": max(times) if times else None,
        },
        "labels": {lab: {"files": files[lab], "clusters": clusters[lab]} for lab in sorted(set(files) | set(clusters))},
        "n_files": int(sum(files.values())),
        "percolating": {
            "note": "percolating clusters wrap around the periodic box onto themselves; they are "
                    "infinite networks, not finite clusters, and have no structure file",
            "n_clusters": int(sum(perc.values())),
            "per_label": dict(sorted(perc.items())),
            "first_notes": notes,
        },
        "progress_file": PROGRESS_NAME,
    }


def write_library(frames: Iterable, rules: ClusterRules | None, out_dir, *, fmt: str = "xyz", resume: bool = True,
                  progress: bool | Callable[[int, int | None], None] | None = None,
                  include_shell_levels: Iterable[int] | None = None, num_threads: int | None = None) -> LibrarySummary:
    """Extract the clusters of every frame and write the structure library (ref section 1.7).

    Parameters
    ----------
    frames : iterable of :class:`~clusterdynamicsml.frames.Frame` (streamed; e.g. the
        ``FrameSource`` of :func:`~clusterdynamicsml.frames.read_frames`).
    rules : :class:`~clusterdynamicsml.clusters.ClusterRules` (None: the home case).
    out_dir : library folder; created if missing. It must be empty, missing, or a library
        written earlier with the same rules and format (then it is resumed).
    fmt : "xyz" (extended-XYZ comment naming label, cluster id, source frame and time) or
        "pdb" (keeps atom names, residue names and numbers of PDB frames).
    resume : continue an interrupted (or extend a finished) library in ``out_dir``. With
        ``resume=False`` an existing library there is an error, never overwritten.
    progress : None, True (a tqdm bar) or a callable ``progress(frames_done, total_or_None)``.
    include_shell_levels : shell levels whose atoms go into the files (None: all).
    num_threads : threads of the neighbour search (None: package default).

    Clusters are written whole (unwrapped across the box, coordinates in angstrom).
    Percolating clusters are not written; each one is recorded in the progress file and
    the metadata. Returns a :class:`LibrarySummary`.
    """
    rules = ClusterRules() if rules is None else rules
    if not isinstance(rules, ClusterRules):
        raise ValueError(f"rules must be a ClusterRules, got {type(rules).__name__}")
    if fmt not in ("xyz", "pdb"):
        raise ValueError(f"fmt must be 'xyz' or 'pdb', got {fmt!r}")
    levels = None
    if include_shell_levels is not None:
        try:
            levels = sorted({int(v) for v in include_shell_levels})
        except (TypeError, ValueError):
            raise ValueError(f"include_shell_levels must be a list of shell levels (integers), got {include_shell_levels!r}") from None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir {out} exists and is not a folder")
    meta_path, prog_path, tmp_root = out / METADATA_NAME, out / PROGRESS_NAME, out / _TMP_NAME
    settings = _settings(rules, fmt, levels)
    is_library = meta_path.exists() or prog_path.exists()
    if is_library:
        if not resume:
            raise ValueError(f"{out} already holds a cluster library; pass resume=True to continue it, "
                             "or choose an empty folder")
        try:
            old = json.loads(meta_path.read_text()) if meta_path.exists() else None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{meta_path}: not valid JSON ({exc}); remove the folder and extract again") from None
        if old is None or old.get("settings") != settings:
            raise ValueError(f"{out} holds a library made with other settings "
                             f"({None if old is None else old.get('settings')}), not {settings}; "
                             "use another folder")
    elif out.exists() and any(p.name != _TMP_NAME for p in out.iterdir()):
        raise ValueError(f"out_dir {out} is not empty and holds no cluster library; choose an empty or new folder")
    out.mkdir(parents=True, exist_ok=True)

    records = _read_progress(prog_path)
    done = {r["stem"]: r for r in records}
    _write_json_atomic(meta_path, _metadata(settings, records, "in_progress"))
    if tmp_root.exists():
        shutil.rmtree(tmp_root)

    total = None
    try:
        total = len(frames)  # type: ignore[arg-type]
    except TypeError:
        pass
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
            if stem in done:
                rec = done[stem]
                if any(rec.get(k) != v for k, v in ident.items()):
                    raise ValueError(f"{prog_path}: frame stem {stem!r} was recorded for another frame "
                                     f"({ {k: rec.get(k) for k in ident} }), not {ident}")
                n_resumed += 1
            else:
                rec = _write_frame(frame, stem, rules, fmt, levels, out, tmp_root, num_threads)
                rec.update(ident)
                _append_progress(prog_path, rec)
                records.append(rec)
                done[stem] = rec
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
    meta = _metadata(settings, records, "completed")
    _write_json_atomic(meta_path, meta)
    return LibrarySummary(
        out_dir=out, n_frames=len(records), n_frames_resumed=n_resumed,
        files_per_label={k: v["files"] for k, v in meta["labels"].items() if v["files"]},
        n_files=meta["n_files"], percolating=meta["percolating"]["per_label"],
        percolating_notes=meta["percolating"]["first_notes"], metadata=meta,
    )


def _write_frame(frame, stem, rules, fmt, levels, out: Path, tmp_root: Path, num_threads) -> dict:
    clusters = extract_clusters(frame, rules, num_threads)
    ids = cluster_ids(len(clusters))
    tmp = tmp_root / stem
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    written = []  # (label, file name)
    files_per_label = Counter()
    clusters_per_label = Counter()
    perc = []
    for c, cid in zip(clusters, ids):
        if c.percolating:
            perc.append({"cluster_id": cid, "label": c.label, "n_atoms": c.n_atoms})
            continue
        clusters_per_label[c.label] += 1
        keep = np.ones(c.n_atoms, dtype=bool)
        if levels is not None:
            keep[c.core_indices.size:] = np.isin(c.shell_levels, levels)
        name = f"{stem}_{cid}.{fmt}"
        _cluster_file(c, frame, fmt, tmp / name, stem, cid, keep)
        written.append((c.label, name))
        files_per_label[c.label] += 1
    for label, name in written:
        (out / label).mkdir(exist_ok=True)
        os.replace(tmp / name, out / label / name)
    shutil.rmtree(tmp)
    return {
        "stem": stem,
        "time_fs": float(frame.time_fs),
        "files": [f"{label}/{name}" for label, name in written],
        "files_per_label": dict(sorted(files_per_label.items())),
        "clusters_per_label": dict(sorted(clusters_per_label.items())),
        "percolating": perc,
    }
