"""Geometry statistics and the structure builder for predicted clusters."""

from .geomstats import (  # noqa: F401
    ANGLE_BIN_DEG,
    ANGLE_MODE_MIN_HEIGHT,
    ANGLE_SMOOTH_DEG,
    ASSOCIATION_SCALE,
    ATOM_TYPES,
    DEFAULT_BOND_LENGTH,
    DEFAULT_NODE_ANGLE,
    DEFAULT_NODE_NODE_ANGLE,
    GeometryStatistics,
    angle_modes,
    atom_types_from,
    coordination_key,
    element_pair_key,
    geometry_statistics,
    measure_structure,
    normalize_element,
    type_pair_key,
)
from .grow import (  # noqa: F401
    BuildQuality,
    BuiltStructure,
    ShellTemplate,
    build_predicted_structures,
    build_quality,
    build_structure,
    built_structure_filename,
    format_counts_label,
    place_shell_molecules,
    select_representative,
    write_built_structure,
)
