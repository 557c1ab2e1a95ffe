"""Clustering an embedding over its kNN graph: numpy only, no torch.

:class:`ClusteringRule` owns the rule (query expansion, radii, percolation
guard, DBSCAN over the kNN pairs, merging, reciprocal links, and the scaling
of a label-free radius to the set); the functions are its stages,
each testable on its own; :func:`calibrate_eps` chooses a radius on
labelled faces.
"""

from ._calibration import EPS_GRID, RAW_EPS_GRID, best_threshold, calibrate_eps
from ._dbscan import (
    edge_components,
    exact_dbscan,
    graph_dbscan,
    knn_edge_distances,
    number_by_first_point,
)
from ._expansion import expand_embedding, matched_radius
from ._guard import (
    edge_guarded_components,
    edge_percolation_safe_eps,
    merge_growth,
    percolation_safe_eps,
)
from ._merge import adjacent_cluster_pairs, cluster_means, link_radius, merge_clusters
from ._partner import partner_scaled_radius, partner_share
from ._reciprocal import (
    DEFAULT_JACCARD_EPS,
    jaccard_distances,
    reciprocal_links,
    reciprocal_mask,
    reciprocal_neighbourhoods,
)
from ._rule import (
    DEFAULT_QUERY_EXPANSION,
    ONE_STAGE_MULTIPLES,
    ClusteringResult,
    ClusteringRule,
    ExpandedSpace,
)

__all__ = [
    "DEFAULT_JACCARD_EPS",
    "DEFAULT_QUERY_EXPANSION",
    "EPS_GRID",
    "ONE_STAGE_MULTIPLES",
    "RAW_EPS_GRID",
    "ClusteringResult",
    "ClusteringRule",
    "ExpandedSpace",
    "adjacent_cluster_pairs",
    "best_threshold",
    "calibrate_eps",
    "cluster_means",
    "edge_components",
    "edge_guarded_components",
    "edge_percolation_safe_eps",
    "expand_embedding",
    "exact_dbscan",
    "graph_dbscan",
    "jaccard_distances",
    "knn_edge_distances",
    "link_radius",
    "matched_radius",
    "merge_clusters",
    "merge_growth",
    "number_by_first_point",
    "partner_scaled_radius",
    "partner_share",
    "percolation_safe_eps",
    "reciprocal_links",
    "reciprocal_mask",
    "reciprocal_neighbourhoods",
]
