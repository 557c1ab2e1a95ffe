"""DensityChainClustering: DA-Net embedding followed by DBSCAN, as one clusterer."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, _fit_context
from sklearn.cluster import DBSCAN
from sklearn.utils._param_validation import Interval, StrOptions

from ._embedder import DANetEmbedder
from ._expansion import DEFAULT_N_EXPANSION, expand_embedding, matched_radius
from ._fitting import unfitted_on_failure
from ._graph_dbscan import graph_dbscan, knn_edge_distances, percolation_safe_eps
from ._knn import EXACT_SEARCH_MAX_ROWS
from ._merge import link_radius, merge_clusters
from ._progress import StageTimer

# The embedder's parameters, exposed unchanged by the clusterer.
_EMBEDDER_PARAMS = tuple(DANetEmbedder._parameter_constraints)


class DensityChainClustering(ClusterMixin, BaseEstimator):
    """Cluster faces by identity: DA-Net embedding, then DBSCAN, then merging.

    Fits a :class:`DANetEmbedder` on ``X`` (supervised when ``y`` is given,
    label-free otherwise, or with a given trained ``network`` for people it
    has never seen), embeds ``X`` through its own density graph and clusters
    the embedding in two stages: DBSCAN at a tight radius gives pure pieces,
    then pieces whose mean embeddings are close are merged. By default both
    radii derive from the one calibrated on held-out identities when the
    network was trained and stored with it (``network_.config["eps"]``), so
    most users never tune them. ``merge_eps=None`` gives plain DBSCAN at
    that radius (the paper's pipeline).

    Parameters
    ----------
    k, tau, chain_threshold, max_chain_length, hidden_size, n_components, \
n_gcn_layers, chain_network, n_epochs, batch_size, inference_batch_size, \
learning_rate, weight_decay, pair_margin, pair_scale, validation_fraction, n_iter_no_change, \
n_rounds, network, graph_method, device, n_jobs, random_state, verbose
        As in :class:`DANetEmbedder`.
    eps : float or None, default=None
        DBSCAN (link) radius in the learned space (unit vectors, Euclidean
        distance). None uses the network's calibrated radius (minus 0.05
        when merging), lowered in steps of 0.025 while at that radius some
        cluster grows abruptly: past a radius that shrinks as the
        number of faces grows, single-linkage DBSCAN chains different people
        into one giant cluster, and a radius calibrated on a few thousand
        held-out faces can be past it on a million (``eps_`` is the radius
        used).
    merge_eps : float, "auto" or None, default="auto"
        Radius between the unit-norm mean embeddings of two DBSCAN clusters
        under which they are merged (single linkage over the means; see
        ``skdanet._merge``). A mean averages out the one odd photo that
        would bridge two people, so merging recovers a person's split
        pieces without the bridges a looser link radius brings. "auto": the
        network's calibrated radius; a merged cluster that grows abruptly at
        it is merged again at a lower radius, the others keep it (on a
        million face-like faces 2% of the faces were merged at 0.725 to
        0.675, the rest at 0.75; see ``min_merge_eps_``).
        None: no merging. On LFW (three split seeds) merging raised pairwise
        F from 0.948 to 0.981 and BCubed F from 0.944 to 0.955.
    min_samples : int, default=1
        DBSCAN's ``min_samples``. 1 keeps people with a single photo as
        clusters of their own instead of noise.
    dbscan_algorithm : {"auto", "exact", "knn"}, default="auto"
        ``"exact"``: :class:`sklearn.cluster.DBSCAN` over all pairs of faces.
        ``"knn"``: DBSCAN over the pairs of the kNN graph the embedding was
        computed on (each face and its ``k`` nearest neighbours), O(n k) time
        and memory; the same clusters whenever a face's ``eps``-neighbours in
        the embedding are among its ``k`` nearest raw neighbours.
        ``"auto"``: exact up to 30,000 faces, knn above.
    query_expansion : int, default=4
        Before clustering, each face's embedding is replaced by the
        unit-norm weighted mean of itself and its ``query_expansion`` most
        similar kNN neighbours (weights: cosine similarity cubed), so the
        photos of one person move together (see ``skdanet._expansion``).
        Every radius (``eps``, ``merge_eps`` and the calibrated one) is
        given in the network's space and carried over to the expanded space
        as the radius under which the same share of kNN pairs falls;
        ``eps_``, ``merge_eps_`` and ``embedding_`` are in the expanded
        space. On LFW (six split seeds) it raised pairwise / BCubed F from
        0.980 / 0.952 to 0.985 / 0.958 (supervised) and from 0.979 / 0.948 to
        0.982 / 0.952 (label-free). 0: cluster the embedding as it is.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each face (consecutive from 0; -1 is noise, only possible
        with ``min_samples > 1``).
    embedder_ : DANetEmbedder
        The fitted embedder.
    embedding_ : ndarray of shape (n_samples, n_components)
        The learned embedding of ``X`` that was clustered (after query
        expansion, if any).
    eps_ : float
        The DBSCAN radius used, in the space of ``embedding_``.
    merge_eps_ : float or None
        The merge radius used, in the space of ``embedding_`` (None: no
        merging).
    min_merge_eps_ : float or None
        The lowest merge radius the guard fell back to for clusters that
        grew abruptly at ``merge_eps_`` (equal to it when none did).
    n_clusters_ : int
        Number of clusters (noise excluded).
    timings_ : dict
        Seconds per stage: the embedder's (see :class:`DANetEmbedder`), "query
        expansion", "DBSCAN" and "merging".
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` had string feature names.

    See Also
    --------
    DANetEmbedder : The embedding alone, for use in a Pipeline.
    sklearn.cluster.DBSCAN : The clustering step.

    Examples
    --------
    >>> import numpy as np
    >>> from skdanet import DensityChainClustering
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(4, 16))
    >>> X = np.repeat(centres, 20, axis=0) + 0.2 * rng.normal(size=(80, 16))
    >>> y = np.repeat(np.arange(4), 20)
    >>> model = DensityChainClustering(k=10, n_epochs=5, random_state=0).fit(X, y)
    >>> model.labels_.shape
    (80,)
    """

    _parameter_constraints = {
        **DANetEmbedder._parameter_constraints,
        "eps": [Interval(Real, 0, None, closed="neither"), None],
        "merge_eps": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"}), None],
        "min_samples": [Interval(Integral, 1, None, closed="left")],
        "dbscan_algorithm": [StrOptions({"auto", "exact", "knn"})],
        "query_expansion": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        k=30,
        tau="auto",
        chain_threshold=None,
        max_chain_length=4,
        eps=None,
        merge_eps="auto",
        min_samples=1,
        dbscan_algorithm="auto",
        query_expansion=DEFAULT_N_EXPANSION,
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
        self.eps = eps
        self.merge_eps = merge_eps
        self.min_samples = min_samples
        self.dbscan_algorithm = dbscan_algorithm
        self.query_expansion = query_expansion
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

    def _make_embedder(self):
        return DANetEmbedder(**{p: getattr(self, p) for p in _EMBEDDER_PARAMS})

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Embed ``X`` (training the network unless one is given) and cluster it.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Face features.
        y : array-like of shape (n_samples,), default=None
            Identity labels for supervised training; None trains label-free.
            Ignored when ``network`` is given.

        Returns
        -------
        self : DensityChainClustering
        """
        with unfitted_on_failure(self):
            return self._fit(X, y)

    def _fit(self, X, y):
        # The embedder validates X (and sets n_features_in_ / feature names
        # on itself); mirror them here, as Pipeline-like meta-estimators do.
        embedder = self._make_embedder()
        embedding = embedder.fit_transform(X, y)
        timer = StageTimer(self.verbose, prefix="[DensityChainClustering]")
        neighbors = embedder.knn_indices_[:, 1:]
        on_knn = self._dbscan_on_knn(len(embedding))
        # The kNN-pair distances, computed once for the expansion, the guard
        # and DBSCAN (none needs them with a given eps, exact DBSCAN and no
        # expansion).
        distances = None
        if self.eps is None or on_knn or self.query_expansion:
            distances = knn_edge_distances(embedding, neighbors)
        to_clustered_space = float  # radii are given in the network's space
        if self.query_expansion:
            with timer("query expansion"):
                embedding, distances, to_clustered_space = self._expand(
                    embedding, neighbors, distances)
        calibrated = embedder.network_.config["eps"]
        merging = self.merge_eps is not None
        with timer("DBSCAN"):
            eps = self.eps
            if eps is None:
                # With merging, the calibrated radius is the merge radius and
                # the link stage a tighter one (see skdanet._merge).
                start = to_clustered_space(link_radius(calibrated) if merging else calibrated)
                eps = percolation_safe_eps(embedding, neighbors, start, distances=distances)
            else:
                eps = to_clustered_space(eps)
            if on_knn:
                labels = graph_dbscan(embedding, neighbors, eps, self.min_samples,
                                      distances=distances)
            else:
                labels = DBSCAN(eps=eps, min_samples=self.min_samples).fit_predict(embedding)
        merge_eps = lowest_merge_eps = None
        if merging:
            with timer("merging"):
                auto = self.merge_eps == "auto"
                merge_eps = to_clustered_space(calibrated if auto else self.merge_eps)
                labels, radius = merge_clusters(embedding, labels, merge_eps, neighbors,
                                                guard=auto)
                lowest_merge_eps = float(np.nanmin(radius, initial=merge_eps))
        self.embedder_ = embedder
        self.embedding_ = embedding
        self.eps_ = float(eps)
        self.merge_eps_ = merge_eps
        self.min_merge_eps_ = lowest_merge_eps
        self.timings_ = {**embedder.timings_, **timer.timings}
        self.labels_ = labels
        self.n_clusters_ = len(np.unique(labels[labels >= 0]))
        self.n_features_in_ = embedder.n_features_in_
        if hasattr(embedder, "feature_names_in_"):
            self.feature_names_in_ = embedder.feature_names_in_
        return self

    def _expand(self, embedding, neighbors, distances):
        """Query-expanded embedding, its kNN-pair distances, and the radius map into it."""
        expanded = expand_embedding(embedding, neighbors, distances, self.query_expansion)
        expanded_distances = knn_edge_distances(expanded, neighbors)

        def to_clustered_space(radius):
            return matched_radius(distances, expanded_distances, float(radius))

        return expanded, expanded_distances, to_clustered_space

    def _dbscan_on_knn(self, n_samples):
        if self.dbscan_algorithm == "auto":
            return n_samples > EXACT_SEARCH_MAX_ROWS
        return self.dbscan_algorithm == "knn"

    def fit_predict(self, X, y=None):
        """Fit and return the cluster labels; ``y`` (identities) trains supervised.

        (scikit-learn's default ``fit_predict`` would drop ``y``.)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.fit(X, y).labels_

    @property
    def network_(self):
        """The trained (or given) network of the fitted embedder."""
        return self.embedder_.network_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags
