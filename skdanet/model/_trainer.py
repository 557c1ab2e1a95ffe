"""The training loop of DANetEmbedder: supervised, label-free, early stopping.

:func:`train_network` takes the graph, the labels (or none), the
hyper-parameters (:class:`TrainingParams`) and the clustering rule that
label-free re-labelling clusters with, and returns a :class:`TrainedNetwork`.
"""

import copy
import time
from dataclasses import dataclass, fields, replace
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.metrics.pairwise import euclidean_distances

from ..cluster import calibrate_eps, cluster_means
from ..datasets import split_identities
from ..graph import chain_roots
from ..metrics import mean_f_score
from ..utils._parallel import map_blocks, row_blocks
from ..utils._progress import EpochTable
from ._averaging import ExponentialWeightAverage
from ._embedding import embed_reference_nodes
from ._loss import margin_radius, pair_loss, resolve_pair_margin
from ._modules import DANet
from ._network import TrainedNetwork
from ._sampling import neighbourhood_batches
from ._torch_state import deterministic_torch, seeded_torch

# Identities needed before a held-out identity split is worth making.
_MIN_IDENTITIES_FOR_VALIDATION = 10
# Held-out faces used per evaluation (the score only steers early stopping).
_MAX_VALIDATION_FACES = 5000
# Label-free training: half-life of the weight average, in epochs.
_AVERAGE_HALF_LIFE_EPOCHS = 4
# Faces per block of the re-labelling embedding (a multiple of the batch of
# embed_reference_nodes, so that blocks batch the faces as one pass would).
_EMBED_BLOCK = 4096
# Neighbours that join each seed of a training batch.
_BATCH_NEIGHBOURS_PER_SEED = 7
# Share of the confident chain steps that must stand out from their faces'
# strangers for the similarity split to be trusted (anchor_parents): between
# the shares of sets where nearly everybody is a stranger and those of LFW,
# the in-the-wild set and generated faces (benchmarks/bench_second_photos.py).
_MIN_STANDING_OUT_SHARE = 0.15
# How many times farther than among strangers a far stranger must lie beyond
# the search (DensityGraph.stranger_gap) for a typical face's searched
# neighbours to be its own person's many photos: between sets of strangers
# and sets of a few people with many photos each, with dlib's and with
# ArcFace-like features (bench_second_photos.py).
_MIN_STRANGER_GAP = 2.25


