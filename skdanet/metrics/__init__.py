"""Clustering metrics as the face-clustering field computes them, and scorers."""

from ._clustering import (
    bcubed_f_score,
    bcubed_precision_recall_fscore,
    pairwise_f_score,
    pairwise_precision_recall_fscore,
)
from ._scorers import (
    bcubed_f_scorer,
    cluster_with_trained_network,
    clustering_scorers,
    make_transfer_scorer,
    nmi_scorer,
    pairwise_f_scorer,
)

__all__ = [
    "bcubed_f_score",
    "bcubed_f_scorer",
    "bcubed_precision_recall_fscore",
    "cluster_with_trained_network",
    "clustering_scorers",
    "make_transfer_scorer",
    "nmi_scorer",
    "pairwise_f_score",
    "pairwise_f_scorer",
    "pairwise_precision_recall_fscore",
]
