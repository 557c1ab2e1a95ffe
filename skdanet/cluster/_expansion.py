"""Query expansion of the learned embedding over the kNN graph.

Each face's embedding is replaced by a weighted mean of itself and its most
similar kNN neighbours (average query expansion, as in image retrieval), then
unit-normalised. A face's stray photo-specific direction is averaged with its
neighbours', so photos of one person move together while the space between
people stays.

Averaging shrinks all distances, so a radius chosen for the embedding
(calibrated on held-out people, or the loss's own boundary) is carried over
by :func:`matched_radius`: the radius in the expanded space under which the
same number of kNN pairs falls.

Torch-free, O(n k) time and memory, row blocks as in
:func:`~skdanet.cluster.knn_edge_distances`.
"""

import numpy as np

from ..utils._parallel import gather_blocks, map_blocks

# Weight of a neighbour: its cosine similarity to the face raised to this
# power, so near-duplicates count fully and looser neighbours little.
_SIMILARITY_POWER = 3
_SMALLEST_RADIUS = 1e-9


def expand_embedding(Z, neighbors, distances, n_expansion, reference=None, *, n_jobs=1):
    """Unit-norm weighted mean of each row and its ``n_expansion`` closest neighbours.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_components)
        Unit-norm embedding.
    neighbors : ndarray of int of shape (n_samples, k)
        Candidate neighbours of each row (the kNN graph, self excluded), as
        rows of ``reference``.
    distances : ndarray of shape (n_samples, k)
        ``||Z[i] - reference[neighbors[i, j]]||``.
    n_expansion : int
        Neighbours averaged in: the closest in ``Z`` among the candidates
        (all of them if ``n_expansion >= k``; ties broken by position).
    reference : ndarray of shape (n_reference, n_components), optional
        The embedding the neighbours are rows of (new faces expanded with
        fitted ones); default ``Z`` itself. Each row's result depends on
        that row and the reference alone.
    n_jobs : int, default=1
        Workers over row blocks (each row's result depends on that row alone).

    Returns
    -------
    expanded : ndarray of shape (n_samples, n_components), Z's dtype
        ``normalize(Z[i] + sum_j s_ij^3 Z[j])`` over the chosen ``j``, with
        ``s_ij = max(0, <Z[i], Z[j]>)``.
    """
    R = Z if reference is None else reference
    m = min(int(n_expansion), neighbors.shape[1])
    sq = np.einsum("ij,ij->i", Z, Z, dtype=np.float64)
    sq_r = sq if reference is None else np.einsum("ij,ij->i", R, R, dtype=np.float64)
    blocks = gather_blocks(len(Z), m * Z.shape[1])
    tasks = ((Z[a:b], R, neighbors[a:b], distances[a:b], sq[a:b], sq_r, m) for a, b in blocks)
    out = np.empty_like(Z)
    for (start, stop), block in map_blocks(_expanded_block, blocks, tasks, n_jobs):
        out[start:stop] = block
    # Zero-norm faces (failed detections, kept as zero vectors by the
    # embedder) stay zero: similar to nothing, not pulled to their neighbours.
    out[sq == 0] = 0
    return out


def _expanded_block(Z, R, neighbors, distances, sq, sq_r, m):
    """:func:`expand_embedding` of the rows ``Z`` (each row on its own)."""
    # <a, b> = (|a|^2 + |b|^2 - |a - b|^2) / 2: the cosine on unit rows.
    sims = 0.5 * (sq[:, None] + sq_r[neighbors] - distances**2)
    closest = np.argsort(-sims, axis=1, kind="stable")[:, :m]
    chosen = np.take_along_axis(neighbors, closest, axis=1)
    weights = np.clip(np.take_along_axis(sims, closest, axis=1), 0, None) ** _SIMILARITY_POWER
    block = Z + np.einsum("ik,ikd->id", weights.astype(Z.dtype), R[chosen])
    norm = np.linalg.norm(block, axis=1, keepdims=True)
    return block / np.where(norm > 0, norm, 1)


def matched_radius(before, after, radius):
    """Radius in the expanded space under which the same number of kNN pairs falls.

    Midway between the two distinct expanded distances that bracket that
    number, so that no pair lies on the boundary, where rounding noise (rows scaled
    before normalisation, another BLAS) would decide whether it links.

    Parameters
    ----------
    before, after : ndarray
        Distances of the same kNN pairs in the embedding and in its expansion.
    radius : float
        A radius in the embedding's space.

    Returns
    -------
    float
    """
    before, after = np.ravel(before), np.ravel(after)
    count = int(np.count_nonzero(before <= radius))
    if count == 0:
        matched = float(np.min(after)) / 2
    elif count == after.size:
        # Every pair within: keep the same slack above the farthest one.
        matched = float(np.max(after)) + max(radius - float(np.max(before)), 0.0)
    else:
        below = float(np.partition(after, count - 1)[count - 1])
        # The next distinct distance: a kNN pair is usually listed from both
        # of its faces, so the next distance in order is often the same one.
        above = after[after > below]
        matched = (below + float(above.min())) / 2 if above.size else below
    # DBSCAN needs a positive radius; identical faces (distance 0) stay linked.
    return max(matched, _SMALLEST_RADIUS)
