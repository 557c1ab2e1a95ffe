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

from .conftest import expanded_by_loop, lfw_largest_people


@pytest.fixture(scope="module")
def lfw_people():
    return lfw_largest_people(40)


def test_defaults_pass_check_clustering_on_blobs():
    check_clustering("DensityChainClustering", DensityChainClustering(random_state=0))


def test_labels_and_attributes(lfw_people):
    X, y = lfw_people
    # Without query expansion the radii are in the network's own space.
    model = DensityChainClustering(k=10, n_epochs=5, random_state=0,
                                   query_expansion=0).fit(X, y)
    assert model.labels_.shape == (len(X),)
    calibrated = model.network_.config["eps"]
    # Two stages by default: a tighter link radius (lowered further only by the
    # percolation guard), merging at most at the calibrated radius.
    assert model.eps_ <= calibrated - 0.05 + 1e-12
    assert model.merge_eps_ <= calibrated
    plain = DensityChainClustering(k=10, n_epochs=5, random_state=0, merge_eps=None,
                                   query_expansion=0).fit(X, y)
    assert plain.eps_ == calibrated and plain.merge_eps_ is None
    np.testing.assert_array_equal(
        plain.labels_, DBSCAN(eps=calibrated, min_samples=1).fit_predict(plain.embedding_))
    assert model.n_clusters_ == len(np.unique(model.labels_))
    np.testing.assert_array_equal(model.labels_, clone(model).fit_predict(X, y))
    fixed = DensityChainClustering(k=10, n_epochs=5, random_state=0, eps=0.3,
                                   query_expansion=0).fit(X, y)
    assert fixed.eps_ == 0.3


def test_given_merge_radius_is_used_as_is(lfw_people):
    from skdanet._merge import merge_clusters

    X, y = lfw_people
    net = DANetEmbedder(k=10, n_epochs=3, random_state=0).fit(X, y).network_
    model = DensityChainClustering(k=10, network=net, eps=0.5, merge_eps=0.7,
                                   query_expansion=0).fit(X)
    assert model.eps_ == 0.5 and model.merge_eps_ == 0.7
    first = DBSCAN(eps=0.5, min_samples=1).fit_predict(model.embedding_)
    expected, _ = merge_clusters(model.embedding_, first, 0.7,
                                 model.embedder_.knn_indices_[:, 1:], guard=False)
    np.testing.assert_array_equal(model.labels_, expected)
    assert model.n_clusters_ <= len(np.unique(first))
    assert "merging" in model.timings_


def test_query_expansion_clusters_the_expanded_embedding_at_matched_radii(lfw_people):
    from skdanet._merge import merge_clusters

    X, y = lfw_people
    net = DANetEmbedder(k=10, n_epochs=3, random_state=0).fit(X, y).network_
    plain = DensityChainClustering(k=10, network=net, eps=0.5, merge_eps=0.7,
                                   query_expansion=0).fit(X)
    model = DensityChainClustering(k=10, network=net, eps=0.5, merge_eps=0.7).fit(X)
    neighbors = model.embedder_.knn_indices_[:, 1:]
    Z = plain.embedding_
    expected = expanded_by_loop(Z, neighbors, 4)
    np.testing.assert_allclose(model.embedding_, expected, atol=1e-6)  # float32 features
    # The given radii keep the share of kNN pairs under them.
    before = np.linalg.norm(Z[:, None] - Z[neighbors], axis=2)
    after = np.linalg.norm(expected[:, None] - expected[neighbors], axis=2)
    for given, used in ((0.5, model.eps_), (0.7, model.merge_eps_)):
        assert np.mean(after <= used) == pytest.approx(np.mean(before <= given), abs=1e-3)
    assert np.median(after) < np.median(before)  # averaging brings neighbours closer
    first = DBSCAN(eps=model.eps_, min_samples=1).fit_predict(model.embedding_)
    labels, _ = merge_clusters(model.embedding_, first, model.merge_eps_, neighbors, guard=False)
    np.testing.assert_array_equal(model.labels_, labels)
    assert "query expansion" in model.timings_


def test_query_expansion_does_not_hurt_unseen_people(lfw_people):
    X, y = lfw_people
    tr, te = split_identities(y, test_size=0.5, random_state=0)
    net = DANetEmbedder(k=10, n_epochs=5, random_state=0).fit(X[tr], y[tr]).network_
    scores = [bcubed_f_score(y[te], DensityChainClustering(
        k=10, network=net, query_expansion=m).fit(X[te]).labels_) for m in (0, 4)]
    assert scores[1] >= scores[0] - 0.01


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


def test_percolation_guard_watches_every_cluster_not_only_the_largest():
    from skdanet._graph_dbscan import percolation_safe_eps

    # The bridged pair of blobs (about 400 points together) stays smaller than
    # a far-away pure blob of 1000 points, so the largest cluster never jumps;
    # the merger of the two blobs must still be caught.
    Z, _ = _two_blobs_and_a_bridge(0.74)
    big = np.random.default_rng(1).normal(0, 0.3, (1000, 2)) + [0.0, 50.0]
    Z = np.vstack([Z, big])
    neighbors = np.argsort(((Z[:, None] - Z[None]) ** 2).sum(-1), axis=1, kind="stable")[:, 1:31]
    assert percolation_safe_eps(Z, neighbors, 0.75) == pytest.approx(0.725)


