"""DensityChainClustering, the transfer scorers and the user workflows end to end."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import DBSCAN
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import check_clustering

from skdanet import DANetEmbedder, DensityChainClustering
from skdanet.datasets import split_identities
from skdanet.metrics import (
    bcubed_f_score,
    bcubed_f_scorer,
    cluster_with_trained_network,
    clustering_scorers,
    pairwise_f_scorer,
)

from .conftest import lfw_largest_people


@pytest.fixture(scope="module")
def lfw_people():
    return lfw_largest_people(40)


def test_defaults_pass_check_clustering_on_blobs():
    check_clustering("DensityChainClustering", DensityChainClustering(random_state=0))


def test_labels_and_attributes(lfw_people):
    X, y = lfw_people
    model = DensityChainClustering(k=10, n_epochs=5, random_state=0).fit(X, y)
    assert model.labels_.shape == (len(X),)
    assert model.eps_ == model.network_.config["eps"]
    assert model.n_clusters_ == len(np.unique(model.labels_))
    np.testing.assert_array_equal(model.labels_, clone(model).fit_predict(X, y))
    fixed = DensityChainClustering(k=10, n_epochs=5, random_state=0, eps=0.3).fit(X, y)
    assert fixed.eps_ == 0.3


def test_unlabelled_pipeline_fit_predict(lfw_people):
    X, y = lfw_people
    pipe = Pipeline([("danet", DANetEmbedder(k=10, n_epochs=3, n_rounds=1, random_state=0)),
                     ("dbscan", DBSCAN(eps=0.5, min_samples=1))])
    labels = pipe.fit_predict(X)
    assert labels.shape == (len(X),)
    assert bcubed_f_score(y, labels) > 0.5


def test_train_on_people_then_cluster_unseen_people(lfw_people):
    X, y = lfw_people
    train, test = split_identities(y, test_size=0.5, random_state=0)
    trained = DensityChainClustering(k=10, n_epochs=8, random_state=0).fit(X[train], y[train])
    new = DensityChainClustering(k=10, network=trained.network_).fit(X[test])
    assert not set(y[train]) & set(y[test])
    assert bcubed_f_score(y[test], new.labels_) > 0.85
    # the scorer does the same thing
    assert bcubed_f_scorer(trained, X[test], y[test]) == bcubed_f_score(y[test], new.labels_)


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
    assert search.best_score_ > 0


def test_save_load_cluster_in_fresh_process(lfw_people, tmp_path):
    X, y = lfw_people
    trained = DensityChainClustering(k=10, n_epochs=3, random_state=0).fit(X, y)
    trained.network_.save(tmp_path / "net.npz")
    np.save(tmp_path / "X.npy", X)
    expected = DensityChainClustering(k=10, network=trained.network_).fit(X).labels_
    code = (
        "import numpy as np; from skdanet import DensityChainClustering, TrainedNetwork;"
        f"net = TrainedNetwork.load({str(tmp_path / 'net.npz')!r});"
        f"X = np.load({str(tmp_path / 'X.npy')!r});"
        "labels = DensityChainClustering(k=10, network=net).fit(X).labels_;"
        f"np.save({str(tmp_path / 'labels.npy')!r}, labels)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), expected)
