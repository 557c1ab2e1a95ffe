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
import secrets
import stat
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
        learned space, ``eps_source``: "calibrated" (on held-out labelled
        people) or "loss" (the loss's boundary, label-free training), and
        ``feature_direction``: the unit mean of the training features, which
        tells features of another extractor apart (optional).
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
        expected = _expected_shapes(self.config)
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
            if v.dtype not in _WEIGHT_DTYPES or not np.all(np.isfinite(v)):
                raise ValueError(f"Network weight {k!r} is not a finite little-endian float32 "
                                 f"or float64 array (got {v.dtype}).")

    @property
    def in_features(self):
        return self.config["in_features"]

    @property
    def calibrated(self):
        """Whether ``config["eps"]`` was calibrated on held-out labelled people
        (else it is the loss's boundary, which the clustering rule sets to each face set)."""
        return self.config["eps_source"] == "calibrated"

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
        fd, tmp = _new_file_beside(path)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, header=np.array(json.dumps(header)), **arrays)
                f.flush()
                os.fsync(f.fileno())
            _keep_mode_of(path, tmp)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path):
        """Read a network written by :meth:`save`.

        The file is untrusted input: it is never unpickled, and its declared
        configuration, array shapes, dtypes and sizes are checked against the
        architecture and sane bounds before any array is read, so a small
        file cannot make the load allocate much more than the weights it
        declares. Raises ``ValueError`` naming the file and the problem for
        anything that is not a valid network file.
        """
        path = os.fspath(path)
        try:
            with zipfile.ZipFile(path) as archive:
                header = _read_header(archive)
                config = _validated_config(header.get("config"))
                state = _read_weights(archive, config)
        except FileNotFoundError:
            raise
        except _FileProblem as exc:
            raise ValueError(f"{path!r} is not a valid skdanet network file: {exc}") from None
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
            raise ValueError(
                f"{path!r} is not a readable skdanet network file (not a complete zip "
                f"archive: {exc}). It may be truncated or corrupted, or another kind of "
                "file; save it again with TrainedNetwork.save.") from None
        except ValueError as exc:
            raise ValueError(f"{path!r}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 -- any other failure is a bad file too
            raise ValueError(f"{path!r} is not a valid skdanet network file "
                             f"({type(exc).__name__}: {exc}).") from None
        return cls(config, state)

    @classmethod
    def pretrained(cls, name="dlib128"):
        """A network shipped with skdanet, by name: cluster with no labels and no training.

        ``"dlib128"``: for dlib's 128-d ResNet face descriptors (what
        ``face_recognition`` computes), trained with labels on every person of
        LFW and of an in-the-wild celebrity set from CelebA (about 16,000
        faces of 5,900 people). Features of another extractor need a network
        of their own (the embedder refuses them). Both sets are research data
        whose terms allow non-commercial research and educational use only.
        On photo libraries, where everybody has several photos, label-free
        training on the library clusters better (:ref:`User Guide <which_route>`).

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


# Bounds on a network a file may declare: far above any face embedder's, far
# below what would exhaust memory (checked before anything is allocated).
_MAX_FEATURES = 65_536
_MAX_HIDDEN = 8_192
_MAX_GCN_LAYERS = 64
_MAX_WEIGHT_BYTES = 2 * 2**30
_MAX_HEADER_BYTES = 64 * 2**10
_WEIGHT_DTYPES = (np.dtype("<f4"), np.dtype("<f8"))


class _FileProblem(Exception):
    """A network file that declares something it may not."""


def _expected_shapes(config):
    """Parameter shapes of the declared architecture, without allocating them."""
    with torch.device("meta"):
        module = DANet(config["in_features"], config["hidden_size"], config["n_components"],
                       config["n_gcn_layers"], config["chain_network"])
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _array_header(archive, name):
    """Shape and dtype of the .npy member ``name``, from its header alone."""
    with archive.open(name) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise _FileProblem(f"member {name!r} has an unknown .npy version {version}")
        return tuple(shape), dtype, f.tell()


def _read_member(archive, name, shape, dtype, offset):
    """The array ``name`` (header ending at ``offset``), its stored size checked first."""
    info = archive.getinfo(name)
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if info.file_size != expected:
        raise _FileProblem(f"member {name!r} holds {info.file_size} bytes where its header "
                           f"declares {expected}")
    with archive.open(name) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _read_header(archive):
    names = set(archive.namelist())
    if "header.npy" not in names:
        raise _FileProblem("it has no header (not written by TrainedNetwork.save)")
    shape, dtype, offset = _array_header(archive, "header.npy")
    if dtype.hasobject:
        raise _FileProblem("its header holds Python objects, which can only be read by "
                           "unpickling, which skdanet never does for safety")
    if shape != () or dtype.kind != "U" or dtype.itemsize > 4 * _MAX_HEADER_BYTES:
        raise _FileProblem(f"its header is {dtype} of shape {shape}, not a short JSON text")
    text = str(_read_member(archive, "header.npy", shape, dtype, offset)[()])
    try:
        header = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise _FileProblem(f"its header is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise _FileProblem("its header does not name the skdanet network format")
    if header.get("version") != FORMAT_VERSION:
        raise _FileProblem(
            f"it has network format version {header.get('version')!r}; this skdanet reads "
            f"version {FORMAT_VERSION}. Re-export the network with the skdanet release "
            "that trained it, or retrain")
    return header


def _read_weights(archive, config):
    expected = _expected_shapes(config)
    members = {n[2:-4]: n for n in archive.namelist() if n.startswith("w/") and n.endswith(".npy")}
    if set(members) != set(expected):
        raise _FileProblem(f"its weights {sorted(members)} are not those of the declared "
                           f"architecture {sorted(expected)}")
    total = sum(int(np.prod(s, dtype=np.int64)) for s in expected.values()) * 8
    if total > _MAX_WEIGHT_BYTES:
        raise _FileProblem(f"the declared architecture needs {total / 2**30:.1f} GiB of "
                           "weights, more than any face network")
    state = {}
    for key, name in members.items():
        shape, dtype, offset = _array_header(archive, name)
        if shape != expected[key]:
            raise _FileProblem(f"weight {key!r} has shape {shape}, the architecture "
                               f"needs {expected[key]}")
        if dtype.hasobject:
            raise _FileProblem(f"weight {key!r} holds Python objects, which can only be read "
                               "by unpickling, which skdanet never does for safety")
        if dtype not in _WEIGHT_DTYPES:
            raise _FileProblem(f"weight {key!r} is {dtype}; only little-endian float32 or "
                               "float64 weights are read")
        state[key] = _read_member(archive, name, shape, dtype, offset)
    return state


def _new_file_beside(path):
    """A new, uniquely named file in ``path``'s folder, opened for writing.

    Created with mode 0o666 less the process's umask, as ``open`` creates
    files (``tempfile.mkstemp`` would make it readable by its owner only,
    and the rename would carry that over to the saved network).
    """
    folder = os.path.dirname(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".skdanet-{secrets.token_hex(8)}.npz.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"Could not create a temporary file in {folder!r} to save the network.")


def _keep_mode_of(path, tmp):
    """Give ``tmp`` the permission bits of an existing ``path``, as overwriting it in place would."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    os.chmod(tmp, mode)


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
    for key, bound in (("in_features", _MAX_FEATURES), ("n_components", _MAX_FEATURES),
                       ("hidden_size", _MAX_HIDDEN), ("n_gcn_layers", _MAX_GCN_LAYERS)):
        if out[key] > bound or (out[key] < 1 and key != "n_gcn_layers"):
            raise ValueError(f"Network config {key!r} = {out[key]} is outside [1, {bound}]; "
                             "the file is corrupted or was edited.")
    if out["eps"] <= 0:
        raise ValueError(f"Network config 'eps' must be a positive radius, got {out['eps']!r}; "
                         "the file is corrupted or was edited.")
    out["eps_source"] = config.get("eps_source", "loss")
    direction = config.get("feature_direction")
    if direction is not None:
        direction = np.asarray(direction, dtype=np.float64) if isinstance(direction, list) \
            else None
        if (direction is None or direction.shape != (out["in_features"],)
                or not np.all(np.isfinite(direction))):
            raise ValueError("Network config 'feature_direction' must be a list of "
                             f"{out['in_features']} finite numbers.")
        out["feature_direction"] = direction.tolist()
    if out["eps_source"] not in EPS_SOURCES:
        raise ValueError(f"Network config 'eps_source' must be one of {EPS_SOURCES}, got "
                         f"{out['eps_source']!r}.")
    if out["chain_network"] not in CHAIN_NETWORKS:
        raise ValueError(f"Unknown chain_network {out['chain_network']!r} in network config.")
    return out
