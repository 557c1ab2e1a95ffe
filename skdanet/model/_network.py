"""A trained DA-Net network as plain data: architecture, calibration, weights.

Stored as numpy arrays, never as torch modules, so that

* pickling an estimator never pickles torch state (CPU-safe: GPU-trained
  weights load on a machine without a GPU);
* ``save`` / ``load`` use a code-free ``.npz`` file (``allow_pickle=False``):
  loading a file can never execute code from it;
* ``sklearn.base.clone`` deep-copies it, so a trained network passed as a
  parameter survives ``GridSearchCV``.
"""

import json
import os
import tempfile
import zipfile
from importlib import resources

import numpy as np
import torch

from ._modules import CHAIN_NETWORKS, DANet
from ._torch_state import seeded_torch

FORMAT_NAME = "skdanet-network"
FORMAT_VERSION = 1

_CONFIG_KEYS = {
    "in_features": int,
    "hidden_size": int,
    "n_components": int,
    "n_gcn_layers": int,
    "chain_network": str,
    "pair_margin": float,
    "pair_scale": float,
    "eps": float,
}
# Where ``eps`` comes from: "calibrated" on held-out labelled people, or "loss",
# the training loss's own boundary (label-free training; files written before
# the key existed).
EPS_SOURCES = ("calibrated", "loss")


