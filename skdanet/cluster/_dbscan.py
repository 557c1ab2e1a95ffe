"""DBSCAN in memory that does not depend on how the faces cluster.

Exact DBSCAN needs every pair of points within ``eps``; on a million faces
that is a radius search over the whole set, and :class:`sklearn.cluster.DBSCAN`
holds all those pairs at once (memory growing with the squared cluster sizes).
Two forms here:

- :func:`graph_dbscan`: face clustering only ever links a face to faces among
  its nearest neighbours, so the candidate pairs are the edges of the kNN
  graph the embedding was computed on, with their distances measured in the
  embedding: O(n k) time and memory. With ``k`` at least the number of faces a
  person can have within ``eps`` this equals exact DBSCAN.
- :func:`exact_dbscan`: every pair, in row blocks, keeping only a spanning
  forest of what is linked so far: O(n^2) time, O(n) memory.
"""

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..graph import row_similarities
from ..utils._parallel import map_blocks, row_blocks

# Rows per task of knn_edge_distances.
_EDGE_BLOCK = 16_384
# Pair distances held at a time by exact_dbscan (32 MB of float64).
_PAIR_BLOCK_ELEMENTS = 2**22


def knn_edge_distances(Z, neighbors, reference=None, *, n_jobs=1):
    """Euclidean distances ``||Z[i] - R[neighbors[i, j]]||``, in row blocks over ``n_jobs`` workers.

    ``R`` is ``reference`` (the rows ``neighbors`` index; default ``Z``
    itself). Through ``|a|^2 + |b|^2 - 2 <a, b>``, which needs no
    (rows, k, d) difference array; inner products in Z's precision, the
    rest in float64. Each row's distances depend on that row alone, so not
    on the number of workers.
    """
    R = Z if reference is None else reference
    sq = np.einsum("ij,ij->i", Z, Z, dtype=np.float64)
    sq_r = sq if reference is None else np.einsum("ij,ij->i", R, R, dtype=np.float64)
    blocks = row_blocks(len(Z), _EDGE_BLOCK)
    tasks = ((Z[start:stop], R, neighbors[start:stop], sq[start:stop], sq_r)
             for start, stop in blocks)
    out = np.empty(neighbors.shape, dtype=np.float64)
    for (start, stop), block in map_blocks(_edge_distances_block, blocks, tasks, n_jobs):
        out[start:stop] = block
    return out


def _edge_distances_block(Z, R, neighbors, sq, sq_r):
    dots = row_similarities(Z, R, neighbors).astype(np.float64)
    out = sq[:, None] + sq_r[neighbors] - 2 * dots
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
    every_row = np.repeat(np.arange(n), neighbors.shape[1])
    if min_samples <= 1:
        # Every point is core: the clusters are the components of the pairs
        # within eps, however often each is listed, with no need to count
        # neighbourhoods.
        comp = next(edge_components(every_row, neighbors.ravel(), dist.ravel(), n, [eps]))
        return number_by_first_point(comp)
    near = dist <= eps
    rows = every_row[near.ravel()]
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

    # Every point may still be core: then there is no sub-graph to cut out.
    core_graph = adjacency if core.all() else adjacency[core][:, core]
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


def exact_dbscan(Z, eps, min_samples=1):
    """DBSCAN labels of the rows of ``Z`` over all pairs, in O(n) memory.

    The same clusters as :class:`sklearn.cluster.DBSCAN` (Euclidean);
    with ``min_samples > 1`` a border point joins its nearest core point's
    cluster, as in :func:`graph_dbscan` (scikit-learn gives it to whichever
    cluster reaches it first). Distances are computed ``_PAIR_BLOCK_ELEMENTS``
    at a time; links found so far are kept as a spanning forest (each point
    linked to the first point of its component), so memory stays O(n) however
    large the clusters.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
        Clusters numbered by their first point, -1 for noise.
    """
    Z = np.asarray(Z, dtype=np.float64)
    n = len(Z)
    core = np.ones(n, dtype=bool)
    if min_samples > 1:
        n_within = np.zeros(n, dtype=np.int64)
        for rows, near in _pairs_within(Z, eps):
            n_within[rows] = near.sum(axis=1)
        core = n_within >= min_samples
    core_index = np.flatnonzero(core)
    root = np.arange(n)
    pending_rows, pending_cols, pending = [], [], 0
    nearest_core = np.full(n, -1, dtype=np.int64)
    all_core = core.all()
    for rows, near, squared_distances in _pairs_within(Z, eps, with_distances=True):
        core_rows = core[rows]
        near_core = near if all_core else near[:, core_index]
        # A core row's links, as (row, root of the linked point) pairs: a
        # person's hundreds of photos reduce to the one root they already share.
        r, c = _distinct_roots(near_core if all_core else near_core[core_rows],
                               root[core_index])
        pending_rows.append(rows[core_rows][r])
        pending_cols.append(c)
        pending += r.size
        if pending > 2 * n:
            root = _spanning_roots(root, pending_rows, pending_cols)
            pending_rows, pending_cols, pending = [], [], 0
        if all_core:
            continue
        border = ~core_rows & near_core.any(axis=1)
        if border.any():
            d2 = squared_distances(border)[:, core_index]
            to_core = np.where(near_core[border], d2, np.inf)
            nearest_core[rows[border]] = core_index[np.argmin(to_core, axis=1)]
    root = _spanning_roots(root, pending_rows, pending_cols)
    labels = np.where(core, root, -1)
    border = nearest_core >= 0
    labels[border] = root[nearest_core[border]]
    return number_by_first_point(labels)


