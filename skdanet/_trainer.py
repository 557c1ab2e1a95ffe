"""The training loop of DANetEmbedder: supervised, label-free, early stopping.

Glue between the graph arrays, the torch modules and the loss; the estimator
calls :func:`train_network` and receives a :class:`TrainedNetwork`.
"""

import copy
import time
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.cluster import DBSCAN

from ._averaging import ExponentialWeightAverage
from ._batching import chain_slots, reference_clique_tensors
from ._chain import chain_roots
from ._clique import clique_mask
from ._expansion import DEFAULT_N_EXPANSION, expand_embedding
from ._graph_dbscan import knn_edge_distances
from ._merge import cluster_means, link_radius
from ._network import TrainedNetwork
from ._nn import DANet
from ._progress import EpochTable
from ._training import neighbourhood_batches, pair_loss
from .datasets import split_identities
from .metrics import bcubed_f_score, pairwise_f_score

# Identities needed before a held-out identity split is worth making.
_MIN_IDENTITIES_FOR_VALIDATION = 10
# Held-out faces used per evaluation (the score only steers early stopping).
_MAX_VALIDATION_FACES = 5000
# DBSCAN radii searched when calibrating eps on held-out identities.
_EPS_GRID = np.round(np.arange(0.20, 1.001, 0.025), 3)
_EPS_TOLERANCE = 0.02
# Label-free training: half-life of the weight average, in epochs.
_AVERAGE_HALF_LIFE_EPOCHS = 4


def embed_reference_nodes(module, reference, knn_indices, chains, mask, nodes, *, dtype,
                          device, batch=2048):
    """Embeddings of reference nodes through the training graph (differentiable)."""
    out = []
    for start in range(0, len(nodes), batch):
        part = nodes[start : start + batch]
        distinct, slots, smask = chain_slots(chains[part])
        members, mmask = reference_clique_tensors(distinct, reference, knn_indices, mask,
                                                  dtype=dtype, device=device,
                                                  centre_only=not module.clique.reads_neighbours)
        phi = module.clique(members, mmask)
        target = torch.as_tensor(reference[part], dtype=dtype, device=device)
        out.append(module.embed_chains(phi, slots.to(device), smask.to(device), target))
    return torch.cat(out) if out else torch.empty(0)


def calibrate_eps(Z, labels):
    """DBSCAN radius (min_samples=1) for the learned space, from labelled faces.

    Scored by the mean of pairwise and BCubed F, the two metrics users read.
    The score falls off a cliff on the loose side (one false link merges two
    people, and the number of such bridges grows with the number of faces
    clustered) and degrades slowly on the tight side, while the held-out set
    is smaller than the sets users cluster. So the smallest radius whose score
    is within ``_EPS_TOLERANCE`` of the best is returned, not the argmax.

    Returns
    -------
    eps, score : float, float
        The radius and the best score.
    """
    scores = []
    for eps in _EPS_GRID:
        pred = DBSCAN(eps=eps, min_samples=1).fit_predict(Z)
        scores.append(0.5 * (pairwise_f_score(labels, pred) + bcubed_f_score(labels, pred)))
    scores = np.array(scores)
    best = scores.max()
    eps = _EPS_GRID[np.flatnonzero(scores >= best - _EPS_TOLERANCE)[0]]
    return float(eps), float(best)


@contextmanager
def deterministic_torch(n_jobs):
    """Deterministic torch algorithms and the requested thread count, restored after.

    With several threads some CPU kernels (index accumulation in backward) sum
    in a scheduling-dependent order; deterministic mode fixes that, so the
    same random_state gives the same bits.
    """
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    # None means 1 (scikit-learn's convention), also so that results do not
    # depend on how many threads torch would pick on this machine.
    torch.set_num_threads(1 if n_jobs is None else int(n_jobs))
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)


def anchor_parents(graph):
    """Chain parents kept for label-free pseudo-labels: only the confident steps.

    A tree of parent steps is transitive, so a single step across two people
    joins them; at the clique threshold ``tau`` (the Otsu split of the kNN
    similarities) that happens often (LFW, split seed 0: pairwise precision
    of the trees 0.76). Steps are kept only at or above the mean similarity
    of the kNN pairs above ``tau`` -- the typical similarity of a same-person
    neighbour, on the extractor's own scale.
    """
    sims = graph.knn_sims[:, 1:]
    upper = sims[sims >= graph.tau]
    threshold = max(float(upper.mean()) if upper.size else graph.tau, graph.stop_threshold)
    return np.where(graph.parent_sim >= threshold, graph.parent, -1)


def loss_boundary(pair_margin):
    """Euclidean radius between unit vectors at the loss's cosine margin.

    The label-free default radius: DensityChainClustering's merge radius,
    with its link radius :func:`~skdanet._merge.link_radius` below it.
    """
    return float(np.sqrt(2 - 2 * pair_margin))


