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

from ..utils._parallel import map_blocks, row_blocks
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

    Placing faces and gathering their inputs is numpy work done here; the
    network runs on blocks of ``batch_size`` faces through
    :func:`~skdanet.utils._parallel.map_blocks`, on ``n_jobs`` workers (threads,
    or a joblib backend such as Dask's), each block on its own, so the
    result does not depend on the number of workers.

    Parameters
    ----------
    network : TrainedNetwork
    reference : ndarray of shape (n_reference, n_features)
        The L2-normalised reference faces of ``graph``.
    graph : DensityGraph
    device : torch.device
    batch_size : int
        Faces embedded at a time (bounds the memory of inference).
    n_jobs : int, default=1
        Workers (run the calls under one torch thread: see
        :func:`~skdanet.model._torch_state.deterministic_torch`).
    """

    def __init__(self, network, reference, graph, *, device, batch_size, n_jobs=1):
        self.network = network
        self.reference = reference
        self.graph = graph
        self.device = device
        self.batch_size = batch_size
        self.n_jobs = n_jobs

    def clique_embeddings(self, progress=None):
        """phi(c) of every reference face, shape (n_reference, hidden_size)."""
        dtype = torch_dtype(self.reference)
        module = self.network.build_module(dtype=dtype, device=self.device)
        mask = self.graph.clique_mask()
        n = len(self.reference)
        out = np.empty((n, self.network.config["hidden_size"]), dtype=self.reference.dtype)
        blocks = row_blocks(n, self.batch_size)
        tasks = ((module, *reference_clique_tensors(
            np.arange(start, stop), self.reference, self.graph.knn_indices, mask, dtype=dtype,
            device=self.device, centre_only=not module.clique.reads_neighbours))
            for start, stop in blocks)
        return self._fill(out, blocks, _clique_block, tasks, progress)

    def embed(self, Q, neighbours, reference_phi, progress=None):
        """Embeddings of the faces ``Q`` placed in the graph, in batches.

        ``neighbours(start, stop)`` gives the reference neighbours of rows
        ``start:stop`` (see :meth:`~skdanet.graph.DensityGraph.place`).
        """
        out = np.empty((len(Q), self.network.config["n_components"]),
                       dtype=self.reference.dtype)
        dtype = torch_dtype(Q)
        module = self.network.build_module(dtype=dtype, device=self.device)
        blocks = row_blocks(len(Q), self.batch_size)
        tasks = ((module, *self._chain_inputs(Q[start:stop], neighbours(start, stop),
                                              reference_phi, module, dtype))
                 for start, stop in blocks)
        return self._fill(out, blocks, _chain_block, tasks, progress)

    def _fill(self, out, blocks, func, tasks, progress):
        """Rows ``start:stop`` of ``out`` from ``func(*task)``, block by block, over the workers."""
        for batch, ((start, stop), rows) in enumerate(
                map_blocks(func, blocks, tasks, self.n_jobs), 1):
            out[start:stop] = rows
            if progress is not None:
                progress(batch, stop)
        return out

    def _chain_inputs(self, Q, neighbours, reference_phi, module, dtype):
        """What the network needs to embed ``Q``: its cliques and its chains' phi."""
        rest, clique = self.graph.place(Q, neighbours)
        idx = neighbours[1]
        device = self.device
        members, mmask = clique_tensors(Q, self.reference, idx, clique, dtype=dtype,
                                        device=device,
                                        centre_only=not module.clique.reads_neighbours)
        nodes, slots, smask = chain_slots(rest)
        phi_ref = torch.as_tensor(reference_phi[nodes], dtype=dtype, device=device)
        # Slot 0..len(Q)-1: the queries themselves; then the reference chain nodes.
        qslots = torch.arange(len(Q))[:, None]
        all_slots = torch.cat([qslots, torch.where(smask, slots + len(Q), 0)], dim=1).to(device)
        all_mask = torch.cat([torch.ones_like(qslots, dtype=torch.bool), smask], dim=1).to(device)
        target = torch.as_tensor(Q, dtype=dtype, device=device)
        return members, mmask, phi_ref, all_slots, all_mask, target


def _clique_block(module, members, mmask):
    """phi(c) of one block of cliques."""
    with torch.no_grad():
        return module.clique(members, mmask).cpu().numpy()


def _chain_block(module, members, mmask, phi_ref, slots, mask, target):
    """The embedding of one block of placed faces: their own phi, then the chain network."""
    with torch.no_grad():
        phi = torch.cat([module.clique(members, mmask), phi_ref])
        return module.embed_chains(phi, slots, mask, target).cpu().numpy()
