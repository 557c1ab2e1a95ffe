"""The clustering rule: how skdanet turns an embedding over a kNN graph into clusters.

One object owns every stage and every radius:

1. query expansion (:func:`expand_embedding`), with radii carried into the
   expanded space (:func:`matched_radius`);
2. the network's radius, scaled to the set when it is a loss's boundary
   (:func:`partner_scaled_radius`), and the link radius: the given one, or
   that radius lowered by the percolation guard (tighter than the merge
   radius when merging);
3. DBSCAN, exact or over the kNN pairs (:func:`graph_dbscan`);
4. merging of clusters with close mean embeddings (:func:`merge_clusters`);
5. reciprocal links: clusters joined through a close pair of faces whose
   k-reciprocal neighbourhoods overlap (:func:`reciprocal_links`);

and the one DBSCAN radius that best reproduces all five on a set
(:meth:`ClusteringRule.one_stage_space`), to which
:class:`~skdanet.DANetEmbedder` scales its output.

:class:`~skdanet.DensityChainClustering` runs it whole; label-free training
re-labels with its expansion and its DBSCAN, so both cluster the same way.
"""

from dataclasses import dataclass

import numpy as np

from ..graph import EXACT_SEARCH_MAX_ROWS
from ._calibration import best_threshold
from ._dbscan import (
    exact_dbscan,
    graph_dbscan,
    graph_single_linkage,
    knn_edge_distances,
    single_linkage_from,
)
from ._expansion import expand_embedding, matched_radius
from ._guard import percolation_safe_eps
from ._merge import link_radius, merge_clusters
from ._partner import partner_scaled_radius
from ._reciprocal import DEFAULT_JACCARD_EPS, DISTANCE_GATE, reciprocal_links

DEFAULT_QUERY_EXPANSION = 4
# Multiples of the guarded radius searched for the one DBSCAN radius that best
# reproduces the whole rule: merging and reciprocal links join clusters
# through pairs up to about DISTANCE_GATE times the radius apart, and a
# label-free network links tighter than its radius before merging.
ONE_STAGE_MULTIPLES = np.round(np.arange(0.90, 1.151, 0.01), 2)


@dataclass(frozen=True)
class ExpandedSpace:
    """An embedding after query expansion, with the map of radii into it.

    Attributes
    ----------
    embedding : ndarray of shape (n_samples, n_components)
    distances : ndarray of shape (n_samples, k) or None
        Distances of the kNN pairs in ``embedding`` (None when nothing needed them).
    before : ndarray of shape (n_samples, k) or None
        The same pairs' distances before expansion (None: not expanded).
    """

    embedding: np.ndarray
    distances: np.ndarray | None
    before: np.ndarray | None = None

    def radius(self, radius):
        """A radius of the unexpanded embedding, carried into this space."""
        if self.before is None:
            return float(radius)
        return matched_radius(self.before, self.distances, float(radius))


@dataclass(frozen=True)
class ClusteringResult:
    """Clusters of an embedding and the radii that made them.

    ``eps``, ``merge_eps`` and ``min_merge_eps`` are in the expanded
    ``embedding``'s space; ``radius`` is the network's radius as the stages
    used it (:meth:`ClusteringRule.radius_on_set`), in the space before
    expansion; ``space`` is the expanded space (``embedding`` with the map of
    radii into it).
    """

    labels: np.ndarray
    embedding: np.ndarray
    eps: float
    merge_eps: float | None
    min_merge_eps: float | None
    jaccard_eps: float | None = None
    radius: float | None = None
    space: ExpandedSpace | None = None


