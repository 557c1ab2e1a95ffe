"""Data density (Eq. 2) and the strict density order that chains climb.

rho(v) = sum over u in N(v) of <f(v), f(u)>: a face with many close
neighbours is dense. Chains step only to *strictly* higher faces of a total
order (density, then a content tie-break), which guarantees that every chain
terminates, also when densities tie (duplicated photos), and that the order
does not depend on row order.
"""

import numpy as np

from ._validation import check_knn, check_per_face

_TIE_BREAK_SEED = 20200614  # fixed: the tie-break must not depend on any user seed


def density(knn_sims):
    """Density of each row, Eq. 2, from a self-first kNN similarity matrix.

    Parameters
    ----------
    knn_sims : ndarray of shape (n_samples, k + 1)
        Output of :func:`~skdanet.graph.knn_graph` (column 0 is the row itself
        and is not counted).

    Returns
    -------
    rho : ndarray of shape (n_samples,), float64
    """
    return check_knn(knn_sims)[:, 1:].sum(axis=1, dtype=np.float64)


def tie_break_key(X):
    """A content-derived secondary key: a fixed random projection of each row.

    Two rows get the same key only if they are (almost surely) identical, and
    the key of a row does not depend on where it sits in ``X``.
    """
    X = np.asarray(X)
    rng = np.random.default_rng(_TIE_BREAK_SEED)
    direction = rng.standard_normal(X.shape[1])
    return X.astype(np.float64, copy=False) @ direction


def density_rank(rho, tie_key):
    """Rank of each row in the strict order (density, tie_key, index).

    The index only separates exactly identical rows, whose order does not
    matter (they are interchangeable).

    Returns
    -------
    rank : ndarray of shape (n_samples,), int64
        0 for the lowest row, n_samples - 1 for the highest.
    """
    rho = check_per_face("rho", rho, len(np.asarray(rho)))
    tie_key = check_per_face("tie_key", tie_key, len(rho))
    n = len(rho)
    order = np.lexsort((np.arange(n), tie_key, rho))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def is_higher(rho_a, key_a, id_a, rho_b, key_b, id_b):
    """Elementwise: does a come after b in the order (density, tie_key, index)?

    Used to place faces that are not in the reference set (``transform``)
    against the reference's order; broadcasting like numpy.
    """
    return (rho_a > rho_b) | (
        (rho_a == rho_b) & ((key_a > key_b) | ((key_a == key_b) & (id_a > id_b)))
    )
