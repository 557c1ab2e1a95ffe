"""skdanet: density-aware feature embedding (DA-Net) for face clustering.

* :class:`DANetEmbedder` -- the learned density-aware embedding (a transformer);
* :class:`DensityChainClustering` -- the embedding followed by the clustering rule;
* :class:`TrainedNetwork` -- a trained network, saved and loaded code-free.

Subpackages follow the method's stages: :mod:`skdanet.graph` (kNN graph,
density, chains, cliques; numpy), :mod:`skdanet.model` (the network and its
training; torch), :mod:`skdanet.cluster` (expansion, DBSCAN over the kNN
graph, merging; numpy); then :mod:`skdanet.metrics`,
:mod:`skdanet.model_selection` and :mod:`skdanet.datasets`.
"""

import importlib

from ._version import __version__

# The estimators (and torch) load on first use, so that the numpy stages
# (skdanet.graph, skdanet.cluster, skdanet.metrics, skdanet.datasets) import
# without torch.
_LAZY = {
    "DANetEmbedder": "._embedder",
    "DensityChainClustering": "._clustering",
    "TrainedNetwork": ".model",
}

__all__ = ["DANetEmbedder", "DensityChainClustering", "TrainedNetwork", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
