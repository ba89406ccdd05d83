"""The ``[dynamics] checkpoint`` file: per-chunk cluster counts kept across runs.

An append-only JSON-lines file. Line 1 is the header: the fingerprint of the run (settings
that change the counts) and of every input file (path, size, modification time and a
SHA-256 of sampled blocks of its content). Every further line is one finished chunk. Each
line carries the SHA-256 of its own content, so an edited or damaged line is refused
instead of being reused; a partly written last line (an interrupted append) is dropped.

A checkpoint is reused only when the inputs are the same: a frames file rewritten since the
checkpoint was written (another size, time stamp or content, even with the same layout) is
refused with a message naming the file and what changed.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Checkpoint", "source_fingerprint", "file_fingerprint", "CHECKPOINT_VERSION"]

CHECKPOINT_VERSION = 2
KIND = "clusterdynamicsml.dynamics.analyze.checkpoint"

#: files up to this size are hashed whole; larger files by SAMPLE_BLOCKS blocks of BLOCK bytes
#: spread evenly over the file (first and last block included)
WHOLE_FILE_BYTES = 8 << 20
BLOCK = 64 << 10
SAMPLE_BLOCKS = 64


def _line(body: dict) -> str:
    text = json.dumps(body, sort_keys=True, allow_nan=False, separators=(",", ":"))
    return json.dumps({"sha256": hashlib.sha256(text.encode()).hexdigest(), "body": json.loads(text)},
                      sort_keys=True, allow_nan=False, separators=(",", ":")) + "\n"


def _body(raw: bytes, path: Path, lineno: int) -> dict:
    try:
        entry = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError(f"{path}, line {lineno}: corrupt checkpoint entry (not JSON); delete the checkpoint "
                         "and run again") from None
    if not isinstance(entry, dict) or not isinstance(entry.get("body"), dict) or "sha256" not in entry:
        if lineno == 1 and isinstance(entry, dict) and entry.get("kind") == KIND:
            raise ValueError(f"{path}: checkpoint written by an older clusterdynamicsml (version "
                             f"{entry.get('version')}, without input fingerprints); delete it and run again")
        raise ValueError(f"{path}, line {lineno}: not a clusterdynamicsml dynamics checkpoint entry")
    text = json.dumps(entry["body"], sort_keys=True, allow_nan=False, separators=(",", ":"))
    if hashlib.sha256(text.encode()).hexdigest() != entry["sha256"]:
        raise ValueError(f"{path}, line {lineno}: checksum mismatch (the checkpoint was edited or damaged); "
                         "delete it and run again")
    return entry["body"]


def file_fingerprint(path) -> dict:
    """{path, size, mtime_ns, sha256}: SHA-256 of the whole file up to 8 MiB, else of 64
    blocks of 64 KiB spread evenly over it (first and last block included)."""
    p = Path(path)
    st = p.stat()
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        if st.st_size <= WHOLE_FILE_BYTES:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
            how = "whole"
        else:
            last = st.st_size - BLOCK
            for k in range(SAMPLE_BLOCKS):
                fh.seek(last * k // (SAMPLE_BLOCKS - 1))
                h.update(fh.read(BLOCK))
            how = f"{SAMPLE_BLOCKS} blocks of {BLOCK} bytes"
    return {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": h.hexdigest(),
            "hashed": how}


def _input_files(frames_or_path, source) -> list[str] | None:
    """The files the frames are read from, when they are known (FrameSource of files)."""
    backend = getattr(source, "_backend", None)
    files = getattr(backend, "files", None)
    if files:
        return sorted({str(f) for f in files})
    name = getattr(backend, "filename", None)
    if isinstance(name, str) and Path(name).is_file():
        return [name]
    if isinstance(frames_or_path, (str, os.PathLike)):
        p = Path(frames_or_path)
        if p.is_file():
            return [str(p)]
        if p.is_dir():
            return sorted(str(f) for f in p.iterdir() if f.is_file())
    return None


def source_fingerprint(frames_or_path, source) -> dict:
    """What identifies the frames: the input files' fingerprints (``files``), plus a hash of
    the frame selection (``selection``); frames in memory are hashed whole."""
    files = _input_files(frames_or_path, source)
    if files is not None:
        out: dict = {"files": [file_fingerprint(f) for f in files]}
        sel = getattr(source, "_sel", None)
        times = getattr(source, "times_fs", None)
        h = hashlib.sha256()
        if sel is not None:
            h.update(np.ascontiguousarray(sel, dtype=np.int64).tobytes())
        if times is not None and not callable(times):
            h.update(np.ascontiguousarray(times, dtype=np.float64).tobytes())
        out["selection_sha256"] = h.hexdigest()
        return out
    if isinstance(source, (list, tuple)):
        h = hashlib.sha256()
        for fr in source:
            h.update(np.float64(fr.time_fs).tobytes())
            h.update(np.ascontiguousarray(fr.positions, dtype=np.float64).tobytes())
            h.update("|".join(fr.symbols).encode())
        return {"frames_sha256": h.hexdigest()}
    try:
        return {"source_sha256": hashlib.sha256(pickle.dumps(source)).hexdigest()}
    except Exception as exc:  # noqa: BLE001 - any pickling failure means we cannot fingerprint
        raise ValueError(f"checkpoint= needs a picklable frame source, got {type(source).__name__}: {exc}") from None


def _when(ns) -> str:
    try:
        return _dt.datetime.fromtimestamp(ns / 1e9).isoformat(timespec="seconds")
    except (TypeError, ValueError, OverflowError, OSError):
        return repr(ns)


def _input_change(path: Path, old: dict, new: dict) -> str | None:
    """A message naming the input file that changed since the checkpoint was written."""
    # keys come from the checkpoint's JSON as written (a str path; anything else is compared as is)
    old_list = (old.get("source") or {}).get("files") or []
    old_files: dict[Any, dict] = {f.get("path"): f for f in old_list if isinstance(f, dict)}
    new_files = {f["path"]: f for f in (new.get("source") or {}).get("files") or []}
    if not old_files and not new_files:
        return None
    for name in sorted(set(old_files) | set(new_files)):
        a, b = old_files.get(name), new_files.get(name)
        if a is None or b is None:
            what = "is new" if a is None else "is no longer an input"
            return f"{path}: the frames input {name} {what} since this checkpoint was written; delete the checkpoint"
        changes = []
        if a.get("size") != b["size"]:
            changes.append(f"size {a.get('size')} -> {b['size']} bytes")
        if a.get("mtime_ns") != b["mtime_ns"]:
            changes.append(f"modified {_when(a.get('mtime_ns'))} -> {_when(b['mtime_ns'])}")
        if a.get("sha256") != b["sha256"]:
            changes.append("content differs")
        if changes:
            return (f"{path}: the frames file {name} changed since this checkpoint was written ("
                    + ", ".join(changes) + "); its counts would not match the file: delete the checkpoint or "
                    "restore the file")
    return None


class Checkpoint:
    """Per-chunk counts of one run (see the module docstring). ``done`` maps chunk -> result."""

    def __init__(self, path, fingerprint: dict, bounds: list[tuple[int, int]]):
        self.path = Path(path)
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True))
        self.bounds = [tuple(b) for b in bounds]
        self.done: dict[int, dict | None] = {}
        good_bytes = self._read() if self.path.exists() else 0
        if good_bytes == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            header = {"kind": KIND, "version": CHECKPOINT_VERSION, "fingerprint": self.fingerprint}
            tmp = self.path.with_name(self.path.name + ".tmp")
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(_line(header))
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(self.path)
        else:
            with open(self.path, "r+b") as handle:  # drop a partly written last line
                handle.truncate(good_bytes)

    def _read(self) -> int:
        with open(self.path, "rb") as handle:
            data = handle.read()
        lines = data.split(b"\n")
        if len(lines) == 1:  # the header itself was cut short: start again
            return 0
        header = _body(lines[0], self.path, 1)
        if header.get("kind") != KIND:
            raise ValueError(f"{self.path}, line 1: not a clusterdynamicsml dynamics checkpoint")
        if header.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"{self.path}: checkpoint version {header.get('version')!r}, this build writes "
                             f"version {CHECKPOINT_VERSION}; delete it and run again")
        old = header.get("fingerprint") or {}
        if old != self.fingerprint:
            changed = _input_change(self.path, old, self.fingerprint)
            if changed:
                raise ValueError(changed)
            diff = sorted(k for k in set(self.fingerprint) | set(old) if old.get(k) != self.fingerprint.get(k))
            raise ValueError(f"{self.path}: this checkpoint was written for another run (differs in {diff}); "
                             "delete it or pass another checkpoint path")
        good = len(lines[0]) + 1
        # only newline-terminated lines are complete; the text after the last newline is a
        # partly written entry from an interrupted run and is dropped
        for lineno, raw in enumerate(lines[1:-1], start=2):
            entry = _body(raw, self.path, lineno)
            c, res = entry.get("chunk"), entry.get("result")
            if not isinstance(c, int) or not 0 <= c < len(self.bounds) or not isinstance(res, dict) or (
                (res.get("start"), res.get("stop")) != self.bounds[c]
            ):
                raise ValueError(f"{self.path}, line {lineno}: chunk entry does not match the chunk layout of this run")
            n = res["stop"] - res["start"]
            labels, counts = res.get("labels"), res.get("counts")
            if (not isinstance(labels, list) or not isinstance(counts, list) or len(counts) != n
                    or any(not isinstance(row, list) or len(row) != len(labels) for row in counts)
                    or len(res.get("time_fs") or []) != n):
                raise ValueError(f"{self.path}, line {lineno}: chunk {c} holds {len(counts or [])} count rows for "
                                 f"{n} frames; delete the checkpoint and run again")
            if c in self.done and self.done[c] != res:
                raise ValueError(f"{self.path}, line {lineno}: chunk {c} recorded twice with different counts; "
                                 "delete the checkpoint")
            self.done[c] = res
            good += len(raw) + 1
        return good

    def append(self, chunk: int, result: dict, *, keep: bool = True) -> None:
        """Write one finished chunk; ``keep`` also keeps its result in ``done`` (False: only its
        index, as None, when the caller consumes the results itself)."""
        line = _line({"chunk": chunk, "result": result})
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        self.done[chunk] = result if keep else None
