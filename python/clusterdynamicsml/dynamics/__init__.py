"""Time-binned cluster dynamics: counts, matrices, lifetimes, rates; chunked parallel maps.

Modules: ``binning`` (window, bins, matrices), ``lifetimes`` (lifetimes and rates), ``counting``
(per-frame counts over chunks), ``compact`` (compact labels x frames counts), ``result``
(:class:`DynamicsResult` and its files), ``analyze`` (:func:`analyze_dynamics`), ``parallel``
(chunked maps over processes or Dask).
"""

from .analyze import analyze_dynamics  # noqa: F401
from .binning import (  # noqa: F401
    DEFAULT_TIMESTEP_FS,
    TimeWindow,
    assign_bins,
    build_bin_edges,
    dynamics_from_counts,
    label_size,
    resolve_bin_width,
    resolve_time_window,
)
from .compact import LabelCounts  # noqa: F401
from .counting import DEFAULT_CHUNK_SIZE, count_chunk  # noqa: F401
from .lifetimes import (  # noqa: F401
    LifetimeSummary,
    SeriesLifetimes,
    kaplan_meier_mean,
    series_lifetimes,
    summarize_series,
)
from .parallel import (  # noqa: F401
    ChunkView,
    chunk_bounds,
    default_threads_per_worker,
    map_chunks,
    run_chunk,
)
from .result import (  # noqa: F401
    CLUSTER_DISTRIBUTION_COLUMNS,
    DATASET_FORMAT,
    DATASET_VERSION,
    DISPLAY_MODES,
    ENERGY_COLUMNS,
    LIFETIME_COLUMNS,
    LIFETIME_EXTRA_COLUMNS,
    DynamicsResult,
)
