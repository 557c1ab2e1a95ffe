"""The density graph of a set of faces: one object that owns the graph core's data.

A :class:`DensityGraph` holds the kNN graph, the density (Eq. 2), the strict
density order, the chain parents (Eq. 3), each face's density chain and the
clique threshold (Eq. 4). It builds itself from L2-normalised faces
(:meth:`DensityGraph.build`) and places new faces in itself
(:meth:`DensityGraph.place`): their neighbours, density, first chain step and
pruned clique against the reference faces, the route ``transform`` takes.
"""

from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from ._chain import _follow, chain_parents, density_chains, query_parents
from ._clique import clique_mask, otsu_threshold
from ._density import density, density_rank, is_higher, tie_break_key
from ._ivf import N_PROBE
from ._knn import NeighborIndex, knn_graph

# Neighbours per face whose similarities give the Otsu split, whatever ``k``:
# a face's few nearest are mostly its own person's, so over a small k the split
# would rise towards same-person similarities and stop meaning the boundary.
SPLIT_NEIGHBORS = 30
# How much closer than a face's strangers a neighbour must be to stand out as a
# possible second photo of its person: at most this fraction of the face's
# background distance (1 - cos to its farthest searched neighbour).
STANDOUT_CONTRAST = 2.0
# Random pairs of faces whose similarities give a far stranger's similarity,
# and the percentile of them taken: random pairs are nearly all strangers,
# and their lower quartile stays strangers' even where two people share the
# set half and half.
STRANGER_PAIRS = 20_000
STRANGER_PERCENTILE = 25


def stranger_similarity(X, n_pairs=STRANGER_PAIRS, percentile=STRANGER_PERCENTILE):
    """A far stranger's similarity among the L2-normalised rows of ``X``.

    The ``percentile`` of the similarities of ``n_pairs`` random pairs of
    distinct rows (every pair where there are no more): nearly all strangers
    whatever the number of photos a person has. The pairs are drawn from a
    fixed seed of a private generator, so the value depends on ``X`` alone.
    NaN with fewer than two rows.
    """
    n = np.shape(X)[0]
    if n < 2:
        return float("nan")
    if n * (n - 1) // 2 <= n_pairs:
        first, second = np.triu_indices(n, k=1)
    else:
        rng = np.random.default_rng(0)
        first = rng.integers(0, n, n_pairs)
        # An offset in [1, n) never pairs a row with itself.
        second = (first + rng.integers(1, n, n_pairs)) % n
    sims = np.einsum("ij,ij->i", np.asarray(X[first], dtype=np.float64),
                     np.asarray(X[second], dtype=np.float64))
    return float(np.percentile(sims, percentile))


