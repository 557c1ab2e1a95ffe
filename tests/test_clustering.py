"""DensityChainClustering, the transfer scorers and the user workflows end to end."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import DBSCAN
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import check_clustering

from skdanet import DANetEmbedder, DensityChainClustering
from skdanet.cluster import (
    ONE_STAGE_MULTIPLES,
    knn_edge_distances,
    partner_scaled_radius,
)
from skdanet.datasets import split_identities
from skdanet.metrics import bcubed_f_score, mean_f_score
from skdanet.model._loss import LABEL_FREE_PAIR_MARGIN
from skdanet.model_selection import (
    bcubed_f_scorer,
)

from .conftest import expanded_by_loop


def test_defaults_pass_check_clustering_on_blobs():
    check_clustering("DensityChainClustering", DensityChainClustering(random_state=0))


def test_labels_and_attributes(lfw_people):
    X, y = lfw_people
    # Without query expansion the radii are in the network's own space.
    model = DensityChainClustering(k=10, n_epochs=5, random_state=0,
                                   query_expansion=0, jaccard_eps=None).fit(X, y)
    assert model.labels_.shape == (len(X),)
    calibrated = model.network_.config["eps"]
    assert model.network_.config["eps_source"] == "calibrated"
    # A calibrated radius links directly (lowered only by the percolation
    # guard): one stage, no merging.
    assert model.eps_ <= calibrated and model.merge_eps_ is None
    assert model.jaccard_eps_ is None
    np.testing.assert_array_equal(
        model.labels_, DBSCAN(eps=model.eps_, min_samples=1).fit_predict(model.embedding_))
    # Reciprocal links (the default) only join those clusters.
    linked = DensityChainClustering(k=10, n_epochs=5, random_state=0,
                                    query_expansion=0).fit(X, y)
    assert linked.jaccard_eps_ == 0.45
    for cluster in np.unique(model.labels_):
        assert len(np.unique(linked.labels_[model.labels_ == cluster])) == 1
    # The loss's boundary (label-free training), scaled to the set by its
    # share of faces with a close partner, gets two stages: a tighter link
    # radius, merging at most at the scaled boundary.
    free = DensityChainClustering(k=10, n_epochs=5, random_state=0, query_expansion=0).fit(X)
    boundary = free.network_.config["eps"]
    assert free.network_.config["eps_source"] == "loss"
    assert boundary == pytest.approx(np.sqrt(2 - 2 * LABEL_FREE_PAIR_MARGIN))
    neighbours = free.embedder_.graph_.neighbors
    assert free.radius_ == partner_scaled_radius(
        boundary, knn_edge_distances(free.embedding_, neighbours))
    assert free.eps_ <= free.radius_ - 0.05 + 1e-12 and free.merge_eps_ <= free.radius_
    assert model.radius_ == model.network_.config["eps"]  # calibrated: as stored
    assert model.n_clusters_ == len(np.unique(model.labels_))
    np.testing.assert_array_equal(model.labels_, clone(model).fit_predict(X, y))
    fixed = DensityChainClustering(k=10, n_epochs=5, random_state=0, eps=0.3,
                                   query_expansion=0).fit(X, y)
    assert fixed.eps_ == 0.3


def test_given_merge_radius_is_used_as_is(lfw_people):
    from skdanet.cluster import merge_clusters

    X, y = lfw_people
    net = DANetEmbedder(k=10, n_epochs=3, random_state=0).fit(X, y).network_
    model = DensityChainClustering(k=10, network=net, eps=0.5, merge_eps=0.7,
                                   query_expansion=0).fit(X)
    assert model.eps_ == 0.5 and model.merge_eps_ == 0.7
    first = DBSCAN(eps=0.5, min_samples=1).fit_predict(model.embedding_)
    expected, _ = merge_clusters(model.embedding_, first, 0.7,
                                 model.embedder_.graph_.neighbors, guard=False)
    np.testing.assert_array_equal(model.labels_, expected)
    assert model.n_clusters_ <= len(np.unique(first))
    assert "merging" in model.timings_


def test_query_expansion_clusters_the_expanded_embedding_at_matched_radii(lfw_people):
    from skdanet.cluster import merge_clusters

    X, y = lfw_people
    net = DANetEmbedder(k=10, n_epochs=3, random_state=0).fit(X, y).network_
    plain = DensityChainClustering(k=10, network=net, eps=0.5, merge_eps=0.7,
                                   query_expansion=0).fit(X)
    model = DensityChainClustering(k=10, network=net, eps=0.5, merge_eps=0.7).fit(X)
    neighbors = model.embedder_.graph_.neighbors
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


def test_design_card_pipeline_with_dbscan_defaults_beats_tuned_raw_dbscan(lfw_people):
    # Pipeline([DANetEmbedder(), DBSCAN()]) literally (DBSCAN at its defaults),
    # label-free, against DBSCAN on the raw features at its best radius.
    from skdanet.cluster import RAW_EPS_GRID, best_threshold
    from skdanet.graph import l2_normalize
    from skdanet.metrics import mean_f_score

    X, y = lfw_people
    labels = Pipeline([("danet", DANetEmbedder(random_state=0)), ("dbscan", DBSCAN())]).fit_predict(X)
    Xn = l2_normalize(X.astype(np.float64))
    eps, best_raw = best_threshold(lambda e: DBSCAN(eps=e, min_samples=1).fit_predict(Xn),
                                   RAW_EPS_GRID, y)
    assert labels.shape == (len(X),)
    assert mean_f_score(y, labels) >= best_raw


def _check_eps_best_reproduces_the_clusterer(network, X, **params):
    """DBSCAN at ``eps_`` on the embedder's output against the clusterer with ``network``.

    Brute force over the searched multiples with scikit-learn's DBSCAN: no
    radius of the grid reproduces the whole rule better than ``eps_``, and
    the guarded radius of the one-stage rule is on the grid.
    """
    fitted = DANetEmbedder(network=network, **params)
    Z = fitted.fit_transform(X)
    assert fitted.eps_ == 0.5  # DBSCAN's default radius, by construction
    whole = DensityChainClustering(network=network, **params).fit(X).labels_
    one_stage = DensityChainClustering(network=network, merge_eps=None, jaccard_eps=None,
                                       **params).fit(X)
    # The chosen radius, in the clusterer's space, is a multiple of the guarded one.
    multiple = 0.5 / fitted.output_scale_ / one_stage.eps_
    assert np.min(np.abs(ONE_STAGE_MULTIPLES - multiple)) < 1e-6
    at_eps = DBSCAN(eps=fitted.eps_, min_samples=1).fit_predict(Z)
    agreement = mean_f_score(whole, at_eps)
    for m in ONE_STAGE_MULTIPLES:
        other = DBSCAN(eps=fitted.eps_ * m / multiple, min_samples=1).fit_predict(Z)
        assert mean_f_score(whole, other) <= agreement + 1e-12
    # At the guarded radius itself DBSCAN is the one-stage rule exactly.
    guarded = DBSCAN(eps=fitted.eps_ / multiple, min_samples=1).fit_predict(Z)
    np.testing.assert_array_equal(guarded, one_stage.labels_)
    return agreement


def test_embedders_eps_best_reproduces_the_supervised_clusterer(trained):
    # A calibrated radius: the clusterer links at the guarded radius, then
    # follows reciprocal links; one DBSCAN radius comes as close as any.
    emb, X, _ = trained
    assert _check_eps_best_reproduces_the_clusterer(emb.network_, X, k=10) > 0.95


def test_embedders_eps_best_reproduces_the_label_free_clusterer(lfw_people):
    # A label-free network, whose radius the rule scales to the set, links
    # tighter and merges: the search covers radii on both sides.
    X, _ = lfw_people
    free = DANetEmbedder(k=10, n_epochs=3, random_state=0).fit(X).network_
    model = DensityChainClustering(k=10, network=free).fit(X)
    assert model.radius_ != free.config["eps"]
    assert _check_eps_best_reproduces_the_clusterer(free, X, k=10) > 0.95


def test_train_on_people_then_cluster_unseen_people(lfw_people):
    X, y = lfw_people
    train, test = split_identities(y, test_size=0.5, random_state=0)
    trained = DensityChainClustering(k=10, n_epochs=8, random_state=0).fit(X[train], y[train])
    new = DensityChainClustering(k=10, network=trained.network_).fit(X[test])
    assert not set(y[train]) & set(y[test])
    assert bcubed_f_score(y[test], new.labels_) > 0.85
    # the scorer does the same thing
    assert bcubed_f_scorer(trained, X[test], y[test]) == bcubed_f_score(y[test], new.labels_)


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


def test_clustering_knn_dbscan_close_to_exact_on_lfw(lfw_people):
    X, y = lfw_people
    tr, te = split_identities(y, test_size=0.5, random_state=0)
    net = DANetEmbedder(k=10, n_epochs=5, random_state=0).fit(X[tr], y[tr]).network_
    exact = DensityChainClustering(k=10, network=net, dbscan_algorithm="exact").fit(X[te])
    knn = DensityChainClustering(k=10, network=net, dbscan_algorithm="knn").fit(X[te])
    assert abs(bcubed_f_score(y[te], exact.labels_) - bcubed_f_score(y[te], knn.labels_)) < 0.02




def test_parameters_are_the_embedders_declared_once():
    import inspect

    own = {"eps": "auto", "merge_eps": "auto", "jaccard_eps": 0.45, "min_samples": 1,
           "dbscan_algorithm": "auto", "query_expansion": 4}
    params = inspect.signature(DensityChainClustering).parameters
    embedder = inspect.signature(DANetEmbedder).parameters
    assert list(params) == [*own, *embedder]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert {n: params[n].default for n in own} == own
    assert all(params[n].default == embedder[n].default for n in embedder)
    assert DensityChainClustering(k=7).get_params()["k"] == 7
    with pytest.raises(TypeError):
        DensityChainClustering(7)
    with pytest.raises(TypeError, match="unexpected"):
        DensityChainClustering(not_a_parameter=1)


def test_clusterer_hands_its_parameters_to_the_embedder(lfw_people):
    X, y = lfw_people
    model = DensityChainClustering(k=9, tau=0.9, max_chain_length=3, n_epochs=2,
                                   random_state=0).fit(X, y)
    assert model.embedder_.get_params()["k"] == 9 and model.embedder_.k_ == 9
    assert model.embedder_.tau_ == 0.9 and model.embedder_.graph_.max_length == 3
    assert model.network_ is model.embedder_.network_
