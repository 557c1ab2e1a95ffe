"""Metrics against O(n^2) brute-force definitions and hand-made cases."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdanet.metrics import (
    bcubed_f_score,
    bcubed_precision_recall_fscore,
    pairwise_f_score,
    pairwise_precision_recall_fscore,
)


def singletons(labels):
    labels = list(labels)
    nxt = max([l for l in labels if l != -1], default=0) + 1
    out = []
    for l in labels:
        if l == -1:
            out.append(("noise", nxt))
            nxt += 1
        else:
            out.append(l)
    return out


def brute_pairwise(t, p):
    t, p = singletons(t), singletons(p)
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(t)), 2):
        same_t, same_p = t[i] == t[j], p[i] == p[j]
        tp += same_t and same_p
        fp += same_p and not same_t
        fn += same_t and not same_p
    prec = tp / (tp + fp) if tp + fp else 1.0
    rec = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return prec, rec, f


def brute_bcubed(t, p):
    t, p = singletons(t), singletons(p)
    n = len(t)
    prec = rec = 0.0
    for i in range(n):
        cluster = [j for j in range(n) if p[j] == p[i]]
        identity = [j for j in range(n) if t[j] == t[i]]
        prec += sum(t[j] == t[i] for j in cluster) / len(cluster)
        rec += sum(p[j] == p[i] for j in identity) / len(identity)
    prec, rec = prec / n, rec / n
    return prec, rec, 2 * prec * rec / (prec + rec)


labelings = st.integers(1, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-1, 5), min_size=n, max_size=n),
        st.lists(st.integers(-1, 5), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(labelings)
def test_pairwise_matches_brute_force(pair):
    t, p = pair
    np.testing.assert_allclose(pairwise_precision_recall_fscore(t, p), brute_pairwise(t, p))


@settings(max_examples=200, deadline=None)
@given(labelings)
def test_bcubed_matches_brute_force(pair):
    t, p = pair
    np.testing.assert_allclose(bcubed_precision_recall_fscore(t, p), brute_bcubed(t, p))


def test_known_values():
    t = [0, 0, 0, 1, 1]
    p = [0, 0, 1, 1, 1]
    # pairs: true {01,02,12,34}; pred {01,23,24,34}; tp {01,34}
    assert pairwise_precision_recall_fscore(t, p) == pytest.approx((0.5, 0.5, 0.5))
    # bcubed precision: (1+1+1/3+2/3+2/3)/5, recall: (2/3+2/3+1/3+1+1)/5
    P, R = (1 + 1 + 1 / 3 + 2 / 3 + 2 / 3) / 5, (2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5
    assert bcubed_precision_recall_fscore(t, p) == pytest.approx((P, R, 2 * P * R / (P + R)))
    assert pairwise_f_score(t, t) == 1.0 and bcubed_f_score(t, t) == 1.0


def test_noise_counts_as_singletons():
    t = [0, 0, 1, 1]
    # All noise: every face alone. No predicted pair -> precision 1, recall 0.
    assert pairwise_precision_recall_fscore(t, [-1] * 4) == (1.0, 0.0, 0.0)
    assert bcubed_precision_recall_fscore(t, [-1] * 4) == pytest.approx((1.0, 0.5, 2 / 3))
    # Noise is not one cluster: two noise faces are not a pair.
    assert pairwise_f_score([0, 1], [-1, -1]) == pairwise_f_score([0, 1], [0, 1])


def test_large_labelings_linear_memory():
    rng = np.random.default_rng(0)
    n = 5_000_000
    t = rng.integers(0, 100_000, n)
    p = np.where(rng.random(n) < 0.9, t, rng.integers(0, 100_000, n))
    P, R, F = bcubed_precision_recall_fscore(t, p)
    assert 0.8 < P < 1 and 0.8 < R < 1
    P, R, F = pairwise_precision_recall_fscore(t, p)
    assert 0.8 < F <= 1


def test_length_mismatch_and_empty():
    with pytest.raises(ValueError, match="inconsistent"):
        pairwise_f_score([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        bcubed_f_score([], [])
