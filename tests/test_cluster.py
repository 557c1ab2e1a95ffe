"""skdanet.cluster: query expansion, DBSCAN over kNN pairs, the percolation guard, merging."""

import numpy as np
import pytest
from sklearn.cluster import DBSCAN

from skdanet.cluster import (
    EPS_GRID,
    ClusteringRule,
    expand_embedding,
    graph_dbscan,
    knn_edge_distances,
    matched_radius,
    merge_clusters,
    merge_growth,
    partner_scaled_radius,
    partner_share,
    percolation_safe_eps,
)
from skdanet.cluster._partner import PARTNER_SHARE_RAMP, RADIUS_SCALE_RANGE

from .conftest import clustered_unit_rows, expanded_by_loop


def _unit_rows_and_knn(n=300, d=8, k=12, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, d)) + np.repeat(rng.normal(size=(n // 30, d)) * 2, 30, axis=0)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    order = np.argsort(-(Z @ Z.T), axis=1, kind="stable")
    return Z, order[:, 1 : k + 1]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_knn_edge_distances_are_the_pair_distances_whatever_the_blocks(monkeypatch, n_jobs):
    from skdanet.cluster import _dbscan
    from skdanet.utils import _parallel

    Z, nb = _unit_rows_and_knn()
    R = Z[::3]
    nb_r = nb % len(R)
    whole = knn_edge_distances(Z, nb), knn_edge_distances(Z, nb_r, R)
    np.testing.assert_allclose(whole[0], np.linalg.norm(Z[:, None] - Z[nb], axis=2), atol=1e-7)
    np.testing.assert_allclose(whole[1], np.linalg.norm(Z[:, None] - R[nb_r], axis=2), atol=1e-7)
    # Row blocks of 7 rows, each gathering a few rows at a time, on n_jobs
    # workers: the same bits.
    monkeypatch.setattr(_dbscan, "_EDGE_BLOCK", 7)
    monkeypatch.setattr(_parallel, "GATHER_ELEMENTS", 3 * nb.shape[1] * Z.shape[1])
    np.testing.assert_array_equal(knn_edge_distances(Z, nb, n_jobs=n_jobs), whole[0])
    np.testing.assert_array_equal(knn_edge_distances(Z, nb_r, R, n_jobs=n_jobs), whole[1])


@pytest.mark.parametrize("m", [1, 4, 50])
def test_expand_embedding_equals_a_loop_over_rows(m):
    Z, nb = _unit_rows_and_knn()
    # Shuffle each row's candidates: the function must pick the closest itself.
    rng = np.random.default_rng(1)
    nb = np.array([rng.permutation(row) for row in nb])
    out = expand_embedding(Z, nb, knn_edge_distances(Z, nb), m)
    np.testing.assert_allclose(out, expanded_by_loop(Z, nb, m), atol=1e-12)
    assert out.dtype == Z.dtype


def test_expand_embedding_keeps_float32_and_leaves_input_alone():
    Z, nb = _unit_rows_and_knn()
    Z32 = Z.astype(np.float32)
    before = Z32.copy()
    out = expand_embedding(Z32, nb, knn_edge_distances(Z32, nb), 4)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(Z32, before)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-6)


def test_expansion_brings_neighbours_closer_and_the_radius_follows():
    Z, nb = _unit_rows_and_knn()
    before = knn_edge_distances(Z, nb)
    after = knn_edge_distances(expand_embedding(Z, nb, before, 4), nb)
    assert np.median(after) < np.median(before)
    for radius in np.quantile(before, [0.1, 0.3, 0.6]):
        r = matched_radius(before, after, radius)
        assert np.mean(after <= r) == pytest.approx(np.mean(before <= radius), abs=1.5 / after.size)


def test_matched_radius_lies_between_pairs():
    before = np.array([0.5, 0.6, 0.7])
    after = np.array([0.3, 0.4, 0.5])
    assert matched_radius(before, after, 0.1) == 0.15  # empty stays empty
    assert matched_radius(before, after, 0.6) == pytest.approx(0.45)  # not on a pair
    assert matched_radius(before, after, 0.8) == pytest.approx(0.6)  # same slack


def test_matched_radius_stays_positive_for_identical_faces():
    zeros = np.zeros(6)
    assert matched_radius(zeros, zeros, 0.5) == 0.5
    assert matched_radius(np.ones(6), zeros, 0.5) > 0


def test_zero_rows_stay_zero():
    Z, nb = _unit_rows_and_knn()
    Z[[3, 40]] = 0
    out = expand_embedding(Z, nb, knn_edge_distances(Z, nb), 4)
    np.testing.assert_array_equal(out[[3, 40]], 0)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("min_samples", [1, 3])
def test_knn_dbscan_equals_exact_dbscan_with_all_pairs(min_samples):
    # With every other point as a candidate, DBSCAN over the kNN pairs is
    # DBSCAN: same noise, same partition (border ties aside, none here).
    from sklearn.metrics import adjusted_rand_score

    from skdanet.datasets import make_face_like

    Z = make_face_like(500, random_state=1)[0].astype(np.float64)
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

    # 2 lists 1 but 1 does not list 2: still one cluster; duplicates (distance 0) link.
    Z = np.array([[1.0, 0.0], [1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    neighbors = np.array([[1], [0], [1], [2]])
    np.testing.assert_array_equal(graph_dbscan(Z, neighbors, 0.7), [0, 0, 0, 1])
    np.testing.assert_array_equal(graph_dbscan(Z, neighbors, 0.7, min_samples=3),
                                  [0, 0, 0, -1])
    # A pair listed many times over links once (and is counted once).
    repeated = np.array([[1] * 300, [0] * 300, [1] * 300, [2] * 300])
    for min_samples in (1, 3):
        np.testing.assert_array_equal(graph_dbscan(Z, repeated, 0.7, min_samples),
                                      graph_dbscan(Z, neighbors, 0.7, min_samples))


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

    # A bridge with 0.74 spacing: DBSCAN at 0.75 merges the two blobs (the
    # largest cluster doubles), at 0.725 it does not.
    Z, neighbors = _two_blobs_and_a_bridge(0.74)
    assert np.bincount(graph_dbscan(Z, neighbors, 0.75)).max() > 400
    eps = percolation_safe_eps(Z, neighbors, 0.75)
    assert eps == pytest.approx(0.725)
    assert np.bincount(graph_dbscan(Z, neighbors, eps)).max() <= 205  # a blob + its bridge end


def test_percolation_guard_keeps_eps_without_a_jump():

    # Bridge points 2.0 apart never link: nothing jumps, eps is kept.
    Z, neighbors = _two_blobs_and_a_bridge(2.0)
    assert percolation_safe_eps(Z, neighbors, 0.75) == pytest.approx(0.75)


def test_percolation_guard_watches_every_cluster_not_only_the_largest():

    # The bridged pair of blobs (about 400 points together) stays smaller than
    # a far-away pure blob of 1000 points, so the largest cluster never jumps;
    # the merger of the two blobs must still be caught.
    Z, _ = _two_blobs_and_a_bridge(0.74)
    big = np.random.default_rng(1).normal(0, 0.3, (1000, 2)) + [0.0, 50.0]
    Z = np.vstack([Z, big])
    neighbors = np.argsort(((Z[:, None] - Z[None]) ** 2).sum(-1), axis=1, kind="stable")[:, 1:31]
    assert percolation_safe_eps(Z, neighbors, 0.75) == pytest.approx(0.725)


def test_merge_growth_against_brute_force():

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


@pytest.mark.parametrize("min_samples", [20, 50])
def test_knn_dbscan_with_no_border_point_near_a_core_point(min_samples):
    # Exact DBSCAN returns all noise (or a few clusters); the kNN route must
    # agree, not crash, when no non-core point reaches a core point.
    X, _ = clustered_unit_rows(120, 6, 6, 0.3, seed=11)
    nb = np.argsort(-(X @ X.T), axis=1)[:, 1:40]
    for eps in (0.2, 0.5, 0.8):
        got = graph_dbscan(X, nb, eps, min_samples)
        nb_all = np.argsort(-(X @ X.T), axis=1)[:, 1:]
        expected = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(X)
        np.testing.assert_array_equal(graph_dbscan(X, nb_all, eps, min_samples) == -1,
                                      expected == -1)
        assert got.shape == (120,) and got.min() >= -1


@pytest.mark.parametrize("min_samples", [1, 4])
def test_exact_dbscan_in_blocks_equals_scikit_learn(min_samples, monkeypatch):
    from sklearn.metrics import adjusted_rand_score

    from skdanet.cluster import _dbscan
    from skdanet.cluster._dbscan import exact_dbscan, number_by_first_point
    from skdanet.datasets import make_face_like

    # Blocks of 50 rows and frequent forest compaction: every code path runs.
    monkeypatch.setattr(_dbscan, "_PAIR_BLOCK_ELEMENTS", 50 * 600)
    Z = make_face_like(600, random_state=2)[0].astype(np.float64)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    Z[10:40] = Z[9]  # duplicates: zero distances
    for eps in (0.2, 0.35, 0.5, 0.9):
        ref = DBSCAN(eps=eps, min_samples=min_samples).fit(Z)
        ours = exact_dbscan(Z, eps, min_samples)
        np.testing.assert_array_equal(ours == -1, ref.labels_ == -1)
        core = ref.core_sample_indices_
        # Core points: the same partition (border points may go either way).
        assert adjusted_rand_score(ref.labels_[core], ours[core]) == 1.0
        if min_samples == 1:
            np.testing.assert_array_equal(ours, number_by_first_point(ref.labels_))
        else:
            # A border point joins the cluster of a core point within eps: its nearest.
            border = np.flatnonzero((ours >= 0) & ~np.isin(np.arange(600), core))
            for i in border:
                d = np.linalg.norm(Z[core] - Z[i], axis=1)
                assert d.min() <= eps and ours[i] == ours[core[np.argmin(d)]]


def test_single_linkage_labels_are_dbscan_at_every_radius():
    from skdanet.cluster._dbscan import number_by_first_point, single_linkage_labels

    Z, _ = clustered_unit_rows(400, 8, 20, 0.4, seed=5)
    Z[5] = Z[6]
    for eps, labels in zip(EPS_GRID, single_linkage_labels(Z, EPS_GRID)):
        expected = number_by_first_point(DBSCAN(eps=eps, min_samples=1).fit_predict(Z))
        np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize("radii", [np.round(np.arange(0.45, 0.60, 0.01), 2), EPS_GRID])
def test_single_linkage_from_the_smallest_radius_is_dbscan_at_every_radius(radii):
    from skdanet.cluster._dbscan import number_by_first_point, single_linkage_from

    Z, _ = clustered_unit_rows(400, 8, 20, 0.4, seed=5)
    Z[5] = Z[6]
    for eps, labels in zip(radii, single_linkage_from(Z, radii), strict=True):
        expected = number_by_first_point(DBSCAN(eps=eps, min_samples=1).fit_predict(Z))
        np.testing.assert_array_equal(labels, expected)
    # One point: one cluster at every radius.
    assert [list(lab) for lab in single_linkage_from(Z[:1], radii)] == [[0]] * len(radii)


def test_graph_single_linkage_is_graph_dbscan_at_every_radius():
    from skdanet.cluster._dbscan import graph_single_linkage

    Z, nb = _unit_rows_and_knn()
    distances = knn_edge_distances(Z, nb)
    radii = np.round(np.arange(0.3, 1.2, 0.1), 2)
    for eps, labels in zip(radii, graph_single_linkage(nb, distances, radii), strict=True):
        np.testing.assert_array_equal(labels, graph_dbscan(Z, nb, eps, 1, distances=distances))


def test_partner_share_is_the_share_of_nearest_neighbours_within_the_radius():
    Z, nb = _unit_rows_and_knn()
    distances = knn_edge_distances(Z, nb)
    for radius in (0.3, 0.6, 0.9, 1.2):
        by_loop = np.mean([min(np.linalg.norm(Z[i] - Z[j]) for j in nb[i]) <= radius
                           for i in range(len(Z))])
        assert partner_share(distances, radius) == pytest.approx(by_loop)


def test_partner_scaled_radius_rises_from_tight_to_loose_with_the_share():
    # Rows whose nearest neighbour is at 0.1 (a partner) or at 2.0 (alone).
    def with_share(share, n=200):
        nearest = np.where(np.arange(n) < round(share * n), 0.1, 2.0)
        return np.column_stack([nearest, np.full(n, 3.0)])

    low, high = PARTNER_SHARE_RAMP
    tight, loose = RADIUS_SCALE_RANGE
    assert partner_scaled_radius(1.0, with_share(0.3)) == pytest.approx(tight)
    assert partner_scaled_radius(1.0, with_share(low)) == pytest.approx(tight)
    assert partner_scaled_radius(1.0, with_share(high)) == pytest.approx(loose)
    assert partner_scaled_radius(1.0, with_share(1.0)) == pytest.approx(loose)
    middle = (low + high) / 2
    assert partner_scaled_radius(1.0, with_share(middle)) == pytest.approx((tight + loose) / 2)
    shares = np.linspace(0, 1, 21)
    radii = [partner_scaled_radius(0.7, with_share(s)) for s in shares]
    assert np.all(np.diff(radii) >= 0)


def test_rule_scales_a_loss_radius_to_the_set_and_keeps_a_calibrated_one():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((20, 16))
    people = np.repeat(centres, 6, axis=0) + 0.15 * rng.standard_normal((120, 16))
    loners = 3 * rng.standard_normal((240, 16))  # one photo each, far from everyone
    rule = ClusteringRule()
    for X, factor in ((people, RADIUS_SCALE_RANGE[1]),
                      (np.vstack([people, loners]), RADIUS_SCALE_RANGE[0])):
        Z = X / np.linalg.norm(X, axis=1, keepdims=True)
        nb = np.argsort(-(Z @ Z.T), axis=1, kind="stable")[:, 1:11]
        free = rule.cluster(Z, nb, radius=0.6)
        assert free.radius == pytest.approx(0.6 * factor)
        assert free.radius == partner_scaled_radius(0.6, knn_edge_distances(Z, nb))
        assert rule.cluster(Z, nb, radius=0.6, calibrated=True).radius == 0.6
