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

Units: angstrom, femtoseconds, q in inverse angstrom. The sections (one dataclass per table)
and their checks live in :mod:`.sections`, the value checks and TOML writers in :mod:`._fields`;
every name is importable from here.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

from ._fields import (  # noqa: F401  (PairCutoff and scheduler_problem are public here)
    _ATOM_SPEC_RE,
    PairCutoff,
    _describe,
    _nest_cutoffs,
    _toml_value,
    scheduler_problem,
)
from .sections import (  # noqa: F401  (the sections stay importable from here)
    _PATH_FIELDS,
    _SECTIONS,
    MAX_TARGET_NODE_COUNT,
    ClustersConfig,
    ConfigError,
    DynamicsConfig,
    FramesConfig,
    LibraryConfig,
    PredictConfig,
    ReportConfig,
    RunSettings,
    SaxsConfig,
    _build_section,
    _close_match,
    _section_to_dict,
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
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError(source, None, None, "not a text file") from None
        return cls.from_toml_string(text, base_dir=p.resolve().parent, source=source)

    @classmethod
    def from_toml_string(cls, text: str, *, base_dir: str | Path = ".", source: str = "<string>") -> RunConfig:
        """Settings from TOML text (``source`` names it in error messages)."""
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
            "cutoffs": _nest_cutoffs(c.cutoffs),
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
