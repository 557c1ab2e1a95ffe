"""Identity-disjoint train/test splits."""

import numpy as np
from sklearn.utils.validation import column_or_1d


def split_identities(y, *, test_size=0.5, random_state=None):
    """Split face indices so that train and test share no identity.

    Clustering is evaluated on people the method has never seen, so the split
    is over identities, not faces: a seeded permutation of the identities, the
    first ``test_size`` share of them (by count) going to the test side.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Identity labels.
    test_size : float in (0, 1), default=0.5
        Share of identities in the test part.
    random_state : int, Generator or None
        Seed of the permutation.

    Returns
    -------
    train_index, test_index : ndarrays of int64
        Row indices, each sorted.

    Examples
    --------
    >>> import numpy as np
    >>> from skdanet.datasets import split_identities
    >>> y = np.array([0, 0, 1, 1, 2, 2, 3])
    >>> train, test = split_identities(y, test_size=0.5, random_state=0)
    >>> set(y[train]) & set(y[test])
    set()
    """
    y = column_or_1d(y)
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}.")
    identities, inverse = np.unique(y, return_inverse=True)
    if len(identities) < 2:
        raise ValueError("split_identities needs at least two identities in y.")
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(identities))
    n_test = min(max(1, int(round(test_size * len(identities)))), len(identities) - 1)
    is_test_identity = np.zeros(len(identities), dtype=bool)
    is_test_identity[order[:n_test]] = True
    is_test = is_test_identity[inverse]
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)
