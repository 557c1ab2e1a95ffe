"""The percolation guard: the largest radius below which no cluster grows abruptly.

Single-linkage clustering has a cliff: past some radius, chains of faces of
different people link whole clusters into giant ones, and that radius gets
smaller the more faces are clustered. The guard walks down from a radius in
small steps and stops where no cluster jumps, globally
(:func:`percolation_safe_eps`) or cluster by cluster
(:func:`edge_guarded_components`).
"""

import numpy as np

from ._dbscan import edge_components, knn_edge_distances, number_by_first_point


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
    watched, not only the largest: a merger of several people can form next
    to a larger, pure cluster.
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
    large set a few clusters percolate at the
    merge radius while everyone else is best merged there, and lowering the
    radius for everyone splits people with a few photos. Here a cluster that jumps (the
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
    return number_by_first_point(labels), radius
