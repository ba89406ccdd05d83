"""Per-frame cluster extraction and labels."""

from .extract import (  # noqa: F401
    AtomSpec,
    Cluster,
    ClusterRules,
    ELEMENTS,
    FrameClusterSummary,
    FrameCompositions,
    ROLES,
    cluster_ids,
    count_labels,
    extract_clusters,
    format_label,
    frame_compositions,
    parse_label,
    summarize_frame,
)
