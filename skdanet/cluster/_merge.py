"""Merging clusters whose mean embeddings are close: the second stage of clustering.

Single-linkage DBSCAN has to pick one radius for two jobs. Loose enough to
keep each person's far-apart photos together, it also links different people
through a single pair of look-alike photos, and the number of such bridges
grows with the number of faces. Two stages split the jobs: DBSCAN at a tight
``link_eps`` gives high-precision pieces, then pieces whose unit-norm mean
embeddings are within ``merge_eps`` are joined (single linkage over the means
of pieces that an edge of the faces' kNN graph joins).
A mean averages out the one odd photo that makes a bridge, so the merge radius
can be looser than a face-level radius could be.
"""

import numpy as np
import scipy.sparse as sp

from ..utils._arrays import sorted_unique
from ..utils._parallel import gather_blocks
from ._dbscan import edge_components, number_by_first_point
from ._guard import edge_guarded_components

# The default link radius is this much tighter than the merge radius: the link
# stage only has to produce pure pieces, merging joins them.
LINK_TIGHTENING = 0.05


def link_radius(merge_eps):
    """Default first-stage DBSCAN radius for a merge radius ``merge_eps``."""
    return max(merge_eps - LINK_TIGHTENING, merge_eps / 2)


def cluster_means(Z, labels):
    """Unit-norm mean embedding and size of each cluster (noise, -1, excluded).

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
    labels : ndarray of int of shape (n_samples,)
        Clusters numbered 0..m-1; -1 is noise.

    Returns
    -------
    means : ndarray of shape (m, n_features), float64
    sizes : ndarray of shape (m,), int64
    """
    faces = np.flatnonzero(labels >= 0)
    m = int(labels.max()) + 1 if len(faces) else 0
    # Sums as a sparse (clusters x faces) product: each cluster's faces are
    # added in order, as np.add.at would, an order of magnitude faster.
    membership = sp.csr_matrix((np.ones(len(faces)), (labels[faces], faces)),
                               shape=(m, len(Z)))
    means = np.asarray(membership @ np.asarray(Z, dtype=np.float64))
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    # A cluster of exactly opposite faces has no direction; keep its sum (zero).
    np.divide(means, norms, out=means, where=norms > 0)
    return means, np.bincount(labels[faces], minlength=m).astype(np.int64)


def adjacent_cluster_pairs(labels, neighbors):
    """Pairs of clusters (a < b) that some kNN edge between their faces joins.

    Two pieces of one person always have faces among each other's nearest
    neighbours, so these are the only candidates for merging: O(n k), with no
    search over the means.
    """
    a = np.repeat(labels, neighbors.shape[1])
    b = labels[neighbors.ravel()]
    keep = (a != b) & (a >= 0) & (b >= 0)
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    m = int(labels.max()) + 1
    pairs = sorted_unique(lo * m + hi)
    return pairs // m, pairs % m


def _mean_distances(means, a, b):
    out = np.empty(len(a))
    for start, stop in gather_blocks(len(a), 2 * means.shape[1]):
        part = slice(start, stop)
        diff = means[a[part]] - means[b[part]]
        out[part] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def merge_clusters(Z, labels, merge_eps, neighbors, *, guard=True):
    """Join clusters whose unit-norm mean embeddings are within ``merge_eps``.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_features)
        The embedding the clusters were found in.
    labels : ndarray of int of shape (n_samples,)
        First-stage clusters (numbered from 0; -1 noise stays noise).
    merge_eps : float
        Euclidean radius between means (single linkage over the means).
    neighbors : ndarray of int of shape (n_samples, k)
        The kNN graph of the faces (self excluded): clusters are candidates
        for merging when an edge joins them (:func:`adjacent_cluster_pairs`).
    guard : bool, default=True
        Apply the percolation guard of
        :func:`~skdanet.cluster.edge_guarded_components` to the means,
        counting each with its cluster's size: a merged cluster that grows
        abruptly at ``merge_eps`` is merged again at a lower radius (0.025
        at a time), all others keep ``merge_eps``. A merge radius calibrated
        on a few thousand held-out faces can chain clusters of different
        people into one on a million.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
        Merged clusters, numbered by their first face.
    radius : ndarray of shape (n_samples,)
        The merge radius of each face's cluster (``merge_eps`` unless the
        guard lowered it; NaN for noise).
    """
    labels = np.asarray(labels, dtype=np.int64)
    clustered = labels >= 0
    radius = np.where(clustered, float(merge_eps), np.nan)
    means, sizes = cluster_means(Z, labels)
    m = len(means)
    if m < 2:
        return number_by_first_point(labels), radius
    a, b = adjacent_cluster_pairs(labels, neighbors)
    dist = _mean_distances(means, a, b)
    if guard:
        merged, cluster_radius = edge_guarded_components(a, b, dist, m, merge_eps,
                                                         weights=sizes)
        radius[clustered] = cluster_radius[labels[clustered]]
    else:
        merged = next(edge_components(a, b, dist, m, [merge_eps]))
    out = np.full(len(labels), -1, dtype=np.int64)
    out[clustered] = merged[labels[clustered]]
    return number_by_first_point(out), radius
