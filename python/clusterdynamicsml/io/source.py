"""``read_frames`` and ``FrameSource``: a streamed, indexable, picklable sequence of ``Frame`` over
files (byte offsets), folders, Universes, ase.Atoms or frames in memory; box precedence and
``read_structure`` for one-structure files. Units: angstrom, fs."""
from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..geometry.box import MAX_BOX_LENGTHS, Box, far_out_atom
from .cp2k import _name_box
from .interop import _AtomsBackend, _MemoryBackend, _UniverseBackend
from .pdb import _PDB_SUFFIXES, _index_pdb, _parse_pdb
from .records import DEFAULT_TIMESTEP_FS, FileFormatError, Frame, SkippedFrame, _ElementCache, _Parsed
from .timeaxis import (
    _LAST_INT,
    _check_timestep,
    _file_times,
    _folder_file_times,
    _folder_time_axis,
    _infer_dt,
    _selection,
    natural_sort_key,
)
from .xyz import _XYZ_SUFFIXES, _index_xyz, _parse_xyz, parse_comment


class _FileBackend:
    """Frames stored in files: entry k is (file, byte range, first line). Picklable."""

    def __init__(self, files, kind, file_ids, offsets, ends, lines, single, element_map, header_boxes):
        self.files = list(files)
        self.kind = kind  # "xyz" or "pdb"
        self.file_ids = np.asarray(file_ids, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.ends = np.asarray(ends, dtype=np.int64)  # -1: to the end of the file
        self.lines = np.asarray(lines, dtype=np.int64)
        self.single = single  # one frame per file (a folder)
        self.element_map = dict(element_map) if element_map else None
        self.header_boxes = header_boxes  # {file id: Box} from PDB headers

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_elements"}

    def _cache(self) -> _ElementCache:
        cache = getattr(self, "_elements", None)
        if cache is None:
            cache = self._elements = _ElementCache(self.element_map)
        return cache

    def location(self, entry: int) -> tuple[str, int]:
        return self.files[self.file_ids[entry]], int(self.lines[entry])

    def read(self, entry: int, handles: dict | None = None) -> tuple[_Parsed, str]:
        fid = int(self.file_ids[entry])
        path = self.files[fid]
        start, end = int(self.offsets[entry]), int(self.ends[entry])
        fh = handles.get(fid) if handles is not None else None
        if fh is None:
            if handles is not None:
                for old in handles.values():
                    old.close()
                handles.clear()
            fh = open(path, "rb")  # noqa: SIM115  (kept open in ``handles`` across reads; closed below otherwise)
            if handles is not None:
                handles[fid] = fh
        try:
            fh.seek(start)
            data = fh.read() if end < 0 else fh.read(end - start)
        finally:
            if handles is None:
                fh.close()
        line0 = int(self.lines[entry])
        if self.kind == "xyz":
            parsed = _parse_xyz(data, path, line0, self.single, self._cache())
        else:
            parsed = _parse_pdb(data, path, line0, self.single, self._cache(), self.header_boxes.get(fid))
        return parsed, path


class FrameSource:
    """A streamed, indexable, picklable sequence of ``Frame``.

    Built by ``read_frames``. Iterating reads one frame at a time; ``len(source)`` and
    ``source[k]`` use the index built once (byte offsets), ``source[a:b:s]`` (or an integer
    array) is a new FrameSource over that selection, ``source.chunk(a, b)`` iterates frames ``a..b-1``
    (their ``Frame.index`` is their position in this source). Pickling keeps paths and
    offsets, never frames (Universe / ase backends pickle their objects).

    Attributes
    ----------
    timestep_fs : float, the frame spacing (fs) used for the time axis.
    time_source : where the times came from: ``"metadata"`` (export JSON), ``"file"``
        (extended-XYZ ``time=`` or CP2K comments), ``"frame_names"`` (``frame_<N>``
        times the timestep), ``"sequential"`` (start + k x timestep), ``"universe"``,
        ``"frames"`` (Frame objects given).
    box_source : ``"argument"``, ``"file"`` (Lattice / CRYST1 / Universe dimensions / ase
        cell), ``"name"`` (CP2K ``_pbc_<L>`` naming), ``"extent"`` (opt-in estimate) or
        ``"none"``.
    warnings : list[str] of time-axis and box notes.
    skipped : list[SkippedFrame] (with ``skip_bad_frames=True``).
    times_fs : float64 (len,) times of the selected frames (no frame is read).
    source_indices : int64 (len,) frame numbers of the selected frames.
    """

    def __init__(self, backend, times, src_index, *, box=None, fallback_box=None, box_source="none",
                 time_source="sequential", timestep_fs=DEFAULT_TIMESTEP_FS, path="", warnings=None,
                 skipped=None, selection=None):
        self._backend = backend
        self._times = np.asarray(times, dtype=np.float64)
        self._src = np.asarray(src_index, dtype=np.int64)
        self._sel = (np.arange(len(self._times), dtype=np.int64) if selection is None
                     else np.asarray(selection, dtype=np.int64))
        self._box = box
        self._fallback_box = fallback_box
        self.box_source = box_source
        self.time_source = time_source
        self.timestep_fs = float(timestep_fs)
        self._base_timestep_fs = self.timestep_fs   # spacing of consecutive file frames
        self.path = str(path)
        self.warnings: list[str] = list(warnings or [])
        self.skipped: list[SkippedFrame] = list(skipped or [])

    # -- sequence protocol
    def __len__(self) -> int:
        return int(self._sel.size)

    def __iter__(self) -> Iterator[Frame]:
        return self.chunk(0, len(self))

    def __getitem__(self, key):
        if isinstance(key, slice):
            return self._with_selection(self._sel[key])
        if isinstance(key, (int, np.integer)):
            k = int(key)
            n = len(self)
            if k < 0:
                k += n
            if not 0 <= k < n:
                raise IndexError(f"frame index {key} out of range for {n} frames")
            return self._frame(k, None)
        if isinstance(key, (list, tuple, np.ndarray)):
            idx = np.asarray(key)
            if idx.size == 0:
                idx = idx.astype(np.int64)
            if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
                raise TypeError(f"FrameSource index arrays must be 1-D integers, got {idx.dtype} {idx.shape}")
            return self._with_selection(self._sel[idx])
        raise TypeError(f"FrameSource indices must be integers, slices or integer arrays, not {type(key).__name__}")

    def chunk(self, start: int, stop: int) -> Iterator[Frame]:
        """Iterate frames ``start .. stop - 1`` of this source (clipped to its length), one at
        a time, keeping the file open between frames. ``Frame.index`` is the position in
        this source, so chunk results can be put back in order."""
        n = len(self)
        start, stop = max(0, int(start)), min(n, int(stop))
        handles: dict = {}
        try:
            for k in range(start, stop):
                yield self._frame(k, handles)
        finally:
            for fh in handles.values():
                fh.close()

    def chunks(self, size: int) -> list[tuple[int, int]]:
        """(start, stop) ranges of at most ``size`` frames covering the source in order."""
        size = int(size)
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        n = len(self)
        return [(a, min(a + size, n)) for a in range(0, n, size)]

    # -- metadata
    @property
    def times_fs(self) -> np.ndarray:
        return self._times[self._sel].copy()

    @property
    def source_indices(self) -> np.ndarray:
        return self._src[self._sel].copy()

    @property
    def box(self) -> Box | None:
        """The box applied to frames that carry none of their own (explicit, name, extent)."""
        return self._box if self._box is not None else self._fallback_box

    def __repr__(self) -> str:
        return (f"FrameSource({self.path!r}, frames={len(self)}, time_source={self.time_source!r}, "
                f"box_source={self.box_source!r}, timestep_fs={self.timestep_fs})")

    def __getstate__(self):
        """Pickle only what the selection needs: a chunk ``source[a:b]`` sent to a worker
        carries b - a entries of the index (and only their files), not the whole trajectory's."""
        state = self.__dict__.copy()
        backend, sel = self._backend, self._sel
        if len(sel) == len(self._times):
            return state
        if isinstance(backend, _FileBackend):
            fids = backend.file_ids[sel]
            used, inverse = np.unique(fids, return_inverse=True)
            state["_backend"] = _FileBackend(
                [backend.files[i] for i in used], backend.kind, inverse.reshape(-1), backend.offsets[sel],
                backend.ends[sel], backend.lines[sel], backend.single, backend.element_map,
                {new: backend.header_boxes[int(old)] for new, old in enumerate(used)
                 if int(old) in backend.header_boxes})
        elif isinstance(backend, _AtomsBackend):
            state["_backend"] = _AtomsBackend([backend.images[i] for i in sel])
        elif isinstance(backend, _MemoryBackend):
            state["_backend"] = _MemoryBackend([backend.frames[i] for i in sel])
        else:  # a Universe pickles as a whole anyway
            return state
        state["_times"], state["_src"] = self._times[sel], self._src[sel]
        state["_sel"] = np.arange(len(sel), dtype=np.int64)
        return state

    # -- internals
    def _with_selection(self, sel) -> FrameSource:
        new = FrameSource.__new__(FrameSource)
        new.__dict__.update(self.__dict__)
        new._sel = np.asarray(sel, dtype=np.int64)
        # a uniform selection (stride s) of frames dt apart is frames s x dt apart: the
        # timestep follows, so frames_per_bin and the last-frame exposure of the dynamics
        # count selected frames; other selections keep the timestep they came with
        step = np.diff(new._sel)
        if step.size and step[0] > 0 and np.all(step == step[0]):
            base = getattr(self, "_base_timestep_fs", self.timestep_fs)
            new.timestep_fs = float(base * int(step[0]))
        new.warnings = list(self.warnings)
        new.skipped = list(self.skipped)
        return new

    def _frame(self, k: int, handles) -> Frame:
        entry = int(self._sel[k])
        parsed, src = self._backend.read(entry, handles)
        if self._box is not None:
            box = self._box
        elif parsed.file_box is not None:
            box = parsed.file_box
        else:
            box = self._fallback_box
        far = far_out_atom(parsed.positions, box)
        if far is not None:
            raise ValueError(f"{src}: frame {int(self._src[entry])}, atom {far + 1} ({parsed.symbols[far]}) at "
                             f"{parsed.positions[far].tolist()} A is more than {MAX_BOX_LENGTHS:g} box lengths "
                             f"({float(np.min(box.heights)):.6g} A) from the origin: wrapping it into the box "
                             "would lose its position")
        return Frame(index=k, source_index=int(self._src[entry]), time_fs=float(self._times[entry]),
                     symbols=parsed.symbols, positions=parsed.positions, box=box,
                     residues=parsed.residues, residue_ids=parsed.residue_ids, atom_names=parsed.atom_names,
                     source=src, info=parsed.info)


def read_frames(path, box=None, timestep_fs=None, *, start=None, stop=None, stride=1,
                allow_box_from_extent=False, skip_bad_frames=False, start_time_fs=None,
                element_map: Mapping[str, str] | None = None, require_box=False) -> FrameSource:
    """Open MD frames for streaming.

    Parameters
    ----------
    path : a folder of one-frame ``.xyz`` or ``.pdb`` files (natural sort on the last integer
        in the name), a multi-frame (extended) XYZ or CP2K ``*-pos-*.xyz`` file, a PDB file
        (MODEL/ENDMDL models are frames), an MDAnalysis ``Universe``, a sequence of
        ``ase.Atoms``, a sequence of ``Frame`` or a ``FrameSource``.
    box : explicit periodic cell (anything ``Box.coerce`` accepts: 3 lengths, 6 parameters,
        (3, 3) rows a, b, c in angstrom); it overrides every box in the files.
    timestep_fs : frame spacing in femtoseconds (default: from the file times, the export
        metadata, else 0.5 fs).
    start, stop, stride : frame selection (Python slice semantics) applied after the time
        axis is resolved, so frame times keep their true values.
    allow_box_from_extent : with no other box, estimate one from the coordinate extent of the
        first frame (recorded in ``warnings``; it underestimates the true box). Off by default.
    skip_bad_frames : leave malformed frames out, recording (file, line, reason) in
        ``source.skipped``; all frames are validated once while indexing.
    start_time_fs : start time for sequential time axes (overrides folder tags / metadata).
    element_map : {raw token: element} for names the rules cannot read (``{"OW": "O"}``,
        LAMMPS type numbers in a Universe).
    require_box : raise ``ValueError`` when no box can be found.

    Returns
    -------
    FrameSource (see its docstring): iterate for ``Frame`` records.

    Box precedence: ``box`` argument, then per-frame Lattice / CRYST1 / Universe dimensions /
    ase cell, then CP2K ``_pbc_<L>`` naming, then (opt-in) the coordinate extent.
    """
    dt_given = _check_timestep(timestep_fs)
    explicit = Box.coerce(box)
    if start_time_fs is not None:
        start_time_fs = float(start_time_fs)
    warnings: list[str] = []
    skipped: list[SkippedFrame] = []

    if isinstance(path, FrameSource):
        src = path
        if explicit is not None:
            src = src._with_selection(src._sel)
            src._box, src.box_source = explicit, "argument"
        return src._with_selection(src._sel[_selection(len(src), start, stop, stride)])

    if isinstance(path, (str, os.PathLike)):
        source = _open_path(Path(path), explicit, dt_given, start_time_fs, element_map, skip_bad_frames,
                            warnings, skipped)
    elif type(path).__module__.split(".")[0] == "MDAnalysis" and hasattr(path, "trajectory"):
        source = _open_universe(path, explicit, dt_given, start_time_fs, element_map, warnings)
    elif isinstance(path, Sequence) or hasattr(path, "__iter__"):
        items = list(path)
        if not items:
            raise ValueError("read_frames got an empty sequence; expected ase.Atoms or Frame objects")
        if all(isinstance(x, Frame) for x in items):
            source = _open_memory(items, explicit, dt_given, warnings)
        elif all(type(x).__module__.split(".")[0] == "ase" and hasattr(x, "get_chemical_symbols") for x in items):
            source = _open_atoms(items, explicit, dt_given, start_time_fs, warnings)
        else:
            raise ValueError("read_frames accepts a path, an MDAnalysis Universe, a sequence of ase.Atoms or of "
                             f"Frame; got a sequence of {type(items[0]).__name__}")
    else:
        raise ValueError("read_frames accepts a path, an MDAnalysis Universe, a sequence of ase.Atoms or of Frame; "
                         f"got {type(path).__name__}")

    if len(source._times) and source.box_source in ("none",) and explicit is None and allow_box_from_extent:
        first = source._frame(0, None) if len(source._sel) else None
        if first is not None and first.n_atoms:
            ext = np.ptp(first.positions, axis=0)
            if np.all(ext > 0):
                source._fallback_box = Box(ext)
                source.box_source = "extent"
                source.warnings.append(
                    f"no box in the input; estimated {ext.round(4).tolist()} A from the coordinate extent of "
                    "the first frame (allow_box_from_extent=True); this underestimates the true box")
    if require_box and source.box_source == "none":
        raise ValueError(f"{source.path}: no periodic box found (no box argument, Lattice/CRYST1, _pbc_ naming); "
                         "pass box=... or allow_box_from_extent=True")
    return source._with_selection(source._sel[_selection(len(source), start, stop, stride)])


def _set_box(source: FrameSource, explicit: Box | None, first: _Parsed | None, name_box, name_label,
             warnings: list) -> None:
    if explicit is not None:
        source._box, source.box_source = explicit, "argument"
        if first is not None and first.file_box is not None and first.file_box != explicit:
            warnings.append("the box argument overrides the box given in the input")
    elif first is not None and first.file_box is not None:
        source.box_source = "file"
        source._fallback_box = name_box
    elif name_box is not None:
        source._fallback_box, source.box_source = name_box, "name"
        warnings.append(f"box {name_box.lengths.round(6).tolist()} A taken from the name {name_label!r}")
    else:
        source.box_source = "none"


def _open_path(path: Path, explicit, dt_given, start_time_fs, element_map, skip_bad, warnings, skipped):
    if not path.exists():
        raise FileNotFoundError(f"frames input not found: {path}")
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file()]
        xyz = [p for p in files if p.suffix.lower() in _XYZ_SUFFIXES]
        pdb = [p for p in files if p.suffix.lower() in _PDB_SUFFIXES]
        if xyz and pdb:
            raise ValueError(f"{path}: the frames folder mixes {len(xyz)} XYZ and {len(pdb)} PDB files; "
                             "keep one format per folder")
        if not xyz and not pdb:
            raise ValueError(f"{path}: no .xyz or .pdb frame files in the folder")
        kind = "xyz" if xyz else "pdb"
        chosen = sorted(xyz or pdb, key=lambda p: natural_sort_key(p.name))
        names = [p.name for p in chosen]
        n = len(chosen)
        backend = _FileBackend([str(p) for p in chosen], kind, np.arange(n), np.zeros(n), np.full(n, -1),
                               np.ones(n), True, element_map, {})
        file_times = None
        if kind == "xyz":
            file_times = _folder_file_times(chosen)
        src_index = []
        for pos_k, nm in enumerate(names):
            m = _LAST_INT.search(Path(nm).stem)
            src_index.append(int(m.group(1)) if m else pos_k)
        times, tsource, dt = _folder_time_axis(path, names, dt_given, start_time_fs, file_times, warnings)
        source = FrameSource(backend, times, src_index, time_source=tsource, timestep_fs=dt, path=str(path),
                             warnings=warnings, skipped=skipped)
    else:
        suffix = path.suffix.lower()
        if suffix in _PDB_SUFFIXES:
            idx = _index_pdb(str(path))
            hb = {0: idx["header_box"]} if idx["header_box"] is not None else {}
            backend = _FileBackend([str(path)], "pdb", np.zeros(len(idx["offsets"])), idx["offsets"], idx["ends"],
                                   idx["lines"], False, element_map, hb)
            n = len(idx["offsets"])
            st = start_time_fs if start_time_fs is not None else 0.0
            dt = dt_given if dt_given is not None else DEFAULT_TIMESTEP_FS
            times = st + dt * np.arange(n, dtype=np.float64)
            if n > 1 and dt_given is None:
                warnings.append(f"no per-frame times in a PDB file; frame times are {st:g} fs + k x {dt:g} fs")
            source = FrameSource(backend, times, np.arange(n), time_source="sequential", timestep_fs=dt,
                                 path=str(path), warnings=warnings, skipped=skipped)
        else:
            if suffix not in _XYZ_SUFFIXES:
                warnings.append(f"{path.name}: unknown extension {suffix!r}; read as XYZ")
            idx = _index_xyz(str(path), skip_bad, skipped)
            n = len(idx["offsets"])
            if n == 0 and not skipped:
                raise FileFormatError(path, 1, "no frames in the file")
            kind, _ = parse_comment(idx["first_comment"])
            label = "CP2K" if kind == "cp2k" else "time="
            times = _file_times(idx["times"], dt_given, label, warnings, where=str(path))
            if times is not None:
                tsource = "file"
                dt = _infer_dt(times, dt_given, warnings)
            else:
                dt = dt_given if dt_given is not None else DEFAULT_TIMESTEP_FS
                st = start_time_fs if start_time_fs is not None else 0.0
                times = st + dt * np.arange(n, dtype=np.float64)
                tsource = "sequential"
                if n > 1 and dt_given is None:
                    warnings.append(f"no per-frame times in the file; frame times are {st:g} fs + k x {dt:g} fs")
            backend = _FileBackend([str(path)], "xyz", np.zeros(n), idx["offsets"], idx["ends"], idx["lines"],
                                   False, element_map, {})
            source = FrameSource(backend, times, np.arange(n), time_source=tsource, timestep_fs=dt, path=str(path),
                                 warnings=warnings, skipped=skipped)
    if skip_bad:
        _validate_all(source)
    first = None
    if len(source._sel):
        first, _ = source._backend.read(int(source._sel[0]))
    name_box, name_label = _name_box(path, source.warnings)
    _set_box(source, explicit, first, name_box, name_label, source.warnings)
    return source


