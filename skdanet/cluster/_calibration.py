"""Choosing a radius (or any threshold) on labelled faces.

Every tuned threshold in skdanet -- the DBSCAN radius calibrated on held-out
people, the label-free re-labelling radius, the raw baselines of the
benchmarks -- is chosen the same way: the grid value with the best
:func:`~skdanet.metrics.mean_f_score`, or with a tolerance the smallest value
whose score is within it of the best.
"""

import numpy as np

from ..metrics import mean_f_score
from ._dbscan import single_linkage_labels

# DBSCAN radii searched for raw, L2-normalised face features (baselines).
RAW_EPS_GRID = np.round(np.arange(0.20, 0.60, 0.01), 3)
# DBSCAN radii searched when calibrating a learned space (unit rows).
EPS_GRID = np.round(np.arange(0.20, 1.001, 0.025), 3)
# The tolerance of calibrate_eps: the score falls off a cliff on the loose
# side and degrades slowly on the tight side, and the held-out set is smaller
# than the sets users cluster, so the tighter of two near-equal radii is safer.
EPS_TOLERANCE = 0.02


def best_threshold(cluster, grid, labels, *, tolerance=0.0):
    """The first grid value whose clustering scores within ``tolerance`` of the best.

    Parameters
    ----------
    cluster : callable
        ``cluster(value) -> labels_pred``.
    grid : sequence of float
        Candidate values, in the order of preference (tight first).
    labels : ndarray of shape (n_samples,)
        True identities.
    tolerance : float, default=0.0
        0 returns the first best value.

    Returns
    -------
    value, score : float, float
        The chosen value and the best score on the grid.
    """
    scores = np.array([mean_f_score(labels, cluster(value)) for value in grid])
    best = scores.max()
    return float(grid[np.flatnonzero(scores >= best - tolerance)[0]]), float(best)


def calibrate_eps(Z, labels, *, grid=EPS_GRID, tolerance=EPS_TOLERANCE):
    """DBSCAN radius (``min_samples=1``) for the space ``Z``, from labelled faces.

    Returns
    -------
    eps, score : float, float
    """
    by_radius = dict(zip(grid, single_linkage_labels(Z, grid)))
    return best_threshold(by_radius.__getitem__, grid, labels, tolerance=tolerance)
