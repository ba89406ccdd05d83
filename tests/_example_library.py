"""The bundled example's own clusters as a structure library (used by test_validate and bench_builder)."""
from __future__ import annotations

from clusterdynamicsml.clusters import ClusterRules, extract_clusters
from clusterdynamicsml.example import example_config
from clusterdynamicsml.io.frames import read_frames


def example_library():
    """(symbols, unwrapped positions) of every finite cluster with a node in the bundled example,
    and the example's ClusterRules."""
    cfg = example_config()
    rules = ClusterRules.from_dict(cfg.cluster_rules_dict())
    lib = []
    for fr in read_frames(str(cfg.resolve_path(cfg.frames.path))):
        for c in extract_clusters(fr, rules):
            if not c.percolating and c.node_count:
                lib.append(([fr.symbols[i] for i in c.atom_indices], c.unwrapped_positions(fr)))
    return lib, rules