@dataclass
class DensityGraph:
    """The density graph of L2-normalised reference faces.

    Attributes
    ----------
    knn_sims, knn_indices : ndarray of shape (n_samples, k + 1)
        Self-first kNN graph (:func:`~skdanet.graph.knn_graph`).
    density : ndarray of shape (n_samples,)
        Eq. 2.
    tie_key : ndarray of shape (n_samples,)
        Content-based tie-break of equal densities.
    rank : ndarray of shape (n_samples,)
        Strict density order (higher is denser).
    parent : ndarray of shape (n_samples,), int64
        Next chain node of each face, -1 where its chain stops.
    parent_sim : ndarray of shape (n_samples,)
        Similarity of that step (NaN where there is none).
    chains : ndarray of shape (n_samples, width), int64
        Each face's density chain, itself first, padded with -1; ``width``
        is the longest chain's length (at most ``max_length``), so memory
        follows the chains, not the parameter.
    tau : float
        Clique threshold (Eq. 4).
    similarity_split : float
        The Otsu split of the similarities of each face's
        :data:`SPLIT_NEIGHBORS` nearest (or ``k``, if more; ``tau`` when it
        is "auto"): the extractor's own boundary between same-person and
        other pairs, kept even when ``tau`` is given, for the rules that need
        that scale and not the clique size a user chose.
    stop_threshold : float
        Chain stop threshold (Eq. 3).
    max_length : int
        The longest chain allowed (faces, the face itself included).
    background_sim : ndarray of shape (n_samples,)
        Each face's similarity to the farthest neighbour searched
        (:data:`SPLIT_NEIGHBORS`-th, or ``k``-th if more): how close the
        face's strangers come, on the extractor's own scale, whatever the
        share of people with a second photo (:meth:`stands_out`), unless
        the face's person has more photos than the search returns.
    stranger_sim : float
        A far stranger's similarity: the lower quartile of the similarities
        of random pairs of faces (:func:`stranger_similarity`). Unlike
        ``background_sim`` it stays a stranger's where a person has more
        photos than the search returns (:meth:`stranger_gap`). NaN with
        fewer than two faces.
    index : NeighborIndex or None
        The search structure over the reference faces, for :meth:`place`.
    """

    knn_sims: np.ndarray
    knn_indices: np.ndarray
    density: np.ndarray
    tie_key: np.ndarray
    rank: np.ndarray
    parent: np.ndarray
    parent_sim: np.ndarray
    chains: np.ndarray
    tau: float
    similarity_split: float
    stop_threshold: float
    max_length: int
    background_sim: np.ndarray
    stranger_sim: float
    index: NeighborIndex | None = None

    @staticmethod
    def n_neighbors_to_search(n_neighbors, n_samples):
        """Neighbours per face the kNN search returns for a graph of ``n_neighbors``:
        at least :data:`SPLIT_NEIGHBORS` (for the similarity split), at most
        ``n_samples - 1``, never fewer than ``n_neighbors``."""
        return max(n_neighbors, min(SPLIT_NEIGHBORS, n_samples - 1))

    @classmethod
    def build(cls, X, n_neighbors, *, tau="auto", stop_threshold="auto", max_length=4,
              method="auto", random_state=0, n_jobs=1, n_probe=N_PROBE, index=None, progress=None,
              stage_timer=None):
        """Run the whole graph core on the L2-normalised rows of ``X``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            L2-normalised rows.
        n_neighbors : int
        tau : float or "auto", default="auto"
            Clique threshold; "auto" is the Otsu split of the kNN similarities.
        stop_threshold : float or "auto", default="auto"
            Chain stop threshold; "auto" uses ``tau``.
        max_length : int, default=4
            Maximum chain length (nodes, the face itself included).
        method, random_state, n_jobs, n_probe
            kNN search settings, see :func:`~skdanet.graph.knn_graph`.
        index : NeighborIndex, optional
            A prebuilt index over ``X``; otherwise one is built. The search
            returns :meth:`n_neighbors_to_search` neighbours per face (more
            than ``n_neighbors`` only feed the similarity split).
        progress : callable, optional
            Progress callback of the kNN search (see :class:`NeighborIndex`).
        stage_timer : callable, optional
            ``stage_timer(name)`` returns a context manager that times the
            stage ``name``: "kNN graph", then "density and chains", so that a
            caller reports the search apart from the rest.

        Returns
        -------
        DensityGraph
        """
        stage = stage_timer or (lambda name: nullcontext())
        with stage("kNN graph"):
            if index is None:
                index = NeighborIndex(X, method=method, random_state=random_state,
                                      n_jobs=n_jobs, n_probe=n_probe, progress=progress)
            knn = knn_graph(X, cls.n_neighbors_to_search(n_neighbors, np.shape(X)[0]),
                            normalize=False, index=index)
            # The callback is not part of the graph (nor of its pickle).
            index.progress = None
        with stage("density and chains"):
            return cls._from_knn(X, knn, n_neighbors, tau, stop_threshold, max_length, index)

    @classmethod
    def _from_knn(cls, X, knn, n_neighbors, tau, stop_threshold, max_length, index):
        """The graph core past the kNN search: split, density, order, chains."""
        sims, idx = knn
        split = otsu_threshold(sims[:, 1:]) if sims.shape[1] > 1 else 0.0
        background = sims[:, -1].copy()
        sims, idx = sims[:, : n_neighbors + 1], idx[:, : n_neighbors + 1]
        if tau == "auto":
            tau = split
        if stop_threshold in ("auto", None):
            stop_threshold = tau
        rho = density(sims)
        key = tie_break_key(X)
        rank = density_rank(rho, key)
        parent, parent_sim = chain_parents(sims, idx, rank, stop_threshold)
        chains = density_chains(parent, max_length)
        chains = chains[:, : max(1, int((chains >= 0).sum(axis=1).max(initial=1)))]
        return cls(sims, idx, rho, key, rank, parent, parent_sim, chains,
                   float(tau), float(split), float(stop_threshold), int(max_length), background,
                   stranger_similarity(X), index)

    @property
    def n_neighbors(self):
        """Neighbours per face (the self column excluded)."""
        return self.knn_sims.shape[1] - 1

    @property
    def neighbors(self):
        """The kNN lists without the self column, shape (n_samples, k)."""
        return self.knn_indices[:, 1:]

    def stands_out(self, sims, contrast=STANDOUT_CONTRAST):
        """Whether each face's similarity ``sims`` to some face is closer than its strangers come.

        A second photo of a face's person lies far closer to it than the
        bulk of its neighbours; a stranger, however similar, lies about as
        far. So ``sims`` stands out where its distance ``1 - sims`` is at
        most ``1 / contrast`` of the face's background distance ``1 -
        background_sim``: a ratio, free of the extractor's similarity scale.
        NaN (no such face) never stands out.
        """
        return (1 - np.asarray(sims)) * contrast <= 1 - self.background_sim

    def standing_out_sim(self, contrast=STANDOUT_CONTRAST):
        """Each face's lowest similarity that :meth:`stands_out` from its strangers.

        A similarity below it is a stranger's as far as the face can tell.
        """
        return 1 - (1 - self.background_sim) / contrast

    def stranger_gap(self):
        """How far strangers lie beyond the search, relative to a crowd of strangers.

        The gap from a typical face's farthest searched neighbour to a far
        stranger (:attr:`stranger_sim`), in units of the spread from its
        nearest neighbour to its farthest (medians over the faces, distances
        ``1 - cos``), divided by the same ratio for faces that are all
        strangers: the order statistics of normally distributed similarities
        for this many faces and searched neighbours. So about 1 where the
        searched neighbours are strangers, whatever the number of faces, and
        several times more where they are one person's many photos, beyond
        whom the strangers lie. A ratio of distances, free of the
        extractor's similarity scale. NaN with fewer than three faces.
        """
        return float(self._gap_beyond_search(np.median(1 - self.knn_sims[:, 1]),
                                             np.median(1 - self.background_sim)))

    def stranger_gaps(self):
        """:meth:`stranger_gap` face by face: each face's own nearest and farthest neighbour.

        A set can hold both kinds of faces: those of a few people with
        hundreds of photos, whose searched neighbours are all their own
        person's, and those of people with a few photos, whose searched
        neighbours are mostly strangers. All NaN with fewer than three faces.
        """
        return self._gap_beyond_search(1 - self.knn_sims[:, 1], 1 - self.background_sim)

    def _gap_beyond_search(self, nearest, farthest):
        """The stranger gap from the nearest and the farthest searched
        neighbour's distance: infinite where they coincide, relative to a
        crowd's (:meth:`_crowd_gap`)."""
        crowd_gap = self._crowd_gap()
        spread = farthest - nearest
        beyond = 1 - self.stranger_sim - farthest
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = np.where(spread > 0, beyond / spread, np.inf)
            return gap / crowd_gap

    def _crowd_gap(self):
        """The stranger gap's ratio for a crowd of strangers of this size (NaN
        with fewer than two faces searched; zero or infinite in sets too small
        for the order statistics, where the gap is then infinite or NaN)."""
        n = len(self.knn_sims)
        searched = self.n_neighbors_to_search(self.n_neighbors, n)
        if searched < 2:
            return np.float64(np.nan)
        # Upper-tail normal quantiles of the nearest and the farthest searched
        # stranger among n, and the lower quartile of a far stranger.
        z_nearest, z_farthest = -ndtri(1 / n), -ndtri(searched / n)
        beyond = np.float64(z_farthest - ndtri(STRANGER_PERCENTILE / 100))
        with np.errstate(divide="ignore", invalid="ignore"):
            return beyond / (z_nearest - z_farthest)

    def clique_mask(self):
        """Which kNN columns belong to each face's pruned clique (Eq. 4)."""
        return clique_mask(self.knn_sims, self.tau)

    def reference_neighbours(self, start, stop):
        """:meth:`place`'s input for reference faces ``start:stop``: their own graph rows.

        A reference face is placed through its kNN row, itself excluded and
        itself as its twin, so placing the reference reproduces the graph.
        """
        k = self.n_neighbors
        return (self.knn_sims[start:stop, 1 : k + 1], self.knn_indices[start:stop, 1 : k + 1],
                np.arange(start, stop))

    def query_neighbours(self, Q):
        """Neighbours of new faces ``Q`` (L2-normalised) among the reference faces.

        Returns ``(sims, indices, twin)`` as :meth:`NeighborIndex.query`: a
        row identical to a reference face is that face (its twin).
        """
        return self.index.query(Q, self.n_neighbors)

    def place(self, Q, neighbours):
        """Density chains and pruned cliques of faces ``Q`` placed in this graph.

        Parameters
        ----------
        Q : ndarray of shape (n_queries, n_features)
            L2-normalised faces.
        neighbours : tuple (sims, indices, twin)
            Their reference neighbours (:meth:`query_neighbours` or
            :meth:`reference_neighbours`).

        Returns
        -------
        rest : ndarray of shape (n_queries, max_length - 1), int64
            The chain of each query after the query itself: reference faces,
            padded with -1.
        clique : ndarray of bool of shape (n_queries, k)
            Which neighbours belong to the query's pruned clique.
        """
        sims, idx, twin = neighbours
        # Density and order of each query against the reference (Eq. 2, 3).
        rho = density(np.concatenate([np.ones((len(Q), 1), sims.dtype), sims], axis=1))
        key = tie_break_key(Q)
        higher = is_higher(self.density[idx], self.tie_key[idx], idx,
                           rho[:, None], key[:, None], twin[:, None])
        first, _ = query_parents(sims, idx, higher, self.rank, self.stop_threshold)
        # A query's chain is itself then a reference chain: at most one longer
        # than the longest of those.
        width = min(self.max_length, self.chains.shape[1] + 1) - 1
        # The graph's own parents and the steps just found: nothing to check.
        return _follow(first, self.parent, width), sims > self.tau


def build_density_graph(X, n_neighbors, **kwargs):
    """Run the whole graph core on ``X``: :meth:`DensityGraph.build`."""
    return DensityGraph.build(X, n_neighbors, **kwargs)
