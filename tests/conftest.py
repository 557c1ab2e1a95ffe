import numpy as np
import pytest


def clustered_unit_rows(n, d, n_centres, spread, seed):
    """Rows around random centres on the unit sphere, normalised."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_centres, d))
    labels = rng.integers(n_centres, size=n)
    X = centres[labels] + spread * rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True), labels


def expanded_by_loop(Z, neighbors, n_expansion):
    """Reference query expansion, row by row: each row and its ``n_expansion``
    most similar candidates (ties by position), weights cos^3, unit-normalised."""
    out = np.empty_like(Z)
    for i in range(len(Z)):
        sims = Z[neighbors[i]] @ Z[i]
        top = np.argsort(-sims, kind="stable")[:n_expansion]
        v = Z[i] + (np.clip(sims[top], 0, None) ** 3) @ Z[neighbors[i][top]]
        out[i] = v / np.linalg.norm(v)
    return out


def lfw_largest_people(n_people):
    """Every third LFW face of the ``n_people`` people with the most photos: real, small."""
    from skdanet.datasets import load_lfw_features

    X, y = load_lfw_features(return_X_y=True)
    largest = np.argsort(np.bincount(y))[::-1][:n_people]
    keep = np.isin(y, largest) & (np.arange(len(y)) % 3 == 0)
    return X[keep], y[keep]


@pytest.fixture
def small_faces():
    return clustered_unit_rows(300, 16, 12, 0.5, seed=0)


@pytest.fixture(scope="session")
def lfw_people():
    """40 of the largest LFW people, every third photo."""
    return lfw_largest_people(40)


@pytest.fixture(scope="session")
def lfw_subset():
    """60 of the largest LFW people, every third photo."""
    return lfw_largest_people(60)


@pytest.fixture(scope="session")
def trained(lfw_subset):
    """A supervised embedder trained on half of ``lfw_subset``, and the unseen half."""
    from skdanet import DANetEmbedder
    from skdanet.datasets import split_identities

    X, y = lfw_subset
    tr, te = split_identities(y, test_size=0.5, random_state=0)
    emb = DANetEmbedder(k=10, n_epochs=8, random_state=0).fit(X[tr], y[tr])
    return emb, X[te], y[te]
