"""Reciprocal links: k-reciprocal neighbourhoods, their Jaccard distance, the links."""

import numpy as np
import pytest

from skdanet.cluster import (
    ClusteringRule,
    jaccard_distances,
    reciprocal_links,
    reciprocal_mask,
    reciprocal_neighbourhoods,
)
from skdanet.cluster._reciprocal import reciprocal_ranks
from skdanet.graph import knn_graph

from .conftest import clustered_unit_rows


def _neighbours(n=120, d=8, seed=0, k=12):
    X, y = clustered_unit_rows(n, d, 6, 0.6, seed=seed)
    return X, y, knn_graph(X, k)[1][:, 1:]


def _reference_sets(neighbors, k):
    """k-reciprocal re-ranking's expanded sets, face by face (lists with self first)."""
    n = len(neighbors)
    order = np.concatenate([np.arange(n)[:, None], neighbors], axis=1)
    full, half = order[:, :k + 1], order[:, :round(k / 2) + 1]
    sets = []
    for i in range(n):
        recip = [j for j in full[i] if i in full[j]]
        out = set(recip)
        for j in recip:
            cand = [m for m in half[j] if j in half[m]]
            if len(set(cand) & set(recip)) > 2 / 3 * len(cand):
                out |= set(cand)
        sets.append(out)
    return sets


def _reference_smoothed(neighbors, k, smoothing):
    n = len(neighbors)
    V = np.zeros((n, n))
    for i, members in enumerate(_reference_sets(neighbors, k)):
        V[i, sorted(members)] = 1 / len(members)
    near = np.concatenate([np.arange(n)[:, None], neighbors[:, :smoothing - 1]], axis=1)
    return V[near].mean(axis=1)


def test_reciprocal_mask_against_a_loop():
    _, _, nb = _neighbours()
    for k in (1, 5, 12):
        mask = reciprocal_mask(nb, k)
        expected = [[i in nb[j, :k] for j in nb[i, :k]] for i in range(len(nb))]
        np.testing.assert_array_equal(mask, expected)
        # The ranks of some faces are those rows of everyone's.
        faces = np.array([7, 3, 3, 100])
        np.testing.assert_array_equal(reciprocal_ranks(nb, k, faces),
                                      reciprocal_ranks(nb, k)[faces])


@pytest.mark.parametrize("k", [4, 9, 12])
@pytest.mark.parametrize("row_block", [2, 65_536])
def test_reciprocal_neighbourhoods_against_a_loop(k, row_block, monkeypatch):
    monkeypatch.setattr("skdanet.cluster._reciprocal._ROW_BLOCK", row_block)
    _, _, nb = _neighbours(k=12)
    rows = np.array([5, 0, 77, 5, 119])
    V = reciprocal_neighbourhoods(nb, rows, k).toarray()
    sets = _reference_sets(nb, k)
    for r, i in enumerate(rows):
        assert set(np.flatnonzero(V[r])) == sets[i]
        np.testing.assert_allclose(V[r][V[r] > 0], 1 / len(sets[i]))


@pytest.mark.parametrize("smoothing", [1, 3, 6])
def test_jaccard_distances_against_dense_weights(smoothing, monkeypatch):
    monkeypatch.setattr("skdanet.cluster._reciprocal._PAIR_BLOCK", 50)  # several blocks
    _, _, nb = _neighbours(k=12)
    V = _reference_smoothed(nb, 10, smoothing)
    first = np.repeat(np.arange(len(nb)), 3)
    second = nb[:, :3].ravel()
    expected = 1 - np.minimum(V[first], V[second]).sum(1) / np.maximum(V[first], V[second]).sum(1)
    got = jaccard_distances(nb, first, second, k=10, smoothing=smoothing)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert np.all((got >= 0) & (got <= 1))
    np.testing.assert_allclose(jaccard_distances(nb, second, first, k=10, smoothing=smoothing),
                               got, atol=1e-12)
    np.testing.assert_allclose(jaccard_distances(nb, first, first, k=10), 0, atol=1e-12)


def _components_reference(labels, pairs):
    """Union-find over clusters joined by ``pairs`` of faces."""
    parent = list(range(labels.max() + 1))

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a
    for i, j in pairs:
        parent[find(labels[i])] = find(labels[j])
    roots = np.array([find(c) for c in range(labels.max() + 1)])
    return roots


def test_reciprocal_links_join_exactly_the_accepted_pairs():
    X, _, nb = _neighbours(k=12)
    labels = np.arange(len(X)) % 40  # deliberately poor clusters
    labels[::17] = -1
    dist = np.linalg.norm(X[:, None, :] - X[nb], axis=2)
    out = reciprocal_links(labels, nb, dist, jaccard_eps=0.5, max_distance=0.8, k=10)
    J = jaccard_distances(nb, np.repeat(np.arange(len(X)), 12), nb.ravel(), k=10).reshape(nb.shape)
    pairs = [(i, nb[i, j]) for i in range(len(X)) for j in range(12)
             if labels[i] >= 0 and labels[nb[i, j]] >= 0 and dist[i, j] <= 0.8 and J[i, j] <= 0.5]
    assert pairs, "the case must link something"
    roots = _components_reference(labels, pairs)
    clustered = labels >= 0
    np.testing.assert_array_equal(out < 0, ~clustered)  # noise stays noise
    same_out = out[clustered][:, None] == out[clustered][None, :]
    same_ref = roots[labels[clustered]][:, None] == roots[labels[clustered]][None, :]
    np.testing.assert_array_equal(same_out, same_ref)


def test_reciprocal_links_change_nothing_without_candidates():
    X, _, nb = _neighbours(k=12)
    labels = np.arange(len(X)) % 7
    dist = np.linalg.norm(X[:, None, :] - X[nb], axis=2)
    out = reciprocal_links(labels, nb, dist, jaccard_eps=0.5, max_distance=0.0)
    np.testing.assert_array_equal(out, labels)
    before = labels.copy()
    reciprocal_links(labels, nb, dist, jaccard_eps=1.0, max_distance=2.0)
    np.testing.assert_array_equal(labels, before)  # input left alone


def test_links_bring_back_a_persons_stray_photo():
    # Two people of 12 photos each and a stray photo of person 0 (turned
    # towards a third direction): beyond the radius from its person, but its
    # reciprocal neighbourhood is theirs.
    rng = np.random.default_rng(3)
    centres = np.eye(16)[:3]
    X = np.concatenate([centres[0] + 0.08 * rng.standard_normal((12, 16)),
                        centres[1] + 0.08 * rng.standard_normal((12, 16)),
                        [centres[0] * 0.8 + centres[2] * 0.45]])
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    nb = knn_graph(X, 10)[1][:, 1:]
    rule = ClusteringRule(query_expansion=0)
    radius = 0.46  # the stray's nearest photos are 0.477 and 0.486 away
    # Calibrated: the radius is used as given (not scaled to the set).
    plain = rule.cluster(X, nb, radius=radius, calibrated=True, jaccard_eps=None).labels
    assert plain[24] not in plain[:12]  # beyond the radius: on its own
    linked = rule.cluster(X, nb, radius=radius, calibrated=True, jaccard_eps=0.45).labels
    assert linked[24] == linked[0] and linked[12] != linked[0]
    assert len(np.unique(linked)) == 2
