"""How far a label-free radius reaches: set by how many faces have a close partner.

A face can only be linked if another photo of its person is in the set. Where
almost every face has one (a photo library: everyone several photos), a face
that a radius leaves alone is most likely an odd photo of somebody, and a
looser radius finds its person; where a third of the faces have no other photo
(LFW), a face left alone is most likely alone, and a looser radius only joins
it to a stranger. The share of faces whose nearest kNN neighbour lies within
the radius tells the two regimes apart without labels, so the radius is scaled
from a tight to a loose end as that share rises.

A radius calibrated on held-out labelled people of the same kind of set has
already seen its regime and is left as it is.
"""

import numpy as np

# Partner shares over which the radius goes from its tight to its loose end:
# a set where a third of the faces have no close neighbour, and one where
# four in five have one. Measured at the network's own radius in its own
# space, so the ramp does not depend on an extractor's similarity scale.
PARTNER_SHARE_RAMP = (0.65, 0.80)
# The radius's factors at the two ends of the ramp.
RADIUS_SCALE_RANGE = (0.95, 1.10)


def partner_share(distances, radius):
    """Share of faces whose nearest kNN neighbour lies within ``radius``.

    Parameters
    ----------
    distances : ndarray of shape (n_samples, k)
        Distances of each face to its kNN neighbours (self excluded).
    radius : float

    Returns
    -------
    share : float in [0, 1]
    """
    distances = np.asarray(distances)
    if distances.size == 0:
        return 0.0
    return float(np.mean(distances.min(axis=1) <= radius))


def partner_scaled_radius(radius, distances):
    """``radius`` scaled by the set's :func:`partner_share` at it (see the module)."""
    low, high = PARTNER_SHARE_RAMP
    tight, loose = RADIUS_SCALE_RANGE
    where = np.clip((partner_share(distances, radius) - low) / (high - low), 0.0, 1.0)
    return float(radius * (tight + (loose - tight) * where))
