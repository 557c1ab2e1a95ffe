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


def balanced_pair_loss(z, labels, *, scale, margin, known=None, same=None):
    """Balanced pairwise logistic loss on cosine similarities.

    Parameters
    ----------
    z : Tensor of shape (B, dim), unit rows
    labels : LongTensor of shape (B,)
    scale, margin : float
    known : BoolTensor of shape (B, B), optional
        Pairs whose relation is trusted (label-free training leaves uncertain
        pairs out); all pairs by default.
    same : BoolTensor of shape (B, B), optional
        Pairs to pull together (label-free training adds pairs of pseudo-label
        clusters that lie close); by default the pairs of one label.

    Returns
    -------
    loss : scalar Tensor
    """
    sim = z @ z.T
    logits = scale * (sim - margin)
    same = _same_identity(labels, same)
    upper = torch.ones_like(same).triu(diagonal=1)
    if known is not None:
        upper = upper & known
    pos = same & upper
    neg = ~same & upper
    terms = []
    if pos.any():
        terms.append(F.softplus(-logits[pos]).mean())
    if neg.any():
        terms.append(F.softplus(logits[neg]).mean())
    if not terms:
        return (z * 0).sum()
    return sum(terms) / len(terms)


def hardest_pair_loss(z, labels, *, scale, margin, known=None, same=None):
    """Per-face loss on the pairs single-linkage DBSCAN decides on.

    DBSCAN with ``min_samples=1`` links a face to a wrong person through its
    *most similar* other-person face, and keeps it with its own person through
    its *most similar* same-person face. So for each face: push the (soft)
    maximum negative similarity below ``margin`` and the maximum positive
    similarity above it. This widens the range of radii that cluster well,
    which makes the calibrated eps transfer to other sets.
    """
    sim = z @ z.T
    same = _same_identity(labels, same)
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    usable = ~eye if known is None else (~eye & known)
    floor = -4.0  # below any cosine similarity: masks out a pair
    negatives = sim.masked_fill(same | ~usable, floor)
    positives = sim.masked_fill(~same | ~usable, floor)
    has_neg = (negatives > floor).any(dim=1)
    has_pos = (positives > floor).any(dim=1)
    loss = z.new_zeros(())
    if has_neg.any():
        hardest_neg = torch.logsumexp(scale * negatives[has_neg], dim=1) / scale
        loss = loss + F.softplus(scale * (hardest_neg - margin)).mean()
    if has_pos.any():
        nearest_pos = positives[has_pos].max(dim=1).values
        loss = loss + F.softplus(scale * (margin - nearest_pos)).mean()
    return loss


def pair_loss(z, labels, *, scale, margin, known=None, same=None):
    """The training objective: balanced pairwise loss plus the hardest-pair term."""
    kw = {"scale": scale, "margin": margin, "known": known, "same": same}
    return balanced_pair_loss(z, labels, **kw) + hardest_pair_loss(z, labels, **kw)


def _same_identity(labels, same):
    return labels[:, None] == labels[None, :] if same is None else same


def margin_radius(pair_margin):
    """Euclidean radius between unit vectors at the loss's cosine margin.

    The loss is a DBSCAN link rule at this radius, so it is the radius a
    label-free network is stored with.
    """
    return float(np.sqrt(2 - 2 * pair_margin))