def single_linkage_labels(Z, radii):
    """DBSCAN labels (``min_samples=1``) of ``Z`` at each radius, from one spanning tree.

    With ``min_samples=1`` DBSCAN's clusters are the components of the
    pairs within the radius, which are the components of the minimum
    spanning tree's edges within it: one tree (Prim's, O(n^2 d) time, each
    point's distances computed when it joins, O(n) memory), then O(n) per
    radius.

    Yields
    ------
    labels : ndarray of shape (n_samples,), int64, numbered by first point
    """
    Z = np.asarray(Z, dtype=np.float64)
    rows, cols, lengths = _prim_tree(Z)
    yield from _numbered_components(rows, cols, lengths, len(Z), radii)


def graph_single_linkage(neighbors, distances, radii):
    """DBSCAN labels (``min_samples=1``) at each radius, using only the kNN pairs.

    The clusters of :func:`graph_dbscan` at each of ``radii``, from the
    pairs' ``distances`` (:func:`knn_edge_distances`) alone: O(n k) per radius.

    Yields
    ------
    labels : ndarray of shape (n_samples,), int64, numbered by first point
    """
    n = len(neighbors)
    rows = np.repeat(np.arange(n), neighbors.shape[1])
    yield from _numbered_components(rows, neighbors.ravel(), distances.ravel(), n, radii)


def _numbered_components(rows, cols, dist, n, radii):
    """:func:`edge_components` at each radius, numbered by first point (int64)."""
    for labels in edge_components(rows, cols, dist, n, radii):
        yield number_by_first_point(labels.astype(np.int64))


def single_linkage_from(Z, radii):
    """DBSCAN labels (``min_samples=1``) of ``Z`` at each of ``radii``, over all pairs.

    The same clusters as :func:`single_linkage_labels`, in mostly BLAS time
    for radii within a narrow range: the clusters at the smallest radius
    (:func:`exact_dbscan`), then only the pairs within the largest radius
    that join two of those clusters, kept as the closest pair of each two
    clusters (memory: O(n) plus one entry per two clusters that close).

    Yields
    ------
    labels : ndarray of shape (n_samples,), int64, numbered by first point
    """
    Z = np.asarray(Z, dtype=np.float64)
    radii = np.asarray(radii, dtype=np.float64)
    base = exact_dbscan(Z, float(radii.min()))
    sq = np.einsum("ij,ij->i", Z, Z)
    a, b, d = [np.empty(0, dtype=np.int64)], [np.empty(0, dtype=np.int64)], [np.empty(0)]
    for rows, near in _pairs_within(Z, float(radii.max())):
        r, c = np.nonzero(near)
        r = rows[r]
        across = base[r] < base[c]  # each pair of clusters once, never within one
        r, c = r[across], c[across]
        d2 = sq[r] + sq[c] - 2 * np.einsum("ij,ij->i", Z[r], Z[c])
        a.append(base[r])
        b.append(base[c])
        d.append(np.sqrt(np.maximum(d2, 0)))
        a, b, d = _closest_pairs(a, b, d)
    n_base = int(base.max(initial=-1)) + 1
    a, b, d = _closest_pairs(a, b, d)
    for merged in edge_components(a[0], b[0], d[0], n_base, radii):
        yield number_by_first_point(merged[base].astype(np.int64))