class TrainedNetwork:
    """Weights and settings of a trained DA-Net network.

    Obtain one from a fitted :class:`~skdanet.DANetEmbedder` (``network_``)
    or from :meth:`load`; pass it as ``DANetEmbedder(network=...)`` to embed
    new faces (of unseen people) without retraining.

    Parameters
    ----------
    config : dict
        Architecture (``in_features``, ``hidden_size``, ``n_components``,
        ``n_gcn_layers``, ``chain_network``), the training loss settings
        (``pair_margin``, ``pair_scale``), ``eps``, the DBSCAN radius in the
        learned space, and ``eps_source``: "calibrated" (on held-out labelled
        people) or "loss" (the loss's boundary, label-free training).
    state : dict of str to ndarray
        The module's ``state_dict`` as numpy arrays.
    """

    def __init__(self, config, state):
        self.config = _validated_config(config)
        self.state = {k: np.array(v, copy=True) for k, v in state.items()}
        self._check_state()

    # -- conversion -------------------------------------------------------
    @classmethod
    def from_module(cls, module, config):
        state = {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}
        return cls(config, state)

    def build_module(self, *, dtype=torch.float32, device="cpu"):
        """A fresh torch module holding these weights."""
        module = self._empty_module()
        module.load_state_dict({k: torch.as_tensor(v) for k, v in self.state.items()})
        return module.to(device=device, dtype=dtype).eval()

    def _empty_module(self):
        c = self.config
        # Its random initial weights are overwritten; fork so that building it
        # leaves torch's global generator as it was.
        with seeded_torch(None):
            return DANet(c["in_features"], c["hidden_size"], c["n_components"],
                     c["n_gcn_layers"], c["chain_network"])

    def _check_state(self):
        expected = {k: tuple(v.shape) for k, v in self._empty_module().state_dict().items()}
        got = {k: tuple(v.shape) for k, v in self.state.items()}
        if expected != got:
            missing = sorted(set(expected) - set(got))
            extra = sorted(set(got) - set(expected))
            wrong = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
            raise ValueError(
                "The network weights do not match the declared architecture "
                f"{self.config}: missing {missing}, unexpected {extra}, wrong shape "
                f"{wrong}. The file is corrupted or was edited; retrain or re-export it."
            )
        for k, v in self.state.items():
            if not np.issubdtype(v.dtype, np.floating) or not np.all(np.isfinite(v)):
                raise ValueError(f"Network weight {k!r} is not a finite float array.")

    @property
    def in_features(self):
        return self.config["in_features"]

    # -- persistence ------------------------------------------------------
    def save(self, path):
        """Write the network to ``path`` (a ``.npz`` file; no pickled code).

        Examples
        --------
        >>> import numpy as np, tempfile, os
        >>> from skdanet import DANetEmbedder, TrainedNetwork
        >>> X = np.random.default_rng(0).normal(size=(60, 8))
        >>> emb = DANetEmbedder(k=5, n_epochs=1, random_state=0).fit(X)
        >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
        >>> emb.network_.save(path)
        >>> TrainedNetwork.load(path).config == emb.network_.config
        True
        """
        header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": self.config}
        arrays = {f"w/{k}": v for k, v in self.state.items()}
        path = os.fspath(path)
        # Written to a temporary file beside the target, then renamed over it:
        # a reader sees the old file or the new one, never a part of either.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                                   prefix=".skdanet-", suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, header=np.array(json.dumps(header)), **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path):
        """Read a network written by :meth:`save`.

        Never unpickles: a file holding Python objects is rejected. Raises
        ``ValueError`` for a truncated, corrupted, foreign or incompatible file.
        """
        path = os.fspath(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                header = json.loads(str(npz["header"][()]))
                state = {k[2:]: npz[k] for k in npz.files if k.startswith("w/")}
        except (zipfile.BadZipFile, EOFError, KeyError, OSError, json.JSONDecodeError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(
                f"{path!r} is not a readable skdanet network file ({type(exc).__name__}: "
                f"{exc}). It may be truncated or corrupted; save it again with "
                "TrainedNetwork.save."
            ) from exc
        except ValueError as exc:
            raise ValueError(
                f"{path!r} holds data that can only be read by unpickling, which skdanet "
                f"never does for safety ({exc}). Use a file written by TrainedNetwork.save."
            ) from exc
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise ValueError(f"{path!r} is not an skdanet network file.")
        if header.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{path!r} has network format version {header.get('version')!r}; this "
                f"skdanet reads version {FORMAT_VERSION}. Re-export the network with the "
                "skdanet release that trained it, or retrain."
            )
        return cls(header.get("config"), state)

    @classmethod
    def pretrained(cls, name="dlib128"):
        """A network shipped with skdanet, by name: cluster with no labels and no training.

        ``"dlib128"``: for dlib's 128-d ResNet face descriptors (what
        ``face_recognition`` computes), trained with labels on every person of
        LFW and of an in-the-wild celebrity set (about 16,000 faces of 5,900
        people). Features of another extractor need a network of their own.

        Parameters
        ----------
        name : str, default="dlib128"
            One of :meth:`pretrained_names`.

        Returns
        -------
        TrainedNetwork

        Examples
        --------
        >>> from skdanet import DensityChainClustering, TrainedNetwork
        >>> net = TrainedNetwork.pretrained("dlib128")
        >>> net.in_features
        128
        >>> model = DensityChainClustering(network=net)  # then model.fit(X).labels_
        """
        if name not in cls.pretrained_names():
            raise ValueError(f"No pretrained network named {name!r}; skdanet ships "
                             f"{cls.pretrained_names()}.")
        with resources.as_file(resources.files(__package__) / "pretrained" / f"{name}.npz") as p:
            return cls.load(p)

    @staticmethod
    def pretrained_names():
        """Names of the networks shipped with skdanet."""
        folder = resources.files(__package__) / "pretrained"
        return sorted(f.name[:-4] for f in folder.iterdir() if f.name.endswith(".npz"))

    def __repr__(self):
        c = self.config
        return (f"TrainedNetwork(in_features={c['in_features']}, chain_network="
                f"{c['chain_network']!r}, n_gcn_layers={c['n_gcn_layers']}, eps={c['eps']:.4g})")


def _validated_config(config):
    if not isinstance(config, dict):
        raise ValueError(f"Network config must be a dict, got {type(config).__name__}.")
    missing = sorted(set(_CONFIG_KEYS) - set(config))
    if missing:
        raise ValueError(f"Network config lacks {missing}; the file is incomplete.")
    out = {}
    for key, kind in _CONFIG_KEYS.items():
        value = config[key]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"Network config {key!r} must be a non-negative int, got {value!r}.")
        if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not np.isfinite(value)):
            raise ValueError(f"Network config {key!r} must be a finite number, got {value!r}.")
        out[key] = kind(value)
    if out["eps"] <= 0:
        raise ValueError(f"Network config 'eps' must be a positive radius, got {out['eps']!r}; "
                         "the file is corrupted or was edited.")
    out["eps_source"] = config.get("eps_source", "loss")
    if out["eps_source"] not in EPS_SOURCES:
        raise ValueError(f"Network config 'eps_source' must be one of {EPS_SOURCES}, got "
                         f"{out['eps_source']!r}.")
    if out["chain_network"] not in CHAIN_NETWORKS:
        raise ValueError(f"Unknown chain_network {out['chain_network']!r} in network config.")
    return out