def _identity_codes(y):
    return np.unique(y, return_inverse=True)[1].ravel().astype(np.int64)


def _check_finite_loss(loss, epoch):
    if not torch.isfinite(loss):
        raise ValueError(
            f"The training loss became {loss.item()} at epoch {epoch}. Likely causes: a "
            "learning_rate too large for these features (try 10x smaller), or features "
            "with extreme values. Training was stopped; the estimator is left unfitted."
        )


def train_network(reference, graph, y, *, estimator, seed, device):
    """Train DA-Net on the graph of ``reference``.

    Parameters
    ----------
    reference : ndarray of shape (n, d), L2-normalised
    graph : DensityGraph
    y : ndarray of shape (n,) or None
        Identity labels; None trains label-free on pseudo-labels.
    estimator : DANetEmbedder
        Source of the hyper-parameters.
    seed : int
    device : torch.device

    Returns
    -------
    network : TrainedNetwork
    history : list of dict
    """
    est = estimator
    config = {
        "in_features": int(reference.shape[1]),
        "hidden_size": int(est.hidden_size),
        "n_components": int(est.n_components or reference.shape[1]),
        "n_gcn_layers": int(est.n_gcn_layers),
        "chain_network": est.chain_network,
        "pair_margin": float(est.pair_margin),
        "pair_scale": float(est.pair_scale),
        "eps": loss_boundary(est.pair_margin),
    }
    rng = np.random.default_rng(seed)
    # Module initialisation draws from torch's global generator: fork it so the
    # user's global RNG state is left exactly as it was.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        module = DANet(config["in_features"], config["hidden_size"], config["n_components"],
                       config["n_gcn_layers"], config["chain_network"]).to(device)
    with deterministic_torch(est.n_jobs):
        trainer = _Trainer(module, reference, graph, est, rng, device)
        if y is not None:
            eps = trainer.fit_supervised(_identity_codes(y))
        else:
            trainer.fit_label_free()
            eps = None  # the loss's boundary, set above
    if eps is not None:
        config["eps"] = eps
    return TrainedNetwork.from_module(trainer.module, config), trainer.history


