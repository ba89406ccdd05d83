"""Frame readers and writers (XYZ, extended XYZ, PDB, CP2K), the time axis, CP2K energies."""

from .energy import (  # noqa: F401
    ENERGY_QUANTITIES,
    EnergyData,
    read_cp2k_ener,
)
from .frames import (  # noqa: F401
    _LATTICE_CACHE,
    DEFAULT_TIMESTEP_FS,
    EXPORT_METADATA_NAME,
    FileFormatError,
    Frame,
    FrameSource,
    SkippedFrame,
    box_from_pbc_name,
    folder_start_time_fs,
    hybrid36_decode,
    hybrid36_encode,
    natural_sort_key,
    parse_comment,
    read_frames,
    read_structure,
    write_frames,
    write_pdb,
    write_xyz,
)
