"""Set operations on arrays that the stages run on millions of rows.

numpy's ``np.unique`` without ``return_*`` hashes its input before sorting,
several times slower than one sort on integer arrays, and ``np.unique(X,
axis=0)`` sorts whole rows; the functions here give the same results by
cheaper means.
"""

import numpy as np

# Rows hashed at a time by _row_hashes.
_HASH_BLOCK = 8_192
_HASH_SEED = 0x5EED_D0B1


def sorted_unique(values):
    """``np.unique(values)`` of a 1-D array: its distinct values, sorted, by one sort."""
    ordered = np.sort(np.asarray(values).ravel())
    if ordered.size == 0:
        return ordered
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]


def identical_row_groups(X):
    """The rows of ``X`` equal (value by value) to at least one other row, grouped.

    Rows are hashed (integer arithmetic on their bits, so equal rows hash
    equally), and only rows whose hash is shared are compared exactly: one
    sort of n integers instead of one of n whole rows.

    Returns
    -------
    rows : ndarray of int64, increasing
        Every row that has a twin.
    group : ndarray of int64 of shape rows.shape
        Equal for two of ``rows`` exactly when they are equal.
    """
    X = np.asarray(X)
    n = X.shape[0]
    none = np.empty(0, dtype=np.int64)
    if n < 2:
        return none, none
    rows = X.reshape(n, -1)
    key = _row_hashes(rows)
    order = np.argsort(key, kind="stable")
    repeated = key[order][1:] == key[order][:-1]
    candidates = np.zeros(n, dtype=bool)
    candidates[order[1:][repeated]] = True
    candidates[order[:-1][repeated]] = True
    if not candidates.any():
        return none, none
    maybe = np.flatnonzero(candidates)
    _, group, counts = np.unique(rows[maybe], axis=0, return_inverse=True, return_counts=True)
    group = group.ravel().astype(np.int64)
    twin = counts[group] > 1
    return maybe[twin], group[twin]


def first_identical_rows(R, Q):
    """Lowest index of a row of ``R`` equal (value by value) to each row of ``Q``, or -1.

    Rows are hashed as in :func:`identical_row_groups`; only the rows of
    ``R`` that share a query's hash are compared with it exactly.
    """
    R, Q = np.asarray(R), np.asarray(Q)
    out = np.full(len(Q), -1, dtype=np.int64)
    if not len(R) or not len(Q):
        return out
    key = _row_hashes(R.reshape(len(R), -1))
    order = np.argsort(key, kind="stable")  # equal hashes: increasing index
    ordered = key[order]
    wanted = _row_hashes(Q.reshape(len(Q), -1))
    lo = np.searchsorted(ordered, wanted, side="left")
    hi = np.searchsorted(ordered, wanted, side="right")
    for i in np.flatnonzero(hi > lo):
        candidates = order[lo[i] : hi[i]]
        equal = np.all(R[candidates] == Q[i], axis=1)
        if equal.any():
            out[i] = candidates[np.argmax(equal)]
    return out


def _row_hashes(rows):
    """A 64-bit hash of each row's values: equal rows, equal hashes."""
    multipliers = np.random.default_rng(_HASH_SEED).integers(
        1, 2**63, size=rows.shape[1], dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    key = np.empty(len(rows), dtype=np.uint64)
    for start in range(0, len(rows), _HASH_BLOCK):
        block = rows[start : start + _HASH_BLOCK]
        # + 0.0 turns -0.0 into 0.0: rows equal in value then have equal bits.
        bits = np.ascontiguousarray(block + 0.0, dtype=np.float64).view(np.uint64)
        # Products and sums wrap around modulo 2**64, the same for equal rows.
        key[start : start + _HASH_BLOCK] = (bits * multipliers).sum(axis=1, dtype=np.uint64)
    return key
