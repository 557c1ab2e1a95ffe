"""DBSCAN restricted to the pairs of a kNN graph: O(n k) time and memory.

Exact DBSCAN needs every pair of points within ``eps``; on a million faces
that is a radius search over the whole set. Face clustering only ever links a
face to faces among its nearest neighbours, so here the candidate pairs are the
edges of the kNN graph the embedding was computed on, with their distances
measured in the embedding. With ``k`` at least the number of faces a person can
have within ``eps`` this equals exact DBSCAN (with ``k = n - 1`` it is
:class:`sklearn.cluster.DBSCAN`).
"""

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

_EDGE_BLOCK = 65_536


def knn_edge_distances(Z, neighbors, reference=None):
    """Euclidean distances ``||Z[i] - R[neighbors[i, j]]||``, computed in row blocks.

    ``R`` is ``reference`` (the rows ``neighbors`` index; default ``Z``
    itself). Through ``|a|^2 + |b|^2 - 2 <a, b>``, which needs no
    (block, k, d) difference array; inner products in Z's precision, the
    rest in float64. Each row's distances depend on that row alone.
    """
    R = Z if reference is None else reference
    sq = np.einsum("ij,ij->i", Z, Z, dtype=np.float64)
    sq_r = sq if reference is None else np.einsum("ij,ij->i", R, R, dtype=np.float64)
    out = np.empty(neighbors.shape, dtype=np.float64)
    for start in range(0, len(Z), _EDGE_BLOCK):
        rows = slice(start, start + _EDGE_BLOCK)
        nb = neighbors[rows]
        dots = np.einsum("ij,ikj->ik", Z[rows], R[nb]).astype(np.float64)
        out[rows] = sq[rows, None] + sq_r[nb] - 2 * dots
    return np.sqrt(np.maximum(out, 0, out=out), out=out)


def graph_dbscan(Z, neighbors, eps, min_samples=1, *, distances=None):
    """DBSCAN labels of the rows of ``Z`` using only the pairs in ``neighbors``.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        The points (the learned embedding).
    neighbors : ndarray of int of shape (n_samples, k)
        Candidate neighbours of each point (the kNN graph, self excluded; a
        pair counts if either point lists the other).
    eps : float
        Radius.
    min_samples : int, default=1
        Points within ``eps`` (itself included) that make a point a core point.
    distances : ndarray of shape (n_samples, k), optional
        :func:`knn_edge_distances` of ``(Z, neighbors)``, if already computed.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
        Clusters numbered by their first point, -1 for noise. A border point
        (not core, within ``eps`` of a core point) joins its nearest core
        neighbour's cluster.
    """
    n = len(Z)
    dist = knn_edge_distances(Z, neighbors) if distances is None else distances
    near = dist <= eps
    rows = np.repeat(np.arange(n), neighbors.shape[1])[near.ravel()]
    cols = neighbors[near]
    d = dist[near]
    # Each pair once (kNN lists are not symmetric and a pair may be listed
    # twice), then both directions: DBSCAN's neighbourhoods are symmetric.
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    _, first = np.unique(lo * n + hi, return_index=True)
    first = first[lo[first] != hi[first]]
    lo, hi, d = lo[first], hi[first], d[first]
    # +1 so that a zero distance (duplicate faces) stays a stored edge.
    adjacency = sp.csr_matrix((np.concatenate([d, d]) + 1.0,
                               (np.concatenate([lo, hi]), np.concatenate([hi, lo]))),
                              shape=(n, n))
    n_within = np.diff(adjacency.indptr) + 1
    core = n_within >= min_samples

    core_graph = adjacency[core][:, core]
    _, comp = connected_components(core_graph, directed=False)
    labels = np.full(n, -1, dtype=np.int64)
    labels[core] = comp
    # Border points: nearest core neighbour.
    border = np.flatnonzero(~core & (n_within > 1))
    if border.size:
        sub = adjacency[border].tocoo()
        to_core = core[sub.col]
        r, c, v = sub.row[to_core], sub.col[to_core], sub.data[to_core]
        # Points near only non-core points are noise; with none near a core
        # point there is nothing to assign.
        if r.size:
            order = np.lexsort((c, v, r))  # per border row: smallest distance, then index
            r, c = r[order], c[order]
            first = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
            labels[border[r[first]]] = labels[c[first]]
    return number_by_first_point(labels)


def number_by_first_point(labels):
    """Renumber clusters 0, 1, ... in the order of their first point; -1 stays."""
    out = np.full_like(labels, -1)
    clustered = labels >= 0
    if clustered.any():
        values, first = np.unique(labels[clustered], return_index=True)
        rank = np.empty(len(values), dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(values))
        out[clustered] = rank[np.searchsorted(values, labels[clustered])]
    return out


def edge_components(rows, cols, dist, n, radii):
    """Connected components of the edges ``dist <= radius`` of ``n`` nodes, per radius."""
    for radius in radii:
        keep = dist <= radius
        graph = sp.csr_matrix((np.ones(keep.sum()), (rows[keep], cols[keep])), shape=(n, n))
        yield connected_components(graph, directed=False)[1]
