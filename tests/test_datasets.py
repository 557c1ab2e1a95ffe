"""Datasets: the bundled LFW features and the face-like generator, checked against LFW."""

import numpy as np
import pytest

from skdanet.datasets import load_lfw_features, make_face_like
from skdanet.graph import knn_graph


def similarity_stats(X, y, seed=0):
    """Same-person / different-people cosine statistics and nearest-neighbour accuracy."""
    X = X.astype(np.float64)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(y), (2, 200_000))
    diff = np.einsum("ij,ij->i", X[i], X[j])[y[i] != y[j]]
    same = []
    for person in np.unique(y):
        rows = np.flatnonzero(y == person)[:60]
        if len(rows) > 1:
            a, b = np.triu_indices(len(rows), 1)
            same.append(np.einsum("ij,ij->i", X[rows[a]], X[rows[b]]))
    same = np.concatenate(same)
    _, idx = knn_graph(X, 1)
    counts = np.bincount(np.unique(y, return_inverse=True)[1])
    multi = counts[np.unique(y, return_inverse=True)[1]] > 1
    return {
        "same_mean": same.mean(), "same_sd": same.std(),
        "diff_mean": diff.mean(), "diff_sd": diff.std(),
        "nn_same_person": np.mean(y[idx[multi, 1]] == y[multi]),
        "singletons": np.mean(counts == 1),
    }


@pytest.fixture(scope="module")
def lfw_stats():
    X, y = load_lfw_features(return_X_y=True)
    return similarity_stats(X, y)


def test_face_like_resembles_lfw(lfw_stats):
    # LFW's own numbers of faces and people; the statistics are measured on the
    # bundled LFW features in the same test, not copied from anywhere.
    faces = make_face_like(13_233, 5_749, random_state=0)
    ours = similarity_stats(faces.data, faces.target)
    for key, tol in [("same_mean", 0.01), ("same_sd", 0.005), ("diff_mean", 0.01),
                     ("diff_sd", 0.008), ("nn_same_person", 0.03), ("singletons", 0.06)]:
        assert abs(ours[key] - lfw_stats[key]) <= tol, (key, ours[key], lfw_stats[key])


def test_face_like_shapes_labels_and_determinism():
    a = make_face_like(2000, 300, 64, random_state=3)
    b = make_face_like(2000, 300, 64, random_state=3)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.data.shape == (2000, 64) and a.data.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a.data, axis=1), 1.0, atol=1e-5)
    # Every person has a face; sizes are long-tailed.
    sizes = np.bincount(a.target, minlength=300)
    assert sizes.min() >= 1 and sizes.sum() == 2000
    assert np.mean(sizes == 1) > 0.1 and sizes.max() > 20 * np.median(sizes)
    assert not np.array_equal(make_face_like(2000, 300, 64, random_state=4).data, a.data)


def test_face_like_look_alikes_are_close():
    faces = make_face_like(3000, 500, hard_pair_fraction=0.2, hard_pair_similarity=0.93,
                           random_state=0)
    copies = np.flatnonzero(faces.look_alike_of >= 0)
    assert len(copies) == 100
    c = faces.centers.astype(np.float64)
    sims = np.einsum("ij,ij->i", c[copies], c[faces.look_alike_of[copies]])
    np.testing.assert_allclose(sims, 0.93, atol=1e-4)


def test_face_like_rejects_bad_parameters():
    with pytest.raises(ValueError, match="n_samples"):
        make_face_like(0)
    with pytest.raises(ValueError, match="hard_pair_fraction"):
        make_face_like(100, hard_pair_fraction=1.5)


def test_face_like_does_not_touch_global_rng():
    state = np.random.get_state()[1].copy()
    make_face_like(500, random_state=0)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
