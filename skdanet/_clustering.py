"""DensityChainClustering: DA-Net embedding, then the clustering rule, as one clusterer."""

import inspect
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._embedder import DANetEmbedder
from .cluster import DEFAULT_JACCARD_EPS, DEFAULT_QUERY_EXPANSION, ClusteringRule
from .utils._fitting import unfitted_on_failure
from .utils._parallel import resolve_n_jobs
from .utils._progress import StageTimer

# The clusterer's own parameters and their defaults; the embedder's follow,
# taken from DANetEmbedder itself so that they are declared in one place.
_CLUSTERING_DEFAULTS = {
    "eps": "auto",
    "merge_eps": "auto",
    "jaccard_eps": DEFAULT_JACCARD_EPS,
    "min_samples": 1,
    "dbscan_algorithm": "auto",
    "query_expansion": DEFAULT_QUERY_EXPANSION,
}
_EMBEDDER_PARAMETERS = [p for name, p in inspect.signature(DANetEmbedder).parameters.items()]


def _init_signature():
    own = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
           for name, default in _CLUSTERING_DEFAULTS.items()]
    self_ = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return inspect.Signature([self_, *own, *_EMBEDDER_PARAMETERS])


class DensityChainClustering(ClusterMixin, BaseEstimator):
    """Cluster faces by identity: DA-Net embedding, DBSCAN, merging, reciprocal links.

    Fits a :class:`DANetEmbedder` on ``X`` (supervised when ``y`` is given,
    label-free otherwise, or with a given trained ``network`` for people it
    has never seen), embeds ``X`` through its own density graph and clusters
    the embedding with skdanet's clustering rule
    (:class:`skdanet.cluster.ClusteringRule`): query expansion, DBSCAN at a
    tight radius for pure pieces, merging of pieces whose mean embeddings
    are close, then links between clusters whose faces share their
    k-reciprocal neighbourhoods. The radii derive from the one stored with the
    network (``network_.config["eps"]``), so most users never tune them.

    The embedder's parameters are the clusterer's own (flat), so that a grid
    search reads ``{"k": [...], "tau": [...]}`` and a trained network is
    passed as ``network=``.

    Read more in the :ref:`User Guide <clusterer>`.

    Parameters
    ----------
    eps : float or "auto", default="auto"
        DBSCAN (link) radius in the network's space (unit vectors, Euclidean
        distance). "auto" uses the network's radius as set to ``X``
        (``radius_``; its link radius, 0.05 tighter, when merging), lowered
        in steps of 0.025 while at that radius some cluster grows abruptly:
        past a radius that shrinks as the number of faces grows,
        single-linkage DBSCAN chains different people into one giant
        cluster (``eps_`` is the radius used).
    merge_eps : float, "auto" or None, default="auto"
        Radius between the unit-norm mean embeddings of two DBSCAN clusters
        under which they are merged. A mean averages out the one odd photo
        that would bridge two people, so merging recovers a person's split
        pieces without the bridges a looser link radius brings. "auto": for
        a network whose radius is the loss's boundary (label-free training,
        ``network_.config["eps_source"] == "loss"``), merge at that radius
        after linking 0.05 tighter; a merged cluster that grows abruptly is
        merged again at a lower radius, the others keep it (see
        ``min_merge_eps_``). For a radius calibrated on held-out labelled
        people (``"calibrated"``), no merging: calibration already picked
        the tight end of the radii that cluster well, and DBSCAN links at
        it. None: no merging (the paper's pipeline).
    jaccard_eps : float or None, default=0.45
        Reciprocal links: after merging, two clusters are joined when a kNN
        pair of their faces is within 1.05 times the network's radius and
        the Jaccard distance between the two faces' k-reciprocal
        neighbourhoods (the faces among each one's 20 nearest that count it
        among theirs, smoothed over its 5 nearest; read from the kNN graph,
        with no radius of its own) is at most ``jaccard_eps``. It brings
        back a person's odd photo that lies beyond the link radius yet whose
        neighbourhood is the person's, while a stranger who is merely close
        shares too little of it. None: no links.
    min_samples : int, default=1
        DBSCAN's ``min_samples``. 1 keeps people with a single photo as
        clusters of their own instead of noise.
    dbscan_algorithm : {"auto", "exact", "knn"}, default="auto"
        ``"exact"``: DBSCAN over all pairs of faces, in row blocks (the
        clusters of :class:`sklearn.cluster.DBSCAN`, in O(n) memory, O(n^2)
        time).
        ``"knn"``: DBSCAN over the pairs of the kNN graph the embedding was
        computed on, O(n k) time and memory; the same clusters whenever a
        face's ``eps``-neighbours in the embedding are among its ``k``
        nearest raw neighbours. ``"auto"``: exact up to 30,000 faces, knn
        above.
    query_expansion : int, default=4
        Before clustering, each face's embedding is replaced by the
        unit-norm weighted mean of itself and its ``query_expansion`` most
        similar kNN neighbours (weights: cosine similarity cubed), so the
        photos of one person move together. Radii (``eps``, ``merge_eps``
        and the network's) are given in the network's space and carried
        over to the expanded space as the radius under which the same share
        of kNN pairs falls; ``eps_``, ``merge_eps_`` and ``embedding_`` are
        in the expanded space. Label-free training re-labels the same way.
        0: cluster the embedding as it is.
    k, tau, chain_threshold, max_chain_length, hidden_size, n_components, \
n_gcn_layers, chain_network, n_epochs, batch_size, max_epoch_steps, inference_batch_size, \
learning_rate, weight_decay, pair_margin, pair_scale, validation_fraction, n_iter_no_change, \
n_rounds, network, graph_method, n_probe, device, n_jobs, random_state, verbose
        As in :class:`DANetEmbedder`.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster of each face (consecutive from 0; -1 is noise, only possible
        with ``min_samples > 1``).
    embedder_ : DANetEmbedder
        The fitted embedder.
    network_ : TrainedNetwork
        The trained (or given) network of the fitted embedder.
    embedding_ : ndarray of shape (n_samples, n_components)
        The learned embedding of ``X`` that was clustered (after query
        expansion, if any).
    radius_ : float
        The network's radius as this fit used it, in the network's space: a
        calibrated radius as stored; a loss's boundary (label-free) scaled
        by 0.95 to 1.10 as the share of faces with a close partner rises
        (most faces several photos: looser; many faces alone: tighter; see
        the :ref:`User Guide <partner_share>`). The radii below derive from it.
    eps_ : float
        The DBSCAN radius used, in the space of ``embedding_``.
    merge_eps_ : float or None
        The merge radius used, in the space of ``embedding_`` (None: no
        merging).
    min_merge_eps_ : float or None
        The lowest merge radius the guard fell back to for clusters that
        grew abruptly at ``merge_eps_`` (equal to it when none did).
    jaccard_eps_ : float or None
        The Jaccard radius of the reciprocal links used (None: no links).
    n_clusters_ : int
        Number of clusters (noise excluded).
    timings_ : dict
        Seconds per stage: the embedder's (see :class:`DANetEmbedder`),
        "kNN-pair distances", "query expansion", "DBSCAN", "merging" and
        "reciprocal links".
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Only when ``X`` had string feature names.

    See Also
    --------
    DANetEmbedder : The embedding alone, for use in a Pipeline.
    skdanet.cluster.ClusteringRule : The clustering stages.
    sklearn.cluster.DBSCAN : The clustering step of the paper.

    References
    ----------
    .. [1] S. Guo, J. Xu, D. Chen, C. Zhang, X. Wang and R. Zhao,
       "Density-Aware Feature Embedding for Face Clustering", CVPR 2020.

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
        "eps": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "merge_eps": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"}), None],
        "jaccard_eps": [Interval(Real, 0, 1, closed="both"), None],
        "min_samples": [Interval(Integral, 1, None, closed="left")],
        "dbscan_algorithm": [StrOptions({"auto", "exact", "knn"})],
        "query_expansion": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, **params):
        # The signature (below) lists every parameter, keyword-only, with its
        # default; scikit-learn's get_params / clone read it.
        bound = _init_signature().bind(self, **params)
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = _init_signature()

    def _embedder(self):
        return DANetEmbedder(**{p.name: getattr(self, p.name) for p in _EMBEDDER_PARAMETERS})

    def _rule(self):
        return ClusteringRule(query_expansion=self.query_expansion,
                              min_samples=self.min_samples, algorithm=self.dbscan_algorithm,
                              n_jobs=resolve_n_jobs(self.n_jobs))

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
            self._fit(X, y)
        return self

    def _fit(self, X, y):
        rule = self._rule()
        embedder = self._embedder()
        embedding = embedder._fit_embed(X, y, rule)
        timer = StageTimer(self.verbose, prefix="[DensityChainClustering]")
        network = embedder.network_
        result = rule.cluster(embedding, embedder.graph_.neighbors, radius=network.config["eps"],
                              calibrated=network.calibrated, eps=self.eps,
                              merge_eps=self.merge_eps, jaccard_eps=self.jaccard_eps,
                              timer=timer)
        self.embedder_ = embedder
        self.network_ = embedder.network_
        self.embedding_ = result.embedding
        self.radius_ = result.radius
        self.eps_ = result.eps
        self.merge_eps_ = result.merge_eps
        self.min_merge_eps_ = result.min_merge_eps
        self.jaccard_eps_ = result.jaccard_eps
        self.timings_ = {**embedder.timings_, **timer.timings}
        self.labels_ = result.labels
        self.n_clusters_ = len(np.unique(result.labels[result.labels >= 0]))
        # The embedder validated X; mirror what it saw, as meta-estimators do.
        self.n_features_in_ = embedder.n_features_in_
        if hasattr(embedder, "feature_names_in_"):
            self.feature_names_in_ = embedder.feature_names_in_

    def fit_predict(self, X, y=None):
        """Fit and return the cluster labels; ``y`` (identities) trains supervised.

        (scikit-learn's default ``fit_predict`` would drop ``y``.)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.fit(X, y).labels_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags
