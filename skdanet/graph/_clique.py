"""Pruned cliques (Eq. 4) and the data-driven similarity threshold.

N'(c) = {u in N(c) : <f(u), f(c)> > tau} plus c itself: the neighbours that
are probably the same person, the local context of the clique network.
"""

import numpy as np

from ._validation import check_knn


def clique_mask(knn_sims, tau):
    """Boolean mask of the kNN columns that belong to each node's pruned clique.

    Column 0 (the node itself) always belongs.
    """
    mask = check_knn(knn_sims) > tau
    mask[:, 0] = True
    return mask


def pruned_cliques(knn_sims, knn_indices, tau):
    """Pruned cliques of all nodes in a CSR layout, each node first in its row.

    Returns
    -------
    indptr : ndarray of shape (n_samples + 1,), int64
    indices : ndarray of shape (nnz,), int64
        Members of clique ``c`` are ``indices[indptr[c]:indptr[c + 1]]``.
    sims : ndarray of shape (nnz,)
        Their similarity to ``c``.
    """
    knn_sims, knn_indices = check_knn(knn_sims, knn_indices)
    mask = clique_mask(knn_sims, tau)
    indptr = np.zeros(mask.shape[0] + 1, dtype=np.int64)
    np.cumsum(mask.sum(axis=1), out=indptr[1:])
    return indptr, np.asarray(knn_indices)[mask], np.asarray(knn_sims)[mask]


def otsu_threshold(values, n_bins=512):
    """Threshold that best separates ``values`` into two classes (Otsu, 1979).

    kNN similarities of face features are a mixture of same-person pairs
    (high) and different-person pairs (lower); the split that maximises the
    between-class variance is a scale-free estimate of the verification
    threshold, so ``tau`` adapts to whatever feature extractor made the data.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("otsu_threshold needs at least one finite value.")
    lo, hi = values.min(), values.max()
    # Near-identical values: no more bins than representable steps between
    # them (numpy refuses bins narrower than the float spacing).
    n_bins = int(min(n_bins, (hi - lo) / np.spacing(max(abs(lo), abs(hi))) / 4))
    if n_bins < 2:
        return float(lo)
    hist, edges = np.histogram(values, bins=n_bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    total = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (m0 / w0 - (total - m0) / w1) ** 2
    between = np.nan_to_num(between[:-1], nan=-1.0)
    return float(edges[int(np.argmax(between)) + 1])
