"""From graph arrays to the padded tensors the torch modules take.

phi(c) depends only on c's own clique, so a batch of chains is embedded by
computing phi once for each *distinct* chain node and gathering it per chain
position (no Python loop per node).
"""

import numpy as np
import torch

from ..utils._arrays import sorted_unique


def clique_tensors(centre_features, reference, neighbor_indices, neighbor_mask, *, dtype, device,
                   centre_only=False):
    """Padded clique member features, the centre first.

    Parameters
    ----------
    centre_features : ndarray of shape (B, d)
    reference : ndarray of shape (n_reference, d)
    neighbor_indices : ndarray of shape (B, k)
        Reference indices of the centre's kNN neighbours.
    neighbor_mask : ndarray of shape (B, k), bool
        Which neighbours are in the pruned clique (Eq. 4).
    centre_only : bool, default=False
        Return the centres alone (width 1): what a clique network without
        graph-convolution layers reads, without gathering the members.

    Returns
    -------
    members : Tensor of shape (B, width, d), width = 1 + widest clique
    mask : BoolTensor of shape (B, width)
    """
    if centre_only:
        neighbor_mask = np.zeros((len(neighbor_indices), 0), dtype=bool)
        neighbor_indices = neighbor_mask.astype(np.int64)
    width = int(neighbor_mask.sum(axis=1).max(initial=0))
    # Move clique members to the front of each row, keeping their order.
    order = np.argsort(~neighbor_mask, axis=1, kind="stable")[:, :width]
    idx = np.take_along_axis(neighbor_indices, order, axis=1)
    mask = np.take_along_axis(neighbor_mask, order, axis=1)
    feats = reference[np.where(mask, idx, 0)] * mask[:, :, None]
    members = np.concatenate([centre_features[:, None, :], feats], axis=1)
    full_mask = np.concatenate([np.ones((len(mask), 1), dtype=bool), mask], axis=1)
    return (
        torch.as_tensor(members, dtype=dtype, device=device),
        torch.as_tensor(full_mask, device=device),
    )


def reference_clique_tensors(nodes, reference, knn_indices, clique_mask, *, dtype, device,
                             centre_only=False):
    """Clique tensors of reference nodes (their kNN lists are self first)."""
    return clique_tensors(
        reference[nodes], reference, knn_indices[nodes, 1:], clique_mask[nodes, 1:],
        dtype=dtype, device=device, centre_only=centre_only,
    )


def chain_slots(chains):
    """Distinct nodes of a batch of chains and each position's slot among them.

    Returns
    -------
    nodes : ndarray of shape (n_distinct,)
    slots : LongTensor of shape chains.shape (0 at padding)
    mask : BoolTensor of shape chains.shape
    """
    valid = chains >= 0
    nodes = sorted_unique(chains[valid])
    slots = np.where(valid, np.searchsorted(nodes, np.maximum(chains, 0)), 0)
    return nodes, torch.as_tensor(slots), torch.as_tensor(valid)
