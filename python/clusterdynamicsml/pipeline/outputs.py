"""What a run folder holds: the list of a run's outputs and the count of files written, stated
the same way by ``summary.txt``, the HTML report and the PowerPoint report.

The reports are written before the dataset, ``run_info.json`` and ``summary.txt`` exist, so the
workflow registers every output the run will write (the reports themselves included) before
it writes the reports, and :func:`output_listing` lists them: a file counts 1 (written or about
to be), a folder counts the files in it (complete when the reports are written). The listing is
saved in ``run_info.json`` and the dataset (``files_written``) and every report reads it from
there, so all three state the same count, which equals the files in the finished run folder.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["output_listing", "files_line", "file_entries", "repoint_json"]


def output_listing(folder: str | os.PathLike, outputs: Mapping[str, str]) -> dict:
    """{"count": files in all outputs, "outputs": [{"path", "files", "folder"}] sorted by path}.
    ``outputs`` maps output names to paths relative to ``folder``."""
    root = Path(folder)
    entries = []
    for rel in sorted(set(outputs.values())):
        p = root / rel
        if p.is_dir():
            n = sum(1 for q in p.rglob("*") if q.is_file())
            entries.append({"path": rel, "files": n, "folder": True})
        else:
            entries.append({"path": rel, "files": 1, "folder": False})
    return {"count": sum(e["files"] for e in entries), "outputs": entries}


def files_line(listing: Mapping) -> str:
    """``files written: N (K outputs: F figure files, folders a/ n, ...)``: one line."""
    entries = listing["outputs"]
    figures = sum(1 for e in entries if not e["folder"] and e["path"].startswith("figures" + os.sep))
    folders = ", ".join(f"{e['path']}/ {e['files']}" for e in entries if e["folder"])
    return (f"files written: {listing['count']} ({len(entries)} outputs: {figures} figure files"
            + (f"; folders {folders}" if folders else "") + ")")


def file_entries(listing: Mapping) -> list[str]:
    """One line per output: its path, a folder with the count of files in it."""
    return [f"{e['path']}/ ({e['files']} files)" if e["folder"] else e["path"] for e in listing["outputs"]]


def listing_of(result) -> dict:
    """The run's saved listing (``info["files_written"]``), else one made from its outputs."""
    saved = (result.info or {}).get("files_written")
    if isinstance(saved, Mapping) and isinstance(saved.get("outputs"), list):
        return dict(saved)
    return output_listing(result.run_dir, result.outputs)


def file_mentions(path: str | os.PathLike, text: str, block: int = 1 << 20) -> bool:
    """Whether the UTF-8 file holds ``text``, read a block at a time (never the whole file)."""
    needle = text.encode("utf-8")
    tail = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            window = tail + chunk
            if needle in window:
                return True
            tail = window[max(0, len(window) - len(needle) + 1):]
    return False


def repoint_json(path: str | os.PathLike, moves: Mapping[str, str]) -> bool:
    """Rewrite every string of the JSON file ``path`` that is, or starts with, a folder of
    ``moves`` ({old folder: new folder}). The file is replaced, never edited in place (a file
    hard-linked from a saved run stays as it was). Returns whether anything changed."""
    import json

    p = Path(path)
    if not any(file_mentions(p, old) for old in moves):  # scanned in blocks: a long run's dynamics JSON is large
        return False
    text = p.read_text(encoding="utf-8")

    def walk(obj):
        if isinstance(obj, dict):
            return {k: walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [walk(v) for v in obj]
        if isinstance(obj, str):
            for old, new in moves.items():
                if obj == old or obj.startswith(old + os.sep):
                    return new + obj[len(old):]
        return obj

    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(walk(json.loads(text)), indent=1) + "\n", encoding="utf-8")  # NaN kept as written
    tmp.replace(p)
    return True
