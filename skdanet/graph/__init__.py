"""The density-chain graph core: numpy only, no torch, no estimator plumbing.

Each stage is a function that can be tested and timed on its own:

1. :func:`knn_graph` -- kNN graph over L2-normalised rows, self first;
2. :func:`density` -- Eq. 2;
3. :func:`density_rank`, :func:`chain_parents`, :func:`density_chains` -- Eq. 3;
4. :func:`pruned_cliques` -- Eq. 4.

:class:`DensityGraph` owns their results for one set of faces: it builds
itself (:meth:`DensityGraph.build`) and places new faces in itself.
"""

from ._chain import chain_parents, chain_roots, density_chains, follow_parents
from ._clique import clique_mask, otsu_threshold, pruned_cliques
from ._density import density, density_rank, is_higher, tie_break_key
from ._density_graph import DensityGraph, build_density_graph, stranger_similarity
from ._ivf import N_PROBE
from ._knn import (
    EXACT_SEARCH_MAX_ROWS,
    NeighborIndex,
    clamp_n_neighbors,
    exact_knn,
    knn_graph,
    l2_normalize,
    row_similarities,
)

__all__ = [
    "EXACT_SEARCH_MAX_ROWS",
    "N_PROBE",
    "DensityGraph",
    "NeighborIndex",
    "build_density_graph",
    "chain_parents",
    "chain_roots",
    "clamp_n_neighbors",
    "clique_mask",
    "density",
    "density_chains",
    "density_rank",
    "exact_knn",
    "follow_parents",
    "is_higher",
    "knn_graph",
    "l2_normalize",
    "otsu_threshold",
    "pruned_cliques",
    "row_similarities",
    "stranger_similarity",
    "tie_break_key",
]
