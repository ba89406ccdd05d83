"""Geometry statistics of the structure library and the builder of predicted structures."""

from .geomstats import GeometryStatistics, geometry_statistics, measure_structure  # noqa: F401
from .grow import build_structure  # noqa: F401
from .predicted import build_predicted_structures, select_representative  # noqa: F401
from .records import BuildQuality, BuiltStructure, build_quality, format_counts_label  # noqa: F401
from .shells import ShellTemplate, place_shell_molecules  # noqa: F401
from .write import built_structure_filename, write_built_structure  # noqa: F401
