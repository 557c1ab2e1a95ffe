"""Which entries of a row are its k largest: the one tie rule of every search.

Exact search, the IVF index's probed lists and its candidates, and the
refinement through neighbours' lists each keep a row's ``k`` largest
entries. Among entries equal to the k-th largest they keep the lowest
columns: a choice fixed by the values alone, so a search returns the same
neighbours with any NumPy (``argpartition`` picks among ties in no defined
order, and that order has changed between releases). Ties are real in face
sets: a photo imported twice, or the same frame of a video, gives identical
rows.
"""

import numpy as np


def largest_columns(S, k):
    """Columns of each row's ``k`` largest entries of ``S``, in increasing order.

    Ties at the k-th largest value go to the lowest columns.

    Parameters
    ----------
    S : ndarray of shape (n_rows, n_columns)
        Finite values.
    k : int
        Entries kept per row; all of them when ``k >= n_columns``.

    Returns
    -------
    columns : ndarray of int of shape (n_rows, min(k, n_columns))
    """
    n_rows, n_columns = S.shape
    if k >= n_columns:
        return np.broadcast_to(np.arange(n_columns), S.shape).copy()
    if k <= 0:
        return np.empty((n_rows, 0), dtype=np.intp)
    kth = np.partition(S, n_columns - k, axis=1)[:, n_columns - k, None]
    take = S >= kth
    # Only rows where more than k entries reach the k-th value need the tie
    # rule (rare); the running count stays off the others.
    crossing = np.flatnonzero(np.count_nonzero(take, axis=1) > k)
    if crossing.size:
        rows, at = S[crossing], kth[crossing]
        above = rows > at
        tied = rows == at
        missing = k - np.count_nonzero(above, axis=1)
        take[crossing] = above | (tied & (np.cumsum(tied, axis=1) <= missing[:, None]))
    return np.nonzero(take)[1].reshape(n_rows, k)
