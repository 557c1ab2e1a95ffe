"""Scorers for GridSearchCV over DA-Net clusterers, which have no ``predict``.

Why not the built-in scorers: they call ``estimator.predict(X_test)``, which
neither :class:`~skdanet.DensityChainClustering` nor
``Pipeline([("danet", DANetEmbedder()), ("dbscan", DBSCAN())])`` has (DBSCAN
cannot assign new points), and ``Pipeline.fit_predict(X_test)`` would
*retrain* the network on the test fold, without labels. With ``GroupKFold``
by identity each test fold holds people the training folds never saw, which
is the real use: a network trained on labelled people clusters a new set of
people through that set's own density graph. These scorers do exactly that:
they take the network trained on the training folds, embed the test fold
through its own graph (no retraining) and cluster it, then compare the
clusters with the test fold's identities.
"""

import warnings

from sklearn.base import clone
from sklearn.metrics import normalized_mutual_info_score
from sklearn.pipeline import Pipeline

from .._clustering import DensityChainClustering
from .._embedder import DANetEmbedder
from ..metrics import bcubed_f_score, pairwise_f_score


def _danet_step(pipeline):
    for name, step in pipeline.steps:
        if isinstance(step, DANetEmbedder):
            return name, step
    raise TypeError(
        "The pipeline has no DANetEmbedder step; these scorers transfer a trained "
        "DA-Net network to the test fold. Use them with DensityChainClustering or a "
        "Pipeline that contains a DANetEmbedder."
    )


def cluster_with_trained_network(estimator, X):
    """Cluster ``X`` with the network ``estimator`` learned, through X's own graph.

    Parameters
    ----------
    estimator : fitted DensityChainClustering, or fitted Pipeline with a
        DANetEmbedder step followed by a clusterer with ``fit_predict``.
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    """
    # The transfer keeps the training parameters knowingly: they are unused.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="network= is given", category=UserWarning)
        if isinstance(estimator, DensityChainClustering):
            # Same parameters, eps included: "auto" re-derives the radius for
            # this set from the network's (it depends on the set's size).
            model = clone(estimator).set_params(network=estimator.network_)
            return model.fit(X).labels_
        if isinstance(estimator, Pipeline):
            name, step = _danet_step(estimator)
            model = clone(estimator).set_params(**{f"{name}__network": step.network_})
            return model.fit_predict(X)
    raise TypeError(
        f"Cannot score a {type(estimator).__name__}: expected DensityChainClustering "
        "or a Pipeline with a DANetEmbedder step."
    )


class _TransferClusteringScorer:
    def __init__(self, score_func, name):
        self._score_func = score_func
        self._name = name

    def __call__(self, estimator, X, y):
        if y is None:
            raise ValueError(f"The {self._name} scorer needs identity labels y for the test fold.")
        return self._score_func(y, cluster_with_trained_network(estimator, X))

    def __repr__(self):
        return f"make_transfer_scorer({self._score_func.__name__})"


def make_transfer_scorer(score_func):
    """A GridSearchCV scorer: cluster the test fold with the trained network, then score.

    Parameters
    ----------
    score_func : callable
        ``score_func(labels_true, labels_pred) -> float``, greater is better.

    Returns
    -------
    scorer : callable ``scorer(estimator, X, y)``

    Examples
    --------
    >>> from skdanet.metrics import bcubed_f_score
    >>> from skdanet.model_selection import make_transfer_scorer
    >>> scorer = make_transfer_scorer(bcubed_f_score)
    """
    return _TransferClusteringScorer(score_func, getattr(score_func, "__name__", "custom"))


pairwise_f_scorer = make_transfer_scorer(pairwise_f_score)
bcubed_f_scorer = make_transfer_scorer(bcubed_f_score)
nmi_scorer = make_transfer_scorer(normalized_mutual_info_score)


def clustering_scorers():
    """The three scorers as a dict for multi-metric ``GridSearchCV(scoring=..., refit=...)``.

    Each one clusters the test fold; to cluster once and score three times,
    pass a single scorer. Returns
    ``{"pairwise_f": ..., "bcubed_f": ..., "nmi": ...}``.
    """
    return {"pairwise_f": pairwise_f_scorer, "bcubed_f": bcubed_f_scorer, "nmi": nmi_scorer}