@dataclass(frozen=True)
class TrainingParams:
    """The hyper-parameters of the network and of its training.

    Their meaning is documented on :class:`~skdanet.DANetEmbedder`, which
    hands them over unchanged.
    """

    hidden_size: int = 128
    n_components: int | None = None
    n_gcn_layers: int = 0
    chain_network: str = "attention"
    n_epochs: int = 30
    batch_size: int = 512
    max_epoch_steps: int | None = 16
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    pair_margin: float | str = "auto"
    pair_scale: float = 30.0
    validation_fraction: float = 0.2
    n_iter_no_change: int = 5
    n_rounds: int = 2

    @classmethod
    def names(cls):
        """The parameter names, in declaration order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_object(cls, obj):
        """The parameters read from the attributes of ``obj`` (an estimator)."""
        return cls(**{name: getattr(obj, name) for name in cls.names()})


def confident_steps(graph):
    """Which chain steps are confident: at or above a same-person neighbour's typical similarity.

    That similarity is the mean of the kNN similarities above the Otsu split,
    on the extractor's own scale, whatever clique threshold ``tau`` was chosen
    (and never below the chain stop threshold).
    """
    sims = graph.knn_sims[:, 1:]
    split = graph.similarity_split
    upper = sims[sims >= split]
    threshold = max(float(upper.mean()) if upper.size else split, graph.stop_threshold)
    return graph.parent_sim >= threshold


def anchor_parents(graph):
    """Chain parents kept for label-free pseudo-labels: only the confident steps.

    A tree of parent steps is transitive, so a single step across two people
    joins them; at the Otsu split of the kNN similarities that happens often,
    so only :func:`confident_steps` are kept.

    The split only means that where the similarities show a same-person mode.
    In a set where hardly anybody has a second photo they show none, the
    split falls among strangers' similarities, and the steps above it join
    strangers into trees that training would pull together into one giant
    cluster. That shows as few confident steps standing out from their faces'
    strangers (:func:`hardly_anybody_has_a_second_photo`): then only the
    steps that stand out are kept. Few steps stand out either where a few
    people have many photos each, since a face's farthest searched neighbour
    is then its own person; those sets are told apart by the strangers lying
    far beyond the search (:func:`searched_neighbours_are_one_person`), and
    keep every confident step.
    """
    confident = confident_steps(graph)
    if hardly_anybody_has_a_second_photo(graph):
        confident &= graph.stands_out(graph.parent_sim)
    return np.where(confident, graph.parent, -1)


def hardly_anybody_has_a_second_photo(graph):
    """Whether the Otsu split of the kNN similarities falls among strangers.

    Few confident chain steps stand out from their faces' strangers
    (:meth:`~skdanet.graph.DensityGraph.stands_out`), and not because a
    few people with many photos fill every face's search
    (:func:`searched_neighbours_are_one_person`).
    """
    confident = confident_steps(graph)
    standing_out = confident & graph.stands_out(graph.parent_sim)
    return bool(standing_out.sum() < _MIN_STANDING_OUT_SHARE * confident.sum()
                and not searched_neighbours_are_one_person(graph))


def searched_neighbours_are_one_person(graph):
    """Whether a typical face's searched neighbours are its own person's photos.

    Among strangers, distances grow smoothly from a face's nearest neighbour
    to its farthest searched one and on to a far stranger; where the
    searched neighbours are all one person's photos, a far stranger lies
    several times farther beyond them
    (:meth:`~skdanet.graph.DensityGraph.stranger_gap`).
    """
    return bool(graph.stranger_gap() > _MIN_STRANGER_GAP)


def faces_among_their_own_person(graph):
    """Which faces' searched neighbours are all their own person's photos.

    A face passes where its own stranger gap
    (:meth:`~skdanet.graph.DensityGraph.stranger_gaps`) passes the test of
    :func:`searched_neighbours_are_one_person`, or where most of its searched
    neighbours pass: a person's outlying photo (a profile, a dark shot) has a
    far farthest neighbour and fails the test by itself, but its neighbours
    are its person's photos. A face of a person with a few photos has
    strangers for neighbours, and they fail the test too.

    Returns
    -------
    own : ndarray of shape (n_samples,), dtype bool
    """
    own = graph.stranger_gaps() > _MIN_STRANGER_GAP
    return own | (own[graph.neighbors].mean(axis=1) > 0.5)


def stranger_split(graph):
    """Each face's raw similarity below which a pair of different pseudo-labels is pushed apart.

    A pair is pushed apart below the higher of its two faces' splits. The
    split is the Otsu split of the kNN similarities, between their
    same-person and their strangers' modes. Where a typical face's searched
    neighbours are all its own person's photos
    (:func:`searched_neighbours_are_one_person`) the similarities show the
    same-person mode alone, the split falls inside it, and pushing below it
    would tear each person's photos apart (most of a person's pairs lie below
    it). Strangers there lie far beyond the search, so the faces among their
    own person (:func:`faces_among_their_own_person`) get a split halfway
    between their farthest searched neighbour and a far stranger (never above
    the Otsu split). Face by face, since such sets often hold people with a
    few photos too, whose faces' searched neighbours are strangers: their
    pairs keep the Otsu split, and their near strangers, which lie above the
    halfway split, stay pushed apart (left alone, training would pull them
    into one cluster).

    Where hardly anybody has a second photo
    (:func:`hardly_anybody_has_a_second_photo`) the Otsu split falls among
    strangers, and the near strangers above it, left out of the push, would
    be pulled together into large clusters. There a pair is pushed apart
    unless it stands out from the face's strangers as a second photo would
    (:meth:`~skdanet.graph.DensityGraph.standing_out_sim`, never below the
    Otsu split): the pseudo-labels join only such pairs.

    Returns
    -------
    split : ndarray of shape (n_samples,)
    """
    split = np.full(len(graph.knn_sims), graph.similarity_split)
    if searched_neighbours_are_one_person(graph):
        own = faces_among_their_own_person(graph)
        halfway = 0.5 * (graph.background_sim[own] + graph.stranger_sim)
        split[own] = np.minimum(halfway, graph.similarity_split)
    elif hardly_anybody_has_a_second_photo(graph):
        split = np.maximum(graph.standing_out_sim(), graph.similarity_split)
    return split


def _spread(matrix, inverse):
    """``matrix[inverse[i], inverse[j]]`` for every pair ``i, j``."""
    return matrix.take(inverse, axis=0).take(inverse, axis=1)


def relabelling_rule(rule):
    """The rule label-free re-labelling clusters with: ``rule``'s expansion and DBSCAN,
    with no face left as noise (pseudo-labels cover everyone) and over the kNN
    pairs at every size, so that re-labelling costs O(n k)."""
    return replace(rule, min_samples=1, algorithm="knn")


def mean_direction(X):
    """Unit mean of L2-normalised face features: face embeddings are far from
    centred, so it identifies the extractor (zero vector if the mean is zero)."""
    # Accumulated in float64 without a float64 copy of X.
    mean = np.asarray(X).mean(axis=0, dtype=np.float64)
    norm = np.linalg.norm(mean)
    return mean / norm if norm > 0 else mean


def _identity_codes(y):
    return np.unique(y, return_inverse=True)[1].ravel().astype(np.int64)


def _check_finite_loss(loss, epoch):
    if not torch.isfinite(loss):
        raise ValueError(
            f"The training loss became {loss.item()} at epoch {epoch}. Likely causes: a "
            "learning_rate too large for these features (try 10x smaller), or features "
            "with extreme values. Training was stopped; the estimator is left unfitted."
        )


def train_network(reference, graph, y, *, params, rule, seed, device, n_jobs=1, torch_threads=1,
                  verbose=0, graph_of=None):
    """Train DA-Net on the graph of ``reference``.

    Parameters
    ----------
    reference : ndarray of shape (n, d), L2-normalised
    graph : DensityGraph
    y : ndarray of shape (n,) or None
        Identity labels; None trains label-free on pseudo-labels.
    params : TrainingParams
    rule : ClusteringRule
        How the network's embedding is clustered; label-free re-labelling
        clusters with its expansion and DBSCAN.
    seed : int
    device : torch.device
    n_jobs : int, default=1
        Workers for the re-labelling embedding of every face.
    torch_threads : int, default=1
        Torch threads of the optimisation steps. One by default: a step's
        matrices are small, and more threads make it slower
        (``benchmarks/bench_fit_time.py`` measures it).
    verbose : int, default=0
    graph_of : callable, optional
        ``graph_of(faces) -> DensityGraph``: how a set of faces becomes a
        graph (the caller's graph settings). Supervised training of a
        residual network then clusters its held-out people through their own
        graph with the whole ``rule`` and goes back to the untrained start,
        the raw features, if that clusters them better than the trained
        weights (:class:`HeldOutPeople`). Without it, the early-stopped
        weights are kept.

    Returns
    -------
    network : TrainedNetwork
    history : list of dict
    """
    est = replace(params, pair_margin=resolve_pair_margin(params.pair_margin,
                                                          supervised=y is not None))
    config = {
        "in_features": int(reference.shape[1]),
        "hidden_size": int(est.hidden_size),
        "n_components": int(est.n_components or reference.shape[1]),
        "n_gcn_layers": int(est.n_gcn_layers),
        "chain_network": est.chain_network,
        "pair_margin": float(est.pair_margin),
        "pair_scale": float(est.pair_scale),
        "eps": margin_radius(est.pair_margin),
        "eps_source": "loss",
        "feature_direction": mean_direction(reference).tolist(),
    }
    rng = np.random.default_rng(seed)
    # Module initialisation draws from torch's global generator: fork it so the
    # user's global RNG state is left exactly as it was.
    with seeded_torch(seed, device):
        module = DANet(config["in_features"], config["hidden_size"], config["n_components"],
                       config["n_gcn_layers"], config["chain_network"]).to(device)
    with deterministic_torch(torch_threads):
        trainer = _Trainer(module, reference, graph, est, rule, rng, device, verbose, n_jobs)
        if y is not None:
            eps = trainer.fit_supervised(_identity_codes(y), graph_of)
        else:
            trainer.fit_label_free()
            eps = None  # the loss's boundary, set above
    if eps is not None:
        config["eps"], config["eps_source"] = eps, "calibrated"
    return TrainedNetwork.from_module(trainer.module, config), trainer.history


def _embed_block(module, reference, chains, knn_indices, mask, nodes, device):
    # The graph's arrays travel on their own: a joblib backend that ships
    # tasks to other machines (Dask) then sends each array once, not per task.
    graph = SimpleNamespace(chains=chains, knn_indices=knn_indices)
    with torch.no_grad():
        z = embed_reference_nodes(module, reference, graph, mask, nodes, dtype=torch.float32,
                                  device=device)
    return z.cpu().numpy()


class HeldOutPeople:
    """Labelled people kept out of training, clustered as a set of unseen people is.

    Through a density graph of their own and by the whole clustering rule
    (query expansion, DBSCAN, reciprocal links) at the radius calibrated on
    them: the result a user of the network gets, which the per-epoch score
    (single-linkage DBSCAN through the training graph) only approximates.
    Where a few labelled people are all there is, training can fit them and
    make unseen people's clusters worse than the raw features'; this score
    tells.
    """

    def __init__(self, faces, codes, graph, rule, device):
        self.faces = np.asarray(faces, dtype=np.float32)
        self.codes = codes
        self.graph = graph
        self.mask = graph.clique_mask()
        self.rule = rule
        self.device = device

    def score(self, module):
        """The radius calibrated on these people in ``module``'s space, and the
        mean F score of the whole rule's clusters at it."""
        module.eval()
        Z = _embed_block(module, self.faces, self.graph.chains, self.graph.knn_indices,
                         self.mask, np.arange(len(self.faces)), self.device)
        eps, _ = calibrate_eps(Z, self.codes)
        result = self.rule.cluster(Z.astype(np.float64), self.graph.neighbors, radius=eps,
                                   calibrated=True)
        return eps, mean_f_score(self.codes, result.labels)


class _Trainer:
    def __init__(self, module, reference, graph, params, rule, rng, device, verbose, n_jobs):
        self.module = module
        self.faces = reference
        self.reference = reference.astype(np.float32, copy=False)
        self.graph = graph
        self.mask = graph.clique_mask()
        self.est = params
        self.clustering_rule = rule
        self.rule = relabelling_rule(rule)
        self.rng = rng
        self.device = device
        self.n_jobs = n_jobs
        self.history = []
        self.table = EpochTable(verbose)
        self.optimizer = torch.optim.Adam(module.parameters(), lr=params.learning_rate,
                                          weight_decay=params.weight_decay)
        self.average = None  # an ExponentialWeightAverage, updated after each step

    def embed(self, nodes):
        """The current module's embedding of reference ``nodes``, in blocks over the workers.

        float32, the precision the module computes in: the re-labelling's
        passes over the kNN pairs then move half the bytes of float64.
        """
        self.module.eval()
        blocks = row_blocks(len(nodes), _EMBED_BLOCK)
        tasks = ((self.module, self.reference, self.graph.chains, self.graph.knn_indices,
                  self.mask, nodes[start:stop], self.device) for start, stop in blocks)
        # Blocks are copied into one array as they come: holding them all and
        # concatenating would need twice the embedding's memory at the peak.
        Z = None
        for (start, stop), z in map_blocks(_embed_block, blocks, tasks, self.n_jobs):
            if Z is None:
                Z = np.empty((len(nodes), z.shape[1]), dtype=z.dtype)
            Z[start:stop] = z
        return Z

    def run_epoch(self, train_nodes, labels, epoch, relation=None):
        self.module.train()
        est = self.est
        labels_t = torch.as_tensor(labels, device=self.device)
        total, count = 0.0, 0
        for nodes in neighbourhood_batches(train_nodes, self.graph.knn_indices, self.rng,
                                           batch_size=est.batch_size,
                                           per_seed=_BATCH_NEIGHBOURS_PER_SEED,
                                           max_batches=est.max_epoch_steps):
            if len(nodes) < 2:
                continue
            z = embed_reference_nodes(self.module, self.reference, self.graph, self.mask, nodes,
                                      dtype=torch.float32, device=self.device)
            same, known = (None, None) if relation is None else relation(nodes)
            loss = pair_loss(z, labels_t[nodes], scale=est.pair_scale, margin=est.pair_margin,
                             known=known, same=same)
            _check_finite_loss(loss, epoch)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            if self.average is not None:
                self.average.update()
            total += loss.item() * len(nodes)
            count += len(nodes)
        return total / max(count, 1)

    def _at_most_validation_faces(self, nodes):
        """``nodes``, or a sorted random sample of ``_MAX_VALIDATION_FACES`` of them."""
        if len(nodes) <= _MAX_VALIDATION_FACES:
            return nodes
        return np.sort(self.rng.choice(nodes, _MAX_VALIDATION_FACES, replace=False))

    def log(self, **entry):
        self.history.append(entry)
        self.table.row(entry)

    # -- supervised ---------------------------------------------------------
    def fit_supervised(self, codes, graph_of=None):
        """Train on labelled faces; early stopping and the radius on held-out identities.

        Returns the radius calibrated on the held-out identities for the
        weights kept (None when there are too few identities to hold any out).
        """
        est = self.est
        n_identities = codes.max() + 1
        if n_identities >= _MIN_IDENTITIES_FOR_VALIDATION:
            train_nodes, valid_nodes = split_identities(
                codes, test_size=est.validation_fraction, random_state=self.rng.integers(2**31))
            valid_nodes = self._at_most_validation_faces(valid_nodes)
        else:
            train_nodes, valid_nodes = np.arange(len(codes)), None
        start = None
        if valid_nodes is not None and graph_of is not None and self.module.residual:
            faces = self.faces[valid_nodes]
            held_out = HeldOutPeople(faces, codes[valid_nodes], graph_of(faces),
                                     self.clustering_rule, self.device)
            start = (held_out, copy.deepcopy(self.module.state_dict()),
                     *held_out.score(self.module))
        best_score, best_state, best_eps, stale = -np.inf, None, None, 0
        for epoch in range(1, est.n_epochs + 1):
            begin = time.perf_counter()
            loss = self.run_epoch(train_nodes, codes, epoch)
            entry = {"round": 1, "epoch": epoch, "train_loss": loss}
            if valid_nodes is not None:
                eps, score = calibrate_eps(self.embed(valid_nodes), codes[valid_nodes])
                improved = score > best_score
                if improved:
                    best_score, best_eps, stale = score, eps, 0
                    best_state = copy.deepcopy(self.module.state_dict())
                else:
                    stale += 1
                entry.update(valid_score=score, eps=eps, best=improved)
            entry["dur"] = time.perf_counter() - begin
            self.log(**entry)
            if valid_nodes is not None and stale >= est.n_iter_no_change:
                break
        if best_state is not None:
            self.module.load_state_dict(best_state)
        if start is not None:
            best_eps = self._trained_or_start(*start, trained_eps=best_eps)
        return best_eps

    def _trained_or_start(self, held_out, start_state, start_eps, start_score, *, trained_eps):
        """Keep the trained weights, or go back to the untrained start (the raw
        features: the residual network's correction is zero there) if that
        clusters the held-out people better with the whole rule."""
        _, trained_score = held_out.score(self.module)
        keep_start = start_score > trained_score
        self.table.note(
            f"held-out people, whole clustering rule: trained {trained_score:.4f}, untrained "
            f"start (raw features) {start_score:.4f}; keeping the "
            f"{'untrained start' if keep_start else 'trained weights'}")
        if not keep_start:
            return trained_eps
        self.module.load_state_dict(start_state)
        return start_eps

    # -- label-free ---------------------------------------------------------
    def _pseudo_pair_relation(self, labels, split, Z=None):
        """Which pairs of a batch to pull together and which to learn from at all.

        Returns a function of the batch's nodes giving ``(same, known)``,
        boolean matrices for :func:`~skdanet.model._loss.pair_loss`.
        Same pseudo-label: pulled together. Different pseudo-labels but raw
        similarity above the higher of the two faces' ``split``
        (:func:`stranger_split`, on the extractor's same-person scale, not a
        given ``tau``, which only sizes cliques): the pseudo-labels may have
        split one person, so the pair is left out rather than pushed apart.
        Given the current embedding ``Z``, the unit-norm means of the
        pseudo-label clusters decide too, at the two radii of
        DensityChainClustering: clusters within the link radius of each other
        are pulled together as one person; between the link and the merge
        radius, their pairs are left out: merging joins such pieces, mostly
        of one person but not always, and a wrong positive is learnt and
        spreads. Direct neighbours only, not their
        transitive closure: single linkage over the means of a poor early
        embedding can chain everybody into one cluster.
        """
        merge_eps = margin_radius(self.est.pair_margin)
        pull_eps = self.rule.link_radius(merge_eps)
        means = None if Z is None else cluster_means(Z, labels)[0]

        def relation(nodes):
            # Decided once per pair of the batch's distinct pseudo-labels
            # (batches are neighbourhoods, so far fewer than its faces), then
            # spread to the pairs of faces.
            codes, inverse = np.unique(labels[nodes], return_inverse=True)
            pull = np.eye(len(codes), dtype=bool)
            push = ~pull
            if means is not None:
                apart = euclidean_distances(means[codes])
                pull |= apart <= pull_eps
                push &= apart > merge_eps
            F_ = self.reference[nodes]
            same = _spread(pull, inverse)
            known = _spread(push, inverse)
            known &= F_ @ F_.T < np.maximum.outer(split[nodes], split[nodes])
            known |= same
            return (torch.as_tensor(same, device=self.device),
                    torch.as_tensor(known, device=self.device))

        return relation

    def fit_label_free(self):
        """Pseudo-labels from density chains on the raw features, refined over rounds.

        Round 1: each face's label is the density peak its chain climbs to
        through confident parent steps only (:func:`anchor_parents`: these
        trees are far purer than those through every step above the chain
        threshold). Later rounds: :meth:`_refined_pseudo_labels`, DBSCAN
        on the query-expanded embedding at a radius calibrated against the
        round-1 trees -- deliberately tight, the trees being pure but
        incomplete, so the next labels stay pure.
        Pairs of pseudo-label clusters whose mean embeddings lie close are
        pulled together or left out (:meth:`_pseudo_pair_relation`) rather
        than pushed apart.

        The embedding that re-labels, and the network returned, use the
        weights averaged over the last epochs
        (:class:`ExponentialWeightAverage`): learnt from
        partly wrong labels, the last steps' weights each follow their batches.

        Calibrates nothing: the radius stored with the network is the loss's own
        boundary, ``sqrt(2 - 2 * pair_margin)``: calibrated against the
        incomplete trees, a radius would come out too tight.
        """
        est = self.est
        nodes = np.arange(len(self.reference))
        steps_per_epoch = max(1.0, len(nodes) / est.batch_size)
        if est.max_epoch_steps is not None:
            steps_per_epoch = min(steps_per_epoch, est.max_epoch_steps)
        self.average = ExponentialWeightAverage(
            self.module, half_life=_AVERAGE_HALF_LIFE_EPOCHS * steps_per_epoch)
        anchors = _identity_codes(chain_roots(anchor_parents(self.graph)))
        # A property of the graph, the same every round; compared in the
        # features' precision, as a scalar split would be.
        split = stranger_split(self.graph).astype(self.reference.dtype)
        labels, relation = anchors, self._pseudo_pair_relation(anchors, split)
        for round_ in range(1, est.n_rounds + 1):
            for epoch in range(1, est.n_epochs + 1):
                start = time.perf_counter()
                loss = self.run_epoch(nodes, labels, epoch, relation=relation)
                self.log(round=round_, epoch=epoch, train_loss=loss,
                         dur=time.perf_counter() - start)
            if round_ == est.n_rounds:
                break
            # Training goes on from the module's own weights; the average
            # only looks.
            with self.average.applied():
                Z = self.embed(nodes)
            labels, eps, score = self._refined_pseudo_labels(Z, anchors)
            self.history[-1].update(valid_score=score, eps=eps)
            relation = self._pseudo_pair_relation(labels, split, Z)
        self.module.load_state_dict(self.average.state_dict())

    def _refined_pseudo_labels(self, Z, anchors):
        """Pseudo-labels for the next round: the clustering rule's DBSCAN on ``Z``.

        ``Z`` is expanded as the rule expands it (over the raw kNN graph),
        which pulls a face's odd photo towards its neighbours, so the tight
        radius calibrated against the round-1 ``anchors`` keeps more of each
        person together at the same purity.

        Returns
        -------
        labels : ndarray of int64
        eps, score : float
            The calibrated radius (in the expanded space) and its score.
        """
        neighbors = self.graph.neighbors
        space = self.rule.expand(Z, neighbors)
        sample = self._at_most_validation_faces(np.arange(len(Z)))
        eps, score = calibrate_eps(space.embedding[sample], anchors[sample])
        labels = self.rule.dbscan(space.embedding, neighbors, eps,
                                  space.distances).astype(np.int64)
        return labels, eps, score
