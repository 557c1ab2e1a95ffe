"""The density-chain graph core: plain numpy, no torch, no estimator plumbing.

Each stage is a function that can be tested and timed on its own:

1. :func:`knn_graph` -- kNN graph over L2-normalised rows, self first;
2. :func:`density` -- Eq. 2;
3. :func:`density_rank`, :func:`chain_parents`, :func:`density_chains` -- Eq. 3;
4. :func:`pruned_cliques` -- Eq. 4.

:func:`build_density_graph` runs them all.
"""

from dataclasses import dataclass

import numpy as np

from ._chain import chain_parents, chain_roots, density_chains, follow_parents
from ._clique import clique_mask, otsu_threshold, pruned_cliques
from ._density import density, density_rank, is_higher, tie_break_key
from ._knn import NeighborIndex, exact_knn, knn_graph, l2_normalize


@dataclass
class DensityGraph:
    """All graph-core outputs for one set of faces (see :func:`build_density_graph`)."""

    knn_sims: np.ndarray
    knn_indices: np.ndarray
    density: np.ndarray
    tie_key: np.ndarray
    rank: np.ndarray
    parent: np.ndarray
    parent_sim: np.ndarray
    chains: np.ndarray
    tau: float
    stop_threshold: float


def build_density_graph(X, n_neighbors, *, tau="auto", stop_threshold=None, max_length=4,
                        method="auto", random_state=0, n_jobs=1, index=None, knn=None):
    """Run the whole graph core on ``X``.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        L2-normalised rows.
    n_neighbors : int
    tau : float or "auto"
        Clique threshold; "auto" is the Otsu split of the kNN similarities.
    stop_threshold : float or None
        Chain stop threshold; None uses ``tau``.
    max_length : int
        Maximum chain length (nodes, the face itself included).
    method, random_state, n_jobs, index
        kNN search settings, see :func:`knn_graph`.
    knn : tuple (sims, indices), optional
        The result of :func:`knn_graph` on ``X``, when already computed.

    Returns
    -------
    DensityGraph
    """
    if knn is None:
        knn = knn_graph(X, n_neighbors, method=method, random_state=random_state,
                        n_jobs=n_jobs, normalize=False, index=index)
    sims, idx = knn
    if tau == "auto":
        tau = otsu_threshold(sims[:, 1:]) if sims.shape[1] > 1 else 0.0
    if stop_threshold is None:
        stop_threshold = tau
    rho = density(sims)
    key = tie_break_key(X)
    rank = density_rank(rho, key)
    parent, parent_sim = chain_parents(sims, idx, rank, stop_threshold)
    chains = density_chains(parent, max_length)
    return DensityGraph(sims, idx, rho, key, rank, parent, parent_sim, chains,
                        float(tau), float(stop_threshold))


__all__ = [
    "DensityGraph",
    "NeighborIndex",
    "build_density_graph",
    "chain_parents",
    "chain_roots",
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
    "tie_break_key",
]
