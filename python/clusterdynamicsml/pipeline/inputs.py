"""Opening the frames of a run: the formats the pipeline reads, and a clear message for the
ones it does not.

Text formats are read by :func:`clusterdynamicsml.io.frames.read_frames` (a folder of
one-frame ``.xyz``/``.pdb`` files, ``.xyz``/``.extxyz`` including CP2K ``*-pos-*.xyz``, and
multi-model ``.pdb``). Binary trajectories go through MDAnalysis (the ``[interop]`` extra):
DCD, XTC, TRR and NetCDF need ``[frames] topology`` (a PDB/GRO/PSF of the same atoms), LAMMPS
dumps (``.lammpstrj``, ``.dump``) are read alone and need ``[frames] element_map`` for their
numeric atom types (``["1=Pb", "2=I"]``). Anything else is
``unsupported format: <suffix>; readable formats: ...``.
"""
from __future__ import annotations

from pathlib import Path

from ..io.frames import read_frames
from ..io.pdb import _PDB_SUFFIXES
from ..io.xyz import _XYZ_SUFFIXES
from .config import ConfigError, RunConfig

__all__ = ["open_frames", "frames_kwargs", "READABLE_FORMATS", "MDANALYSIS_FORMATS", "unsupported_message"]

#: suffix -> MDAnalysis format name
MDANALYSIS_FORMATS = {".dcd": "DCD", ".xtc": "XTC", ".trr": "TRR", ".nc": "NCDF", ".ncdf": "NCDF",
                      ".lammpstrj": "LAMMPSDUMP", ".dump": "LAMMPSDUMP"}
_NEEDS_TOPOLOGY = {".dcd", ".xtc", ".trr", ".nc", ".ncdf"}
_COMPRESSED = {".gz": "gunzip", ".bz2": "bunzip2", ".xz": "unxz", ".zip": "unzip", ".zst": "unzstd",
               ".tgz": "tar xzf"}  # suffix -> the command that decompresses it

READABLE_FORMATS = ("a folder of one-frame .xyz or .pdb files, .xyz/.extxyz (CP2K *-pos-*.xyz too), .pdb; "
                    "with MDAnalysis (pip install 'clusterdynamicsml[interop]'): .dcd, .xtc, .trr, .nc with "
                    "[frames] topology (--topology), LAMMPS dump .lammpstrj/.dump with [frames] element_map")


def unsupported_message(path: Path) -> str:
    """Why ``path`` cannot be read as frames, naming its suffix and the readable formats."""
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() in _COMPRESSED else path.suffix.lower()
    if path.suffix.lower() in _COMPRESSED:
        return (f"{path}: compressed file ({suffix}): decompress it first ({_COMPRESSED[path.suffix.lower()]} "
                f"{path.name}); "
                f"readable formats: {READABLE_FORMATS}")
    if suffix == ".json":
        return (f"{path}: a JSON file (a saved run's dataset?), not frames; readable formats: {READABLE_FORMATS}")
    if suffix == ".toml":
        return f"{path}: a run file, not frames (run it with `clusterdynamicsml run {path}`)"
    return f"{path}: unsupported format: {suffix or '(no suffix)'}; readable formats: {READABLE_FORMATS}"


def frames_kwargs(cfg: RunConfig) -> dict:
    """``read_frames`` keywords of [frames] (settings at their neutral value are left out)."""
    f = cfg.frames
    kw = dict(box=cfg.box_value(), timestep_fs=f.timestep_fs, start_time_fs=f.start_time_fs)
    if f.stride != 1:
        kw["stride"] = f.stride
    if f.allow_box_from_extent:
        kw["allow_box_from_extent"] = True
    if f.skip_bad_frames:
        kw["skip_bad_frames"] = True
    if f.element_map:
        kw["element_map"] = cfg.element_map_dict()
    return kw


def open_frames(cfg: RunConfig, kwargs: dict | None = None):
    """The FrameSource of ``[frames] path`` (text formats, or a binary trajectory through
    MDAnalysis); a format that cannot be read is a ConfigError naming ``[frames] path``."""
    path = cfg.resolve_path(cfg.frames.path)
    if path is None:
        raise ConfigError(cfg.source, "frames", "path", "required: the trajectory or frame folder to read")
    kw = frames_kwargs(cfg) if kwargs is None else kwargs
    suffix = path.suffix.lower()
    topology = getattr(cfg.frames, "topology", None)
    if path.is_dir() or suffix in _XYZ_SUFFIXES + _PDB_SUFFIXES:
        if topology is not None:
            raise ConfigError(cfg.source, "frames", "topology", f"only for binary trajectories "
                              f"({', '.join(sorted(_NEEDS_TOPOLOGY))}); {path.name} carries its own atoms")
        return read_frames(str(path), **kw)
    if suffix not in MDANALYSIS_FORMATS:
        raise ConfigError(cfg.source, "frames", "path", unsupported_message(path))
    try:
        import MDAnalysis as mda
    except ImportError:
        raise ConfigError(cfg.source, "frames", "path", f"{path}: reading {suffix} needs MDAnalysis: pip install "
                          "'clusterdynamicsml[interop]'") from None
    fmt = MDANALYSIS_FORMATS[suffix]
    if suffix in _NEEDS_TOPOLOGY and topology is None:
        raise ConfigError(cfg.source, "frames", "topology", f"required for {suffix} trajectories ({path.name} holds "
                          "coordinates only): a PDB, GRO or PSF file of the same atoms (command line --topology)")
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MDAnalysis guesses (masses, bonds) are not ours to report
            if topology is not None:
                universe = mda.Universe(str(cfg.resolve_path(topology)), str(path), format=fmt)
            else:
                universe = mda.Universe(str(path), format=fmt)
    except Exception as exc:  # noqa: BLE001 - MDAnalysis raises many kinds; name the file
        raise ConfigError(cfg.source, "frames", "path",
                          f"{path}: MDAnalysis could not read it as {fmt}"
                          + (f" with topology {topology}" if topology else "")
                          + f": {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    try:
        return read_frames(universe, **kw)
    except ValueError as exc:
        raise ConfigError(cfg.source, "frames", "element_map" if "element" in str(exc) else "path",
                          f"{path}: {exc}") from None
