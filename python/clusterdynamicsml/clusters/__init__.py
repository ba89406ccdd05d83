"""Per-frame cluster extraction and labels."""

from .extract import (  # noqa: F401
    ELEMENTS,
    ROLES,
    AtomSpec,
    Cluster,
    ClusterRules,
    FrameClusterSummary,
    cluster_ids,
    count_labels,
    extract_clusters,
    format_label,
    parse_label,
    summarize_frame,
)
