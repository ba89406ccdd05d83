"""Geometry statistics and the structure builder for predicted clusters."""

from ..chem import normalize_element  # noqa: F401
from .geomrecord import (  # noqa: F401
    ASSOCIATION_SCALE,
    ATOM_TYPES,
    DEFAULT_BOND_LENGTH,
    DEFAULT_NODE_ANGLE,
    DEFAULT_NODE_NODE_ANGLE,
    GeometryStatistics,
    coordination_key,
    element_pair_key,
    type_pair_key,
)
from .geomstats import (  # noqa: F401
    ANGLE_BIN_DEG,
    ANGLE_MODE_MIN_HEIGHT,
    ANGLE_SMOOTH_DEG,
    angle_modes,
    atom_types_from,
    geometry_statistics,
)
from .grow import build_structure  # noqa: F401
from .measure import measure_structure  # noqa: F401
from .predicted import build_predicted_structures, select_representative  # noqa: F401
from .records import BuildQuality, BuiltStructure, build_quality, format_counts_label  # noqa: F401
from .shells import ShellTemplate, place_shell_molecules  # noqa: F401
from .validate import (  # noqa: F401
    ValidityResult,
    build_valid_structure,
    rg_interval_of,
    structure_rg_interval,
    validate_structure,
)
from .write import built_structure_filename, write_built_structure  # noqa: F401
