"""DBSCAN restricted to the pairs of a kNN graph: O(n k) time and memory.

Exact DBSCAN needs every pair of points within ``eps``; on a million faces
that is a radius search over the whole set. Face clustering only ever links a
face to faces among its nearest neighbours, so here the candidate pairs are the
edges of the kNN graph the embedding was computed on, with their distances
measured in the embedding. With ``k`` at least the number of faces a person can
have within ``eps`` this equals exact DBSCAN (``tests/test_clustering.py``
checks it against :class:`sklearn.cluster.DBSCAN` with ``k = n - 1``).
"""

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

_EDGE_BLOCK = 65_536


def knn_edge_distances(Z, neighbors):
    """Euclidean distances ``||Z[i] - Z[neighbors[i, j]]||``, computed in row blocks.

    Through ``|a|^2 + |b|^2 - 2 <a, b>``, which needs no (block, k, d)
    difference array; inner products in Z's precision, the rest in float64.
    """
    sq = np.einsum("ij,ij->i", Z, Z, dtype=np.float64)
    out = np.empty(neighbors.shape, dtype=np.float64)
    for start in range(0, len(Z), _EDGE_BLOCK):
        rows = slice(start, start + _EDGE_BLOCK)
        nb = neighbors[rows]
        dots = np.einsum("ij,ikj->ik", Z[rows], Z[nb]).astype(np.float64)
        out[rows] = sq[rows, None] + sq[nb] - 2 * dots
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
        order = np.lexsort((c, v, r))  # per border row: smallest distance, then index
        r, c = r[order], c[order]
        first = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        labels[border[r[first]]] = labels[c[first]]
    return _number_by_first_point(labels)


def _number_by_first_point(labels):
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


def merge_growth(loose, tight, weights=None):
    """How much each cluster of ``loose`` adds to its largest piece in ``tight``.

    ``loose`` and ``tight`` label the same points at two radii (each tight
    cluster lies inside one loose cluster). ``weights`` (one per point,
    default 1) counts a point as that many: a cluster mean standing for its
    faces.

    Returns
    -------
    growth, largest_piece : ndarray of shape (n_loose_clusters,)
        Size of each loose cluster minus its largest tight piece, and that
        piece's (weighted) size.
    """
    loose_size = np.bincount(loose, weights=weights)
    tight_size = np.bincount(tight, weights=weights)
    # The loose cluster each tight cluster lies in.
    parent = np.zeros(len(tight_size), dtype=np.int64)
    parent[tight] = loose
    largest_piece = np.zeros(len(loose_size))
    np.maximum.at(largest_piece, parent, tight_size)
    return loose_size - largest_piece, largest_piece


def percolation_safe_eps(Z, neighbors, eps, *, step=0.025, n_steps=8, max_growth=0.1,
                         min_share=0.005, min_faces=100, distances=None, weights=None):
    """The largest radius <= ``eps`` below which no cluster grows abruptly.

    Single-linkage clustering (DBSCAN with ``min_samples=1``) has a cliff: past
    some radius, chains of faces of different people link whole clusters into
    giant ones, and that radius gets smaller the more faces are clustered
    (more faces, more chances of a bridge). A radius calibrated on a few
    thousand held-out faces can therefore be past the cliff on a million.
    The cliff shows as an abrupt growth of a cluster, which a person's own
    faces joining it do not cause once that person is mostly complete: going
    down from ``eps`` in steps of ``step``, return the first radius that is
    not on a jump, a jump being a step (from the radius below) that grows some
    cluster beyond its largest piece by more than ``max_growth`` of that
    piece *and* by more than ``min_share`` of all faces and ``min_faces``
    faces (on a few hundred faces every person forming is an abrupt growth;
    runaway chaining is a large-set effect). Every cluster is
    watched, not only the largest: on a million faces a 45,000-face merger
    of 1,000-face people formed next to a larger, pure cluster.
    ``distances``: as in :func:`graph_dbscan`; ``weights``: as in
    :func:`merge_growth`.

    Returns
    -------
    eps : float
    """
    n = len(Z)
    dist = knn_edge_distances(Z, neighbors) if distances is None else distances
    rows = np.repeat(np.arange(n), neighbors.shape[1])
    return edge_percolation_safe_eps(rows, neighbors.ravel(), dist.ravel(), n, eps,
                                     step=step, n_steps=n_steps, max_growth=max_growth,
                                     min_share=min_share, min_faces=min_faces, weights=weights)


