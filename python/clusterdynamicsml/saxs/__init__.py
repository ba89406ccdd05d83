"""Debye SAXS: form factors, Debye sums, components, experimental data, fits."""

from .debye import (  # noqa: F401
    DW_PAIRS,
    METHODS,
    DebyePartials,
    RankAlignedSpread,
    SaxsComponent,
    average_component,
    b_factor_from_sigma,
    debye_intensity,
    debye_partials,
    farthest_point_sampling,
    first_shell_pairs,
    histogram_error_per_pair,
    mix_components,
    rank_aligned_sigma,
    rank_aligned_spread,
    read_structure,
    sigma_from_b_factor,
    single_component,
    structure_descriptors,
)
from .expdata import (  # noqa: F401
    Q_MAX_ANGSTROM_HEURISTIC,
    SaxsData,
    load_saxs_data,
    stitch_saxs,
)
from .fit import (  # noqa: F401
    REFIT,
    SaxsFitResult,
    fit_saxs,
    pearson,
)
from .formfactors import (  # noqa: F401
    _CACHE,
    form_factor,
    form_factors,
    normalize_element,
)