@dataclass(frozen=True)
class ClusteringRule:
    """Query expansion, DBSCAN, merging and reciprocal links: skdanet's clustering.

    Parameters
    ----------
    query_expansion : int, default=4
        Neighbours averaged into each face's embedding before clustering (0:
        none).
    min_samples : int, default=1
        DBSCAN's ``min_samples``.
    algorithm : {"auto", "exact", "knn"}, default="auto"
        DBSCAN over all pairs (:func:`exact_dbscan`, O(n^2) time), over the
        kNN pairs (:func:`graph_dbscan`, O(n k) time), or exact up to
        ``EXACT_SEARCH_MAX_ROWS`` faces and kNN pairs above. Memory is O(n k)
        either way.
    n_jobs : int, default=1
        Workers of the stages over row blocks (distances over the kNN pairs,
        query expansion, reciprocal links): the results do not depend on it.
    """

    query_expansion: int = DEFAULT_QUERY_EXPANSION
    min_samples: int = 1
    algorithm: str = "auto"
    n_jobs: int = 1

    def on_knn_pairs(self, n_samples):
        """Whether DBSCAN runs over the kNN pairs for ``n_samples`` faces."""
        if self.algorithm == "auto":
            return n_samples > EXACT_SEARCH_MAX_ROWS
        return self.algorithm == "knn"

    @staticmethod
    def link_radius(merge_eps):
        """The link (DBSCAN) radius that goes with a merge radius."""
        return link_radius(merge_eps)

    def expand(self, Z, neighbors, distances=None):
        """Query-expand ``Z`` over ``neighbors`` (kNN lists, self excluded).

        Returns
        -------
        ExpandedSpace
        """
        if not self.query_expansion:
            return ExpandedSpace(Z, distances)
        if distances is None:
            distances = knn_edge_distances(Z, neighbors, n_jobs=self.n_jobs)
        expanded = expand_embedding(Z, neighbors, distances, self.query_expansion,
                                    n_jobs=self.n_jobs)
        return ExpandedSpace(expanded, knn_edge_distances(expanded, neighbors, n_jobs=self.n_jobs),
                             distances)

    def expand_new(self, Z, neighbors, reference):
        """Query-expand new rows ``Z`` with the ``reference`` rows ``neighbors`` index.

        Row by row the same as :meth:`expand` for a face of the reference
        whose neighbours are given the same way.
        """
        if not self.query_expansion:
            return Z
        distances = knn_edge_distances(Z, neighbors, reference, n_jobs=self.n_jobs)
        return expand_embedding(Z, neighbors, distances, self.query_expansion,
                                reference=reference, n_jobs=self.n_jobs)

    @staticmethod
    def radius_on_set(radius, distances, *, calibrated):
        """The network's ``radius`` as the stages use it on this set.

        A radius calibrated on held-out labelled people is kept; a loss's
        boundary is scaled by the set's share of faces with a close partner
        (:func:`partner_scaled_radius`), measured on ``distances``, the kNN
        pairs' distances before expansion.
        """
        if calibrated:
            return float(radius)
        return partner_scaled_radius(radius, distances)

    def one_stage_space(self, Z, neighbors, radius, *, calibrated):
        """``Z`` expanded, and the one DBSCAN radius in it that best reproduces the whole rule.

        DBSCAN (``min_samples=1``) at one radius cannot merge clusters or
        follow reciprocal links, which join clusters through pairs a little
        farther apart than the radius. So the whole rule clusters ``Z``, and
        of the guarded radius times :data:`ONE_STAGE_MULTIPLES` the one whose
        DBSCAN clusters agree best with it (mean F, the tighter of equals) is
        returned: what :class:`~skdanet.DANetEmbedder` scales its output to.
        No labels are read. With a calibrated radius whose links join
        nothing, the guarded radius itself reproduces the rule exactly.

        Returns
        -------
        space : ExpandedSpace
        eps : float
        """
        whole = self.cluster(Z, neighbors, radius=radius, calibrated=calibrated)
        space = whole.space
        guarded = self.guarded_radius(space, neighbors, whole.radius)
        radii = guarded * ONE_STAGE_MULTIPLES
        by_radius = dict(zip(radii, self._single_linkage(space, neighbors, radii)))
        eps, _ = best_threshold(by_radius.__getitem__, radii, whole.labels)
        return space, eps

    def _single_linkage(self, space, neighbors, radii):
        """DBSCAN labels (``min_samples=1``) of ``space`` at each radius.

        Over all pairs or over the kNN pairs, as :meth:`dbscan` would find
        them; over all pairs from the clusters at the smallest radius, which
        the narrow range of radii makes cheaper than a spanning tree.
        """
        if self.on_knn_pairs(len(space.embedding)):
            return graph_single_linkage(neighbors, space.distances, radii)
        return single_linkage_from(space.embedding, radii)

    @staticmethod
    def guarded_radius(space, neighbors, radius):
        """``radius`` (of the unexpanded space) carried into ``space``, lowered by the guard."""
        return percolation_safe_eps(space.embedding, neighbors, space.radius(radius),
                                    distances=space.distances)

    def dbscan(self, Z, neighbors, eps, distances=None):
        """DBSCAN labels of ``Z`` at radius ``eps`` (exact, or over the kNN pairs)."""
        if self.on_knn_pairs(len(Z)):
            return graph_dbscan(Z, neighbors, eps, self.min_samples, distances=distances)
        return exact_dbscan(Z, eps, self.min_samples)

    def cluster(self, Z, neighbors, *, radius, calibrated=False, eps="auto", merge_eps="auto",
                jaccard_eps=DEFAULT_JACCARD_EPS, timer=None):
        """Cluster the embedding ``Z`` of faces with kNN lists ``neighbors``.

        Parameters
        ----------
        Z : ndarray of shape (n_samples, n_components)
            Unit-norm embedding.
        neighbors : ndarray of int of shape (n_samples, k)
            The faces' kNN graph, self excluded.
        radius : float
            The radius of ``Z``'s space stored with the network; unless
            calibrated, scaled to the set first (:meth:`radius_on_set`), and
            every radius below derives from the result.
        calibrated : bool, default=False
            Whether ``radius`` was calibrated on held-out labelled people. A
            calibrated radius is the tight end of the range of radii that
            cluster those people well, so it links directly; a loss's
            boundary is looser, so it merges, after a tighter link stage.
        eps : float or "auto", default="auto"
            Link radius in ``Z``'s space; "auto": ``radius`` (its link radius
            when merging), lowered by the percolation guard.
        merge_eps : float, "auto" or None, default="auto"
            Merge radius in ``Z``'s space; "auto": ``radius``, guarded cluster
            by cluster, unless ``radius`` is calibrated (then no merging);
            None: no merging.
        jaccard_eps : float or None, default=0.45
            After merging, clusters are joined through kNN pairs of faces
            within ``DISTANCE_GATE`` times ``radius`` in ``Z`` whose
            reciprocal neighbourhoods are within this Jaccard distance
            (:func:`reciprocal_links`); None: no links.
        timer : callable, optional
            ``timer(stage)`` context manager (stage timings).

        Returns
        -------
        ClusteringResult
        """
        timer = timer or _no_timer
        on_knn = self.on_knn_pairs(len(Z))
        if merge_eps == "auto" and calibrated:
            merge_eps = None
        merging = merge_eps is not None
        # The kNN-pair distances, computed once for the expansion, the guard,
        # DBSCAN, the reciprocal links and the scaling of a label-free radius
        # (none needs them with a given eps, exact DBSCAN, no expansion, no
        # links and a calibrated radius).
        distances = None
        if (eps == "auto" or on_knn or self.query_expansion or jaccard_eps is not None
                or not calibrated):
            with timer("kNN-pair distances"):
                distances = knn_edge_distances(Z, neighbors, n_jobs=self.n_jobs)
        unexpanded = distances
        radius = self.radius_on_set(radius, unexpanded, calibrated=calibrated)
        with timer("query expansion") if self.query_expansion else _no_timer:
            space = self.expand(Z, neighbors, distances)
        Z, distances = space.embedding, space.distances
        with timer("DBSCAN"):
            if eps == "auto":
                start = self.link_radius(radius) if merging else radius
                eps = self.guarded_radius(space, neighbors, start)
            else:
                eps = space.radius(eps)
            labels = self.dbscan(Z, neighbors, eps, distances)
        lowest = None
        if merging:
            with timer("merging"):
                auto = merge_eps == "auto"
                merge_eps = space.radius(radius if auto else merge_eps)
                labels, radii = merge_clusters(Z, labels, merge_eps, neighbors, guard=auto)
                lowest = float(np.nanmin(radii, initial=merge_eps))
        if jaccard_eps is not None:
            jaccard_eps = float(jaccard_eps)
            with timer("reciprocal links"):
                labels = reciprocal_links(labels, neighbors, unexpanded, jaccard_eps=jaccard_eps,
                                          max_distance=DISTANCE_GATE * float(radius),
                                          n_jobs=self.n_jobs)
        return ClusteringResult(labels, Z, float(eps), merge_eps, lowest, jaccard_eps, radius,
                                space)


class _NoTimer:
    def __call__(self, stage):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_no_timer = _NoTimer()
