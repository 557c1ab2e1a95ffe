"""skdanet: density-aware feature embedding (DA-Net) for face clustering.

* :class:`DANetEmbedder` -- the learned density-aware embedding (a transformer);
* :class:`DensityChainClustering` -- the embedding followed by DBSCAN (a clusterer);
* :class:`TrainedNetwork` -- a trained network, saved and loaded code-free;
* :mod:`skdanet.graph` -- the density-chain graph core (numpy);
* :mod:`skdanet.metrics` -- pairwise / BCubed F as the field computes them;
* :mod:`skdanet.datasets` -- bundled LFW face features.
"""

from ._clustering import DensityChainClustering
from ._embedder import DANetEmbedder
from ._network import TrainedNetwork
from ._version import __version__

__all__ = ["DANetEmbedder", "DensityChainClustering", "TrainedNetwork", "__version__"]
