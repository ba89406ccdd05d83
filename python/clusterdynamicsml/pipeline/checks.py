"""Checks of a run's inputs, before and while it runs: each problem is a ConfigError naming
the run-file key (and the file, frame or line), raised before anything long runs.

``preflight(cfg, steps)`` runs before the run folder is made (cluster rules, energy file,
experimental SAXS files, a half-written library); ``check_frames(cfg, frames)`` runs once
the frames are open (elements of the rules present, a time axis that is known, not guessed).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..clusters.extract import ClusterRules
from ..io.energy import read_cp2k_ener
from ..io.frames import EXPORT_METADATA_NAME
from ..library.write import METADATA_NAME
from ..pipeline.config import ConfigError, RunConfig
from ..saxs.expdata import load_saxs_data

__all__ = ["preflight", "check_library", "check_frames", "cluster_rules", "for_users"]


#: Python keywords in stage messages -> the run-file key and command-line flag a user sets
_USER_WORDS = (
    ("include_percolating=True", "[dynamics] include_percolating = true (--include-percolating)"),
    ("pass element_map={...}", "set [frames] element_map (--element-map FROM=TO)"),
    ("pass element_map={type or name: element}", "set [frames] element_map (--element-map FROM=TO)"),
    ("element_map={...}", "[frames] element_map (--element-map FROM=TO)"),
    ("(pass timestep_fs to set it)", "(set [frames] timestep_fs, --timestep-fs)"),
    ("timestep_fs=", "[frames] timestep_fs (--timestep-fs)"),
    ("pass box=... or allow_box_from_extent=True", "set [frames] box (--box) or allow_box_from_extent (--box-from-extent)"),
    ("allow_box_from_extent=True", "[frames] allow_box_from_extent = true (--box-from-extent)"),
    ("pass resume=True to continue it", "extract into it again to continue it"),
)


def for_users(text: str) -> str:
    """A stage message with its Python keywords replaced by the run-file key and CLI flag."""
    text = str(text)
    for old, new in _USER_WORDS:
        text = text.replace(old, new)
    return text


def cluster_rules(cfg: RunConfig) -> ClusterRules:
    """ClusterRules from [clusters]; a bad rule is a ConfigError naming [clusters]."""
    try:
        return ClusterRules.from_dict(cfg.cluster_rules_dict())
    except ValueError as exc:
        raise ConfigError(cfg.source, "clusters", None, str(exc)) from None


def preflight(cfg: RunConfig, steps=None) -> None:
    """Cheap checks of the inputs before any folder is made or anything long runs: the cluster
    rules, the energy file and the experimental SAXS files. A problem is a ConfigError naming
    the run-file key (and the stage's message, which names the file and line)."""
    def wanted(step):
        return steps is None or step in steps

    if wanted("library") and cfg.library.path is not None and (cfg.predict.enabled or cfg.saxs.enabled):
        check_library(cfg)
    if wanted("dynamics"):
        if cfg.frames.energy_file is not None:
            try:
                energy = read_cp2k_ener(str(cfg.resolve_path(cfg.frames.energy_file)))
            except (ValueError, OSError) as exc:
                raise ConfigError(cfg.source, "frames", "energy_file", str(exc)) from None
            if cfg.frames.timestep_fs is None and _not_increasing(energy.time_fs):
                raise ConfigError(cfg.source, "frames", "energy_file",
                                  f"{energy.filepath}: the time column is not strictly increasing ("
                                  f"{_first_stall(energy.time_fs)}); set [frames] timestep_fs (--timestep-fs) "
                                  "to place the energies on the frames' time axis by their step numbers")
    if wanted("saxs") and cfg.saxs.enabled and cfg.predict.enabled and (cfg.saxs.experimental or cfg.saxs.solvent_file):
        unit = {"auto": None, "1/A": "A^-1", "1/nm": "nm^-1"}[cfg.saxs.q_units]
        ranges = []
        for key, paths in (("experimental", cfg.saxs.experimental), ("solvent_file", [cfg.saxs.solvent_file])):
            for p in paths:
                if p is None:
                    continue
                try:
                    data = load_saxs_data(str(cfg.resolve_path(p)), q_unit=unit)
                except (ValueError, OSError) as exc:
                    raise ConfigError(cfg.source, "saxs", key, str(exc)) from None
                if key == "experimental":
                    ranges.append((float(data.q[0]), float(data.q[-1])))
        if ranges:
            sc = cfg.saxs
            d_lo, d_hi = min(r[0] for r in ranges), max(r[1] for r in ranges)
            lo = max(sc.fit_q_min if sc.fit_q_min is not None else sc.q_min, sc.q_min, d_lo)
            hi = min(sc.fit_q_max if sc.fit_q_max is not None else sc.q_max, sc.q_max, d_hi)
            if not lo < hi:
                raise ConfigError(cfg.source, "saxs", "fit_q_max" if sc.fit_q_max is not None else "q_max",
                                  f"the fit range [{lo:g}, {hi:g}] 1/A is empty: the model covers "
                                  f"{sc.q_min:g}..{sc.q_max:g} and the data {d_lo:.4g}..{d_hi:.4g} 1/A")
    if wanted("dynamics") or wanted("library"):
        cfg.check_clusters()
        cluster_rules(cfg)


def check_library(cfg: RunConfig) -> None:
    """[library] path must be a finished library: one whose extraction metadata says
    ``in_progress`` (a killed ``extract``) is refused, naming how far it got and how to finish it."""
    folder = cfg.resolve_path(cfg.library.path)
    if folder is None:
        return
    meta_path = folder / METADATA_NAME
    if not folder.is_dir():
        raise ConfigError(cfg.source, "library", "path", f"{folder}: not a folder (expected <LABEL>/*.xyz|pdb)")
    if not meta_path.is_file():
        return  # a library made by other tools: no record of how it was written
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(cfg.source, "library", "path", f"{meta_path}: unreadable ({exc})") from None
    status = meta.get("status") if isinstance(meta, dict) else None
    if status == "completed":
        return
    frames: dict[str, Any] = {}
    if isinstance(meta, dict) and isinstance(meta.get("frames"), dict):
        frames = meta["frames"]
    done, total = frames.get("n_frames"), frames.get("n_frames_expected")
    how_far = f"{done} of {total} frames" if total is not None else f"{done} frames"
    raise ConfigError(cfg.source, "library", "path",
                      f"{folder} is a half-written library (status {status!r}, {how_far} extracted; the extract "
                      f"was interrupted): finish it with `clusterdynamicsml extract FRAMES -o {folder}` (it resumes "
                      "where it stopped) or leave [library] path unset to write the library from the frames")


def _elements(specs) -> list[str]:
    return list(dict.fromkeys(s.split(":", 1)[0] for s in specs))


def check_frames(cfg: RunConfig, frames, warn=None, *, need_time: bool = True) -> None:
    """Checks of the open frames against the settings.

    * The node and linker elements must occur in the first frame: none of the node (or none
      of the linker) elements there is an error naming the elements present; some of them
      missing is a warning (``warn(message)``).
    * The time axis must be known: frames without per-frame times (no time in the file, no
      export metadata) need ``[frames] timestep_fs`` (CLI ``--timestep-fs``); the reference
      default of 0.5 fs is used only when the user sets it.
    """
    path = cfg.resolve_path(cfg.frames.path)
    try:
        first = frames[0]
    except (TypeError, IndexError, KeyError):
        first = None
    if first is not None:
        present = sorted(set(first.symbols))
        where = f"the first frame of {path}" if path is not None else "the first frame"
        for key in ("node", "linker"):
            wanted = _elements(getattr(cfg.clusters, key))
            missing = [e for e in wanted if e not in present]
            if wanted and len(missing) == len(wanted):
                raise ConfigError(cfg.source, "clusters", key,
                                  f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in {where} "
                                  f"(elements present: {', '.join(present) or 'none'}); set [clusters] {key} "
                                  f"(command line --{key}) to elements of these frames")
            if missing and warn is not None:
                warn(f"clusters: {key} element(s) {', '.join(missing)} not in {where} (elements present: "
                     f"{', '.join(present)})")
    times = getattr(frames, "times_fs", None)
    if need_time and times is not None and not callable(times) and len(times) > 1:
        steps = np.diff(np.asarray(times, dtype=float))
        if np.any(steps <= 0):
            k = int(np.flatnonzero(steps <= 0)[0])
            raise ConfigError(cfg.source, "frames", "timestep_fs",
                              f"{path}: the frame times in the file are not strictly increasing (frame {k + 1} at "
                              f"{times[k + 1]:g} fs after {times[k]:g} fs, as a CP2K REFTRAJ run writes them); set "
                              "[frames] timestep_fs (command line --timestep-fs) to the time between frames to use "
                              "sequential times instead")
    if need_time and cfg.frames.timestep_fs is None and len(frames) > 1 and _time_guessed(frames, path):
        raise ConfigError(cfg.source, "frames", "timestep_fs",
                          f"{path}: the frames carry no times and no timestep was given: set [frames] timestep_fs "
                          "(command line --timestep-fs) to the time between frames in fs (0.5 is the reference "
                          "tool's default; set it if that is what you mean)")


def _time_guessed(frames, path: Path | None) -> bool:
    """True when the reader fell back to its default timestep (no time in the files, no
    export metadata giving the frame spacing)."""
    source = getattr(frames, "time_source", None)
    if source not in ("sequential", "frame_names"):
        return False
    if path is not None and path.is_dir() and (path / EXPORT_METADATA_NAME).is_file():
        try:
            meta = json.loads((path / EXPORT_METADATA_NAME).read_text(encoding="utf-8"))
            if (meta.get("selection") or {}).get("frame_timestep_fs") is not None:
                return False
        except (OSError, ValueError, AttributeError):
            pass
    return True


def _not_increasing(t) -> bool:
    t = np.asarray(t, dtype=float)
    return t.size > 1 and bool(np.any(np.diff(t) <= 0))


def _first_stall(t) -> str:
    t = np.asarray(t, dtype=float)
    k = int(np.flatnonzero(np.diff(t) <= 0)[0])
    return f"row {k + 2} at {t[k + 1]:g} fs after {t[k]:g} fs"


def energy_for_frames(cfg: RunConfig, frames, warn=None):
    """The ``[frames] energy_file`` as EnergyData on the frames' time axis (None when unset).

    A CP2K REFTRAJ run writes time 0 on every row. With ``[frames] timestep_fs`` given, such an
    energy file is placed by its step numbers: the frames' own CP2K step numbers (``i =``) give
    the steps per frame, else one energy row per frame is assumed; a warning names the file."""
    import dataclasses

    path = cfg.resolve_path(cfg.frames.energy_file)
    if path is None:
        return None
    energy = read_cp2k_ener(str(path))
    if not _not_increasing(energy.time_fs):
        return energy
    dt = cfg.frames.timestep_fs
    if dt is None:  # preflight refuses this; kept for direct callers
        raise ConfigError(cfg.source, "frames", "energy_file", f"{path}: the time column is not strictly increasing")
    steps = np.asarray(energy.step, dtype=float)
    t0 = float(np.asarray(frames.times_fs)[0]) if getattr(frames, "times_fs", None) is not None else 0.0
    frame_steps = []
    if len(frames) > 1:
        frame_steps = [frames[k].info.get("step") for k in (0, 1)]
    if all(isinstance(x, (int, float)) for x in frame_steps) and len(frame_steps) == 2 and frame_steps[1] > frame_steps[0]:
        per_step, step0 = dt / (frame_steps[1] - frame_steps[0]), float(frame_steps[0])
        how = f"the frames' CP2K steps ({frame_steps[1] - frame_steps[0]:g} steps per frame)"
    else:
        gaps = np.diff(steps)
        gap = float(np.median(gaps[gaps > 0])) if np.any(gaps > 0) else 1.0
        per_step, step0 = dt / gap, float(steps[0])
        how = "one energy row per frame"
    times = t0 + (steps - step0) * per_step
    if _not_increasing(times):
        raise ConfigError(cfg.source, "frames", "energy_file", f"{path}: neither the time nor the step column "
                          "increases; the energies cannot be placed on the frames' time axis")
    if warn is not None:
        warn(f"frames: {path}: the time column is not strictly increasing ({_first_stall(energy.time_fs)}); the "
             f"energies follow the frames' time axis by their step numbers ({how}, {per_step:g} fs per step)")
    return dataclasses.replace(energy, time_fs=times)
