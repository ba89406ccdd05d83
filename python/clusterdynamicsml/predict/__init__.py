"""Prediction of larger clusters from the observed sizes."""

from .candidates import (  # noqa: F401
    PREDICTED_FIELDS,
    Candidate,
    allocate_node_counts,
    apply_predicted_mass,
    assign_shares,
    composition_distance,
    generate_candidates,
    has_pure_node_support,
    predict_candidates,
    prune_by_share,
    required_linker_floors,
    round_half_up,
    score_candidates,
    self_consistent_counts,
    share_weight,
    tail_anchored_mass,
    top_k,
    weighted_node_fractions,
)
from .core import (  # noqa: F401
    HISTOGRAM_COLUMNS,
    PREDICTIONS_CSV_COLUMNS,
    RESULT_VERSION,
    PredictionResult,
    bootstrap_uncertainty,
    compare_with_observed,
    leave_largest_size_out,
    predict_clusters,
    resolve_target_node_counts,
    write_csv,
)
from .debye_waller import (  # noqa: F401
    DW_COLUMNS,
    b_factor,
    debye_waller_table,
    observed_sigma_rows,
    pair_keys,
    sigma_lookup,
)
from .models import (  # noqa: F401
    PROPERTY_TARGETS,
    RIDGE_LAMBDA,
    ClusterPropertyModel,
    WeightedRidge,
    feature_vector,
)
