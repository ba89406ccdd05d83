"""The structure library: writing it from frames and reading it back."""

from .read import (  # noqa: F401
    DESCRIPTOR_NAMES,
    LIFETIME_FIELDS,
    STRUCTURE_SUFFIXES,
    AtomTypes,
    LabelRecord,
    StructureFileError,
    StructureLibrary,
    StructureObservation,
    TrainingRow,
    build_training_rows,
    load_lifetime_table,
    parse_label_counts,
    read_library,
    read_structure,
    shape_descriptors,
    shape_descriptors_batch,
)
from .write import (  # noqa: F401
    METADATA_NAME,
    PROGRESS_NAME,
    LibrarySummary,
    frame_stem,
    write_library,
)
