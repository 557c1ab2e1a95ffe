"""Torch modules of DA-Net: the local clique network and the chain network.

Free of data handling: they take padded tensors and masks and return
tensors. Gathering cliques and chains from the graph is the embedder's job.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F


class CliqueGCN(nn.Module):
    """Local clique network, Eq. 5, evaluated at each clique's centre.

    Per layer ``F' = ReLU(alpha * F + (1 - alpha) * D^-1 A F W)``, with ``A``
    the (non-negative part of the) inner products of the input features inside
    the clique, ``D`` its degree matrix and ``alpha = sigmoid(a)`` learnable,
    so it stays in (0, 1).

    Parameters
    ----------
    in_features : int
    hidden : int
    n_layers : int
    """

    def __init__(self, in_features, hidden, n_layers):
        super().__init__()
        self.project = nn.Linear(in_features, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(n_layers))
        # alpha = sigmoid(0) = 0.5 at start: half self, half neighbourhood.
        self.alpha_logit = nn.Parameter(torch.zeros(n_layers))

    @property
    def reads_neighbours(self):
        """False without layers: phi is then the centre's projection, so callers
        need not gather the clique members."""
        return bool(self.layers)

    @property
    def alpha(self):
        return torch.sigmoid(self.alpha_logit)

    def forward(self, members, mask):
        """Embedding phi(c) of each clique centre.

        Parameters
        ----------
        members : Tensor of shape (n_cliques, size, in_features)
            Features of the clique members, the centre first, padded.
        mask : BoolTensor of shape (n_cliques, size)
            True for real members.

        Returns
        -------
        phi : Tensor of shape (n_cliques, hidden)
        """
        if not self.reads_neighbours:
            # No graph convolution: phi is the centre's projection alone.
            return self.project(members[:, 0])
        maskf = mask.to(members.dtype)
        # Negative similarities carry no "same person" evidence; clamping also
        # keeps the degree positive (the centre's self-similarity is > 0).
        adjacency = torch.relu(members @ members.transpose(1, 2))
        adjacency = adjacency * maskf[:, :, None] * maskf[:, None, :]
        degree = adjacency.sum(dim=2, keepdim=True).clamp_min(1e-12)
        propagate = adjacency / degree
        h = self.project(members)
        alpha = self.alpha
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == last:
                # Only the centre's row is needed from the last layer.
                h = torch.relu(alpha[i] * h[:, 0] + (1 - alpha[i]) * (propagate[:, 0:1] @ layer(h))[:, 0])
            else:
                h = torch.relu(alpha[i] * h + (1 - alpha[i]) * propagate @ layer(h))
        return h


class ChainAttention(nn.Module):
    """Long-range chain network: attention over the chain, queried by its first face.

    ``context = softmax(q k^T / sqrt(h)) v`` with the query from phi(c^1) and
    keys and values from phi(c^1..c^N); the output combines phi(c^1) with the
    context.
    """

    def __init__(self, hidden, out_features):
        super().__init__()
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.out = nn.Linear(2 * hidden, out_features)

    def forward(self, phi_chain, mask):
        """Embedding of each chain's first face.

        Parameters
        ----------
        phi_chain : Tensor of shape (n_chains, length, hidden)
        mask : BoolTensor of shape (n_chains, length); position 0 always True.

        Returns
        -------
        Tensor of shape (n_chains, out_features), unnormalised
        """
        target = phi_chain[:, 0]
        q = self.query(target)
        # q . key(phi) = (q W_k) . phi + q . b_k, and the last term is the same
        # at every position of a chain, so softmax ignores it; the weights sum
        # to one, so the mean of value(phi) is value(mean of phi). Both linear
        # maps then run once per chain instead of once per chain position.
        query_in = q @ self.key.weight
        scores = (phi_chain * query_in[:, None, :]).sum(-1) / math.sqrt(q.shape[-1])
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        context = self.value((weights[:, :, None] * phi_chain).sum(1))
        return self.out(torch.cat([target, context], dim=1))


class ChainLSTM(nn.Module):
    """Chain network variant: an LSTM that reads the chain from its peak down to c^1."""

    def __init__(self, hidden, out_features):
        super().__init__()
        self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
        self.out = nn.Linear(2 * hidden, out_features)

    def forward(self, phi_chain, mask):
        lengths = mask.sum(1)
        # Reverse each chain's valid part so the sequence ends at the target face.
        length = phi_chain.shape[1]
        pos = torch.arange(length, device=phi_chain.device)[None, :]
        src = (lengths[:, None] - 1 - pos).clamp_min(0)
        reversed_chain = torch.gather(phi_chain, 1, src[:, :, None].expand_as(phi_chain))
        packed = nn.utils.rnn.pack_padded_sequence(
            reversed_chain, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, (h_n, _) = self.lstm(packed)
        return self.out(torch.cat([phi_chain[:, 0], h_n[-1]], dim=1))


CHAIN_NETWORKS = {"attention": ChainAttention, "lstm": ChainLSTM}


class DANet(nn.Module):
    """Clique GCN followed by a chain network; outputs unit-norm embeddings.

    When ``out_features == in_features`` the network is residual: the output
    is ``normalize(f(c^1) + chain_output)`` with the chain network's last
    layer initialised to zero, so training starts from the raw features (an
    identity map) and learns a context-aware correction. With a few thousand
    labelled faces this keeps what the feature extractor already knows instead
    of relearning it.

    Parameters
    ----------
    in_features : int
    hidden : int
    out_features : int
    n_gcn_layers : int
        0 disables the clique network's propagation (the "chain without GCN"
        ablation): phi(c) is then a projection of c's own feature.
    chain_network : {"attention", "lstm"}
    """

    def __init__(self, in_features, hidden, out_features, n_gcn_layers, chain_network):
        super().__init__()
        self.clique = CliqueGCN(in_features, hidden, n_gcn_layers)
        self.chain = CHAIN_NETWORKS[chain_network](hidden, out_features)
        self.residual = in_features == out_features
        if self.residual:
            nn.init.zeros_(self.chain.out.weight)
            nn.init.zeros_(self.chain.out.bias)

    def embed_chains(self, phi, chain_slots, chain_mask, target_features):
        """Embeddings from clique embeddings ``phi`` gathered at ``chain_slots``.

        ``target_features`` are the (normalised) input features of each
        chain's first face, used by the residual connection.
        """
        out = self.chain(phi[chain_slots], chain_mask)
        if self.residual:
            out = out + target_features
        return F.normalize(out, dim=1)