def test_merge_growth_against_brute_force():
    from skdanet._graph_dbscan import merge_growth

    rng = np.random.default_rng(0)
    tight = rng.integers(0, 30, 200)
    loose = rng.integers(0, 8, 30)[tight]  # every tight cluster inside one loose cluster
    weights = rng.uniform(1, 5, 200)
    growth, piece = merge_growth(loose, tight, weights)
    for c in range(loose.max() + 1):
        sizes = [weights[tight == t].sum() for t in np.unique(tight[loose == c])]
        assert piece[c] == pytest.approx(max(sizes))
        assert growth[c] == pytest.approx(sum(sizes) - max(sizes))


def _brute_force_mean_merge(Z, labels, merge_eps):
    """Reference: single linkage over all pairs of unit-norm cluster means."""
    from scipy.cluster.hierarchy import fcluster, linkage

    means = np.array([Z[labels == c].mean(0) for c in range(labels.max() + 1)])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    merged = fcluster(linkage(means, method="single"), t=merge_eps, criterion="distance")
    return merged[labels]


def _all_neighbors(Z):
    return np.argsort(((Z[:, None] - Z[None]) ** 2).sum(-1), axis=1, kind="stable")[:, 1:]


def test_merge_clusters_equals_single_linkage_over_means():
    from skdanet._merge import merge_clusters
    from skdanet.metrics import pairwise_f_score

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(300, 8))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    labels = DBSCAN(eps=0.6, min_samples=1).fit_predict(Z)
    assert 20 < labels.max() < 290  # pieces of various sizes to merge
    for merge_eps in (0.3, 0.5, 0.7):
        # With every face a neighbour of every other, every pair of clusters
        # is a candidate: the result must be single linkage over all means.
        got, radius = merge_clusters(Z, labels, merge_eps, _all_neighbors(Z), guard=False)
        assert np.all(radius == merge_eps)
        expected = _brute_force_mean_merge(Z, labels, merge_eps)
        # Same partition (numbering differs).
        assert pairwise_f_score(expected, got) == 1.0
        assert len(np.unique(got)) == len(np.unique(expected))
    assert np.all(got[labels >= 0] >= 0)


def test_merge_keeps_noise_and_rejoins_a_split_person():
    from skdanet._merge import merge_clusters

    # One person split in two pieces whose means are close, another person far.
    rng = np.random.default_rng(1)
    a = rng.normal(size=8)
    b = -a
    Z = np.vstack([a + 0.05 * rng.normal(size=(5, 8)), a + 0.05 * rng.normal(size=(5, 8)),
                   b + 0.05 * rng.normal(size=(5, 8)), a])
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    labels = np.r_[np.zeros(5), np.ones(5), np.full(5, 2), -1].astype(int)
    merged, _ = merge_clusters(Z, labels, 0.5, _all_neighbors(Z), guard=False)
    assert merged[0] == merged[5] != merged[10]
    assert merged[-1] == -1
    assert len(np.unique(merged[:15])) == 2


def test_merge_guard_stops_means_chaining_into_one_cluster():
    from skdanet._merge import merge_clusters

    # 40 people of ten faces each, their means 0.0128 apart along an arc:
    # merging at 0.035 chains all of them into one cluster; the guard steps
    # down (0.025 at a time) to 0.010, below the spacing.
    angles = np.linspace(0, 0.5, 40)
    centres = np.c_[np.cos(angles), np.sin(angles), np.zeros(40)]
    Z = np.repeat(centres, 10, axis=0)
    labels = np.repeat(np.arange(40), 10)
    neighbors = _all_neighbors(Z)
    unguarded, _ = merge_clusters(Z, labels, 0.035, neighbors, guard=False)
    guarded, radius = merge_clusters(Z, labels, 0.035, neighbors, guard=True)
    assert len(np.unique(unguarded)) == 1
    assert np.allclose(radius, 0.010) and len(np.unique(guarded)) == 40


def test_merge_guard_lowers_the_radius_only_where_clusters_chain():
    from skdanet._merge import merge_clusters

    # The chaining arc of 40 people above, plus 30 people each split in two
    # pieces whose means are 0.02 apart, far from the arc and from each other:
    # a global guard would lower the radius for everyone (0.010, below 0.02)
    # and leave the 30 people split; the guard must lower it on the arc only.
    angles = np.linspace(0, 0.5, 40)
    arc = np.c_[np.cos(angles), np.sin(angles), np.zeros((40, 3))]
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 5)) + [0, 0, 0, 0, 8]
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    offset = np.zeros(5)
    offset[2] = 0.01
    Z = np.vstack([np.repeat(arc, 10, axis=0),
                   np.repeat(centres + offset, 10, axis=0),
                   np.repeat(centres - offset, 10, axis=0)])
    labels = np.arange(100).repeat(10)
    person = np.r_[np.arange(40), np.arange(40, 70), np.arange(40, 70)].repeat(10)
    neighbors = _all_neighbors(Z)[:, :40]
    merged, radius = merge_clusters(Z, labels, 0.035, neighbors, guard=True)
    np.testing.assert_allclose(radius[:400], 0.010)
    np.testing.assert_allclose(radius[400:], 0.035)
    # Every person whole and alone: the same partition as the identities.
    assert len(np.unique(merged)) == 70
    assert len(np.unique(np.c_[merged, person], axis=0)) == 70
