"""Fit-time safety shared by the estimators."""

from contextlib import contextmanager


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
