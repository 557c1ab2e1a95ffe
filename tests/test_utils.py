"""Array helpers against numpy's own set operations."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skdanet.utils import _arrays
from skdanet.utils._arrays import identical_row_groups, sorted_unique


def _brute_force_twins(X):
    return np.array([sum(np.array_equal(a, b) for b in X) > 1 for a in X], dtype=bool)


def _twin_mask(X):
    """The mask of :func:`identical_row_groups`'s rows, after checking its groups."""
    rows, group = identical_row_groups(X)
    assert np.all(np.diff(rows) > 0)
    same_group = group[:, None] == group[None, :]
    same_row = np.array([[np.array_equal(X[a], X[b]) for b in rows] for a in rows], dtype=bool)
    np.testing.assert_array_equal(same_group, same_row.reshape(same_group.shape))
    twin = np.zeros(len(X), dtype=bool)
    twin[rows] = True
    return twin


@given(hnp.arrays(np.int64, st.integers(0, 300), elements=st.integers(-5, 5)))
def test_sorted_unique_equals_numpy_unique(values):
    out = sorted_unique(values)
    expected = np.unique(values)
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.integers(1, 5), st.sampled_from([np.float32, np.float64]),
       st.integers(0, 2**32 - 1))
def test_identical_row_groups_equal_brute_force(n, d, dtype, seed):
    rng = np.random.default_rng(seed)
    # Few distinct values, so that rows repeat; some zeros negated.
    X = rng.integers(-1, 2, size=(n, d)).astype(dtype)
    X[rng.random((n, d)) < 0.2] *= -1
    np.testing.assert_array_equal(_twin_mask(X), _brute_force_twins(X))


def test_minus_zero_equals_zero_and_the_input_is_untouched():
    X = np.array([[0.0, 1.0], [-0.0, 1.0], [1.0, 0.0], [0.0, -1.0]])
    before = X.copy()
    np.testing.assert_array_equal(_twin_mask(X), [True, True, False, False])
    np.testing.assert_array_equal(X, before)
    assert np.signbit(X[1, 0])


def test_rows_sharing_a_hash_are_still_compared_exactly(monkeypatch):
    # Every row hashing alike: the exact comparison alone decides.
    monkeypatch.setattr(_arrays, "_row_hashes", lambda rows: np.zeros(len(rows), np.uint64))
    X = np.array([[1.0, 2.0], [2.0, 1.0], [1.0, 2.0], [3.0, 3.0]])
    np.testing.assert_array_equal(_twin_mask(X), [True, False, True, False])


def test_rows_that_are_permutations_of_each_other_are_not_twins():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 16))
    X = np.vstack([X, X[:, ::-1], X[:3]])
    expected = np.zeros(len(X), dtype=bool)
    expected[[0, 1, 2, 1000, 1001, 1002]] = True
    np.testing.assert_array_equal(_twin_mask(X), expected)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 30), st.integers(0, 12), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_first_identical_rows_equal_brute_force(n, m, d, seed):
    from skdanet.utils._arrays import first_identical_rows

    rng = np.random.default_rng(seed)
    R = rng.integers(-1, 2, size=(n, d)).astype(np.float64)
    R[rng.random((n, d)) < 0.2] *= -1  # -0.0 equals 0.0
    Q = rng.integers(-1, 2, size=(m, d)).astype(np.float64)
    expected = [next((j for j in range(n) if np.all(R[j] == q)), -1) for q in Q]
    np.testing.assert_array_equal(first_identical_rows(R, Q), expected)
