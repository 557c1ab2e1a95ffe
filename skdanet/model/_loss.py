"""Training objective and batch sampling for the DA-Net embedding.

The loss (the paper's is not available) is a balanced pairwise logistic loss
on the cosine similarity of the output embeddings:

    p(same | i, j) = sigmoid(scale * (<z_i, z_j> - margin))

averaged separately over same-identity and different-identity pairs of a
batch (so the many easy negatives do not drown the positives), plus a
per-face term on the most similar other-person face and the most similar
same-person face (:func:`hardest_pair_loss`). Why this loss:
DBSCAN links two faces when their distance is below one ``eps``; on unit
vectors ``|z_i - z_j|^2 = 2 - 2 <z_i, z_j>``, so a pair classifier trained at
one cosine threshold ``margin`` is exactly a DBSCAN link rule with
``eps = sqrt(2 - 2 * margin)``. The loss trains the one global threshold
DBSCAN will apply, instead of hoping one exists.

"""

import numpy as np
import torch
from torch.nn import functional as F


def pair_loss(z, labels, *, scale, margin, known=None, same=None):
    """The training objective: the balanced pairwise loss plus the hardest-pair term.

    Parameters
    ----------
    z : Tensor of shape (B, dim), unit rows
    labels : LongTensor of shape (B,)
    scale, margin : float
    known : BoolTensor of shape (B, B), optional
        Pairs whose relation is trusted (label-free training leaves uncertain
        pairs out); all pairs by default. Symmetric.
    same : BoolTensor of shape (B, B), optional
        Pairs to pull together (label-free training adds pairs of pseudo-label
        clusters that lie close); by default the pairs of one label. Symmetric.

    Returns
    -------
    loss : scalar Tensor
    """
    # One logit matrix for both terms, and masks as 0/1 weights added or
    # multiplied in: a training step is mostly this loss, and boolean
    # indexing, masked_fill and where on (B, B) matrices (and their
    # backward) cost many times the arithmetic.
    logits = scale * (z @ z.T - margin)
    same = _same_identity(labels, same)
    usable = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    if known is not None:
        usable = usable & known
    positive = _weights(same & usable, logits.dtype)
    negative = _weights(~same & usable, logits.dtype)
    return balanced_pair_loss(logits, positive, negative) + hardest_pair_loss(logits, positive,
                                                                              negative)


def balanced_pair_loss(logits, positive, negative):
    """Balanced pairwise logistic loss on the pair logits ``scale * (sim - margin)``.

    The mean over the positive pairs plus the mean over the negative pairs
    (0/1 weight matrices), halved; a class with no pair in the batch is left
    out. Over ordered pairs: the matrices are symmetric, so the means are
    those over the pairs ``i < j``.
    """
    weights, n_terms = torch.zeros_like(logits), 0
    for mask in (positive, negative):
        count = mask.sum()
        if count > 0:
            weights = weights + mask / count
            n_terms += 1
    if not n_terms:
        return (logits * 0).sum()
    # softplus(-logit) for a positive pair, softplus(logit) for a negative.
    per_pair = F.softplus(logits * (1 - 2 * positive))
    return (per_pair * weights).sum() / n_terms


def hardest_pair_loss(logits, positive, negative):
    """Per-face loss on the pairs single-linkage DBSCAN decides on.

    DBSCAN with ``min_samples=1`` links a face to a wrong person through its
    *most similar* other-person face, and keeps it with its own person through
    its *most similar* same-person face. So for each face: push the (soft)
    maximum negative similarity below ``margin`` and the maximum positive
    similarity above it. This widens the range of radii that cluster well,
    which makes the calibrated eps transfer to other sets.
    """
    loss = logits.new_zeros(())
    for mask, reduce, sign in ((negative, _soft_maximum, 1.0), (positive, _maximum, -1.0)):
        has_pair = mask.amax(dim=1)
        n_faces = has_pair.sum()
        if n_faces > 0:
            # Left-out pairs sit at _FLOOR_LOGIT: exp() of it is zero.
            extreme = reduce(logits + (1 - mask) * _FLOOR_LOGIT)
            loss = loss + (F.softplus(sign * extreme) * has_pair).sum() / n_faces
    return loss


# The logit a left-out pair is given: far below any real pair's, which lie
# within scale * (1 + margin) of zero.
_FLOOR_LOGIT = -1e4


def _soft_maximum(x):
    return torch.logsumexp(x, dim=1)


def _maximum(x):
    return x.amax(dim=1)


def _weights(mask, dtype):
    """A boolean matrix as 0/1 weights (through uint8: several times faster)."""
    return mask.view(torch.uint8).to(dtype)


def _same_identity(labels, same):
    return labels[:, None] == labels[None, :] if same is None else same


# The loss's boundary by training mode, for pair_margin="auto". Label-free,
# the boundary is also the clustering radius (scaled to the set) and sets the
# radii at which pseudo-label clusters are pulled together in training: a
# looser one joins more of each person's odd photos on both real sets.
# Supervised, the radius is calibrated on held-out people and the margin only
# shapes training, where the tighter boundary clusters unseen people better.
LABEL_FREE_PAIR_MARGIN = 0.65
SUPERVISED_PAIR_MARGIN = 0.7


def resolve_pair_margin(pair_margin, *, supervised):
    """The cosine margin the loss trains at: ``pair_margin``, or for "auto" the
    default of the training mode (supervised or label-free)."""
    if pair_margin == "auto":
        return SUPERVISED_PAIR_MARGIN if supervised else LABEL_FREE_PAIR_MARGIN
    return float(pair_margin)


def margin_radius(pair_margin):
    """Euclidean radius between unit vectors at the loss's cosine margin.

    The loss is a DBSCAN link rule at this radius, so it is the radius a
    label-free network is stored with.
    """
    return float(np.sqrt(2 - 2 * pair_margin))