class _Trainer:
    def __init__(self, module, reference, graph, est, rng, device):
        self.module = module
        self.reference = reference.astype(np.float32, copy=False)
        self.graph = graph
        self.mask = clique_mask(graph.knn_sims, graph.tau)
        self.est = est
        self.rng = rng
        self.device = device
        self.history = []
        self.table = EpochTable(est.verbose)
        self.optimizer = torch.optim.Adam(module.parameters(), lr=est.learning_rate,
                                          weight_decay=est.weight_decay)
        self.average = None  # an ExponentialWeightAverage, updated after each step

    def embed(self, nodes):
        self.module.eval()
        with torch.no_grad():
            z = embed_reference_nodes(self.module, self.reference, self.graph.knn_indices,
                                      self.graph.chains, self.mask, nodes,
                                      dtype=torch.float32, device=self.device)
        return z.cpu().numpy().astype(np.float64)

    def run_epoch(self, train_nodes, labels, epoch, relation=None):
        self.module.train()
        est = self.est
        labels_t = torch.as_tensor(labels, device=self.device)
        total, count = 0.0, 0
        for nodes in neighbourhood_batches(train_nodes, self.graph.knn_indices, self.rng,
                                           batch_size=est.batch_size, per_seed=7):
            if len(nodes) < 2:
                continue
            z = embed_reference_nodes(self.module, self.reference, self.graph.knn_indices,
                                      self.graph.chains, self.mask, nodes,
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
    def fit_supervised(self, codes):
        est = self.est
        n_identities = codes.max() + 1
        if n_identities >= _MIN_IDENTITIES_FOR_VALIDATION:
            train_nodes, valid_nodes = split_identities(
                codes, test_size=est.validation_fraction, random_state=self.rng.integers(2**31))
            valid_nodes = self._at_most_validation_faces(valid_nodes)
        else:
            train_nodes, valid_nodes = np.arange(len(codes)), None
        best_score, best_state, best_eps, stale = -np.inf, None, None, 0
        for epoch in range(1, est.n_epochs + 1):
            start = time.perf_counter()
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
            entry["dur"] = time.perf_counter() - start
            self.log(**entry)
            if valid_nodes is not None and stale >= est.n_iter_no_change:
                break
        if best_state is not None:
            self.module.load_state_dict(best_state)
        return best_eps

    # -- label-free ---------------------------------------------------------
    def _pseudo_pair_relation(self, labels, Z=None):
        """Which pairs of a batch to pull together and which to learn from at all.

        Returns a function of the batch's nodes giving ``(same, known)``,
        boolean matrices for :func:`~skdanet._training.pair_loss`.
        Same pseudo-label: pulled together. Different pseudo-labels but raw
        similarity above the clique threshold: the pseudo-labels may have
        split one person, so the pair is left out rather than pushed apart.
        Given the current embedding ``Z``, the unit-norm means of the
        pseudo-label clusters decide too, at the two radii of
        DensityChainClustering: clusters within the link radius of each other
        are pulled together as one person; between the link and the merge
        radius, their pairs are left out: merging joins such pieces, mostly
        of one person but not always, and a wrong positive is learnt and
        spreads (the two-stage clusters at these radii as pseudo-labels: LFW
        split seed 1, pairwise F 0.86). Direct neighbours only, not their
        transitive closure: single linkage over the means of a poor early
        embedding can chain everybody into one cluster.
        """
        tau = self.graph.tau
        merge_eps = loss_boundary(self.est.pair_margin)
        pull_eps = link_radius(merge_eps)
        means = None
        if Z is not None:
            means = torch.as_tensor(cluster_means(Z, labels)[0], device=self.device)

        def relation(nodes):
            F_ = self.reference[nodes]
            pushable = torch.as_tensor(F_ @ F_.T, device=self.device) < tau
            same = torch.as_tensor(labels[nodes][:, None] == labels[nodes][None, :],
                                   device=self.device)
            if means is not None:
                m = means[torch.as_tensor(labels[nodes], device=self.device)]
                apart = torch.cdist(m, m)
                same |= apart <= pull_eps
                pushable &= apart > merge_eps
            return same, same | pushable

        return relation

    def fit_label_free(self):
        """Pseudo-labels from density chains on the raw features, refined over rounds.

        Round 1: each face's label is the density peak its chain climbs to
        through confident parent steps only (:func:`anchor_parents`; LFW
        split seeds 0-2: pairwise precision 0.999 / 0.987 / 0.999 of these
        trees, against 0.76 / 0.45 / 0.84 through every step above the
        chain threshold). Later rounds: :meth:`_refined_pseudo_labels`, DBSCAN
        on the query-expanded embedding at a radius calibrated against the
        round-1 trees -- deliberately tight, the trees being pure but
        incomplete, so the next labels stay pure.
        Pairs of pseudo-label clusters whose mean embeddings lie close are
        pulled together or left out (:meth:`_pseudo_pair_relation`) rather
        than pushed apart (pairwise / BCubed F of the default clustering, LFW
        split seeds 0-2 and 3-5, before query expansion and weight averaging:
        0.974 / 0.949 and 0.985 / 0.947, against 0.974 / 0.934 and
        0.981 / 0.936 when every raw-dissimilar pair of two pseudo-labels is
        pushed apart).

        The embedding that re-labels, and the network returned, use the
        weights averaged over the last epochs
        (:class:`~skdanet._averaging.ExponentialWeightAverage`): learnt from
        partly wrong labels, the last steps' weights each follow their batches.

        Calibrates nothing: the radius stored with the network is the loss's own
        boundary, ``sqrt(2 - 2 * pair_margin)``. Calibrating it against the
        incomplete trees would pick a radius that is too tight (LFW: 0.60
        against 0.775; pairwise / BCubed F 0.91 / 0.82 against 0.97 / 0.94,
        three split seeds).
        """
        est = self.est
        nodes = np.arange(len(self.reference))
        steps_per_epoch = max(1.0, len(nodes) / est.batch_size)
        self.average = ExponentialWeightAverage(
            self.module, half_life=_AVERAGE_HALF_LIFE_EPOCHS * steps_per_epoch)
        anchors = _identity_codes(chain_roots(anchor_parents(self.graph)))
        labels, relation = anchors, self._pseudo_pair_relation(anchors)
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
            relation = self._pseudo_pair_relation(labels, Z)
        self.module.load_state_dict(self.average.state_dict())

    def _refined_pseudo_labels(self, Z, anchors):
        """Pseudo-labels for the next round: DBSCAN on the query-expanded ``Z``.

        Query expansion (:func:`~skdanet._expansion.expand_embedding`, over
        the raw kNN graph) pulls a face's odd photo towards its neighbours,
        so the tight radius calibrated against the round-1 ``anchors`` keeps
        more of each person together at the same purity. Default clustering,
        pairwise / BCubed F, LFW split seeds 0-2: 0.977 / 0.955 against
        0.976 / 0.952 re-labelling from ``Z`` itself; on the generated
        ``make_face_like(8000)`` sets (data seeds 1-4) BCubed F rose by
        0.009 to 0.016 on every one.

        Returns
        -------
        labels : ndarray of int64
        eps, score : float
            The calibrated radius (in the expanded space) and its score.
        """
        neighbors = self.graph.knn_indices[:, 1:]
        expanded = expand_embedding(Z, neighbors, knn_edge_distances(Z, neighbors),
                                    DEFAULT_N_EXPANSION)
        sample = self._at_most_validation_faces(np.arange(len(Z)))
        eps, score = calibrate_eps(expanded[sample], anchors[sample])
        labels = DBSCAN(eps=eps, min_samples=1).fit_predict(expanded).astype(np.int64)
        return labels, eps, score
