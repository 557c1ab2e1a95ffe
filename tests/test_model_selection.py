"""skdanet.model_selection: scorers that transfer the trained network to unseen people."""

import numpy as np
import pytest
from sklearn.cluster import DBSCAN
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline

from skdanet import DANetEmbedder, DensityChainClustering
from skdanet.model_selection import (
    cluster_with_trained_network,
    clustering_scorers,
    pairwise_f_scorer,
)


def test_scorer_never_retrains_on_the_test_fold(lfw_people):
    X, y = lfw_people
    pipe = Pipeline([("danet", DANetEmbedder(k=10, n_epochs=2, random_state=0)),
                     ("dbscan", DBSCAN(eps=0.6, min_samples=1))]).fit(X[:200], y[:200])
    labels = cluster_with_trained_network(pipe, X[200:])
    expected = DBSCAN(eps=0.6, min_samples=1).fit_predict(
        DANetEmbedder(k=10, network=pipe[0].network_).fit_transform(X[200:]))
    np.testing.assert_array_equal(labels, expected)
    with pytest.raises(TypeError, match="no DANetEmbedder step"):
        cluster_with_trained_network(Pipeline([("dbscan", DBSCAN())]).fit(X), X)


@pytest.mark.parametrize("kind", ["clusterer", "pipeline"])
def test_grid_search_over_tau_and_k_with_group_kfold(lfw_people, kind):
    X, y = lfw_people
    if kind == "clusterer":
        est = DensityChainClustering(n_epochs=2, n_rounds=1, random_state=0)
        grid = {"k": [5, 10], "tau": ["auto", 0.9]}
    else:
        est = Pipeline([("danet", DANetEmbedder(n_epochs=2, random_state=0)),
                        ("dbscan", DBSCAN(eps=0.6, min_samples=1))])
        grid = {"danet__k": [5, 10], "danet__tau": ["auto", 0.9]}
    results = []
    for n_jobs in (1, 2):
        search = GridSearchCV(est, grid, scoring=clustering_scorers(), refit="bcubed_f",
                              cv=GroupKFold(n_splits=2), n_jobs=n_jobs)
        search.fit(X, y, groups=y)
        results.append(search)
    a, b = results
    np.testing.assert_array_equal(a.cv_results_["mean_test_bcubed_f"],
                                  b.cv_results_["mean_test_bcubed_f"])
    assert a.best_params_ == b.best_params_
    assert np.all(a.cv_results_["mean_test_pairwise_f"] > 0)


def test_single_scorer_grid_search(lfw_people):
    X, y = lfw_people
    search = GridSearchCV(DensityChainClustering(n_epochs=2, random_state=0), {"k": [5, 8]},
                          scoring=pairwise_f_scorer, cv=GroupKFold(n_splits=2))
    search.fit(X, y, groups=y)
    # The score of each candidate is the pairwise F of its clusters of the
    # held-out people, through the network trained on the other fold.
    for i, k in enumerate(search.cv_results_["param_k"]):
        expected = []
        for train, test in GroupKFold(n_splits=2).split(X, y, groups=y):
            model = DensityChainClustering(n_epochs=2, random_state=0, k=k).fit(X[train], y[train])
            expected.append(pairwise_f_scorer(model, X[test], y[test]))
        assert search.cv_results_["mean_test_score"][i] == pytest.approx(np.mean(expected))
    assert search.best_params_["k"] == [5, 8][int(np.argmax(search.cv_results_["mean_test_score"]))]
