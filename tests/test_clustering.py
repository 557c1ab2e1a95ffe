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


@pytest.mark.parametrize("min_samples", [1, 3])
def test_knn_dbscan_equals_exact_dbscan_with_all_pairs(min_samples):
    # With every other point as a candidate, DBSCAN over the kNN pairs is
    # DBSCAN: same noise, same partition (border ties aside, none here).
    from sklearn.metrics import adjusted_rand_score

    from skdanet._graph_dbscan import graph_dbscan
    from skdanet.datasets import make_face_like

    Z = make_face_like(500, random_state=1).data.astype(np.float64)
    order = np.argsort(-(Z @ Z.T), axis=1, kind="stable")
    neighbors = np.array([row[row != i] for i, row in enumerate(order)])
    for eps in (0.25, 0.35, 0.5):
        ours = graph_dbscan(Z, neighbors, eps, min_samples)
        ref = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(Z)
        np.testing.assert_array_equal(ours == -1, ref == -1)
        assert adjusted_rand_score(ref, ours) == 1.0
        if min_samples == 1:
            np.testing.assert_array_equal(ours, ref)


def test_knn_dbscan_symmetric_and_duplicates():
    from skdanet._graph_dbscan import graph_dbscan

    # 2 lists 1 but 1 does not list 2: still one cluster; duplicates (distance 0) link.
    Z = np.array([[1.0, 0.0], [1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    neighbors = np.array([[1], [0], [1], [2]])
    np.testing.assert_array_equal(graph_dbscan(Z, neighbors, 0.7), [0, 0, 0, 1])
    np.testing.assert_array_equal(graph_dbscan(Z, neighbors, 0.7, min_samples=3),
                                  [0, 0, 0, -1])


def test_clustering_knn_dbscan_close_to_exact_on_lfw(lfw_people):
    X, y = lfw_people
    tr, te = split_identities(y, test_size=0.5, random_state=0)
    net = DANetEmbedder(k=10, n_epochs=5, random_state=0).fit(X[tr], y[tr]).network_
    exact = DensityChainClustering(k=10, network=net, dbscan_algorithm="exact").fit(X[te])
    knn = DensityChainClustering(k=10, network=net, dbscan_algorithm="knn").fit(X[te])
    assert abs(bcubed_f_score(y[te], exact.labels_) - bcubed_f_score(y[te], knn.labels_)) < 0.02


def _two_blobs_and_a_bridge(spacing):
    """Two dense 2-D blobs of 200 points, joined by a line of points ``spacing`` apart."""
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.3, (200, 2))
    b = rng.normal(0, 0.3, (200, 2)) + [12.0, 0]
    start, stop = a[:, 0].max(), b[:, 0].min()
    steps = np.arange(start + spacing, stop, spacing)
    bridge = np.c_[steps, np.interp(steps, [start, stop], [a[a[:, 0].argmax(), 1],
                                                         b[b[:, 0].argmin(), 1]])]
    Z = np.vstack([a, b, bridge])
    order = np.argsort(((Z[:, None] - Z[None]) ** 2).sum(-1), axis=1, kind="stable")
    return Z, order[:, 1:31]


def test_percolation_guard_steps_below_a_bridge():
    from skdanet._graph_dbscan import graph_dbscan, percolation_safe_eps

    # A bridge with 0.74 spacing: DBSCAN at 0.75 merges the two blobs (the
    # largest cluster doubles), at 0.725 it does not.
    Z, neighbors = _two_blobs_and_a_bridge(0.74)
    assert np.bincount(graph_dbscan(Z, neighbors, 0.75)).max() > 400
    eps = percolation_safe_eps(Z, neighbors, 0.75)
    assert eps == pytest.approx(0.725)
    assert np.bincount(graph_dbscan(Z, neighbors, eps)).max() <= 205  # a blob + its bridge end


def test_percolation_guard_keeps_eps_without_a_jump():
    from skdanet._graph_dbscan import percolation_safe_eps

    # Bridge points 2.0 apart never link: nothing jumps, eps is kept.
    Z, neighbors = _two_blobs_and_a_bridge(2.0)
    assert percolation_safe_eps(Z, neighbors, 0.75) == pytest.approx(0.75)
