"""From a density graph to the embedding: the one owner of that path.

Training embeds reference faces through their chains and cliques in the
graph, differentiably (:func:`embed_reference_nodes`). Inference
(:class:`GraphEmbedding`) computes each reference face's clique embedding
phi(c) once, then embeds any face placed in the graph
(:meth:`~skdanet.graph.DensityGraph.place`) from its own clique and the phi
of the reference faces on its chain.
"""

import numpy as np
import torch

from ._batching import chain_slots, clique_tensors, reference_clique_tensors


def torch_dtype(array):
    """The torch dtype that matches a float32 / float64 array."""
    return torch.float64 if array.dtype == np.float64 else torch.float32


def embed_reference_nodes(module, reference, graph, mask, nodes, *, dtype, device, batch=2048):
    """Embeddings of reference ``nodes`` through the graph (differentiable)."""
    out = []
    for start in range(0, len(nodes), batch):
        part = nodes[start : start + batch]
        distinct, slots, smask = chain_slots(graph.chains[part])
        members, mmask = reference_clique_tensors(distinct, reference, graph.knn_indices, mask,
                                                  dtype=dtype, device=device,
                                                  centre_only=not module.clique.reads_neighbours)
        phi = module.clique(members, mmask)
        target = torch.as_tensor(reference[part], dtype=dtype, device=device)
        out.append(module.embed_chains(phi, slots.to(device), smask.to(device), target))
    return torch.cat(out) if out else torch.empty(0)


class GraphEmbedding:
    """A trained network applied to faces placed in a reference density graph.

    Parameters
    ----------
    network : TrainedNetwork
    reference : ndarray of shape (n_reference, n_features)
        The L2-normalised reference faces of ``graph``.
    graph : DensityGraph
    device : torch.device
    batch_size : int
        Faces embedded at a time (bounds the memory of inference).
    """

    def __init__(self, network, reference, graph, *, device, batch_size):
        self.network = network
        self.reference = reference
        self.graph = graph
        self.device = device
        self.batch_size = batch_size

    def clique_embeddings(self, progress=None):
        """phi(c) of every reference face, shape (n_reference, hidden_size)."""
        dtype = torch_dtype(self.reference)
        module = self.network.build_module(dtype=dtype, device=self.device)
        mask = self.graph.clique_mask()
        n = len(self.reference)
        out = np.empty((n, self.network.config["hidden_size"]), dtype=self.reference.dtype)
        with torch.no_grad():
            for batch, start in enumerate(range(0, n, self.batch_size), 1):
                nodes = np.arange(start, min(n, start + self.batch_size))
                members, mmask = reference_clique_tensors(
                    nodes, self.reference, self.graph.knn_indices, mask, dtype=dtype,
                    device=self.device, centre_only=not module.clique.reads_neighbours)
                out[nodes] = module.clique(members, mmask).cpu().numpy()
                if progress is not None:
                    progress(batch, nodes[-1] + 1)
        return out

    def embed(self, Q, neighbours, reference_phi, progress=None):
        """Embeddings of the faces ``Q`` placed in the graph, in batches.

        ``neighbours(start, stop)`` gives the reference neighbours of rows
        ``start:stop`` (see :meth:`~skdanet.graph.DensityGraph.place`).
        """
        out = np.empty((len(Q), self.network.config["n_components"]),
                       dtype=self.reference.dtype)
        dtype = torch_dtype(Q)
        module = self.network.build_module(dtype=dtype, device=self.device)
        for batch, start in enumerate(range(0, len(Q), self.batch_size), 1):
            stop = min(len(Q), start + self.batch_size)
            out[start:stop] = self._embed_batch(Q[start:stop], neighbours(start, stop),
                                                reference_phi, module, dtype)
            if progress is not None:
                progress(batch, stop)
        return out

    def _embed_batch(self, Q, neighbours, reference_phi, module, dtype):
        rest, clique = self.graph.place(Q, neighbours)
        idx = neighbours[1]
        device = self.device
        with torch.no_grad():
            members, mmask = clique_tensors(Q, self.reference, idx, clique, dtype=dtype,
                                            device=device,
                                            centre_only=not module.clique.reads_neighbours)
            phi_q = module.clique(members, mmask)
            nodes, slots, smask = chain_slots(rest)
            phi_ref = torch.as_tensor(reference_phi[nodes], dtype=dtype, device=device)
            # Slot 0..len(Q)-1: the queries themselves; then the reference chain nodes.
            phi = torch.cat([phi_q, phi_ref])
            qslots = torch.arange(len(Q))[:, None]
            all_slots = torch.cat([qslots, torch.where(smask, slots + len(Q), 0)], dim=1).to(device)
            all_mask = torch.cat([torch.ones_like(qslots, dtype=torch.bool), smask], dim=1).to(device)
            z = module.embed_chains(phi, all_slots, all_mask,
                                    torch.as_tensor(Q, dtype=dtype, device=device))
        return z.cpu().numpy()
