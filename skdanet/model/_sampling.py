"""Training batches from kNN neighbourhoods.

Each batch is seeds plus their nearest neighbours, so it holds the hard pairs
DBSCAN will actually see: near-duplicates of other people and far-apart
photos of one person.
"""

import numpy as np

from ..utils._arrays import sorted_unique


def neighbourhood_batches(train_nodes, knn_indices, rng, *, batch_size, per_seed,
                          max_batches=None):
    """Batches of training nodes grouped by kNN neighbourhood, one epoch.

    Each seed (a permutation of ``train_nodes``) brings its ``per_seed``
    nearest training neighbours; a batch holds about ``batch_size`` distinct
    nodes. Each node is a seed about once every ``per_seed + 1`` epochs and
    appears in about one batch per epoch. With ``max_batches``, the epoch
    stops after that many batches: a random sample of neighbourhoods, so an
    epoch costs the same whatever the number of faces.

    Yields
    ------
    nodes : ndarray of int64, sorted, distinct
    """
    is_train = np.zeros(knn_indices.shape[0], dtype=bool)
    is_train[train_nodes] = True
    n_seeds = max(1, int(np.ceil(len(train_nodes) / (per_seed + 1))))
    seeds = rng.permutation(train_nodes)[:n_seeds]
    seeds_per_batch = max(1, batch_size // (per_seed + 1))
    if max_batches is not None:
        seeds = seeds[: max_batches * seeds_per_batch]
    neighbours = knn_indices[:, 1 : per_seed + 1]
    for start in range(0, len(seeds), seeds_per_batch):
        s = seeds[start : start + seeds_per_batch]
        nb = neighbours[s].ravel()
        nodes = sorted_unique(np.concatenate([s, nb[is_train[nb]]]))
        yield nodes
