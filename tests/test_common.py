"""scikit-learn's estimator checks, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skdanet import DANetEmbedder, DensityChainClustering


@parametrize_with_checks(
    [
        DANetEmbedder(k=5, n_epochs=2, hidden_size=16, n_components=8),
        DensityChainClustering(k=5, n_epochs=2, hidden_size=16),
    ]
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