def _validate_all(source: FrameSource) -> None:
    """Read every frame once; drop the malformed ones into ``source.skipped``."""
    keep = []
    backend = source._backend
    handles: dict = {}
    try:
        for entry in source._sel:
            try:
                backend.read(int(entry), handles)
            except FileFormatError as exc:
                source.skipped.append(SkippedFrame(exc.path, exc.line, exc.reason))
                continue
            keep.append(int(entry))
    finally:
        for fh in handles.values():
            fh.close()
    source._sel = np.asarray(keep, dtype=np.int64)


def _open_universe(u, explicit, dt_given, start_time_fs, element_map, warnings):
    backend = _UniverseBackend(u, element_map)
    n = len(backend)
    if dt_given is not None:
        st = start_time_fs if start_time_fs is not None else 0.0
        times, tsource, dt = st + dt_given * np.arange(n), "sequential", dt_given
    else:
        t_ps, guessed = backend.times_ps(warnings)
        times, tsource = t_ps * 1000.0, "universe"
        dt = float(np.median(np.diff(times))) if n > 1 else DEFAULT_TIMESTEP_FS
        if guessed:
            warnings.append("the trajectory has no time step; MDAnalysis assumed 1 ps per frame "
                            "(pass timestep_fs to set it)")
    source = FrameSource(backend, times, np.arange(n), time_source=tsource, timestep_fs=dt,
                         path=backend.filename, warnings=warnings)
    first = backend.read(0)[0] if n else None
    _set_box(source, explicit, first, None, None, source.warnings)
    return source


