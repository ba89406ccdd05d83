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
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from .._paths import check_run_name
from ._fields import (  # noqa: F401  (PairCutoff and scheduler_problem are public here)
    _ATOM_SPEC_RE,
    _ELEMENT_RE,
    _TYPE_WORDS,
    PairCutoff,
    _check_value,
    _describe,
    _f,
    _toml_scalar,
    _toml_value,
    scheduler_problem,
)

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
# sections
# ---------------------------------------------------------------------------------------
#: the largest node count a prediction may target: far beyond any cluster a trajectory shows,
#: and the candidate search and the structure builder grow quickly with it
MAX_TARGET_NODE_COUNT = 200

@dataclass(frozen=True)
class RunSettings:
    """[run]: where and how the job runs."""

    name: str = _f("cdml", "str", "name of the run; used in the run folder and output file names")
    output_dir: str = _f("cdml_runs", "path", "parent folder of the run folders; each run writes "
                         "<output_dir>/<YYYYmmdd_HHMMSS_ffffff>_<name>/ and never overwrites an earlier run")
    threads: int = _f(0, "int", "threads for the C++ kernels (0 = all available)", minimum=0, maximum=4096)
    progress: bool = _f(True, "bool", "show a progress bar per long step")
    seed: int = _f(0, "int", "random seed (bootstrap uncertainty, sampling)", minimum=0, maximum=2**63 - 1)


@dataclass(frozen=True)
class FramesConfig:
    """[frames]: the MD frames."""

    path: str | None = _f(None, "path", "REQUIRED: a folder of one-frame .xyz/.pdb files, a multi-frame "
                          "(extended) XYZ file or a CP2K *-pos-*.xyz file", optional=True, example="frames/")
    box: tuple[float, ...] = _f((), "float_list", "periodic box in angstrom: [] = from the files (extended-XYZ "
                                "Lattice, CRYST1, CP2K _pbc_ name); 3 lengths; 6 values a b c alpha beta gamma "
                                "(degrees); or 9 values (rows a, b, c)", lengths=(0, 3, 6, 9))
    timestep_fs: float | None = _f(None, "float", "time between frames in fs (unset: from the files; frames "
                                   "without times need it; it also replaces file times that do not increase)",
                                   optional=True, minimum=0.0, exclusive_minimum=True, example=0.5)
    start_time_fs: float | None = _f(None, "float", "time of the first frame in fs for sequential time axes "
                                     "(unset: from folder tags / metadata, else 0)", optional=True, example=0.0)
    stride: int = _f(1, "int", "read every stride-th frame", minimum=1, maximum=10**9)
    allow_box_from_extent: bool = _f(False, "bool", "with no box anywhere, estimate one from the coordinate "
                                     "extent of the first frame (underestimates the true box; recorded as a warning)")
    skip_bad_frames: bool = _f(False, "bool", "skip unreadable frames (recorded in the results) instead of stopping")
    element_map: tuple[str, ...] = _f((), "str_list", "element names to rename while reading, as \"FROM=TO\" "
                                      "(e.g. [\"D=H\", \"OW=O\"]); for atom names that are not element symbols")
    topology: str | None = _f(None, "path", "topology (PDB, GRO, PSF) of a binary trajectory (.dcd, .xtc, .trr, "
                              ".nc) read through MDAnalysis", optional=True, example="system.pdb")
    energy_file: str | None = _f(None, "path", "CP2K .ener file for the energy subplot of the heatmap",
                                 optional=True, example="traj.ener")


@dataclass(frozen=True)
class ClustersConfig:
    """[clusters]: atom types and pair cutoffs (angstrom)."""

    node: tuple[str, ...] = _f((), "str_list", "REQUIRED (node or linker): node elements, e.g. [\"Pb\"]; "
                               "\"El:RES\" limits to a PDB residue name")
    linker: tuple[str, ...] = _f((), "str_list", "linker elements, e.g. [\"I\"] (\"El\" or \"El:RES\")")
    shell: tuple[str, ...] = _f((), "str_list", "shell elements, e.g. [\"O\"] (\"El\" or \"El:RES\"); attached, "
                                "never connecting ([] = none)")
    cutoffs: tuple[PairCutoff, ...] = _f(
        (), "cutoffs", "REQUIRED: pair cutoffs in angstrom for the node, linker and shell pairs, e.g. "
        "{\"Pb-I\" = 3.36, \"Pb-O\" = 3.36}: \"A-B\" = distance (shell level 0) or "
        "\"A-B\" = {0 = d0, 1 = d1} per level")
    default_cutoff: float | None = _f(None, "float", "cutoff for pairs not listed (unset: not bonded)",
                                      optional=True, minimum=0.0, exclusive_minimum=True, example=3.0)
    shell_levels: tuple[int, ...] = _f((), "int_list", "extra shell-growth levels (> 0) around node atoms", maximum=100)
    shared_shells: bool = _f(False, "bool", "let one shell atom join several clusters")
    shells_in_label: bool = _f(False, "bool", "count shell atoms in the stoichiometry label")
    pbc: bool = _f(True, "bool", "use periodic boundaries (minimum image); frames must then have a box")
    shell_molecules: bool = _f(False, "bool", "PDB frames: attach whole shell molecules (residues)")


