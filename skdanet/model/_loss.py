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
        pairs out); all pairs by default.
    same : BoolTensor of shape (B, B), optional
        Pairs to pull together (label-free training adds pairs of pseudo-label
        clusters that lie close); by default the pairs of one label.

    Returns
    -------
    loss : scalar Tensor
    """
    # One similarity matrix for both terms, and masks multiplied in rather
    # than indexed out: a training step is mostly this loss, and boolean
    # indexing of (B, B) matrices (and its backward) costs more than the
    # arithmetic.
    sim = z @ z.T
    same = _same_identity(labels, same)
    usable = ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    if known is not None:
        usable = usable & known
    kw = {"scale": scale, "margin": margin}
    return balanced_pair_loss(sim, same, usable, **kw) + hardest_pair_loss(sim, same, usable, **kw)


def balanced_pair_loss(sim, same, usable, *, scale, margin):
    """Balanced pairwise logistic loss on the cosine similarities ``sim``.

    The mean over the usable same-identity pairs plus the mean over the
    usable different-identity pairs, halved (each pair once, ``i < j``);
    a class with no pair in the batch is left out.
    """
    logits = scale * (sim - margin)
    upper = usable.triu(diagonal=1)
    # softplus(-logit) for a positive pair, softplus(logit) for a negative.
    per_pair = F.softplus(torch.where(same, -logits, logits))
    terms = []
    for mask in (same & upper, ~same & upper):
        count = mask.sum()
        if count > 0:
            terms.append((per_pair * mask).sum() / count)
    if not terms:
        return (sim * 0).sum()
    return sum(terms) / len(terms)


def hardest_pair_loss(sim, same, usable, *, scale, margin):
    """Per-face loss on the pairs single-linkage DBSCAN decides on.

    DBSCAN with ``min_samples=1`` links a face to a wrong person through its
    *most similar* other-person face, and keeps it with its own person through
    its *most similar* same-person face. So for each face: push the (soft)
    maximum negative similarity below ``margin`` and the maximum positive
    similarity above it. This widens the range of radii that cluster well,
    which makes the calibrated eps transfer to other sets.
    """
    floor = -4.0  # below any cosine similarity: masks out a pair
    is_neg = ~same & usable
    is_pos = same & usable
    loss = sim.new_zeros(())
    has_neg = is_neg.any(dim=1)
    n_neg = has_neg.sum()
    if n_neg > 0:
        negatives = sim.masked_fill(~is_neg, floor)
        hardest_neg = torch.logsumexp(scale * negatives, dim=1) / scale
        per_face = F.softplus(scale * (hardest_neg - margin))
        loss = loss + (per_face * has_neg).sum() / n_neg
    has_pos = is_pos.any(dim=1)
    n_pos = has_pos.sum()
    if n_pos > 0:
        nearest_pos = sim.masked_fill(~is_pos, floor).max(dim=1).values
        per_face = F.softplus(scale * (margin - nearest_pos))
        loss = loss + (per_face * has_pos).sum() / n_pos
    return loss


def _same_identity(labels, same):
    return labels[:, None] == labels[None, :] if same is None else same


def margin_radius(pair_margin):
    """Euclidean radius between unit vectors at the loss's cosine margin.

    The loss is a DBSCAN link rule at this radius, so it is the radius a
    label-free network is stored with.
    """
    return float(np.sqrt(2 - 2 * pair_margin))

