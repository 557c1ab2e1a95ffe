"""Query expansion of the embedding and the radius carried into it (skdanet._expansion)."""

import numpy as np
import pytest

from skdanet._expansion import expand_embedding, matched_radius
from skdanet._graph_dbscan import knn_edge_distances

from .conftest import expanded_by_loop


def _unit_rows_and_knn(n=300, d=8, k=12, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n, d)) + np.repeat(rng.normal(size=(n // 30, d)) * 2, 30, axis=0)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    order = np.argsort(-(Z @ Z.T), axis=1, kind="stable")
    return Z, order[:, 1 : k + 1]


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