def _guard_steps(rows, cols, dist, n, eps, *, step, n_steps, max_growth, min_share,
                 min_faces, weights):
    """The percolation guard's steps down from ``eps``, lazily.

    Yields ``(radius, components, jumps)``: the components at each radius
    (largest first) and which of them jump on the step to the next radius
    down (see :func:`percolation_safe_eps`); at the smallest radius there is
    no step to judge and ``jumps`` is None.
    """
    radii = eps - step * np.arange(n_steps + 1)
    radii = radii[radii > 0]
    total = n if weights is None else float(np.sum(weights))
    floor = max(min_share * total, min_faces)
    components = edge_components(rows, cols, dist, n, radii)
    loose = next(components)
    for radius, tight in zip(radii, components):
        growth, piece = merge_growth(loose, tight, weights)
        yield radius, loose, (growth > max_growth * piece) & (growth > floor)
        loose = tight
    yield radii[-1], loose, None


def edge_percolation_safe_eps(rows, cols, dist, n, eps, *, step=0.025, n_steps=8,
                              max_growth=0.1, min_share=0.005, min_faces=100, weights=None):
    """:func:`percolation_safe_eps` over an explicit edge list of ``n`` nodes."""
    for radius, _, jumps in _guard_steps(rows, cols, dist, n, eps, step=step, n_steps=n_steps,
                                         max_growth=max_growth, min_share=min_share,
                                         min_faces=min_faces, weights=weights):
        if jumps is None or not jumps.any():
            return float(radius)


def edge_guarded_components(rows, cols, dist, n, eps, *, step=0.025, n_steps=8,
                            max_growth=0.1, min_share=0.005, min_faces=100, weights=None):
    """Components at ``eps``, with the percolation guard applied cluster by cluster.

    :func:`edge_percolation_safe_eps` lowers one radius for everything as soon
    as some cluster grows abruptly. But runaway chaining is local: on a
    million face-like faces a few clusters (2% of the faces) percolate at the
    merge radius while everyone else is best merged there, and lowering the
    radius for everyone splits people with a few photos (BCubed F 0.945 with
    this guard, 0.930 with the global one). Here a cluster that jumps (the
    same test as :func:`edge_percolation_safe_eps`) is cut at the next radius
    down, and each of its pieces is tested again; a cluster that does not
    jump keeps its radius.

    Returns
    -------
    labels : ndarray of shape (n,), int64
        Components, numbered by their first node.
    radius : ndarray of shape (n,)
        The radius each node's component was formed at (``eps`` unless the
        guard lowered it).
    """
    labels = np.full(n, -1, dtype=np.int64)
    radius = np.full(n, np.nan)
    undecided = np.ones(n, dtype=bool)
    steps = _guard_steps(rows, cols, dist, n, eps, step=step, n_steps=n_steps,
                         max_growth=max_growth, min_share=min_share, min_faces=min_faces,
                         weights=weights)
    for i, (r, loose, jumps) in enumerate(steps):
        # At the smallest radius whatever still jumps is kept as it is.
        decided = undecided if jumps is None else undecided & ~jumps[loose]
        # Components at different radii are nested, so numbering each radius
        # apart (offset by i * n) keeps the decided clusters distinct.
        labels[decided] = loose[decided] + i * n
        radius[decided] = r
        undecided &= ~decided
        if not undecided.any():
            break
    return _number_by_first_point(labels), radius
