"""DANetEmbedder: the density-aware feature embedding as a scikit-learn transformer."""

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .cluster import ClusteringRule
from .graph import (
    N_PROBE,
    DensityGraph,
    clamp_n_neighbors,
    l2_normalize,
)
from .model import (
    CHAIN_NETWORKS,
    GraphEmbedding,
    TrainedNetwork,
    TrainingParams,
    deterministic_torch,
    mean_direction,
    resolve_device,
    train_network,
)
from .utils._arrays import identical_row_groups
from .utils._dask import is_dask_array, transform_dask_array
from .utils._fitting import seed_from, unfitted_on_failure
from .utils._parallel import resolve_n_jobs
from .utils._progress import BatchProgress, StageTimer


def _one_embedding_per_face(reference, Z):
    """``Z`` with identical rows of ``reference`` given one embedding: their mean.

    Identical faces sit at different places of the density order (ties are
    broken by index), so their chains, and embeddings, differ; but they are
    one face, and ``transform`` of that face must give one answer. Rows
    without a duplicate are returned untouched.
    """
    shared, group = identical_row_groups(reference)
    if not shared.size:
        return Z
    means = np.zeros((group.max() + 1, Z.shape[1]), dtype=np.float64)
    np.add.at(means, group, Z[shared])
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    np.divide(means, norms, out=means, where=norms > 0)
    out = Z.copy()
    out[shared] = means[group].astype(Z.dtype)
    return out


def _is_unknown(y):
    """Where ``y`` is -1 (or "-1"): a face of unknown identity, like noise in labels_."""
    if np.issubdtype(y.dtype, np.number):
        return y == -1
    return np.array([str(v) == "-1" for v in y], dtype=bool)


# Cosine between the mean directions of the fitted faces and of the network's
# training faces below which they are taken for another extractor's (one
# extractor's sets agree above 0.8, even a single face; another's are near 0).
_SAME_EXTRACTOR_MIN_AGREEMENT = 0.5

# sklearn.cluster.DBSCAN's default radius: the output is scaled to it.
_DBSCAN_DEFAULT_EPS = 0.5


class DANetEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Density-aware feature embedding of faces (DA-Net), for clustering by identity.

    Builds a kNN graph over the L2-normalised faces, follows each face's
    density chain towards its density peak, embeds the pruned clique around
    each chain node with a graph convolution (local context) and aggregates
    the chain with attention or an LSTM (long-range context).

    The output is ready for :class:`sklearn.cluster.DBSCAN` at its defaults:
    each face's embedding is averaged with its most similar neighbours'
    (query expansion, as :class:`DensityChainClustering` does) and scaled so
    that the one DBSCAN radius that best reproduces the clusterer's clusters
    of the fitted faces is ``eps_ = 0.5``, DBSCAN's default. So
    ``Pipeline([DANetEmbedder(), DBSCAN()])`` works as written, and
    ``DBSCAN(eps=emb.eps_, min_samples=1)`` (which keeps people with fewer
    than ``min_samples`` photos out of the noise) comes as close to the
    clusterer with the same network as one radius can.

    Input rows are L2-normalised internally (a copy: ``X`` is never modified);
    only their direction matters. An all-zero row has no direction: it is
    kept as a zero vector (similar to no face, identical to other zero rows)
    with a warning; drop such rows where you can.

    Read more in the :ref:`User Guide <embedder>`.

    Parameters
    ----------
    k : int, default=30
        Neighbours per face in the kNN graph (clamped, with a warning, to
        ``n_samples - 1``). Below 30 the search still returns 30, for the
        Otsu split (``tau="auto"`` and label-free training's scale): a face's
        few nearest are mostly its own person's.
    tau : float or "auto", default="auto"
        Cosine similarity a neighbour needs to enter a face's pruned clique
        (Eq. 4). "auto" sets it from the raw features: the Otsu split of the
        kNN similarities, which adapts to the feature extractor. Label-free
        training reads what a same-person similarity is from that split
        whatever ``tau`` is, so a given value only sizes cliques and chains.
    chain_threshold : float or "auto", default="auto"
        A chain stops when the next face's similarity falls below it; "auto"
        uses ``tau``.
    max_chain_length : int, default=4
        Faces per chain, the face itself included (1 disables the chain).
    hidden_size : int, default=128
        Width of the clique and chain networks.
    n_components : int or None, default=None
        Dimension of the output embedding; None keeps the input dimension,
        which makes the network residual (it starts from the raw features
        and learns a correction).
    n_gcn_layers : int, default=0
        Layers of the clique network (Eq. 5). 0 embeds each chain node by a
        linear projection of its own feature, so the context comes from the
        chain alone.
    chain_network : {"attention", "lstm"}, default="attention"
        Aggregation of the chain.
    n_epochs : int, default=30
        Maximum training epochs (each round, for label-free training).
        Label-free training re-labels with, and returns, the weights averaged
        over its last epochs (half-life 4 epochs), so give it at least 5
        epochs a round: after fewer the average still carries the untrained
        start.
    batch_size : int, default=512
        Faces per training batch (grouped by kNN neighbourhood).
    max_epoch_steps : int or None, default=16
        Most optimisation steps (batches) per epoch. Above
        ``max_epoch_steps * batch_size`` faces an epoch trains on a fresh
        random sample of neighbourhoods instead of on every face, so training
        time stops growing with the number of faces (the network is
        inductive: it embeds the faces it did not train on the same way).
        None: every face, every epoch.
    inference_batch_size : int, default=4096
        Faces embedded at a time by ``transform`` (and after ``fit``): bounds
        the memory of the clique and chain networks at inference, whatever
        the number of faces.
    learning_rate : float, default=1e-3
        Adam step size.
    weight_decay : float, default=1e-5
        Adam L2 penalty.
    pair_margin : float or "auto", default="auto"
        Cosine similarity at which the pairwise loss puts the same/different
        boundary. "auto": 0.7 when trained with labels, 0.65 label-free,
        where the boundary is also the clustering radius (see
        :ref:`the user guide <label_free_margin>`).
    pair_scale : float, default=30.0
        Sharpness of the pairwise loss.
    validation_fraction : float, default=0.2
        Share of the training identities held out (supervised ``fit`` only)
        for early stopping, for calibrating ``eps``, and for the final check:
        the held-out people are clustered through their own graph by the
        whole clustering rule with the trained network and with the
        untrained one (the raw features, when ``n_components`` is None), and
        the better is kept (see :ref:`the user guide <clusterer>`).
    n_iter_no_change : int, default=5
        Stop after this many epochs without a better held-out score.
    n_rounds : int, default=2
        Label-free training: pseudo-label / train rounds.
    network : TrainedNetwork or None, default=None
        A trained network: ``fit`` then only builds the graph of ``X`` and
        embeds through it, without training (transfer to unseen people). The
        training parameters above then have no effect (a warning says so
        when one of them is not at its default). Features of another
        extractor than the network's are refused (``ValueError``): their mean
        direction is compared with that of the network's training faces.
    graph_method : {"auto", "exact", "ivf", "hnsw"}, default="auto"
        kNN search: exact up to 30,000 faces, an inverted-file index above
        (deterministic, parallel over ``n_jobs``); HNSW (``pip install
        hnswlib``) as an alternative.
    n_probe : int or "auto", default=32
        Inverted-file index: the lists (about 384 faces each) every face is
        compared with. More probes find more of each face's true
        neighbours, in more time; at a fixed ``n_probe`` the share of the set
        searched shrinks as it grows. ``"auto"``: each face searches the
        lists almost as near as its nearest one (16 to 120), more of each
        face's neighbours for the time; the better choice past a few hundred
        thousand faces. The :ref:`scale page <scale>` measures recall and
        time against ``n_probe`` at a million faces.
    device : str, default="cpu"
        Torch device for training and inference ("cpu", "cuda").
    n_jobs : int or None, default=None
        Workers for the row-parallel stages: kNN queries, the embedding of
        every face in blocks (after fit, in ``transform``, and for label-free
        re-labelling) and the embedding distances over the kNN pairs, each
        worker on one torch and one BLAS thread. None
        means every core (as scikit-learn's OpenMP estimators do, within
        ``OMP_NUM_THREADS`` when set), or the ``n_jobs`` of an enclosing
        :func:`joblib.parallel_config`; -1 all cores. They run through
        joblib, so inside ``with joblib.parallel_backend("dask"):`` they run
        on a Dask cluster.
        Training steps run on one torch thread whatever ``n_jobs`` (their
        matrices are too small to gain from more; see the user guide). The
        result is the same bits for any value and any backend.
    random_state : int, RandomState instance, Generator or None, default=None
        Seeds initialisation, batch order, the validation split and the kNN
        index. An int gives bit-identical results run to run.
    verbose : int, default=0
        1: per-epoch table (loss, held-out score, seconds), stage timings and
        batch progress.

    Attributes
    ----------
    network_ : TrainedNetwork
        The trained (or given) network; ``network_.config["eps"]`` is its
        radius in the learned space before expansion (calibrated on held-out
        identities when trained with labels; the loss's boundary
        ``sqrt(2 - 2 * m)`` when trained without, ``m`` the margin it was
        trained at, ``network_.config["pair_margin"]``).
    eps_ : float
        The DBSCAN radius for the output of ``transform``: 0.5, DBSCAN's
        default, by construction (see ``output_scale_``).
    output_scale_ : float
        The norm of every output row: the unit-norm expanded embedding is
        multiplied by it so that the radius chosen on the fitted faces
        becomes ``eps_``. That radius is, of the clusterer's one-stage
        radius (the network's radius set to the faces as
        :class:`DensityChainClustering` sets it, carried into the expanded
        space and lowered by the percolation guard) times
        :data:`~skdanet.cluster.ONE_STAGE_MULTIPLES`, the one at which DBSCAN
        (``min_samples=1``) agrees best with the clusterer's whole rule,
        merging and reciprocal links included; no labels are read. Divide by
        it for unit vectors.
    graph_ : skdanet.graph.DensityGraph
        The density graph of the fitted faces (kNN lists, density, chains,
        clique threshold and search index), through which ``transform``
        places new faces.
    reference_ : ndarray of shape (n_samples, n_features)
        The L2-normalised fitted faces.
    tau_ : float
        The clique threshold used.
    chain_threshold_ : float
        The chain stop threshold used.
    k_ : int
        Neighbours per face actually used.
    history_ : list of dict
        Per-epoch training log (empty when a network was given).
    timings_ : dict
        Seconds per stage of the last fit ("kNN graph", "density and chains",
        "training", "clique network", "chain network").
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Only when ``X`` had string feature names.

    See Also
    --------
    DensityChainClustering : This embedding followed by DBSCAN and merging.

    References
    ----------
    .. [1] S. Guo, J. Xu, D. Chen, C. Zhang, X. Wang and R. Zhao,
       "Density-Aware Feature Embedding for Face Clustering", CVPR 2020.

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
        "chain_threshold": [Interval(Real, -1, 1, closed="both"), StrOptions({"auto"})],
        "max_chain_length": [Interval(Integral, 1, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "n_gcn_layers": [Interval(Integral, 0, None, closed="left")],
        "chain_network": [StrOptions(set(CHAIN_NETWORKS))],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_epoch_steps": [Interval(Integral, 1, None, closed="left"), None],
        "inference_batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "pair_margin": [Interval(Real, -1, 1, closed="neither"), StrOptions({"auto"})],
        "pair_scale": [Interval(Real, 0, None, closed="neither")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "n_rounds": [Interval(Integral, 1, None, closed="left")],
        "network": [TrainedNetwork, None],
        "graph_method": [StrOptions({"auto", "exact", "ivf", "hnsw"})],
        "n_probe": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "device": [str, torch.device],
        "n_jobs": [Integral, None],
        "random_state": ["random_state", np.random.Generator],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        k=30,
        tau="auto",
        chain_threshold="auto",
        max_chain_length=4,
        hidden_size=128,
        n_components=None,
        n_gcn_layers=0,
        chain_network="attention",
        n_epochs=30,
        batch_size=512,
        max_epoch_steps=16,
        inference_batch_size=4096,
        learning_rate=1e-3,
        weight_decay=1e-5,
        pair_margin="auto",
        pair_scale=30.0,
        validation_fraction=0.2,
        n_iter_no_change=5,
        n_rounds=2,
        network=None,
        graph_method="auto",
        n_probe=N_PROBE,
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
        self.max_epoch_steps = max_epoch_steps
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
        self.n_probe = n_probe
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
            Face features (rows need not be normalised).
        y : array-like of shape (n_samples,), default=None
            Identity labels. Without them, training is label-free (pseudo
            labels from density chains, refined over ``n_rounds``). Ignored
            when ``network`` is given.

        Returns
        -------
        self : DANetEmbedder
        """
        with unfitted_on_failure(self):
            self._fit(X, y, self._default_rule())
            self._expanded_output()
        return self

    @_fit_context(prefer_skip_nested_validation=True)
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
        with unfitted_on_failure(self):
            self._fit(X, y, self._default_rule())
            return self._output(self._expanded_output()[0])

    def _fit_embed(self, X, y, rule):
        """Fit (label-free training re-labels with ``rule``); the network's embedding of ``X``.

        The embedding before query expansion and scaling: what
        :class:`DensityChainClustering` clusters with its own rule.
        """
        self._fit(X, y, rule)
        return self._reference_embedding

    def _fit(self, X, y, rule):
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        y = self._checked_labels(y, len(X))
        device = resolve_device(self.device)
        seed = seed_from(self.random_state)
        n_jobs = resolve_n_jobs(self.n_jobs)
        timer = StageTimer(self.verbose)

        reference = l2_normalize(X, zero_rows="warn")
        self._check_network(reference)
        k = clamp_n_neighbors(self.k, len(reference), exclude_self=True)
        graph = self._density_graph(
            reference, k, seed=seed, n_jobs=n_jobs,
            progress=BatchProgress(self.verbose, "kNN search", len(reference)),
            stage_timer=timer)
        if self.network is not None:
            network, history = self.network, []
        else:
            def graph_of(faces):
                # Held-out people (a few faces): as many neighbours as they allow.
                return self._density_graph(faces, min(k, len(faces) - 1), seed=seed,
                                           n_jobs=n_jobs)

            with timer("training"):
                network, history = train_network(
                    reference, graph, y, params=TrainingParams.from_object(self), rule=rule,
                    seed=seed, device=device, n_jobs=n_jobs, verbose=self.verbose,
                    graph_of=graph_of)
        # The embedding passes below read these; if anything fails from here
        # on, fit's unfitted_on_failure removes them again.
        self.reference_ = reference
        self.graph_ = graph
        self.k_ = k
        self.tau_ = graph.tau
        self.chain_threshold_ = graph.stop_threshold
        self.network_ = network
        self.history_ = history
        with timer("clique network"), deterministic_torch(1):
            n = len(reference)
            embedding = GraphEmbedding(network, reference, graph, device=device,
                                       batch_size=self.inference_batch_size, n_jobs=n_jobs)
            self._reference_phi = embedding.clique_embeddings(BatchProgress(
                self.verbose, "clique embeddings", n, -(-n // self.inference_batch_size)))
        with timer("chain network"):
            self._reference_embedding = _one_embedding_per_face(
                reference, self._embed(reference, graph.reference_neighbours, "chain network"))
        # The output's expansion and scale: computed by fit and fit_transform;
        # DensityChainClustering clusters with its own rule and skips them.
        self._output_state = None
        self.eps_ = _DBSCAN_DEFAULT_EPS
        self.timings_ = dict(timer.timings)

    def _density_graph(self, faces, k, *, seed, n_jobs, **progress):
        """The density graph of L2-normalised ``faces`` with this estimator's settings."""
        return DensityGraph.build(
            faces, k, tau=self.tau, stop_threshold=self.chain_threshold,
            max_length=self.max_chain_length, method=self.graph_method, random_state=seed,
            n_jobs=n_jobs, n_probe=self.n_probe, **progress)

    def _checked_labels(self, y, n_samples):
        """Identity codes from ``y``; -1 marks a face of unknown identity.

        As in ``labels_`` and the package's metrics, -1 is not a person:
        each such face is trained as a person of its own, never as one
        shared identity.
        """
        if y is None or self.network is not None:
            return None
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != n_samples:
            raise ValueError(
                f"y must be a 1-d array of {n_samples} identity labels, got shape {y.shape}."
            )
        if y.dtype == object and any(v is None for v in y):
            raise ValueError("y contains None; give every face an identity label, or -1 for "
                             "a face whose identity is unknown.")
        if np.issubdtype(y.dtype, np.floating) and not np.all(np.isfinite(y)):
            raise ValueError("y contains NaN or infinite labels; give every face an identity "
                             "label, or -1 for a face whose identity is unknown.")
        try:
            codes = np.unique(y, return_inverse=True)[1].ravel().astype(np.int64)
        except TypeError as exc:
            raise ValueError(f"y mixes label types that cannot be compared ({exc}); use "
                             "one type (ints or strings).") from exc
        unknown = np.flatnonzero(_is_unknown(y))
        codes[unknown] = codes.max(initial=-1) + 1 + np.arange(len(unknown))
        return codes

    def _check_network(self, reference):
        """Refuse or warn about a given network that does not fit ``reference`` (normalised X)."""
        if self.network is None:
            return
        if self.network.in_features != reference.shape[1]:
            raise ValueError(
                f"The given network was trained on {self.network.in_features}-d features "
                f"but X has {reference.shape[1]} features. A network only works with features "
                "of the extractor it was trained on; retrain on these features."
            )
        trained_on = self.network.config.get("feature_direction")
        if trained_on is not None:
            agreement = float(mean_direction(reference) @ np.asarray(trained_on))
            if agreement < _SAME_EXTRACTOR_MIN_AGREEMENT:
                # Through a network of another extractor every face lands in
                # one place (one cluster), so there is no result worth returning.
                raise ValueError(
                    f"X does not look like the features this network was trained on: the "
                    f"mean directions of the two sets of faces have cosine {agreement:.2f} "
                    f"(below {_SAME_EXTRACTOR_MIN_AGREEMENT}; faces of one extractor agree "
                    "above 0.8, even a single face). Features of another extractor, or "
                    "transformed ones (centred, whitened, projected), need a network of "
                    "their own: fit without network= (label-free) or train on labelled "
                    "faces of this extractor.")
        changed = [name for name, value in vars(TrainingParams.from_object(self)).items()
                   if value != getattr(TrainingParams, name)]
        if changed:
            warnings.warn(
                f"network= is given, so fit does not train and these parameters have no "
                f"effect: {', '.join(changed)}. Leave them at their defaults, or set "
                "network=None to train.", UserWarning, stacklevel=4)

    def _embed(self, Q, neighbours, stage):
        """Embed the rows of ``Q`` placed in the graph; ``neighbours(start, stop)`` places them."""
        embedding = GraphEmbedding(self.network_, self.reference_, self.graph_,
                                   device=resolve_device(self.device),
                                   batch_size=self.inference_batch_size,
                                   n_jobs=resolve_n_jobs(self.n_jobs))
        n_batches = -(-len(Q) // self.inference_batch_size)
        progress = BatchProgress(self.verbose, stage, len(Q), n_batches)
        # One torch thread per worker: workers split the rows instead.
        with deterministic_torch(1):
            return embedding.embed(Q, neighbours, self._reference_phi, progress=progress)

    # ------------------------------------------------------------ transform
    def transform(self, X):
        """Embed faces through their neighbours in the fitted reference set.

        Each row is embedded on its own (row-independent, like
        :meth:`sklearn.manifold.Isomap.transform`): its k nearest reference
        faces give its density, first chain step and pruned clique, and the
        most similar of their embeddings are averaged into its own. A row
        identical to a reference face is that face (it is not its own
        neighbour), so ``transform`` of the fitted data reproduces the
        training graph and ``fit_transform(X)`` equals ``fit(X).transform(X)``.
        To embed a new set of faces through *its own* graph, fit on it
        (with ``network=`` to reuse a trained network).

        A dask array is embedded lazily, block by block (each block through
        the fitted reference), and a dask array is returned: faces beyond one
        machine's memory, on a Dask cluster.

        Parameters
        ----------
        X : array-like or dask array of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray (dask array for dask input) of shape (n_samples, n_components)
            Rows of norm ``output_scale_``, in which DBSCAN at ``eps_`` (0.5)
            clusters faces as the clusterer does, as closely as one radius
            can; float32 for float32 input, float64 otherwise.
        """
        check_is_fitted(self)
        if is_dask_array(X):
            return transform_dask_array(X, self.transform, n_features_in=self.n_features_in_,
                                        n_features_out=self._n_features_out)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        Q = l2_normalize(X, zero_rows="warn").astype(self.reference_.dtype, copy=False)
        sims, idx, twin = self.graph_.query_neighbours(Q)
        # A row identical to a fitted face is that face: its output, whichever
        # of several identical fitted faces the search found. Only the others
        # go through the network.
        fitted = self._expanded_output()[0]
        expanded = np.empty((len(Q), fitted.shape[1]), dtype=fitted.dtype)
        known = twin >= 0
        expanded[known] = fitted[twin[known]]
        new = np.flatnonzero(~known)
        if new.size:
            Z = self._embed(Q[new], lambda start, stop: (
                sims[new[start:stop]], idx[new[start:stop]], twin[new[start:stop]]), "transform")
            expanded[new] = self._default_rule().expand_new(Z, idx[new], self._reference_embedding)
        return self._output(expanded).astype(X.dtype, copy=False)

    def _default_rule(self):
        """skdanet's default clustering rule, on ``n_jobs`` workers.

        Label-free training re-labels with it; its expansion and its
        one-stage radius shape the output, which DBSCAN clusters at its
        default radius; see ``output_scale_``.
        """
        return ClusteringRule(n_jobs=resolve_n_jobs(self.n_jobs))

    def _expanded_output(self):
        """The fitted faces' expanded embedding and the scale of the output, computed once.

        The output's rule: the default expansion, and the one DBSCAN radius
        that best reproduces the whole rule on the fitted faces
        (:meth:`~skdanet.cluster.ClusteringRule.one_stage_space`).
        """
        if self._output_state is None:
            space, radius = self._default_rule().one_stage_space(
                self._reference_embedding, self.graph_.neighbors, self.network_.config["eps"],
                calibrated=self.network_.calibrated)
            self._output_state = (space.embedding, _DBSCAN_DEFAULT_EPS / radius)
        return self._output_state

    @property
    def output_scale_(self):
        """The norm of every output row (see the class docstring)."""
        check_is_fitted(self)
        return self._expanded_output()[1]

    def _output(self, expanded):
        return expanded * self.output_scale_

    @property
    def _n_features_out(self):
        """Output dimension, for :meth:`get_feature_names_out`."""
        return self.network_.config["n_components"]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.target_tags.required = False
        return tags