@dataclass(frozen=True)
class DynamicsConfig:
    """[dynamics]: time bins and the analysis window."""

    frames_per_bin: int = _f(1, "int", "frames per time bin of the heatmap", minimum=1, maximum=10**9)
    start_fs: float | None = _f(None, "float", "start of the analysis window in fs (unset: first frame)",
                                optional=True, example=0.0)
    stop_fs: float | None = _f(None, "float", "end of the analysis window in fs, inclusive (unset: last frame)",
                               optional=True, example=1000.0)
    workers: int = _f(1, "int", "local worker processes for the frames (0 = one per core)", minimum=0, maximum=1024)
    chunk_size: int = _f(32, "int", "frames per parallel task (the result does not depend on it)",
                         minimum=1, maximum=10**7)
    scheduler: str | None = _f(None, "str", "Dask scheduler address to spread frame chunks over a cluster "
                               "(PROTOCOL://HOST:PORT or \"local\"; a scheduler runs the code it is sent: use only "
                               "schedulers you trust)",
                               optional=True, example="tcp://127.0.0.1:8786")
    include_percolating: bool = _f(False, "bool", "count clusters that span the periodic box (percolating "
                                   "networks) under their labels (false: left out, and reported)")
    checkpoint: str | None = _f(None, "path", "file of per-chunk cluster counts kept across runs: running the "
                                "same run file again after an interruption recomputes only the missing chunks "
                                "(no frame lost or counted twice); refused if the inputs changed",
                                optional=True, example="dynamics.ckpt")


@dataclass(frozen=True)
class LibraryConfig:
    """[library]: the structure library of observed clusters (training data)."""

    path: str | None = _f(None, "path", "existing structure library folder (<LABEL>/*.xyz|pdb); unset: "
                          "written from the frames into the run folder", optional=True, example="clusters/")
    frame_stride: int = _f(1, "int", "write the library from every frame_stride-th analysed frame",
                           minimum=1, maximum=10**9)
    format: str = _f("xyz", "choice", "file format of the library written from the frames (pdb keeps residues)",
                     choices=("xyz", "pdb"))
    max_files_per_label: int | None = _f(None, "int", "write at most this many structure files per label (the "
                                         "first ones in frame order; counts per label still count every "
                                         "cluster; unset: no cap)",
                                         optional=True, minimum=1, example=200, maximum=10**9)


@dataclass(frozen=True)
class PredictConfig:
    """[predict]: the larger-cluster prediction."""

    enabled: bool = _f(True, "bool", "predict larger clusters (needs >= 2 observed node counts)")
    target_node_counts: tuple[int, ...] = _f((), "int_list", "node counts to predict ([] = the two sizes "
                                             "after the largest observed)", maximum=MAX_TARGET_NODE_COUNT)
    candidates_per_size: int = _f(3, "int", "candidate stoichiometries kept per target size", minimum=1, maximum=1000)
    share_threshold: float = _f(0.02, "float", "prune candidates whose predicted population share is below "
                                "this (the first per size is always kept)", minimum=0.0, maximum=1.0)
    bootstrap: int = _f(100, "int", "bootstrap resamples for prediction uncertainty (0 = none)",
                        minimum=0, maximum=100000)
    validate: bool = _f(True, "bool", "leave-largest-size-out validation")
    observed_targets: str = _f("error", "choice", "requested target node counts at or below the largest "
                               "observed size: an error, or a warning and dropped", choices=("error", "warn"))
    population_transform: str = _f("reference", "choice", "population targets: log1p counts and identity "
                                   "occupancy as the reference tool, or log(y + 1e-4) for both",
                                   choices=("reference", "log"))
    population_model: str = _f("fisher", "choice", "clusters per frame versus size: Fisher droplet law "
                               "(default, chosen by measured validation, docs/predict.md), 3-term nucleation law, "
                               "geometric tail, or the reference tool's ridge",
                               choices=("fisher", "cnt", "geometric", "reference"))
    model_error_count: float | None = _f(None, "float", "model-form error of the population law per node count "
                                         "beyond the observed sizes, in log units, added to the bootstrap "
                                         "intervals (unset: the value measured on held-out sizes of real "
                                         "trajectories, docs/predict.md; 0 = sampling uncertainty only)",
                                         optional=True, minimum=0.0, maximum=5.0, example=0.054)
    model_error_rg: float | None = _f(None, "float", "the same for the Rg, max radius and semiaxes laws",
                                      optional=True, minimum=0.0, maximum=5.0, example=0.014)
    build_structures: bool = _f(True, "bool", "build a predicted structure per retained candidate")
    shell_templates: tuple[tuple[str, str], ...] = _f(
        (), "path_table", "write the predicted structures as PDB with whole shell molecules: element = "
        "one-molecule PDB template, e.g. {O = \"dmf.pdb\"} places a DMF molecule on every built O atom "
        "(ref 4.8 step 6; {} = XYZ files of the built atoms)")


