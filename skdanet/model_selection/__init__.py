"""Model selection for DA-Net clusterers: scorers that transfer the trained network.

``GridSearchCV`` over identity folds (``GroupKFold``): each test fold holds
people the training folds never saw, and these scorers cluster it through
its own graph with the network trained on the other folds.
"""

from ._scorers import (
    bcubed_f_scorer,
    cluster_with_trained_network,
    clustering_scorers,
    make_transfer_scorer,
    nmi_scorer,
    pairwise_f_scorer,
)

__all__ = [
    "bcubed_f_scorer",
    "cluster_with_trained_network",
    "clustering_scorers",
    "make_transfer_scorer",
    "nmi_scorer",
    "pairwise_f_scorer",
]
