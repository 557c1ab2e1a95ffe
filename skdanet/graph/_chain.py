"""Density chains (Eq. 3).

c^1 = v; c^{i+1} = argmax over u in N(c^i) with rho(u) > rho(c^i) of
<f(c^i), f(u)>; the chain stops when that similarity falls below
``stop_threshold``, when c^i is a local density peak (no higher neighbour), or
at ``max_length`` nodes. Candidates are restricted to the kNN lists, so a chain
step is a property of the node alone: each node has one *parent*, the parents
form a forest whose roots are density peaks, and the chain of v is its path
towards the root. All of it is vectorised over the nodes.
"""

import numpy as np

from ._density import is_higher
from ._validation import check_knn, check_per_face


def chain_parents(knn_sims, knn_indices, rank, stop_threshold):
    """Next chain node of every node of the reference graph.

    Parameters
    ----------
    knn_sims, knn_indices : ndarrays of shape (n_samples, k + 1)
        Self-first kNN graph.
    rank : ndarray of shape (n_samples,)
        Strict density order (:func:`~skdanet.graph.density_rank`).
    stop_threshold : float
        A step needs similarity >= this.

    Returns
    -------
    parent : ndarray of shape (n_samples,), int64
        The next node, or -1 where the chain stops.
    parent_sim : ndarray of shape (n_samples,), float64
        Similarity of the step (NaN where there is none).
    """
    knn_sims, knn_indices = check_knn(knn_sims, knn_indices)
    rank = check_per_face("rank", rank, len(knn_sims))
    sims = knn_sims[:, 1:]
    idx = knn_indices[:, 1:]
    higher = rank[idx] > rank[:, None]
    return _best_step(sims, idx, higher, rank, stop_threshold)


def query_parents(sims, indices, higher, ref_rank, stop_threshold):
    """First chain step of faces outside the reference set (``transform``).

    ``higher[i, j]`` says whether reference neighbour ``indices[i, j]`` lies
    above query ``i`` in the density order (see :func:`is_higher`).
    """
    return _best_step(np.asarray(sims), np.asarray(indices), higher, ref_rank, stop_threshold)


def _best_step(sims, idx, higher, ref_rank, stop_threshold):
    valid = higher & (sims >= stop_threshold)
    score = np.where(valid, sims, -np.inf)
    best = score.max(axis=1, initial=-np.inf)
    # Equal similarities: take the highest node in the density order, which
    # depends on content, not on the column order of the neighbour list.
    tied = valid & (score == best[:, None])
    col = np.where(tied, ref_rank[idx], -1).argmax(axis=1)
    rows = np.arange(idx.shape[0])
    found = valid.any(axis=1)
    parent = np.where(found, idx[rows, col] if idx.shape[1] else -1, -1).astype(np.int64)
    parent_sim = np.where(found, best, np.nan)
    return parent, parent_sim


def follow_parents(start, parent, length):
    """Chains of ``length`` nodes that start at ``start`` and follow ``parent``.

    Parameters
    ----------
    start : ndarray of shape (n,), int64
        First node of each chain (-1 for an empty chain).
    parent : ndarray of shape (n_reference,), int64
    length : int

    Returns
    -------
    chains : ndarray of shape (n, length), int64, padded with -1.
    """
    parent = check_parents(parent)
    start = check_parents(start, len(parent))
    if int(length) < 0:
        raise ValueError(f"length must be >= 0, got {length}.")
    return _follow(start, parent, length)


def _follow(start, parent, length):
    """:func:`follow_parents` on arrays already checked (the graph's own, per batch)."""
    chains = np.full((start.shape[0], length), -1, dtype=np.int64)
    if length == 0:
        return chains
    current = start.copy()
    chains[:, 0] = current
    for step in range(1, length):
        alive = current >= 0
        if not alive.any():
            break
        current = np.where(alive, parent[np.maximum(current, 0)], -1)
        chains[:, step] = current
    return chains


def density_chains(parent, max_length):
    """The density chain of every reference node: itself, then up its parents.

    Returns
    -------
    chains : ndarray of shape (n_samples, max_length), int64, padded with -1.
    """
    return follow_parents(np.arange(len(parent)), parent, max_length)


def check_parents(parent, n_nodes=None):
    """``parent`` as an int64 array of node indices or -1, or a clear error."""
    parent = np.asarray(parent)
    if parent.ndim != 1 or not (np.issubdtype(parent.dtype, np.integer) or parent.size == 0):
        raise ValueError(f"parent must be a 1-d integer array (-1 for a root), got "
                         f"dtype {parent.dtype} and shape {parent.shape}.")
    n = len(parent) if n_nodes is None else n_nodes
    if parent.size and (parent.min() < -1 or parent.max() >= n):
        raise ValueError(f"parent holds indices outside [-1, {n}): min {parent.min()}, "
                         f"max {parent.max()}.")
    return parent.astype(np.int64, copy=False)


def chain_roots(parent):
    """Root (density peak) of every node's tree in the parent forest.

    Pointer jumping: O(n log depth), no Python loop per node. Parents made
    by :func:`chain_parents` are strictly higher in the density order, so
    they form a forest; a ``parent`` with a cycle is refused (ValueError)
    rather than followed forever.
    """
    parent = check_parents(parent)
    root = np.where(parent >= 0, parent, np.arange(len(parent)))
    # Each jump halves the remaining depth: a forest settles within
    # log2(n) + 1 jumps; anything still moving then is on a cycle.
    for _ in range(int(np.ceil(np.log2(max(len(parent), 2)))) + 2):
        nxt = root[root]
        if np.array_equal(nxt, root):
            return root
        root = nxt
    raise ValueError("parent is not a forest: following it from some node never reaches "
                     "a root (-1). Pass parents from chain_parents, which always form one.")


__all__ = [
    "chain_parents",
    "chain_roots",
    "density_chains",
    "follow_parents",
    "is_higher",
    "query_parents",
]