@dataclass(frozen=True)
class SaxsConfig:
    """[saxs]: Debye components, mixtures and the fit (q in 1/angstrom)."""

    enabled: bool = _f(True, "bool", "compute SAXS components and mixtures")
    q_min: float = _f(0.02, "float", "smallest q (1/angstrom)", minimum=0.0, maximum=100.0)
    q_max: float = _f(1.2, "float", "largest q (1/angstrom)", minimum=0.0, exclusive_minimum=True, maximum=100.0)
    q_points: int = _f(250, "int", "number of q points", minimum=10, maximum=100000)
    method: str = _f("exact", "choice", "Debye kernel: exact double sum, or pair distances binned per "
                     "element pair (faster for large structures)", choices=("exact", "histogram"))
    bin_width: float = _f(0.001, "float", "histogram kernel bin width (angstrom); |I_hist - I_exact| <= "
                          "(q w)^2 / 24 of I(0) (1.7e-7 at q = 2 for 0.001 A)",
                          minimum=0.0, exclusive_minimum=True, maximum=1.0)
    dw_pairs: str = _f("all", "choice", "Debye-Waller damping on all off-diagonal pairs or only first-shell "
                       "pairs (as the reference tool)", choices=("all", "first_shell"))
    observed_components: str = _f("average", "choice", "observed labels: average over library structures or a "
                                  "single representative with Debye-Waller damping",
                                  choices=("average", "representative"))
    max_structures_per_label: int = _f(50, "int", "average at most this many structures per label "
                                       "(farthest-point sample; 0 = all)", minimum=0, maximum=10**6)
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
    mixture_weights: str = _f("clusters_per_frame", "choice", "MD mixture weights: clusters per frame of each "
                              "label, or the reference tool's count x max(occupancy, 0.05)",
                              choices=("clusters_per_frame", "reference"))
    reweight: bool = _f(True, "bool", "maximum-entropy reweighting of the MD populations against the data")
    evidence_margin: float = _f(10.0, "float", "delta BIC by which the cluster model must beat the background "
                                "alone and a generic form factor to be rated supported", minimum=0.0)


@dataclass(frozen=True)
class ReportConfig:
    """[report]: figures and reports."""

    figures: bool = _f(True, "bool", "write figures")
    formats: tuple[str, ...] = _f(("png", "svg"), "str_list", "figure formats")
    dpi: int = _f(150, "int", "PNG resolution", minimum=30, maximum=1200)
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
                                 "(0 = all labels)", minimum=0, maximum=10000)
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

