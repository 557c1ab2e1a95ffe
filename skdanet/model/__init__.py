"""The DA-Net network (torch): modules, the graph-to-embedding path, training, file format.

* :class:`TrainedNetwork` -- weights and settings as plain data, saved code-free;
* :func:`train_network` with :class:`TrainingParams` -- supervised and
  label-free training on a :class:`~skdanet.graph.DensityGraph`;
* :class:`GraphEmbedding` -- a trained network applied to faces placed in a graph.
"""

from ._embedding import GraphEmbedding, embed_reference_nodes
from ._modules import CHAIN_NETWORKS, DANet
from ._network import TrainedNetwork
from ._torch_state import deterministic_torch, resolve_device
from ._trainer import TrainingParams, anchor_parents, mean_direction, train_network

__all__ = [
    "CHAIN_NETWORKS",
    "DANet",
    "GraphEmbedding",
    "TrainedNetwork",
    "TrainingParams",
    "anchor_parents",
    "deterministic_torch",
    "embed_reference_nodes",
    "mean_direction",
    "resolve_device",
    "train_network",
]
