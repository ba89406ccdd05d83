"""The command line's parser and the translation of its flags into a RunConfig
(``clusterdynamicsml.pipeline.cli`` runs the commands)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

PROG = "clusterdynamicsml"


class CLIError(Exception):
    """An error whose message is shown as is."""


def _version_text() -> str:
    from .. import __version__, get_num_threads, openmp_enabled

    return (
        f"clusterdynamicsml {__version__} (OpenMP {'on' if openmp_enabled() else 'off'}, "
        f"{get_num_threads()} threads)"
    )


# ---------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no usage dump
        raise _UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


class _UsageError(Exception):
    pass


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-j", "--threads", type=int, default=None, metavar="N",
                   help="threads for the C++ kernels (default: run file, else all available)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or step lines")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors; keep failed run folders")


def _cluster_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("clusters and frames (override the run file given with --config)")
    g.add_argument("--config", metavar="RUNFILE", help="take settings from this run file")
    g.add_argument("--node", action="append", metavar="EL[:RES]", help="node element (repeatable)")
    g.add_argument("--linker", action="append", metavar="EL[:RES]", help="linker element (repeatable)")
    g.add_argument("--shell", action="append", metavar="EL[:RES]",
                   help="shell element (repeatable; --shell '' for none)")
    g.add_argument("--cutoff", action="append", metavar="A-B=D",
                   help="pair cutoff in angstrom, A-B=D or A-B=LEVEL:D (repeatable; replaces the run file's)")
    g.add_argument("--default-cutoff", type=float, metavar="D", help="cutoff for pairs not listed (angstrom)")
    g.add_argument("--box", type=float, nargs="+", metavar="L", help="box: 3 lengths, 6 parameters or 9 values")
    g.add_argument("--timestep-fs", type=float, metavar="DT",
                   help="time between frames (fs); overrides missing or broken times in the files")
    g.add_argument("--start-time-fs", type=float, metavar="T", help="time of the first frame (fs) for sequential times")
    g.add_argument("--stride", type=int, metavar="K", help="read every K-th frame")
    g.add_argument("--element-map", action="append", metavar="FROM=TO",
                   help="rename atom names that are not element symbols, e.g. OW=O or 1=Pb (repeatable)")
    g.add_argument("--topology", metavar="FILE", help="topology (PDB/GRO/PSF) of a .dcd/.xtc/.trr/.nc trajectory")
    g.add_argument("--skip-bad-frames", action="store_true", help="skip unreadable frames instead of stopping")
    g.add_argument("--box-from-extent", action="store_true",
                   help="with no box anywhere, estimate one from the coordinate extent (underestimates the box)")
    g.add_argument("--shell-level", action="append", type=int, metavar="N",
                   help="extra shell-growth level (repeatable)")
    g.add_argument("--no-pbc", action="store_true", help="ignore periodic boundaries")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Clusters, cluster dynamics, predicted larger clusters and Debye "
                     "SAXS from MD frames. Units: angstrom, fs, rates per ps, q in 1/angstrom.")
    parser.add_argument("--version", action="store_true", help="print version, OpenMP status and threads")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("-j", "--threads", type=int, default=None, dest="global_threads", metavar="N",
                        help="threads for the C++ kernels")
    parser.add_argument("-q", "--quiet", action="store_true", dest="global_quiet",
                        help="no progress bars or step lines")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    p = sub.add_parser("run", help="run the whole job from a TOML run file")
    p.add_argument("runfile", nargs="?", help="the TOML run file")
    p.add_argument("-o", "--output", metavar="DIR", help="parent folder of the run folder (default: [run] output_dir)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address for the frame chunks")
    p.add_argument("--write-template", metavar="FILE", help="write a run file with every setting and its default")
    p.add_argument("--force", action="store_true", help="with --write-template: overwrite FILE")
    _common(p)

    p = sub.add_parser("example", help="run the whole job on the bundled example")
    p.add_argument("-o", "--output", metavar="DIR", default="cdml_example",
                   help="parent folder of the run folder (default: cdml_example)")
    p.add_argument("--write-runfile", metavar="FILE", help="only write the example's resolved run file")
    _common(p)

    p = sub.add_parser("extract", help="write the structure library (<LABEL>/<frame>_<id>.xyz) from frames")
    p.add_argument("frames", help="frames folder or multi-frame file")
    p.add_argument("-o", "--output", metavar="LIBRARY", required=True, help="library folder to write")
    p.add_argument("--frame-stride", type=int, metavar="K", help="use every K-th frame")
    p.add_argument("--format", choices=("xyz", "pdb"), help="structure file format (default xyz)")
    _cluster_flags(p)
    _common(p)

    p = sub.add_parser("dynamics", help="clusters and dynamics of frames (dataset, CSVs, heatmap, reports)")
    p.add_argument("frames", nargs="?", help="frames folder or file (default: [frames] path of --config)")
    p.add_argument("-o", "--output", metavar="DIR", help="parent folder of the run folder")
    p.add_argument("--frames-per-bin", type=int, metavar="K", help="frames per time bin")
    p.add_argument("--energy", metavar="FILE", help="CP2K .ener file for the energy subplot")
    p.add_argument("--include-percolating", action="store_true",
                   help="count clusters spanning the periodic box under their labels")
    p.add_argument("--checkpoint", metavar="FILE", help="per-chunk counts kept across runs (resume after a kill)")
    _cluster_flags(p)
    _common(p)

    p = sub.add_parser("predict", help="dynamics, library and predicted larger clusters (no SAXS)")
    p.add_argument("runfile", help="the TOML run file")
    p.add_argument("-o", "--output", metavar="DIR", help="parent folder of the run folder")
    _common(p)

    p = sub.add_parser("validate", help="extrapolation validation: train on small clusters, predict larger, compare")
    p.add_argument("runfile", help="the TOML run file")
    p.add_argument("--train-max-nodes", type=int, metavar="K",
                   help="train on node counts <= K (default: the run's split)")
    p.add_argument("--targets", metavar="A-B",
                   help="target node counts A..B (default K+1..2K, capped at the largest observed)")
    p.add_argument("--model", choices=("fisher", "cnt", "geometric", "reference"),
                   help="population model of the 'sizes' rows")
    p.add_argument("--bootstrap", type=int, metavar="N", help="bootstrap replicates (default: [predict] bootstrap)")
    p.add_argument("--json", metavar="OUT.json", help="write the validation JSON here")
    p.add_argument("--figure", metavar="STEM",
                   help="write STEM.png/.svg: observed vs predicted clusters per frame by size")
    _common(p)

    p = sub.add_parser(
        "saxs", help="the SAXS part of a run, or Debye profiles of structure files",
        description="saxs RUNFILE: compute and fit SAXS for a run file. When a finished run of that run file "
        "exists in its output folder (same inputs, same settings for everything before SAXS, same version), its "
        "dynamics, library, prediction and predicted structures are reused and only SAXS, figures and reports "
        "are computed, into a new run folder; otherwise the whole run is computed. One line on stderr says which "
        "and why. saxs STRUCTURE...: Debye profiles of structure files into one CSV.")
    p.add_argument("inputs", nargs="+", help="a TOML run file, or structure files (.xyz/.pdb)")
    p.add_argument("--recompute", action="store_true",
                   help="run file mode: compute the whole run even when a saved run could be reused")
    p.add_argument("-o", "--output", metavar="DIR", help="output folder (structure mode: the CSV file's folder)")
    p.add_argument("--q-min", type=float, default=0.02, help="smallest q (1/angstrom), structure mode")
    p.add_argument("--q-max", type=float, default=1.2, help="largest q (1/angstrom), structure mode")
    p.add_argument("--q-points", type=int, default=250, help="q points, structure mode")
    _common(p)

    p = sub.add_parser("report", help="figures, HTML and PowerPoint from a saved run (dataset JSON or run folder)")
    p.add_argument("dataset", help="<name>_dataset.json or a run folder")
    p.add_argument("-o", "--output", metavar="DIR", help="parent folder of the report folder (default: the run folder)")
    p.add_argument("--formats", nargs="+", choices=("png", "svg", "pdf"), help="figure formats")
    _common(p)

    p = sub.add_parser("batch-run", help="run several run files (local processes or a Dask cluster)")
    p.add_argument("runfiles", nargs="+", help="TOML run files")
    p.add_argument("--workers", type=int, default=1, help="runs at the same time (local processes)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address: run on that cluster")
    p.add_argument("--keep-going", action="store_true", help="continue after a failed run")
    p.add_argument("-o", "--output", metavar="DIR", help="parent folder of the run folders (default: each run file's)")
    _common(p)

    p = sub.add_parser("runs", help="list earlier runs, or compare two runs side by side")
    rs = p.add_subparsers(dest="runs_command", parser_class=_Parser, metavar="list|clean|compare")
    q = rs.add_parser("list", help="list the runs in a folder")
    q.add_argument("folder", help="folder holding run folders (a run file's output_dir)")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q = rs.add_parser("clean", help="remove the *.partial folders that killed runs left in a folder")
    q.add_argument("folder", help="folder holding run folders")
    q = rs.add_parser("compare", help="settings and predictions of two runs side by side")
    q.add_argument("run_a", help="run folder or dataset JSON")
    q.add_argument("run_b", help="run folder or dataset JSON")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    _common(p)
    return parser


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _log_factory(args):
    if args.quiet:
        return None

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return log


def _threads(args) -> int | None:
    t = getattr(args, "threads", None)
    if t is None:
        t = getattr(args, "global_threads", None)
    if t is not None and not 0 <= t <= 4096:
        raise CLIError(f"-j/--threads: expected a number from 0 to 4096, got {t}")
    return t


def _parse_cutoff(text: str):
    if "=" in text:
        pair, dist = text.split("=", 1)
        level = "0"
        if ":" in dist:
            level, dist = dist.split(":", 1)
    else:
        parts = text.split(":")
        if len(parts) == 3:
            pair, level, dist = f"{parts[0]}-{parts[1]}", "0", parts[2]
        elif len(parts) == 4:
            pair, level, dist = f"{parts[0]}-{parts[1]}", parts[2], parts[3]
        else:
            raise CLIError(f"--cutoff {text!r}: expected A-B=D, A-B=LEVEL:D or A:B:D")
    try:
        return pair.strip(), int(level), float(dist)
    except ValueError:
        raise CLIError(f"--cutoff {text!r}: expected A-B=D with D a distance in angstrom") from None


def _config_from_flags(args, frames: str | None = None):
    from .._paths import safe_name
    from ..pipeline.config import ConfigError, RunConfig

    cfg = RunConfig.from_toml(args.config) if getattr(args, "config", None) else RunConfig(
        base_dir=str(Path.cwd()), source="command line")
    cfg = RunConfig.from_dict(cfg.to_dict(), base_dir=cfg.base_dir, source=cfg.source)
    clusters = _clusters_from_flags(args)
    try:
        if clusters:
            cfg = cfg.replace("clusters", **clusters)
        if frames is not None and not getattr(args, "config", None):
            cfg = cfg.replace("run", name=safe_name(Path(frames).stem, default="cdml"))
        frames_kw = _frames_from_flags(args, frames)
        if frames_kw:
            cfg = cfg.replace("frames", **frames_kw)
        dyn_kw = _dynamics_from_flags(args)
        if dyn_kw:
            cfg = cfg.replace("dynamics", **dyn_kw)
    except ConfigError as exc:
        # name the command-line flag rather than the run-file key
        raise CLIError(str(exc).replace(f"{cfg.source}: ", "command line: ", 1)) from None
    return cfg


def _clusters_from_flags(args) -> dict[str, Any]:
    """[clusters] keys set by --node/--linker/--shell, --cutoff, --default-cutoff, --no-pbc, --shell-level."""
    clusters: dict[str, Any] = {}
    for key in ("node", "linker", "shell"):
        if getattr(args, key, None) is not None:  # --shell "" means no shell elements
            clusters[key] = [v for v in getattr(args, key) if v.strip()]
    if getattr(args, "cutoff", None):
        table: dict = {}
        for text in args.cutoff:
            pair, level, dist = _parse_cutoff(text)
            table.setdefault(pair, {})[str(level)] = dist
        clusters["cutoffs"] = table
    if getattr(args, "default_cutoff", None) is not None:
        clusters["default_cutoff"] = args.default_cutoff
    if getattr(args, "no_pbc", False):
        clusters["pbc"] = False
    if getattr(args, "shell_level", None):
        clusters["shell_levels"] = list(args.shell_level)
    return clusters


def _frames_from_flags(args, frames: str | None) -> dict[str, Any]:
    """[frames] keys set by the positional frames path and the frame-reading flags (paths made absolute)."""
    frames_kw: dict[str, Any] = {}
    if frames is not None:
        frames_kw["path"] = str(Path(frames).resolve())
    if getattr(args, "box", None):
        frames_kw["box"] = list(args.box)
    if getattr(args, "timestep_fs", None) is not None:
        frames_kw["timestep_fs"] = args.timestep_fs
    if getattr(args, "start_time_fs", None) is not None:
        frames_kw["start_time_fs"] = args.start_time_fs
    if getattr(args, "stride", None) is not None:
        frames_kw["stride"] = args.stride
    if getattr(args, "element_map", None):
        frames_kw["element_map"] = list(args.element_map)
    if getattr(args, "topology", None):
        frames_kw["topology"] = str(Path(args.topology).resolve())
    if getattr(args, "skip_bad_frames", False):
        frames_kw["skip_bad_frames"] = True
    if getattr(args, "box_from_extent", False):
        frames_kw["allow_box_from_extent"] = True
    if getattr(args, "energy", None):
        frames_kw["energy_file"] = str(Path(args.energy).resolve())
    return frames_kw


def _dynamics_from_flags(args) -> dict[str, Any]:
    """[dynamics] keys set by --frames-per-bin, --include-percolating and --checkpoint."""
    dyn_kw: dict[str, Any] = {}
    if getattr(args, "frames_per_bin", None) is not None:
        dyn_kw["frames_per_bin"] = args.frames_per_bin
    if getattr(args, "include_percolating", False):
        dyn_kw["include_percolating"] = True
    if getattr(args, "checkpoint", None):
        dyn_kw["checkpoint"] = str(Path(args.checkpoint).resolve())
    return dyn_kw
