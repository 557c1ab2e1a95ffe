"""Datasets: the bundled LFW features and the face-like generator, checked against LFW."""

import numpy as np
import pytest

from skdanet.datasets import face_set_statistics, load_lfw_features, make_face_like


@pytest.fixture(scope="module")
def lfw_stats():
    X, y = load_lfw_features(return_X_y=True)
    return face_set_statistics(X, y)


def test_face_like_resembles_lfw(lfw_stats):
    # LFW's own numbers of faces and people; the statistics are measured on the
    # bundled LFW features in the same test, not copied from anywhere.
    ours = face_set_statistics(*make_face_like(13_233, 5_749, random_state=0))
    for key, tol in [("same_mean", 0.01), ("same_sd", 0.005), ("diff_mean", 0.01),
                     ("diff_sd", 0.008), ("nn_same_person", 0.03), ("singletons", 0.06)]:
        assert abs(ours[key] - lfw_stats[key]) <= tol, (key, ours[key], lfw_stats[key])


def test_face_like_shapes_labels_and_determinism():
    a, a_y = make_face_like(2000, 300, 64, random_state=3)
    b, _ = make_face_like(2000, 300, 64, random_state=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (2000, 64) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # Every person has a face; sizes are long-tailed.
    sizes = np.bincount(a_y, minlength=300)
    assert sizes.min() >= 1 and sizes.sum() == 2000
    assert np.mean(sizes == 1) > 0.1 and sizes.max() > 20 * np.median(sizes)
    assert not np.array_equal(make_face_like(2000, 300, 64, random_state=4)[0], a)


def test_face_like_look_alikes_are_close():
    _, _, centers, look_alike_of = make_face_like(
        3000, 500, hard_pair_fraction=0.2, hard_pair_similarity=0.93, random_state=0,
        return_centers=True)
    copies = np.flatnonzero(look_alike_of >= 0)
    assert len(copies) == 100
    c = centers.astype(np.float64)
    sims = np.einsum("ij,ij->i", c[copies], c[look_alike_of[copies]])
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


def test_face_like_refuses_integer_dtype():
    with pytest.raises(ValueError, match="floating-point"):
        make_face_like(100, dtype=np.int64)
    X, _ = make_face_like(100, dtype=np.float64, random_state=np.random.RandomState(1))
    assert X.dtype == np.float64 and np.all(np.abs(np.linalg.norm(X, axis=1) - 1) < 1e-12)
