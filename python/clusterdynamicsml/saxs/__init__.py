"""Debye SAXS: form factors, Debye sums, components, experimental data, fits, evidence, reweighting."""

from .components import (  # noqa: F401
    MIXTURE_WEIGHTS,
    ComponentSet,
    SaxsComponent,
    atom_component,
    average_component,
    compute_components,
    farthest_point_sampling,
    mix_components,
    mixture_weights,
    single_component,
    structure_descriptors,
)
from .debye import (  # noqa: F401
    DW_PAIRS,
    METHODS,
    DebyePartials,
    RankAlignedSpread,
    b_factor_from_sigma,
    debye_intensity,
    debye_partials,
    first_shell_pairs,
    histogram_error_per_pair,
    rank_aligned_sigma,
    rank_aligned_spread,
    read_structure,
    sigma_from_b_factor,
)
from .ensemble import EnsemblePartials, debye_partials_ensemble  # noqa: F401
from .evidence import (  # noqa: F401
    ModelFit,
    SaxsEvidence,
    saxs_evidence,
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
    form_factor,
    form_factors,
    normalize_element,
)
from .noise import NoiseEstimate, estimate_noise  # noqa: F401
from .reweight import ReweightResult, maxent_reweight, pearson_weights  # noqa: F401
