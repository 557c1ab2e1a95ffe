"""DANetEmbedder: the density-aware feature embedding as a scikit-learn transformer."""

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _progress
from ._batching import chain_slots, clique_tensors, reference_clique_tensors
from ._chain import follow_parents, query_parents
from ._clique import clique_mask
from ._density import density, is_higher, tie_break_key
from ._fitting import unfitted_on_failure
from ._knn import NeighborIndex, clamp_n_neighbors, knn_graph, l2_normalize
from ._network import TrainedNetwork
from ._nn import CHAIN_NETWORKS
from ._trainer import deterministic_torch, train_network
from .graph import build_density_graph


def _resolve_device(device):
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device name ('cpu', 'cuda', 'cuda:0').") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA GPU here; use device='cpu'.")
    return dev


def _seed_from(random_state):
    """A 31-bit seed from ``random_state``, without touching numpy's global RNG."""
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    if random_state is None:
        return int(np.random.default_rng().integers(2**31 - 1))
    return int(random_state)


class DANetEmbedder(TransformerMixin, BaseEstimator):
    """Density-aware feature embedding of faces (DA-Net), for clustering by identity.

    Builds a kNN graph over the L2-normalised faces, follows each face's
    density chain towards its density peak, embeds the pruned clique around
    each chain node with a graph convolution (local context) and aggregates
    the chain with attention or an LSTM (long-range context). The output rows
    are unit vectors in which one DBSCAN radius (``network_.config["eps"]``)
    separates identities.

    Input rows are L2-normalised internally (a copy: ``X`` is never modified);
    only their direction matters. An all-zero row has no direction: it is
    kept as a zero vector (similar to no face, identical to other zero rows)
    with a warning; drop such rows where you can.

    Parameters
    ----------
    k : int, default=30
        Neighbours per face in the kNN graph (clamped, with a warning, to
        ``n_samples - 1``).
    tau : float or "auto", default="auto"
        Cosine similarity a neighbour needs to enter a face's pruned clique
        (Eq. 4). "auto" sets it from the raw features: the Otsu split of the
        kNN similarities, which adapts to the feature extractor.
    chain_threshold : float or None, default=None
        A chain stops when the next face's similarity falls below it; None
        uses ``tau``.
    max_chain_length : int, default=4
        Faces per chain, the face itself included (1 disables the chain).
    hidden_size : int, default=128
        Width of the clique and chain networks.
    n_components : int or None, default=None
        Dimension of the output embedding; None keeps the input dimension,
        which makes the network residual (it starts from the raw features
        and learns a correction; see :class:`skdanet._nn.DANet`).
    n_gcn_layers : int, default=0
        Layers of the clique network (Eq. 5). 0 (the default) embeds each
        chain node by a linear projection of its own feature, so the context
        comes from the chain alone: on LFW (three split seeds) that scored
        pairwise F 0.981 / BCubed F 0.955 against 0.975 / 0.951 with one GCN
        layer (benchmarks/bench_lfw.py, DensityChainClustering). The clique
        network may pay off on data with many faces per person; tune it there.
    chain_network : {"attention", "lstm"}, default="attention"
        Aggregation of the chain. On LFW (three split seeds) the two are
        within each other's spread: LSTM pairwise F 0.983 / BCubed F 0.956,
        attention 0.981 / 0.955.
    n_epochs : int, default=30
        Maximum training epochs (each round, for label-free training).
        Label-free training re-labels with, and returns, the weights averaged
        over its last epochs (half-life 4 epochs), so give it at least 5
        epochs a round: after 2 the average still carries the untrained start
        (largest 60 LFW people: BCubed F 0.10 against 0.95 after 5).
    batch_size : int, default=512
        Faces per training batch (grouped by kNN neighbourhood).
    inference_batch_size : int, default=4096
        Faces embedded at a time by ``transform`` (and after ``fit``): bounds
        the memory of the clique and chain networks at inference, whatever
        the number of faces.
    learning_rate : float, default=1e-3
        Adam step size.
    weight_decay : float, default=1e-5
        Adam L2 penalty.
    pair_margin : float, default=0.7
        Cosine similarity at which the pairwise loss puts the same/different
        boundary.
    pair_scale : float, default=30.0
        Sharpness of the pairwise loss.
    validation_fraction : float, default=0.2
        Share of the training identities held out for early stopping and for
        calibrating ``eps`` (supervised ``fit`` only).
    n_iter_no_change : int, default=5
        Stop after this many epochs without a better held-out score.
    n_rounds : int, default=2
        Label-free training: pseudo-label / train rounds.
    network : TrainedNetwork or None, default=None
        A trained network: ``fit`` then only builds the graph of ``X`` and
        embeds through it, without training (transfer to unseen people).
    graph_method : {"auto", "exact", "ivf", "hnsw"}, default="auto"
        kNN search: exact up to 30,000 faces, an inverted-file index above
        (deterministic, parallel over ``n_jobs``); HNSW as an alternative.
    device : str, default="cpu"
        Torch device for training and inference ("cpu", "cuda").
    n_jobs : int or None, default=None
        Threads for kNN queries and torch; None means 1.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batch order, the validation split and the kNN
        index. An int gives bit-identical results run to run.
    verbose : int, default=0
        1: per-epoch table (loss, held-out score, seconds) and stage timings.

    Attributes
    ----------
    network_ : TrainedNetwork
        The trained (or given) network; ``network_.config["eps"]`` is the
        DBSCAN radius calibrated on held-out identities (label-free
        training: the loss's boundary, ``sqrt(2 - 2 * pair_margin)``).
    tau_ : float
        The clique threshold used.
    chain_threshold_ : float
        The chain stop threshold used.
    k_ : int
        Neighbours per face actually used.
    reference_ : ndarray of shape (n_samples, n_features)
        The L2-normalised fitted faces, through which ``transform`` embeds.
    history_ : list of dict
        Per-epoch training log (empty when a network was given).
    timings_ : dict
        Seconds per stage of the last fit ("kNN graph", "density and chains",
        "training", "clique network"; "chain network" after ``fit_transform``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string feature names.

    See Also
    --------
    DensityChainClustering : This embedding followed by DBSCAN.

    Examples
    --------
    >>> import numpy as np
    >>> from skdanet import DANetEmbedder
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(4, 16))
    >>> X = np.repeat(centres, 20, axis=0) + 0.3 * rng.normal(size=(80, 16))
    >>> y = np.repeat(np.arange(4), 20)
    >>> emb = DANetEmbedder(k=10, n_epochs=3, random_state=0).fit(X, y)
    >>> emb.transform(X).shape
    (80, 16)
    """

    _parameter_constraints = {
        "k": [Interval(Integral, 1, None, closed="left")],
        "tau": [Interval(Real, -1, 1, closed="both"), StrOptions({"auto"})],
        "chain_threshold": [Interval(Real, -1, 1, closed="both"), None],
        "max_chain_length": [Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "n_gcn_layers": [Interval(Integral, 0, None, closed="left")],
        "chain_network": [StrOptions(set(CHAIN_NETWORKS))],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "pair_margin": [Interval(Real, -1, 1, closed="neither")],
        "pair_scale": [Interval(Real, 0, None, closed="neither")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "n_rounds": [Interval(Integral, 1, None, closed="left")],
        "network": [TrainedNetwork, None],
        "graph_method": [StrOptions({"auto", "exact", "ivf", "hnsw"})],
        "device": [str, torch.device],
        "n_jobs": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        k=30,
        tau="auto",
        chain_threshold=None,
        max_chain_length=4,
        hidden_size=128,
        n_components=None,
        n_gcn_layers=0,
        chain_network="attention",
        n_epochs=30,
        batch_size=512,
        inference_batch_size=4096,
        learning_rate=1e-3,
        weight_decay=1e-5,
        pair_margin=0.7,
        pair_scale=30.0,
        validation_fraction=0.2,
        n_iter_no_change=5,
        n_rounds=2,
        network=None,
        graph_method="auto",
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.k = k
        self.tau = tau
        self.chain_threshold = chain_threshold
        self.max_chain_length = max_chain_length
        self.hidden_size = hidden_size
        self.n_components = n_components
        self.n_gcn_layers = n_gcn_layers
        self.chain_network = chain_network
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.inference_batch_size = inference_batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.pair_margin = pair_margin
        self.pair_scale = pair_scale
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_rounds = n_rounds
        self.network = network
        self.graph_method = graph_method
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the density graph of ``X`` and train the network on it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Face features (rows need not be normalised; zero rows are refused).
        y : array-like of shape (n_samples,), default=None
            Identity labels. Without them, training is label-free (pseudo
            labels from density chains, refined over ``n_rounds``). Ignored
            when ``network`` is given.

        Returns
        -------
        self : DANetEmbedder
        """
        with unfitted_on_failure(self):
            return self._fit(X, y)

    def _fit(self, X, y):
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        if y is not None:
            y = np.asarray(y)
            if y.ndim != 1 or len(y) != len(X):
                raise ValueError(
                    f"y must be a 1-d array of {len(X)} identity labels, got shape {y.shape}."
                )
        if self.network is not None and self.network.in_features != X.shape[1]:
            raise ValueError(
                f"The given network was trained on {self.network.in_features}-d features "
                f"but X has {X.shape[1]} features. A network only works with features "
                "of the extractor it was trained on; retrain on these features."
            )
        device = _resolve_device(self.device)
        seed = _seed_from(self.random_state)
        timer = _progress.StageTimer(self.verbose)

        reference = l2_normalize(X, zero_rows="warn")
        k = clamp_n_neighbors(self.k, len(reference), exclude_self=True)
        with timer("kNN graph"):
            index = NeighborIndex(reference, method=self.graph_method, random_state=seed,
                                  n_jobs=self._threads,
                                  progress=_progress.BatchProgress(self.verbose, "kNN search",
                                                                   len(reference)))
            knn = knn_graph(reference, k, normalize=False, index=index)
            index.progress = None  # not part of the fitted state (nor of its pickle)
        with timer("density and chains"):
            graph = build_density_graph(
                reference, k, tau=self.tau, stop_threshold=self.chain_threshold,
                max_length=self.max_chain_length, knn=knn,
            )
        if self.network is not None:
            network, history = self.network, []
        else:
            with timer("training"):
                network, history = train_network(
                    reference, graph, y, estimator=self, seed=seed, device=device,
                )
        # Everything is computed before any fitted attribute is set, so an
        # exception or interrupt above leaves the estimator unfitted.
        self._set_reference(reference, graph, k, index)
        self.network_ = network
        self.history_ = history
        with timer("clique network"), deterministic_torch(self.n_jobs):
            self.reference_phi_ = self._reference_phi(device)
        self.timings_ = dict(timer.timings)
        return self

    @property
    def _threads(self):
        return 1 if self.n_jobs is None else int(self.n_jobs)

    def _set_reference(self, reference, graph, k, index):
        self.reference_ = reference
        self.k_ = k
        self.tau_ = graph.tau
        self.chain_threshold_ = graph.stop_threshold
        self.knn_sims_ = graph.knn_sims
        self.knn_indices_ = graph.knn_indices
        self.density_ = graph.density
        self.tie_key_ = graph.tie_key
        self.rank_ = graph.rank
        self.parent_ = graph.parent
        self.index_ = index

    def _reference_phi(self, device):
        """phi(c) for every reference face, computed once and reused by transform."""
        dtype = torch.float64 if self.reference_.dtype == np.float64 else torch.float32
        module = self.network_.build_module(dtype=dtype, device=device)
        mask = clique_mask(self.knn_sims_, self.tau_)
        n = len(self.reference_)
        out = np.empty((n, self.network_.config["hidden_size"]), dtype=self.reference_.dtype)
        progress = _progress.BatchProgress(self.verbose, "clique embeddings", n,
                                           -(-n // self.inference_batch_size))
        with torch.no_grad():
            for batch, start in enumerate(range(0, n, self.inference_batch_size), 1):
                nodes = np.arange(start, min(n, start + self.inference_batch_size))
                members, mmask = reference_clique_tensors(
                    nodes, self.reference_, self.knn_indices_, mask, dtype=dtype, device=device,
                    centre_only=not module.clique.reads_neighbours)
                out[nodes] = module.clique(members, mmask).cpu().numpy()
                progress(batch, nodes[-1] + 1)
        return out

    # ------------------------------------------------------------ transform
    def transform(self, X):
        """Embed faces through their neighbours in the fitted reference set.

        Each row is embedded on its own (row-independent, like
        :meth:`sklearn.manifold.Isomap.transform`): its k nearest reference
        faces give its density, first chain step and pruned clique. A row
        identical to a reference face is that face (it is not its own
        neighbour), so ``transform`` of the fitted data reproduces the
        training graph and ``fit_transform(X)`` equals ``fit(X).transform(X)``.
        To embed a new set of faces through *its own* graph, fit on it
        (with ``network=`` to reuse a trained network).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            Unit rows; float32 for float32 input, float64 otherwise.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        Q = l2_normalize(X, zero_rows="warn").astype(self.reference_.dtype, copy=False)

        def neighbours(start, stop):
            return self.index_.query(Q[start:stop], self.k_)

        return self._embed(Q, neighbours, "transform").astype(X.dtype, copy=False)

    def fit_transform(self, X, y=None):
        """Fit on ``X`` and return its embedding, through the graph built by fit.

        Equal to ``fit(X).transform(X)``, without searching the neighbours of
        every face a second time.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            Identity labels (see :meth:`fit`).

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
        """
        self.fit(X, y)
        k = self.k_

        def neighbours(start, stop):
            # A reference face's neighbours, itself excluded, and itself as its twin.
            rows = np.arange(start, stop)
            return (self.knn_sims_[start:stop, 1 : k + 1],
                    self.knn_indices_[start:stop, 1 : k + 1], rows)

        # reference_ has the dtype transform would return (float32 or float64).
        timer = _progress.StageTimer(self.verbose)
        with timer("chain network"):
            Z = self._embed(self.reference_, neighbours, "chain network")
        self.timings_.update(timer.timings)
        return Z

    def _embed(self, Q, neighbours, stage):
        """Embed the rows of ``Q`` in batches; ``neighbours(start, stop)`` gives their graph."""
        out = np.empty((len(Q), self.network_.config["n_components"]), dtype=self.reference_.dtype)
        device = _resolve_device(self.device)
        dtype = torch.float64 if Q.dtype == np.float64 else torch.float32
        module = self.network_.build_module(dtype=dtype, device=device)
        n_batches = -(-len(Q) // self.inference_batch_size)
        progress = _progress.BatchProgress(self.verbose, stage, len(Q), n_batches)
        with deterministic_torch(self.n_jobs):
            for batch, start in enumerate(range(0, len(Q), self.inference_batch_size), 1):
                stop = min(len(Q), start + self.inference_batch_size)
                out[start:stop] = self._embed_queries(
                    Q[start:stop], neighbours(start, stop), module, dtype, device)
                progress(batch, stop)
        return out

    def _embed_queries(self, Q, neighbours, module, dtype, device):
        sims, idx, twin = neighbours
        # Density and order of each query against the reference (Eq. 2, 3).
        rho = density(np.concatenate([np.ones((len(Q), 1), sims.dtype), sims], axis=1))
        key = tie_break_key(Q)
        higher = is_higher(self.density_[idx], self.tie_key_[idx], idx,
                           rho[:, None], key[:, None], twin[:, None])
        first, _ = query_parents(sims, idx, higher, self.rank_, self.chain_threshold_)
        rest = follow_parents(first, self.parent_, self.max_chain_length - 1)
        with torch.no_grad():
            members, mmask = clique_tensors(Q, self.reference_, idx, sims > self.tau_,
                                            dtype=dtype, device=device,
                                            centre_only=not module.clique.reads_neighbours)
            phi_q = module.clique(members, mmask)
            nodes, slots, smask = chain_slots(rest)
            phi_ref = torch.as_tensor(self.reference_phi_[nodes], dtype=dtype, device=device)
            # Slot 0..len(Q)-1: the queries themselves; then the reference chain nodes.
            phi = torch.cat([phi_q, phi_ref])
            qslots = torch.arange(len(Q))[:, None]
            all_slots = torch.cat([qslots, torch.where(smask, slots + len(Q), 0)], dim=1).to(device)
            all_mask = torch.cat([torch.ones_like(qslots, dtype=torch.bool), smask], dim=1).to(device)
            z = module.embed_chains(phi, all_slots, all_mask,
                                    torch.as_tensor(Q, dtype=dtype, device=device))
        return z.cpu().numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = False
        return tags
