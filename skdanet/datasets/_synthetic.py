"""Labelled synthetic face-like features for scale tests and benchmarks."""

import numbers

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params

# Calibration against the bundled LFW dlib features (13,233 faces, 5,749 people),
# all cosine similarities of L2-normalised rows (see the docstring for the table).
# The generator below is a direction shared by all faces (LFW's mean face has norm
# 0.91), identity centres spread around it in a subspace whose eigenvalues decay
# like LFW's identity centres, and per-face noise around the centre.
_CENTRE_SPREAD = 0.36  # ||centre offset|| / ||shared direction||: different-people cos ~0.83
_SPECTRUM_DECAY = 1.0  # eigenvalue j of the centre spread ~ j^-decay: cos sd ~0.035
_NOISE = 0.235  # within-identity noise norm: same-person cos ~0.95
_NOISE_SPREAD = 0.15  # log-normal sd of each identity's noise scale: sd of its mean cos
# Share of the noise variance that lies in the identity subspace (pose, light and
# age move a face towards other people's faces, not in a random direction): this is
# what makes the nearest neighbour another person's face as often as in LFW.
_STRUCTURED_NOISE = 0.5


@validate_params(
    {
        "n_samples": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_identities": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "n_features": [Interval(numbers.Integral, 2, None, closed="left")],
        "size_exponent": [Interval(numbers.Real, 0, None, closed="left")],
        "hard_pair_fraction": [Interval(numbers.Real, 0, 1, closed="both")],
        "hard_pair_similarity": [Interval(numbers.Real, 0, 1, closed="neither")],
        "noise": [Interval(numbers.Real, 0, None, closed="left")],
        "dtype": "no_validation",
        "extractor_seed": [numbers.Integral],
        "random_state": ["random_state", np.random.Generator],
    },
    prefer_skip_nested_validation=True,
)
def make_face_like(n_samples=10_000, n_identities=None, n_features=128, *,
                   size_exponent=1.0, hard_pair_fraction=0.05, hard_pair_similarity=0.93,
                   noise=_NOISE, dtype=np.float32, extractor_seed=0, random_state=None,
                   return_centers=False):
    """Make labelled synthetic features that look like face embeddings.

    Identity centres are spread on the unit sphere around a direction shared by
    all faces (real face embeddings are far from centred), in a subspace whose
    variance decays like that of real identities; each face is its identity's
    centre plus noise whose scale varies from person to person. Identity sizes
    are long-tailed (Zipf weights: many people with one face, a few with
    thousands), and a fraction of people have a look-alike: a second identity
    whose centre is very close to theirs, the hard case for clustering.

    Calibrated on the bundled LFW features (:func:`load_lfw_features`); with
    ``n_samples=13233, n_identities=5749`` (LFW's counts), cosine similarities:

    ======================================  ==============  ==============
    statistic                               LFW (dlib 128)  make_face_like
    ======================================  ==============  ==============
    same person: mean (sd)                  0.952 (0.017)   0.946 (0.016)
    different people: mean (sd)             0.834 (0.035)   0.834 (0.039)
    nearest neighbour is the same person    0.954           0.968
    people with one face                    71%             66%
    largest identity (faces)                530             847
    ======================================  ==============  ==============

    (nearest neighbour: over faces of people with more than one face; measured
    by ``python benchmarks/bench_scale.py --calibration``, and checked within
    tolerances against the bundled LFW features by ``tests/test_datasets.py``.)

    Parameters
    ----------
    n_samples : int, default=10000
        Number of faces.
    n_identities : int, default=None
        Number of people; ``None`` means ``max(1, n_samples // 5)``. Every
        person has at least one face, so it is capped at ``n_samples``.
    n_features : int, default=128
        Dimension of the features.
    size_exponent : float, default=1.0
        Exponent of the Zipf weights of identity sizes (0: all people about the
        same size; larger: a longer tail).
    hard_pair_fraction : float in [0, 1], default=0.05
        Share of people made a look-alike of another person (at most half).
    hard_pair_similarity : float in (0, 1), default=0.93
        Cosine similarity between the centres of look-alikes (LFW's closest
        0.1% of pairs of different people's centres are above 0.935).
    noise : float, default=0.235
        Norm of the within-identity noise relative to the unit centre; larger
        is harder.
    dtype : numpy dtype, default=np.float32
        dtype of ``data``.
    extractor_seed : int, default=0
        Seed of the feature space itself (the direction all faces share and
        the subspace identities spread in): sets made with the same
        ``extractor_seed`` and different ``random_state`` are different people
        seen by the same feature extractor, so a network trained on one works
        on the other.
    random_state : int, RandomState, Generator or None, default=None
        Seed for reproducible output.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Unit-norm rows.
    y : ndarray of shape (n_samples,), int64
        Identity labels.
    centers : ndarray of shape (n_identities, n_features)
        Only with ``return_centers=True``: the identity centres.
    look_alike_of : ndarray of shape (n_identities,), int64
        Only with ``return_centers=True``: the person each look-alike copies,
        or -1.

    Examples
    --------
    >>> from skdanet.datasets import make_face_like
    >>> X, y = make_face_like(n_samples=1000, random_state=0)
    >>> X.shape, X.dtype
    ((1000, 128), dtype('float32'))
    >>> int(y.max()) + 1
    200
    """
    if n_identities is None:
        n_identities = max(1, n_samples // 5)
    n_identities = min(n_identities, n_samples)
    d = n_features

    # Shared direction, and an orthonormal basis of the rest for the spread.
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise ValueError(f"dtype must be a floating-point dtype (float32 or float64), got "
                         f"{np.dtype(dtype)}: unit-norm features do not fit in integers.")
    basis = np.linalg.qr(np.random.default_rng(extractor_seed).standard_normal((d, d)))[0]
    if isinstance(random_state, np.random.RandomState):
        # A seed drawn from it, as scikit-learn's make_* consume a RandomState.
        random_state = int(random_state.randint(2**31 - 1))
    rng = np.random.default_rng(random_state)
    shared, spread_basis = basis[:, 0], basis[:, 1:]
    scales = np.arange(1, d, dtype=np.float64) ** (-_SPECTRUM_DECAY / 2)
    offsets = (rng.standard_normal((n_identities, d - 1)) * scales) @ spread_basis.T
    offsets *= _CENTRE_SPREAD / np.linalg.norm(offsets, axis=1, keepdims=True)
    centers = shared + offsets
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)

    # Look-alikes: a person's centre moved a small step from another's.
    look_alike_of = np.full(n_identities, -1, dtype=np.int64)
    # Originals are never copies themselves (at most half of the people are copies).
    n_hard = min(int(round(hard_pair_fraction * n_identities)), n_identities // 2)
    if n_hard:
        people = rng.permutation(n_identities)
        copies = people[:n_hard]
        originals = rng.choice(people[n_hard:], size=n_hard)
        step = rng.standard_normal((n_hard, d))
        step -= np.einsum("ij,ij->i", step, centers[originals])[:, None] * centers[originals]
        step /= np.linalg.norm(step, axis=1, keepdims=True)
        angle = np.arccos(hard_pair_similarity)
        centers[copies] = (np.cos(angle) * centers[originals] + np.sin(angle) * step)
        look_alike_of[copies] = originals

    # Long-tailed sizes: one face each, the rest by Zipf weights over shuffled ranks.
    weights = rng.permutation(np.arange(1, n_identities + 1, dtype=np.float64)) ** -size_exponent
    sizes = 1 + rng.multinomial(n_samples - n_identities, weights / weights.sum())
    target = rng.permutation(np.repeat(np.arange(n_identities, dtype=np.int64), sizes))

    # Faces: centre + isotropic noise of a per-person scale, in chunks (1M x 128 x
    # float64 temporaries would be 1 GB each).
    noise_scale = noise * np.exp(_NOISE_SPREAD * rng.standard_normal(n_identities)
                                 - _NOISE_SPREAD**2 / 2)
    structured_scales = scales / np.sqrt(np.sum(scales**2))  # unit expected norm
    data = np.empty((n_samples, d), dtype=dtype)
    chunk = 65_536
    for start in range(0, n_samples, chunk):
        t = target[start : start + chunk]
        iso = rng.standard_normal((len(t), d)) / np.sqrt(d)
        structured = (rng.standard_normal((len(t), d - 1)) * structured_scales) @ spread_basis.T
        x = centers[t] + noise_scale[t][:, None] * (np.sqrt(1 - _STRUCTURED_NOISE) * iso
                                                    + np.sqrt(_STRUCTURED_NOISE) * structured)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        data[start : start + chunk] = x
    if return_centers:
        return data, target, centers.astype(dtype), look_alike_of
    return data, target