def _closest_pairs(a, b, d):
    """The lists of cluster pairs ``a``-``b`` at distances ``d``, reduced to one
    array each holding the closest distance of each pair."""
    a, b, d = np.concatenate(a), np.concatenate(b), np.concatenate(d)
    order = np.lexsort((d, b, a))
    a, b, d = a[order], b[order], d[order]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return [a[first]], [b[first]], [d[first]]


def _prim_tree(Z):
    """Edges ``(rows, cols, lengths)`` of a Euclidean minimum spanning tree of the rows of ``Z``."""
    n = len(Z)
    sq = np.einsum("ij,ij->i", Z, Z)

    def distances_from(j):
        d2 = sq[j] + sq - 2 * (Z @ Z[j])
        return np.sqrt(np.maximum(d2, 0, out=d2), out=d2)

    rows = np.empty(max(n - 1, 0), dtype=np.int64)
    cols = np.empty(max(n - 1, 0), dtype=np.int64)
    lengths = np.empty(max(n - 1, 0))
    if n == 0:
        return rows, cols, lengths
    outside = np.ones(n, dtype=bool)
    outside[0] = False
    best = distances_from(0)  # distance of each point outside to the tree
    best[0] = np.inf
    nearest = np.zeros(n, dtype=np.int64)  # its closest point in the tree
    for step in range(n - 1):
        j = int(np.argmin(best))
        rows[step], cols[step], lengths[step] = nearest[j], j, best[j]
        outside[j] = False
        best[j] = np.inf
        d = distances_from(j)
        closer = outside & (d < best)
        best[closer] = d[closer]
        nearest[closer] = j
    return rows, cols, lengths


def _pairs_within(Z, eps, with_distances=False):
    """Row blocks of the all-pairs ``distance <= eps`` matrix of ``Z`` (self included).

    ``|a - b|^2 <= eps^2`` is tested as ``<a, b> - |b|^2 / 2 >= (|a|^2 - eps^2) / 2``:
    one pass over the block after the product. With ``with_distances``,
    also a function of row positions in the block giving their squared
    distances to every point.
    """
    n = len(Z)
    sq = np.einsum("ij,ij->i", Z, Z)
    half_sq = sq / 2
    for start, stop in row_blocks(n, max(1, _PAIR_BLOCK_ELEMENTS // max(n, 1))):
        rows = np.arange(start, stop)
        score = Z[rows] @ Z.T
        score -= half_sq
        near = score >= ((sq[rows] - eps * eps) / 2)[:, None]
        near[np.arange(len(rows)), rows] = True  # a point is within eps of itself
        if not with_distances:
            yield rows, near
            continue

        def squared_distances(at, rows=rows, score=score):
            # score = <a, b> - |b|^2 / 2, so |a - b|^2 = |a|^2 - 2 score.
            return np.maximum(sq[rows[at], None] - 2 * score[at], 0)

        yield rows, near, squared_distances


def _distinct_roots(near, roots):
    """The distinct ``(row, roots[col])`` pairs of the true entries of ``near``."""
    n_roots = len(roots)
    to_root = sp.csr_matrix((np.ones(n_roots, dtype=np.int8), (np.arange(n_roots), roots)),
                            shape=(n_roots, int(roots.max(initial=0)) + 1))
    linked = (sp.csr_matrix(near, dtype=np.int8) @ to_root).tocoo()
    return linked.row, linked.col


def _spanning_roots(root, rows, cols):
    """Each point's component root (its first point) after adding the edges ``rows``-``cols``.

    ``root`` links each point to the first point of its component so far:
    with the new edges it is a graph of the same components as everything
    linked until now.
    """
    n = len(root)
    rows = np.concatenate([np.arange(n), *rows])
    cols = np.concatenate([root, *cols])
    graph = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    first = np.full(comp.max() + 1, n, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n))
    return first[comp]


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
    # Edges listed row by row (kNN lists) make the sparse graph directly.
    by_row = bool(np.all(rows[1:] >= rows[:-1]))
    for radius in radii:
        keep = dist <= radius
        if by_row:
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows[keep], minlength=n), out=indptr[1:])
            graph = sp.csr_matrix((np.ones(indptr[-1], dtype=bool), cols[keep], indptr),
                                  shape=(n, n))
        else:
            graph = sp.csr_matrix((np.ones(keep.sum(), dtype=bool), (rows[keep], cols[keep])),
                                  shape=(n, n))
        yield connected_components(graph, directed=False)[1]
