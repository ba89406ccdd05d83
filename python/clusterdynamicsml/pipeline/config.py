"""The run file: a validated, immutable tree of settings loaded from TOML.

``RunConfig.from_toml(path)`` reads a run file, ``RunConfig.from_dict(d)`` builds one from a
dictionary (same layout), ``to_dict()`` / ``to_toml()`` write it back. Every setting has a
default; ``RunConfig().to_toml(template=True)`` (the CLI: ``clusterdynamicsml run
--write-template FILE``) writes the full file with a comment per setting.

Relative paths resolve against the folder of the run file (``RunConfig.base_dir``).
Unknown keys and wrong types are rejected with one line naming the file, section and key::

    run.toml: [dynamics] frames_per_bin: expected an integer, got 'two'

Optional settings that are unset (``None``) are omitted from the TOML (TOML has no null);
the template lists them as commented lines.

Units: angstrom, femtoseconds, q in inverse angstrom.
"""
from __future__ import annotations

import dataclasses
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "ConfigError",
    "RunConfig",
    "RunSettings",
    "FramesConfig",
    "ClustersConfig",
    "DynamicsConfig",
    "LibraryConfig",
    "PredictConfig",
    "SaxsConfig",
    "ReportConfig",
    "PairCutoff",
]


class ConfigError(ValueError):
    """A bad run file setting. ``str(err)`` is one line naming the source, section and key."""

    def __init__(self, source: str, section: str | None, key: str | None, message: str):
        self.source = source
        self.section = section
        self.key = key
        where = source
        if section:
            where += f": [{section}]"
        if key:
            where += (" " if section else ": ") + key
        super().__init__(f"{where}: {message}")


# ---------------------------------------------------------------------------------------
# field specification helpers
# ---------------------------------------------------------------------------------------
_KINDS = {"str", "int", "float", "bool", "path", "choice", "str_list", "int_list", "float_list",
          "path_list", "cutoffs", "path_table"}


def _f(default, kind: str, help: str, *, optional: bool = False, choices: tuple = (),
       minimum: float | None = None, exclusive_minimum: bool = False, example: Any = None,
       lengths: tuple[int, ...] = ()):
    assert kind in _KINDS, kind
    meta = {"kind": kind, "help": help, "optional": optional, "choices": tuple(choices),
            "minimum": minimum, "exclusive_minimum": exclusive_minimum, "example": example,
            "lengths": tuple(lengths)}
    return field(default=default, metadata=meta)


def _describe(value) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


_TYPE_WORDS = {"str": "a string", "path": "a path (string)", "int": "an integer", "float": "a number",
               "bool": "true or false", "choice": "one of", "str_list": "a list of strings",
               "int_list": "a list of integers", "float_list": "a list of numbers",
               "path_list": "a list of paths (strings)", "cutoffs": "a table of pair cutoffs",
               "path_table": "a table of element = path"}


@dataclass(frozen=True)
class PairCutoff:
    """A pair cutoff: elements ``a``, ``b`` (symmetric), shell ``level`` (0 = core), angstrom."""

    a: str
    b: str
    level: int
    distance: float


_ELEMENT_RE = re.compile(r"^[A-Z][a-z]?$")
_ATOM_SPEC_RE = re.compile(r"^([A-Z][a-z]?)(?::([A-Za-z0-9_+-]+))?$")