def _open_atoms(images, explicit, dt_given, start_time_fs, warnings):
    backend = _AtomsBackend(images)
    n = len(backend)
    t = np.array([float(a.info["time"]) if isinstance(a.info.get("time"), (int, float)) else math.nan
                  for a in backend.images])
    times = _file_times(t, dt_given, "atoms.info['time']", warnings)
    if times is not None:
        tsource, dt = "file", _infer_dt(times, dt_given, warnings)
    else:
        dt = dt_given if dt_given is not None else DEFAULT_TIMESTEP_FS
        st = start_time_fs if start_time_fs is not None else 0.0
        times, tsource = st + dt * np.arange(n), "sequential"
        if n > 1 and dt_given is None:
            warnings.append(f"no per-frame times in the ase.Atoms; frame times are {st:g} fs + k x {dt:g} fs")
    source = FrameSource(backend, times, np.arange(n), time_source=tsource, timestep_fs=dt, path="ase.Atoms",
                         warnings=warnings)
    first = backend.read(0)[0]
    if first.info.get("pbc") is not None:
        source.warnings.append("partly periodic ase cell (pbc not all True) is treated as fully periodic")
    _set_box(source, explicit, first, None, None, source.warnings)
    return source


def _open_memory(frames, explicit, dt_given, warnings):
    backend = _MemoryBackend(frames)
    times = np.array([f.time_fs for f in frames], dtype=np.float64)
    dt = _infer_dt(times, dt_given, warnings) if len(frames) > 1 else (dt_given or DEFAULT_TIMESTEP_FS)
    source = FrameSource(backend, times, [f.source_index for f in frames], time_source="frames", timestep_fs=dt,
                         path="frames", warnings=warnings)
    _set_box(source, explicit, backend.read(0)[0], None, None, source.warnings)
    return source


def read_structure(path, *, element_map: Mapping[str, str] | None = None) -> Frame:
    """Read one structure (a one-frame ``.xyz``/``.extxyz`` or ``.pdb`` file, e.g. a
    structure-library file) without building a FrameSource.

    Same rules and errors as the one-frame files of a frames folder (blank atom lines
    dropped; a second frame is a FileFormatError). Returns a Frame with index 0,
    source_index 0, ``time_fs`` from an extended-XYZ ``time=`` or CP2K comment (else 0.0),
    and the box of the file's Lattice / CRYST1 (else None).
    """
    path = Path(path)
    data = path.read_bytes()
    cache = _ElementCache(element_map)
    if path.suffix.lower() in _PDB_SUFFIXES:
        parsed = _parse_pdb(data, str(path), 1, True, cache)
    else:
        parsed = _parse_xyz(data, str(path), 1, True, cache)
    return Frame(index=0, source_index=0, time_fs=float(parsed.time_fs) if parsed.time_fs is not None else 0.0,
                 symbols=parsed.symbols, positions=parsed.positions, box=parsed.file_box, residues=parsed.residues,
                 residue_ids=parsed.residue_ids, atom_names=parsed.atom_names, source=str(path), info=parsed.info)
