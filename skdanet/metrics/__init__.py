"""Clustering metrics as the face-clustering field computes them (noise as singletons)."""

from ._clustering import (
    bcubed_f_score,
    bcubed_precision_recall_fscore,
    clustering_report,
    mean_f_score,
    pairwise_f_score,
    pairwise_precision_recall_fscore,
)

__all__ = [
    "bcubed_f_score",
    "bcubed_precision_recall_fscore",
    "clustering_report",
    "mean_f_score",
    "pairwise_f_score",
    "pairwise_precision_recall_fscore",
]