def _check_scalar(kind: str, value, meta, fail):
    if kind in ("str", "path"):
        if not isinstance(value, str):
            fail(f"expected {_TYPE_WORDS[kind]}, got {_describe(value)}")
        return value
    if kind == "choice":
        if not isinstance(value, str) or value not in meta["choices"]:
            fail(f"expected one of {', '.join(repr(c) for c in meta['choices'])}, got {_describe(value)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            fail(f"expected true or false, got {_describe(value)}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                fail(f"expected an integer, got {_describe(value)}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"expected a number, got {_describe(value)}")
        value = float(value)
        if not math.isfinite(value):
            fail(f"expected a finite number, got {value!r}")
    minimum = meta["minimum"]
    if minimum is not None:
        if meta["exclusive_minimum"] and not value > minimum:
            fail(f"must be > {minimum:g}, got {value!r}")
        if not meta["exclusive_minimum"] and value < minimum:
            fail(f"must be >= {minimum:g}, got {value!r}")
    return value


def _check_value(kind: str, value, meta, fail):
    if kind.endswith("_list"):
        item_kind = kind[: -len("_list")]
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            fail(f"expected {_TYPE_WORDS[kind]}, got {_describe(value)}")
        out = []
        for k, item in enumerate(value):
            def item_fail(msg, k=k):
                fail(f"item {k + 1}: {msg}")
            out.append(_check_scalar(item_kind, item, {**meta, "choices": meta["choices"]}, item_fail))
        if meta["lengths"] and len(out) not in meta["lengths"]:
            allowed = " or ".join(str(n) for n in meta["lengths"])
            fail(f"expected {allowed} values, got {len(out)}")
        return tuple(out)
    if kind == "cutoffs":
        return _check_cutoffs(value, fail)
    if kind == "path_table":
        return _check_path_table(value, fail)
    return _check_scalar(kind, value, meta, fail)


def _check_path_table(value, fail) -> tuple[tuple[str, str], ...]:
    """TOML form: {O = "dmf.pdb"} (element -> path); stored as sorted (element, path) pairs."""
    if isinstance(value, (tuple, list)) and all(isinstance(v, (tuple, list)) and len(v) == 2 for v in value):
        items = [tuple(v) for v in value]
    elif isinstance(value, dict):
        items = list(value.items())
    else:
        fail(f"expected a table such as {{O = \"dmf.pdb\"}}, got {_describe(value)}")
    out = {}
    for el, path in items:
        if not isinstance(el, str) or not _ELEMENT_RE.match(el):
            fail(f"{el!r} is not an element symbol (such as \"O\")")
        if not isinstance(path, str) or not path:
            fail(f"{el}: expected a path (string), got {_describe(path)}")
        out[el] = path
    return tuple(sorted(out.items()))


def _split_pair(key: str, fail):
    from ..chem import split_pair

    try:
        parts = split_pair(key)
    except ValueError:
        parts = ("", "")
    if not all(_ELEMENT_RE.match(p) for p in parts):
        fail(f"pair {key!r}: expected two element symbols such as \"Pb-I\"")
    return parts[0], parts[1]


def _check_cutoffs(value, fail) -> tuple[PairCutoff, ...]:
    """TOML form: {"Pb-I" = 3.36, "Pb-O" = {0 = 3.36, 1 = 5.0}} (level -> angstrom)."""
    if isinstance(value, (tuple, list)) and all(isinstance(v, PairCutoff) for v in value):
        items = [(c.a, c.b, c.level, c.distance) for c in value]
    elif isinstance(value, dict):
        items = []
        for key, spec in value.items():
            a, b = _split_pair(str(key), fail)
            if isinstance(spec, dict):
                levels = spec.items()
            else:
                levels = [(0, spec)]
            for level, dist in levels:
                try:
                    lev = int(level)
                except (TypeError, ValueError):
                    fail(f"pair {key!r}: shell level must be an integer, got {level!r}")
                if lev < 0:
                    fail(f"pair {key!r}: shell level must be >= 0, got {lev}")
                if isinstance(dist, bool) or not isinstance(dist, (int, float)):
                    fail(f"pair {key!r}: expected a distance in angstrom, got {_describe(dist)}")
                items.append((a, b, lev, float(dist)))
    else:
        fail(f"expected a table such as {{\"Pb-I\" = 3.36}}, got {_describe(value)}")
    out = {}
    for a, b, lev, dist in items:
        if not math.isfinite(dist) or dist <= 0:
            fail(f"pair {a}-{b}: cutoff must be a positive distance in angstrom, got {dist!r}")
        key = (*sorted((a, b)), lev)
        if key in out and out[key][2] != dist:
            fail(f"pair {a}-{b} level {lev} given twice with different distances")
        out.setdefault(key, (a, b, dist))
    return tuple(PairCutoff(a, b, key[2], d) for key, (a, b, d) in sorted(out.items()))


# ---------------------------------------------------------------------------------------
# sections
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSettings:
    """[run]: where and how the job runs."""

    name: str = _f("cdml", "str", "name of the run; used in the run folder and output file names")
    output_dir: str = _f("cdml_runs", "path", "parent folder of the run folders; each run writes "
                         "<output_dir>/<YYYYmmdd_HHMMSS_ffffff>_<name>/ and never overwrites an earlier run")
    threads: int = _f(0, "int", "threads for the C++ kernels (0 = all available)", minimum=0)
    progress: bool = _f(True, "bool", "show a progress bar per long step")
    seed: int = _f(0, "int", "random seed (bootstrap uncertainty, sampling)", minimum=0)


@dataclass(frozen=True)
class FramesConfig:
    """[frames]: the MD frames."""

    path: str | None = _f(None, "path", "REQUIRED: a folder of one-frame .xyz/.pdb files, a multi-frame "
                          "(extended) XYZ file or a CP2K *-pos-*.xyz file", optional=True, example="frames/")
    box: tuple[float, ...] = _f((), "float_list", "periodic box in angstrom: [] = from the files (extended-XYZ "
                                "Lattice, CRYST1, CP2K _pbc_ name); 3 lengths; 6 values a b c alpha beta gamma "
                                "(degrees); or 9 values (rows a, b, c)", lengths=(0, 3, 6, 9))
    timestep_fs: float | None = _f(None, "float", "time between frames in fs (unset: from the files, else 0.5)",
                                   optional=True, minimum=0.0, exclusive_minimum=True, example=0.5)
    start_time_fs: float | None = _f(None, "float", "time of the first frame in fs for sequential time axes "
                                     "(unset: from folder tags / metadata, else 0)", optional=True, example=0.0)
    stride: int = _f(1, "int", "read every stride-th frame", minimum=1)
    allow_box_from_extent: bool = _f(False, "bool", "with no box anywhere, estimate one from the coordinate "
                                     "extent of the first frame (underestimates the true box; recorded as a warning)")
    skip_bad_frames: bool = _f(False, "bool", "skip unreadable frames (recorded in the results) instead of stopping")
    element_map: tuple[str, ...] = _f((), "str_list", "element names to rename while reading, as \"FROM=TO\" "
                                      "(e.g. [\"D=H\", \"OW=O\"]); for atom names that are not element symbols")
    energy_file: str | None = _f(None, "path", "CP2K .ener file for the energy subplot of the heatmap",
                                 optional=True, example="traj.ener")


@dataclass(frozen=True)
class ClustersConfig:
    """[clusters]: atom types and pair cutoffs (angstrom)."""

    node: tuple[str, ...] = _f(("Pb",), "str_list", "node elements; \"El:RES\" limits to a PDB residue name")
    linker: tuple[str, ...] = _f(("I",), "str_list", "linker elements (\"El\" or \"El:RES\")")
    shell: tuple[str, ...] = _f(("O",), "str_list", "shell elements (\"El\" or \"El:RES\"); attached, never connecting")
    cutoffs: tuple[PairCutoff, ...] = _f(
        (PairCutoff("Pb", "I", 0, 3.36), PairCutoff("Pb", "O", 0, 3.36)), "cutoffs",
        "pair cutoffs in angstrom: \"A-B\" = distance (shell level 0) or \"A-B\" = {0 = d0, 1 = d1} per level")
    default_cutoff: float | None = _f(None, "float", "cutoff for pairs not listed (unset: not bonded)",
                                      optional=True, minimum=0.0, exclusive_minimum=True, example=3.0)
    shell_levels: tuple[int, ...] = _f((), "int_list", "extra shell-growth levels (> 0) around node atoms")
    shared_shells: bool = _f(False, "bool", "let one shell atom join several clusters")
    shells_in_label: bool = _f(False, "bool", "count shell atoms in the stoichiometry label")
    pbc: bool = _f(True, "bool", "use periodic boundaries (minimum image); frames must then have a box")
    shell_molecules: bool = _f(False, "bool", "PDB frames: attach whole shell molecules (residues)")


@dataclass(frozen=True)
class DynamicsConfig:
    """[dynamics]: time bins and the analysis window."""

    frames_per_bin: int = _f(1, "int", "frames per time bin of the heatmap", minimum=1)
    start_fs: float | None = _f(None, "float", "start of the analysis window in fs (unset: first frame)",
                                optional=True, example=0.0)
    stop_fs: float | None = _f(None, "float", "end of the analysis window in fs, inclusive (unset: last frame)",
                               optional=True, example=1000.0)
    workers: int = _f(1, "int", "local worker processes for the frames (0 = one per core)", minimum=0)
    chunk_size: int = _f(32, "int", "frames per parallel task (the result does not depend on it)", minimum=1)
    scheduler: str | None = _f(None, "str", "Dask scheduler address to spread frame chunks over a cluster",
                               optional=True, example="tcp://127.0.0.1:8786")
    checkpoint: str | None = _f(None, "path", "file of per-chunk cluster counts kept across runs: running the "
                                "same run file again after an interruption recomputes only the missing chunks "
                                "(no frame lost or counted twice); refused if the inputs changed",
                                optional=True, example="dynamics.ckpt")


@dataclass(frozen=True)
class LibraryConfig:
    """[library]: the structure library of observed clusters (training data)."""

    path: str | None = _f(None, "path", "existing structure library folder (<LABEL>/*.xyz|pdb); unset: "
                          "written from the frames into the run folder", optional=True, example="clusters/")
    frame_stride: int = _f(1, "int", "write the library from every frame_stride-th analysed frame", minimum=1)
    format: str = _f("xyz", "choice", "file format of the library written from the frames (pdb keeps residues)",
                     choices=("xyz", "pdb"))
    max_files_per_label: int | None = _f(None, "int", "write at most this many structure files per label (the "
                                         "first ones in frame order; counts per label still count every "
                                         "cluster; unset: no cap)", optional=True, minimum=1, example=200)


@dataclass(frozen=True)
class PredictConfig:
    """[predict]: the larger-cluster prediction."""

    enabled: bool = _f(True, "bool", "predict larger clusters (needs >= 2 observed node counts)")
    target_node_counts: tuple[int, ...] = _f((), "int_list", "node counts to predict ([] = the two sizes "
                                             "after the largest observed)")
    candidates_per_size: int = _f(3, "int", "candidate stoichiometries kept per target size", minimum=1)
    share_threshold: float = _f(0.02, "float", "prune candidates whose predicted population share is below "
                                "this (the first per size is always kept)", minimum=0.0)
    bootstrap: int = _f(100, "int", "bootstrap resamples for prediction uncertainty (0 = none)", minimum=0)
    validate: bool = _f(True, "bool", "leave-largest-size-out validation")
    observed_targets: str = _f("error", "choice", "requested target node counts at or below the largest "
                               "observed size: an error, or a warning and dropped", choices=("error", "warn"))
    population_transform: str = _f("reference", "choice", "population targets: log1p counts and identity "
                                   "occupancy as the reference tool, or log(y + 1e-4) for both",
                                   choices=("reference", "log"))
    build_structures: bool = _f(True, "bool", "build a predicted structure per retained candidate")
    shell_templates: tuple[tuple[str, str], ...] = _f(
        (), "path_table", "write the predicted structures as PDB with whole shell molecules: element = "
        "one-molecule PDB template, e.g. {O = \"dmf.pdb\"} places a DMF molecule on every built O atom "
        "(ref 4.8 step 6; {} = XYZ files of the built atoms)")


@dataclass(frozen=True)
class SaxsConfig:
    """[saxs]: Debye components, mixtures and the fit (q in 1/angstrom)."""

    enabled: bool = _f(True, "bool", "compute SAXS components and mixtures")
    q_min: float = _f(0.02, "float", "smallest q (1/angstrom)", minimum=0.0)
    q_max: float = _f(1.2, "float", "largest q (1/angstrom)", minimum=0.0, exclusive_minimum=True)
    q_points: int = _f(250, "int", "number of q points", minimum=10)
    method: str = _f("exact", "choice", "Debye kernel: exact double sum, or pair distances binned per "
                     "element pair (faster for large structures)", choices=("exact", "histogram"))
    bin_width: float = _f(0.001, "float", "histogram kernel bin width (angstrom); |I_hist - I_exact| <= "
                          "(q w)^2 / 24 of I(0) (1.7e-7 at q = 2 for 0.001 A)", minimum=0.0, exclusive_minimum=True)
    dw_pairs: str = _f("all", "choice", "Debye-Waller damping on all off-diagonal pairs or only first-shell "
                       "pairs (as the reference tool)", choices=("all", "first_shell"))
    observed_components: str = _f("average", "choice", "observed labels: average over library structures or a "
                                  "single representative with Debye-Waller damping",
                                  choices=("average", "representative"))
    max_structures_per_label: int = _f(50, "int", "average at most this many structures per label "
                                       "(farthest-point sample; 0 = all)", minimum=0)
    experimental: tuple[str, ...] = _f((), "path_list", "experimental SAXS file(s) (q I sigma); several "
                                       "detector files are stitched")
    q_units: str = _f("auto", "choice", "units of q in the experimental files",
                      choices=("auto", "1/A", "1/nm"))
    solvent_file: str | None = _f(None, "path", "solvent/background curve added to the fit with its own "
                                  "non-negative scale", optional=True, example="solvent.txt")
    fit_q_min: float | None = _f(None, "float", "fit range start (1/angstrom; unset: q_min)", optional=True,
                                 example=0.02)
    fit_q_max: float | None = _f(None, "float", "fit range end (1/angstrom; unset: q_max)", optional=True,
                                 example=0.8)
    background: bool = _f(True, "bool", "fit a constant background")
    background_degree: int = _f(0, "int", "also fit a polynomial background c_1 q + ... + c_k q^k of this "
                                "degree (0 = none, at most 6), e.g. for data that are not solvent-subtracted",
                                minimum=0)
    weights: str = _f("population", "choice", "mixture weights: population weights (ref 4.9), or refit by "
                      "NNLS or by maximising the Pearson correlation",
                      choices=("population", "nnls", "pearson"))
    refine_dw_scale: bool = _f(False, "bool", "refine one common scale on all Debye-Waller sigma in the fit")


@dataclass(frozen=True)
class ReportConfig:
    """[report]: figures and reports."""

    figures: bool = _f(True, "bool", "write figures")
    formats: tuple[str, ...] = _f(("png", "svg"), "str_list", "figure formats")
    dpi: int = _f(150, "int", "PNG resolution", minimum=30)
    pptx: bool = _f(True, "bool", "write a PowerPoint report")
    html: bool = _f(True, "bool", "write a self-contained HTML report")
    heatmap_mode: str = _f("fraction", "choice", "heatmap values", choices=("count", "fraction", "mean_count"))
    time_unit: str = _f("auto", "choice", "time unit of the figures (auto: fs for windows shorter than 2 ps)",
                        choices=("auto", "fs", "ps"))
    colormap: str = _f("viridis", "choice", "heatmap colour map",
                       choices=("viridis", "magma", "cividis", "inferno", "turbo"))
    color_quantiles: tuple[float, ...] = _f((0.05, 0.95), "float_list", "lower and upper colour-limit "
                                            "quantiles of the positive heatmap values", lengths=(2,))
    heatmap_max_labels: int = _f(40, "int", "heatmap rows: at most this many labels, the most populated "
                                 "(0 = all labels)", minimum=0)
    energy_column: str = _f("potential", "choice", "energy subplot quantity (when an energy file is given)",
                            choices=("potential", "temperature", "kinetic", "none"))


_SECTIONS: dict[str, type] = {
    "run": RunSettings,
    "frames": FramesConfig,
    "clusters": ClustersConfig,
    "dynamics": DynamicsConfig,
    "library": LibraryConfig,
    "predict": PredictConfig,
    "saxs": SaxsConfig,
    "report": ReportConfig,
}

_PATH_FIELDS = {("run", "output_dir"), ("frames", "path"), ("frames", "energy_file"), ("library", "path"),
                ("dynamics", "checkpoint"),
                ("saxs", "experimental"), ("saxs", "solvent_file"), ("predict", "shell_templates")}


def _build_section(cls, data: dict, section: str, source: str):
    if not isinstance(data, dict):
        raise ConfigError(source, section, None, f"expected a table, got {_describe(data)}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            hint = _close_match(key, known)
            raise ConfigError(source, section, key, "unknown key" + (f" (did you mean {hint!r}?)" if hint else ""))
    values = {}
    for name, fld in known.items():
        if name not in data:
            continue
        raw = data[name]
        meta = fld.metadata

        def fail(msg, name=name):
            raise ConfigError(source, section, name, msg)

        if raw is None:
            if not meta["optional"]:
                fail(f"expected {_TYPE_WORDS[meta['kind']]}, got nothing")
            values[name] = None
            continue
        values[name] = _check_value(meta["kind"], raw, meta, fail)
    obj = cls(**values)
    _check_section(obj, section, source)
    return obj


def _close_match(key, known):
    import difflib

    m = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return m[0] if m else None


def _check_section(obj, section: str, source: str) -> None:
    """Cross-field checks within one section."""
    def fail(key, msg):
        raise ConfigError(source, section, key, msg)

    if section == "clusters":
        for key in ("node", "linker", "shell"):
            for spec in getattr(obj, key):
                if not _ATOM_SPEC_RE.match(spec):
                    fail(key, f"{spec!r} is not an element symbol (\"Pb\") or element:residue (\"O:DMF\")")
        if not obj.node and not obj.linker:
            fail("node", "at least one node or linker element is needed")
        typed = {}
        for key in ("node", "linker", "shell"):
            for spec in getattr(obj, key):
                if spec in typed:
                    fail(key, f"{spec!r} is already a {typed[spec]} type")
                typed[spec] = key
        for lev in obj.shell_levels:
            if lev < 1:
                fail("shell_levels", f"levels must be >= 1 (level 0 is the core), got {lev}")
    if section == "saxs":
        if obj.background_degree > 6:
            fail("background_degree", f"must be <= 6, got {obj.background_degree}")
        if obj.q_max <= obj.q_min:
            fail("q_max", f"must be larger than q_min ({obj.q_min:g}), got {obj.q_max:g}")
        if obj.fit_q_min is not None and obj.fit_q_max is not None and obj.fit_q_max <= obj.fit_q_min:
            fail("fit_q_max", f"must be larger than fit_q_min ({obj.fit_q_min:g}), got {obj.fit_q_max:g}")
    if section == "report":
        for fmt in obj.formats:
            if fmt not in ("png", "svg", "pdf"):
                fail("formats", f"expected 'png', 'svg' or 'pdf', got {fmt!r}")
        lo, hi = obj.color_quantiles
        if not (0.0 <= lo < hi <= 1.0):
            fail("color_quantiles", f"expected 0 <= lower < upper <= 1, got [{lo:g}, {hi:g}]")
    if section == "predict":
        for n in obj.target_node_counts:
            if n < 1:
                fail("target_node_counts", f"node counts must be >= 1, got {n}")


# ---------------------------------------------------------------------------------------
# the tree
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunConfig:
    """All settings of a run. Immutable; build with ``from_toml`` / ``from_dict``; change with
    ``replace(section, **values)``.

    ``base_dir`` is the folder relative paths resolve against (the run file's folder) and
    ``source`` names where the settings came from (used in error messages).
    """

    run: RunSettings = field(default_factory=RunSettings)
    frames: FramesConfig = field(default_factory=FramesConfig)
    clusters: ClustersConfig = field(default_factory=ClustersConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    library: LibraryConfig = field(default_factory=LibraryConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    saxs: SaxsConfig = field(default_factory=SaxsConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    base_dir: str = field(default=".", compare=False)
    source: str = field(default="<settings>", compare=False)

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_dict(cls, data: dict | None = None, *, base_dir: str | Path = ".", source: str = "<settings>") -> RunConfig:
        """Build and validate from a nested dict ``{section: {key: value}}``."""
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise ConfigError(source, None, None, f"expected a table of sections, got {_describe(data)}")
        sections = {}
        for key, value in data.items():
            if key not in _SECTIONS:
                hint = _close_match(key, _SECTIONS)
                if not isinstance(value, dict):
                    raise ConfigError(source, None, key, "unknown key: settings belong in a section such as "
                                      "[frames] or [clusters]" + (f" (did you mean [{hint}]?)" if hint else ""))
                raise ConfigError(source, key, None, "unknown section" + (f" (did you mean [{hint}]?)" if hint else ""))
            sections[key] = _build_section(_SECTIONS[key], value, key, source)
        return cls(**sections, base_dir=str(Path(base_dir).resolve()), source=source)

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        """Read a TOML run file; relative paths in it resolve against its folder."""
        p = Path(path)
        source = p.name if p.name else str(p)
        if not p.is_file():
            raise ConfigError(str(p), None, None, "run file not found")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, None, None, f"not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(source, None, None, "not a text file") from None
        return cls.from_dict(data, base_dir=p.resolve().parent, source=source)

    @classmethod
    def from_toml_string(cls, text: str, *, base_dir: str | Path = ".", source: str = "<string>") -> RunConfig:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, None, None, f"not valid TOML: {exc}") from None
        return cls.from_dict(data, base_dir=base_dir, source=source)

    def replace(self, section: str, **values) -> RunConfig:
        """A copy with some keys of one section changed (validated like a run file)."""
        if section not in _SECTIONS:
            raise ConfigError(self.source, section, None, "unknown section")
        current = _section_to_dict(getattr(self, section), keep_none=True)
        current.update(values)
        new_section = _build_section(_SECTIONS[section], current, section, self.source)
        return dataclasses.replace(self, **{section: new_section})

    def with_base_dir(self, base_dir: str | Path) -> RunConfig:
        return dataclasses.replace(self, base_dir=str(Path(base_dir).resolve()))

    # ----------------------------------------------------------------- paths
    def resolve_path(self, value: str | None) -> Path | None:
        """A path from the run file, resolved against ``base_dir`` (``~`` expanded)."""
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else (Path(self.base_dir) / p).resolve()

    def resolved(self) -> RunConfig:
        """A copy with every path absolute (what is saved next to the results)."""
        out = self
        for section, key in sorted(_PATH_FIELDS):
            value = getattr(getattr(out, section), key)
            if value is None:
                continue
            if key == "shell_templates":
                new = tuple((el, str(self.resolve_path(v))) for el, v in value)
            elif isinstance(value, tuple):
                new = tuple(str(self.resolve_path(v)) for v in value)
            else:
                new = str(self.resolve_path(value))
            out = dataclasses.replace(out, **{section: dataclasses.replace(getattr(out, section), **{key: new})})
        return out

    def element_map_dict(self) -> dict[str, str]:
        """[frames] element_map as a dict; a malformed entry is a ConfigError naming the key."""
        out = {}
        for entry in self.frames.element_map:
            src, sep, dst = entry.partition("=")
            if not sep or not src.strip() or not dst.strip():
                raise ConfigError(self.source, "frames", "element_map",
                                  f"expected entries \"FROM=TO\" such as \"D=H\", got {entry!r}")
            out[src.strip()] = dst.strip()
        return out

    def check_paths(self, *, need_frames: bool = True) -> None:
        """Raise ConfigError naming the first input path that does not exist (or a malformed element_map)."""
        self.element_map_dict()
        if need_frames and self.frames.path is None:
            raise ConfigError(self.source, "frames", "path", "required: the MD frames (folder or file) to analyse")
        checks = [("frames", "path"), ("frames", "energy_file"), ("library", "path"), ("saxs", "solvent_file")]
        for section, key in checks:
            value = getattr(getattr(self, section), key)
            if value is None:
                continue
            p = self.resolve_path(value)
            if not p.exists():
                raise ConfigError(self.source, section, key, f"not found: {p}")
        for value in self.saxs.experimental:
            p = self.resolve_path(value)
            if not p.is_file():
                raise ConfigError(self.source, "saxs", "experimental", f"not found: {p}")
        for el, value in self.predict.shell_templates:
            p = self.resolve_path(value)
            if not p.is_file():
                raise ConfigError(self.source, "predict", "shell_templates", f"{el}: not found: {p}")

    # ----------------------------------------------------------------- output
    def to_dict(self, *, keep_none: bool = False) -> dict:
        """Nested plain dict (TOML-ready: None values omitted unless ``keep_none``)."""
        return {name: _section_to_dict(getattr(self, name), keep_none=keep_none) for name in _SECTIONS}

    def to_toml(self, *, template: bool = False) -> str:
        """TOML text. ``template=True`` adds a comment per setting and lists unset optional
        settings as commented lines."""
        lines = []
        if template:
            lines += [
                "# clusterdynamicsml run file. Every setting is listed with its default.",
                "# Relative paths resolve against the folder of this file.",
                "# Units: angstrom, femtoseconds, q in 1/angstrom. Run: clusterdynamicsml run THIS_FILE",
                "",
            ]
        for name, cls in _SECTIONS.items():
            section = getattr(self, name)
            if template:
                lines.append(f"# {cls.__doc__.strip()}")
            lines.append(f"[{name}]")
            for fld in dataclasses.fields(cls):
                value = getattr(section, fld.name)
                meta = fld.metadata
                if template:
                    lines.append(f"# {meta['help']}")
                if value is None:
                    if template:
                        example = meta["example"]
                        lines.append(f"# {fld.name} = {_toml_value(example, meta['kind'])}")
                    continue
                lines.append(f"{fld.name} = {_toml_value(value, meta['kind'])}")
            lines.append("")
        return "\n".join(lines)

    def write_toml(self, path: str | Path, *, template: bool = False) -> Path:
        from .._io import atomic_write

        return atomic_write(path, self.to_toml(template=template))

    # ----------------------------------------------------------------- helpers for stages
    def cluster_rules_dict(self) -> dict:
        """The [clusters] section in the ``ClusterRules.from_dict`` layout."""
        c = self.clusters
        return {
            "node": list(c.node),
            "linker": list(c.linker),
            "shell": list(c.shell),
            "cutoffs": _cutoffs_nested(c.cutoffs),
            "default_cutoff": c.default_cutoff,
            "shell_levels": list(c.shell_levels),
            "shared_shells": c.shared_shells,
            "shells_in_label": c.shells_in_label,
            "pbc": c.pbc,
            "shell_molecules": c.shell_molecules,
        }

    def box_value(self):
        """The [frames] box as what ``Box.coerce`` takes (None when unset)."""
        box = self.frames.box
        if not box:
            return None
        if len(box) == 9:
            return [list(box[0:3]), list(box[3:6]), list(box[6:9])]
        return list(box)


def _atom_spec(spec: str):
    m = _ATOM_SPEC_RE.match(spec)
    el, res = m.group(1), m.group(2)
    return el if res is None else (el, res)


def _cutoffs_nested(cutoffs) -> dict:
    out: dict = {}
    for c in cutoffs:
        out.setdefault((c.a, c.b), {})[c.level] = c.distance
    return out


def _section_to_dict(section, *, keep_none: bool) -> dict:
    out = {}
    for fld in dataclasses.fields(section):
        value = getattr(section, fld.name)
        if value is None and not keep_none:
            continue
        if fld.metadata["kind"] == "cutoffs":
            nested: dict = {}
            for c in value:
                nested.setdefault(f"{c.a}-{c.b}", {})[str(c.level)] = c.distance
            value = {k: (v["0"] if list(v) == ["0"] else v) for k, v in nested.items()}
        elif fld.metadata["kind"] == "path_table":
            value = dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[fld.name] = value
    return out


def _toml_scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if ("." in text or "e" in text or "inf" in text or "nan" in text) else text + ".0"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot write {value!r} to TOML")


def _toml_value(value, kind: str) -> str:
    if kind == "cutoffs":
        parts = []
        nested: dict = {}
        for c in value:
            nested.setdefault(f"{c.a}-{c.b}", {})[c.level] = c.distance
        for pair, levels in nested.items():
            if list(levels) == [0]:
                parts.append(f'"{pair}" = {_toml_scalar(levels[0])}')
            else:
                inner = ", ".join(f"{lev} = {_toml_scalar(d)}" for lev, d in sorted(levels.items()))
                parts.append(f'"{pair}" = {{ {inner} }}')
        return "{ " + ", ".join(parts) + " }" if parts else "{}"
    if kind == "path_table":
        return "{ " + ", ".join(f"{el} = {_toml_scalar(p)}" for el, p in value) + " }" if value else "{}"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_scalar(v) for v in value) + "]"
    return _toml_scalar(value)


def flatten(d: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (for comparing runs)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and not (prefix.startswith("clusters.cutoffs") or key == "clusters.cutoffs"):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
