"""Fit-time safety shared by the estimators."""

from contextlib import contextmanager

import numpy as np


def fitted_attributes(estimator):
    """Names of the fitted attributes (scikit-learn's trailing-underscore rule)."""
    return [k for k in vars(estimator) if k.endswith("_") and not k.startswith("_")]


@contextmanager
def unfitted_on_failure(estimator):
    """If ``fit`` raises (or is interrupted), leave ``estimator`` unfitted.

    ``validate_data`` sets ``n_features_in_`` before training starts; without
    this an interrupted fit would leave an estimator that looks fitted but is
    half set, or a refitted one mixing old and new state.
    """
    try:
        yield
    except BaseException:
        for name in fitted_attributes(estimator):
            delattr(estimator, name)
        raise


def seed_from(random_state):
    """A 31-bit seed from ``random_state``, without touching numpy's global RNG.

    Accepts None (a fresh seed), an int, a ``RandomState`` or a ``Generator``.
    """
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    if random_state is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    return int(random_state)
