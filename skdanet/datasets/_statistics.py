"""What a labelled face set looks like: the cosine statistics that tell regimes apart."""

import numpy as np

_BLOCK = 2048


def _nearest_other(X):
    """Index of each row's most similar other row (exact, in row blocks)."""
    out = np.empty(len(X), dtype=np.int64)
    for start in range(0, len(X), _BLOCK):
        sims = X[start : start + _BLOCK] @ X.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf
        out[start : start + _BLOCK] = sims.argmax(axis=1)
    return out


def face_set_statistics(X, y, *, random_state=0):
    """Same-person and different-people cosine statistics of labelled faces.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Face features (L2-normalised here).
    y : array-like of shape (n_samples,)
        Identities.
    random_state : int, default=0
        Seeds the 200,000 random pairs sampled for the different-people statistics.

    Returns
    -------
    dict
        ``same_mean``, ``same_sd`` (pairs of one person, at most 60 photos a
        person), ``diff_mean``, ``diff_sd`` (random pairs of two people),
        ``nn_same_person`` (share of faces of people with two or more photos
        whose nearest other face is the same person) and ``singletons`` (share
        of people with one photo).
    """
    X = np.asarray(X, dtype=np.float64)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    y = np.asarray(y)
    rng = np.random.default_rng(random_state)
    i, j = rng.integers(0, len(y), (2, 200_000))
    diff = np.einsum("ij,ij->i", X[i], X[j])[y[i] != y[j]]
    same = []
    for person in np.unique(y):
        rows = np.flatnonzero(y == person)[:60]
        if len(rows) > 1:
            a, b = np.triu_indices(len(rows), 1)
            same.append(np.einsum("ij,ij->i", X[rows[a]], X[rows[b]]))
    same = np.concatenate(same) if same else np.array([np.nan])
    codes = np.unique(y, return_inverse=True)[1].ravel()
    counts = np.bincount(codes)
    multi = counts[codes] > 1
    nearest = _nearest_other(X)
    return {
        "same_mean": float(same.mean()), "same_sd": float(same.std()),
        "diff_mean": float(diff.mean()), "diff_sd": float(diff.std()),
        "nn_same_person": float(np.mean(y[nearest[multi]] == y[multi])),
        "singletons": float(np.mean(counts == 1)),
    }