_PATH_FIELDS = {("run", "output_dir"), ("frames", "path"), ("frames", "energy_file"), ("frames", "topology"),
                ("library", "path"),
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
    values: dict[str, Any] = {}
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

    check = _SECTION_CHECKS.get(section)
    if check is not None:
        check(obj, fail)


def _check_dynamics(obj, fail) -> None:
    if obj.scheduler is not None:
        why = scheduler_problem(obj.scheduler)
        if why is not None:
            fail("scheduler", why)


def _check_run(obj, fail) -> None:
    why = check_run_name(obj.name)
    if why is not None:
        fail("name", why)


def _check_clusters(obj, fail) -> None:
    for key in ("node", "linker", "shell"):
        for spec in getattr(obj, key):
            if not _ATOM_SPEC_RE.match(spec):
                fail(key, f"{spec!r} is not an element symbol (\"Pb\") or element:residue (\"O:DMF\")")
    typed: dict[str, str] = {}
    for key in ("node", "linker", "shell"):
        for spec in getattr(obj, key):
            if spec in typed:
                fail(key, f"{spec!r} is already a {typed[spec]} type")
            typed[spec] = key
    for lev in obj.shell_levels:
        if lev < 1:
            fail("shell_levels", f"levels must be >= 1 (level 0 is the core), got {lev}")


def _check_saxs(obj, fail) -> None:
    if obj.background_degree > 6:
        fail("background_degree", f"must be <= 6, got {obj.background_degree}")
    if obj.q_max <= obj.q_min:
        fail("q_max", f"must be larger than q_min ({obj.q_min:g}), got {obj.q_max:g}")
    if obj.fit_q_min is not None and obj.fit_q_max is not None and obj.fit_q_max <= obj.fit_q_min:
        fail("fit_q_max", f"must be larger than fit_q_min ({obj.fit_q_min:g}), got {obj.fit_q_max:g}")


def _check_report(obj, fail) -> None:
    for fmt in obj.formats:
        if fmt not in ("png", "svg", "pdf"):
            fail("formats", f"expected 'png', 'svg' or 'pdf', got {fmt!r}")
    lo, hi = obj.color_quantiles
    if not (0.0 <= lo < hi <= 1.0):
        fail("color_quantiles", f"expected 0 <= lower < upper <= 1, got [{lo:g}, {hi:g}]")


def _check_predict(obj, fail) -> None:
    for n in obj.target_node_counts:
        if n < 1:
            fail("target_node_counts", f"node counts must be >= 1, got {n}")


_SECTION_CHECKS = {"dynamics": _check_dynamics, "run": _check_run, "clusters": _check_clusters,
                   "saxs": _check_saxs, "report": _check_report, "predict": _check_predict}


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
    def from_dict(cls, data: dict | None = None, *, base_dir: str | Path = ".",
                  source: str = "<settings>") -> RunConfig:
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
    def from_toml(cls, path: str | os.PathLike) -> RunConfig:
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
    @overload
    def resolve_path(self, value: str) -> Path: ...
    @overload
    def resolve_path(self, value: None) -> None: ...
    @overload
    def resolve_path(self, value: str | None) -> Path | None: ...

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
            new: tuple[tuple[str, str], ...] | tuple[str, ...] | str
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
        checks = [("frames", "path"), ("frames", "topology"), ("frames", "energy_file"), ("library", "path"),
                  ("saxs", "solvent_file")]
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
                lines.append(f"# {(cls.__doc__ or '').strip()}")
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

    def check_clusters(self) -> None:
        """ConfigError unless [clusters] names the chemistry: node (or linker) elements and a
        cutoff for every node-linker and node-shell pair (there are no default elements)."""
        c = self.clusters

        def fail(key, msg):
            raise ConfigError(self.source, "clusters", key, msg)

        if not c.node and not c.linker:
            fail("node", "required: the node elements of the clusters, e.g. node = [\"Pb\"] (command line: "
                 "--node Pb --linker I --cutoff Pb-I=3.36)")
        if c.default_cutoff is not None:
            return
        have = {frozenset((p.a, p.b)) for p in c.cutoffs if p.level == 0}
        els = {key: [_atom_spec(s) if isinstance(_atom_spec(s), str) else _atom_spec(s)[0] for s in getattr(c, key)]
               for key in ("node", "linker", "shell")}
        pairs = [(a, b) for a in els["node"] for b in els["linker"] + els["shell"]]
        if not c.linker:
            pairs += [(a, b) for a in els["node"] for b in els["node"] if a <= b]
        missing = [f"{a}-{b}" for a, b in dict.fromkeys(pairs) if frozenset((a, b)) not in have]
        if missing and len(missing) == len(dict.fromkeys(pairs)):
            example = missing[0]
            fail("cutoffs", f"no cutoff for {', '.join(missing)}: give the bond distance in angstrom, e.g. "
                 f"cutoffs = {{\"{example}\" = 3.0}} (command line: --cutoff {example}=3.0), or default_cutoff")

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
    if m is None:  # specs are checked when the section is built; this guards direct calls
        raise ValueError(f"{spec!r} is not an element symbol (\"Pb\") or element:residue (\"O:DMF\")")
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
