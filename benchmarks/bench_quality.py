"""Clustering quality on unseen people, over face sets: the results page of the docs.

Protocol, for each face set: identities split in half (seeded); every method
is tuned on the train identities only and reported on the other half:
pairwise P/R/F, BCubed P/R/F, NMI (noise as singletons throughout), number
of clusters, seconds; mean ± spread over split seeds.

Face sets: ``lfw`` (bundled), ``dev`` (the in-the-wild development set, read
from ``--data-dir``; skipped when absent) and ``face_like``
(:func:`skdanet.datasets.make_face_like`, 8,000 faces).

Rows: raw-feature baselines (DBSCAN, also at its default ``min_samples=5``
as the like-for-like baseline of the Pipeline with ``DBSCAN()``, HDBSCAN,
average-link HAC, Infomap on a kNN graph when ``infomap`` is installed,
Chinese Whispers, dlib's face clustering, on the same kNN graph),
then DA-Net supervised (trained on the train half, clustering the unseen
half through its own graph),
label-free (trained on the unseen half itself, no labels; and the same
network clustered without reciprocal links, an ablation whose seconds are
clustering only), the design card's
``Pipeline([DANetEmbedder(), DBSCAN()])`` as written (label-free), the
supervised network in a Pipeline with ``DBSCAN(eps=emb.eps_,
min_samples=1)``, and the pretrained network: on LFW and the dev set its
recipe (``train_pretrained.py``) trained on the train halves of *both* sets,
so every clustered person is unseen; on generated faces the shipped network,
which is for dlib features: it refuses them, and the page quotes why.

Usage::

    python benchmarks/bench_quality.py [--sets lfw dev face_like] [--seeds 0 1 2]
        [--methods raw label-free] [--data-dir ../shared/data] [--write docs/results.rst]

Under each table, the quality targets: DA-Net rows against B, the best raw
row per split seed and metric; the Pipeline with ``DBSCAN()`` against tuned
raw DBSCAN (both forms), beside what a perfect embedding scores when people
with fewer than five photos are noise; the Pipeline at ``eps_`` against the
clusterer with the same network. And the label-free row's strays (faces it
leaves alone whose person has other photos): their share, how often their
most similar face is another person's, and what the true clusters score with
them left alone, the ceiling of any rule that cannot place them; and its
mixed clusters: how much of what it wrongly joins is two people joined
wholesale, what its clusters score split by person, or with each
person's clusters joined (the two one-sided ceilings), and the cluster that
joins the most people.

``--write`` writes the tables (and the command that made them) as an rst page.
"""

import argparse
import os
import platform
import re
import sys
import time

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.pipeline import Pipeline

from skdanet import DANetEmbedder, DensityChainClustering, TrainedNetwork
from skdanet.cluster import RAW_EPS_GRID, best_threshold
from skdanet.datasets import load_lfw_features, make_face_like, split_identities
from skdanet.graph import knn_graph, l2_normalize
from skdanet.metrics import clustering_report

HAC_GRID = np.round(np.arange(0.03, 0.12, 0.005), 4)  # cosine distance thresholds
INFOMAP_GRID = np.round(np.arange(0.86, 0.965, 0.005), 3)  # kNN-edge cosine thresholds
INFOMAP_K = 30
DBSCAN_DEFAULTS_RAW = "DBSCAN raw, min_samples=5 (its default)"
PIPELINE_DEFAULTS = "Pipeline DANetEmbedder() + DBSCAN()"
PIPELINE_AT_EPS = "Pipeline supervised + DBSCAN(eps_, 1)"
# Per-seed entries that are not table rows (their names start with "_").
CEILING = "_ideal at min_samples=5"
STRAYS = "_label-free strays"
MIXED = "_label-free mixed clusters"
# A cluster joins two people wholesale when its second-largest person has at
# least this many photos in it; below, the others are intruders.
WHOLESALE_PHOTOS = 5
SHIPPED_REFUSED = "_shipped network refused"
# Per trained row: whether training's held-out check kept the untrained network.
UNTRAINED_KEPT = "_untrained network kept"
# Each DA-Net row's target: B + (1 - B) / share, B the best raw row.
TARGET_SHARES = {"DA-Net supervised": 3, "DA-Net label-free": 6,
                 "DA-Net pretrained recipe": 6, "DA-Net pretrained (shipped)": 6}

TITLES = {"lfw": "LFW (bundled; most people have one photo)",
          "dev": "In-the-wild dev set (2 to 30 photos a person)",
          "face_like": "Generated faces (make_face_like, 8,000 faces)"}

COLUMNS = [("pairwise_p", "pair P"), ("pairwise_r", "pair R"), ("pairwise_f", "pair F"),
           ("bcubed_p", "B3 P"), ("bcubed_r", "B3 R"), ("bcubed_f", "B3 F"), ("nmi", "NMI"),
           ("n_clusters", "clusters"), ("seconds", "seconds")]


def load_set(name, data_dir):
    if name == "lfw":
        return load_lfw_features(return_X_y=True)
    if name == "dev":
        path = os.path.join(data_dir, "celeba_dev_dlib128.npz")
        if not os.path.exists(path):
            return None
        with np.load(path, allow_pickle=False) as f:
            return f["features"], f["labels"].astype(np.int64)
    if name == "face_like":
        return make_face_like(8000, random_state=1)
    raise ValueError(f"unknown face set {name!r}")


def hac_labels(X, threshold):
    return fcluster(linkage(X, method="average", metric="cosine"), t=threshold,
                    criterion="distance")


def infomap_labels(X, threshold, knn=None):
    """Infomap (two-level, seeded) on the kNN graph's edges at or above ``threshold``."""
    from infomap import Infomap

    sims, idx = knn if knn is not None else knn_graph(X, INFOMAP_K)
    rows = np.repeat(np.arange(len(X)), sims.shape[1] - 1)
    cols, w = idx[:, 1:].ravel(), sims[:, 1:].ravel()
    keep = w >= threshold
    im = Infomap(two_level=True, silent=True, seed=1, num_trials=1)
    im.add_nodes(range(len(X)))
    for a, b, v in zip(rows[keep], cols[keep], w[keep]):
        im.add_link(int(a), int(b), float(v))
    modules = dict(im.run().modules())
    return np.array([modules.get(i, -1) for i in range(len(X))], dtype=np.int64)


def chinese_whispers_labels(X, threshold, knn=None, *, n_iter=100, seed=0):
    """Chinese Whispers (dlib's face clustering) on the kNN graph's edges at or above
    ``threshold``, weighted by cosine similarity (stronger here than dlib's
    unweighted default). Each face, in a seeded random order, takes the label
    of largest edge weight among its neighbours, for at most ``n_iter`` sweeps."""
    sims, idx = knn if knn is not None else knn_graph(X, INFOMAP_K)
    n = len(X)
    rows = np.repeat(np.arange(n), sims.shape[1] - 1)
    cols, w = idx[:, 1:].ravel(), sims[:, 1:].ravel()
    keep = w >= threshold
    # Both directions of each edge, grouped by the face they belong to.
    heads = np.concatenate([rows[keep], cols[keep]])
    tails = np.concatenate([cols[keep], rows[keep]])
    weights = np.concatenate([w[keep], w[keep]])
    order = np.argsort(heads, kind="stable")
    tails, weights = tails[order], weights[order]
    starts = np.searchsorted(heads[order], np.arange(n + 1))
    labels = np.arange(n)
    rng = np.random.RandomState(seed)
    for _ in range(n_iter):
        changed = False
        for i in rng.permutation(n):
            lo, hi = starts[i], starts[i + 1]
            if lo == hi:
                continue
            candidates, which = np.unique(labels[tails[lo:hi]], return_inverse=True)
            best = candidates[np.bincount(which, weights=weights[lo:hi]).argmax()]
            changed |= best != labels[i]
            labels[i] = best
        if not changed:
            break
    return labels


def ideal_at_min_samples(y, min_samples):
    """The best labels DBSCAN with ``min_samples`` can give, from the true ones.

    A person with fewer than ``min_samples`` photos has no core point, so
    even a perfect embedding leaves each such photo noise (a singleton):
    every other person is one cluster.
    """
    codes = np.unique(y, return_inverse=True)[1].ravel()
    few = np.bincount(codes)[codes] < min_samples
    return np.where(few, -1 - np.arange(len(y)), codes)


def stray_anatomy(Xn, y, labels):
    """What the faces a clustering leaves alone cost, and whether anything local could place them.

    A stray is a face in a cluster of its own whose person has other photos
    here. Returns the strays' share of the faces, the share of strays whose
    most similar other face (raw features, exact) is another person's, and
    what the true clustering scores with the strays left alone: the ceiling
    of any rule that cannot place them.
    """
    codes = np.unique(labels, return_inverse=True)[1].ravel()
    alone = (labels < 0) | (np.bincount(codes)[codes] == 1)
    person = np.unique(y, return_inverse=True)[1].ravel()
    stray = alone & (np.bincount(person)[person] > 1)
    _, idx = knn_graph(Xn, 1)
    nearest_other = (y[idx[:, 1]] != y)[stray]
    kept_alone = np.where(stray, -1 - np.arange(len(y)), person)
    ceiling = clustering_report(y, kept_alone)
    return {"stray_share": stray.mean(),
            "nearest_other": nearest_other.mean() if stray.any() else 0.0,
            "pairwise_f": ceiling["pairwise_f"], "bcubed_f": ceiling["bcubed_f"]}


def mixed_anatomy(y, labels):
    """What the clusters holding several people cost, beside what the split people cost.

    Returns the share of the wrongly joined pairs that lie in clusters joining
    two people wholesale (:data:`WHOLESALE_PHOTOS`), and the two one-sided
    ceilings of the clustering: every cluster split by person (no wrong
    joins; what a rule that only splits could reach) and each person's
    clusters joined, the clusters named by their majority person (no split
    people; what a rule that only joins could reach). Noise counts as
    singletons. And the cluster joining the most people: how many people, and
    how many faces it holds.
    """
    codes = np.unique(np.where(labels < 0, -1 - np.arange(len(y)), labels),
                      return_inverse=True)[1].ravel()
    person = np.unique(y, return_inverse=True)[1].ravel()
    counts = np.zeros((codes.max() + 1, person.max() + 1), dtype=np.int64)
    np.add.at(counts, (codes, person), 1)
    sizes = counts.sum(axis=1)
    wrong = (sizes ** 2 - (counts ** 2).sum(axis=1)) / 2
    second = np.sort(counts, axis=1)[:, -2] if counts.shape[1] > 1 else np.zeros_like(sizes)
    wholesale = wrong[second >= WHOLESALE_PHOTOS].sum() / wrong.sum() if wrong.any() else 0.0
    split = clustering_report(y, codes * (person.max() + 1) + person)
    joined = clustering_report(y, counts.argmax(axis=1)[codes])
    people = (counts > 0).sum(axis=1)
    most = int(np.argmax(people))
    return {"wholesale": wholesale,
            "most_people": int(people[most]), "most_people_faces": int(sizes[most]),
            "split_pairwise_f": split["pairwise_f"], "split_bcubed_f": split["bcubed_f"],
            "joined_pairwise_f": joined["pairwise_f"], "joined_bcubed_f": joined["bcubed_f"]}


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def raw_rows(Xn, y, tr, te, wanted):
    rows = {}
    # One array per half, so that Infomap's kNN graph of each is built once.
    Xtr, Xte = Xn[tr], Xn[te]

    def add(name, grid, cluster):
        if not wanted(name):
            return

        def run():
            value, _ = best_threshold(lambda v: cluster(Xtr, v), grid, y[tr])
            return cluster(Xte, value)
        labels, seconds = timed(run)
        rows[name] = {**clustering_report(y[te], labels), "seconds": seconds}

    add("DBSCAN raw", RAW_EPS_GRID, lambda X, v: DBSCAN(eps=v, min_samples=1).fit_predict(X))
    # DBSCAN's own defaults but the radius: the like-for-like baseline of
    # Pipeline([DANetEmbedder(), DBSCAN()]).
    add(DBSCAN_DEFAULTS_RAW, RAW_EPS_GRID, lambda X, v: DBSCAN(eps=v).fit_predict(X))
    add("HDBSCAN raw", np.array([2, 3, 4]),
        lambda X, v: HDBSCAN(min_cluster_size=int(v), copy=True).fit_predict(X))
    add("HAC average raw", HAC_GRID, hac_labels)
    try:
        import infomap  # noqa: F401
    except ImportError:
        print("# infomap not installed: pip install -e '.[benchmarks]'", file=sys.stderr)
    else:
        add("Infomap raw (kNN graph)", INFOMAP_GRID, on_knn_graphs(infomap_labels))
    # Chinese Whispers: what dlib and face_recognition users cluster with.
    add("Chinese Whispers raw (kNN graph)", INFOMAP_GRID,
        on_knn_graphs(chinese_whispers_labels))
    return rows


def on_knn_graphs(graph_labels):
    """``graph_labels(X, threshold, knn)`` as ``cluster(X, threshold)``, building each
    array's kNN graph once (its first call, so a row's seconds include it)."""
    graphs = {}

    def cluster(X, threshold):
        if id(X) not in graphs:  # X is a half's array, alive for the whole row
            graphs[id(X)] = knn_graph(X, INFOMAP_K)
        return graph_labels(X, threshold, graphs[id(X)])
    return cluster


def is_identity_map(network):
    """Whether a residual network's correction is zero: the untrained start,
    which supervised training keeps when it clusters the held-out people better."""
    return not any(np.any(v) for k, v in network.state.items() if k.startswith("chain.out."))


def danet_rows(X, y, tr, te, seed, wanted, pretrained_train=None):
    """DA-Net rows; ``pretrained_train``: the (X, y) the pretrained recipe trains on."""
    rows = {}

    def add(name, run):
        if wanted(name):
            labels, seconds = timed(run)
            rows[name] = {**clustering_report(y[te], labels), "seconds": seconds}

    def trained_on(name, X_labelled, y_labelled):
        net = DANetEmbedder(random_state=seed).fit(X_labelled, y_labelled).network_
        rows.setdefault(UNTRAINED_KEPT, {})[name] = is_identity_map(net)
        return net

    def supervised():
        net = trained_on("DA-Net supervised", X[tr], y[tr])
        return DensityChainClustering(network=net, random_state=seed).fit(X[te]).labels_

    def pipeline_at_eps():
        net = DANetEmbedder(random_state=seed).fit(X[tr], y[tr]).network_
        emb = DANetEmbedder(network=net)
        Z = emb.fit_transform(X[te])
        return DBSCAN(eps=emb.eps_, min_samples=1).fit_predict(Z)

    label_free = {}

    def label_free_fit():
        model = DensityChainClustering(random_state=seed).fit(X[te])
        label_free["network"] = model.network_
        label_free["labels"] = model.labels_
        return model.labels_

    def label_free_network():
        # The label-free row's network; trained here (same seed, same bits)
        # only when that row was not asked for.
        if "network" not in label_free:
            label_free_fit()
        return label_free["network"]

    add("DA-Net supervised", supervised)
    add("DA-Net label-free", label_free_fit)
    # Ablation: the same label-free network clustered without the reciprocal
    # links (its seconds: clustering only).
    add("DA-Net label-free, no reciprocal links",
        lambda: DensityChainClustering(network=label_free_network(), jaccard_eps=None)
        .fit(X[te]).labels_)
    add(PIPELINE_DEFAULTS,
        lambda: Pipeline([("danet", DANetEmbedder(random_state=seed)),
                          ("dbscan", DBSCAN())]).fit_predict(X[te]))
    add(PIPELINE_AT_EPS, pipeline_at_eps)
    if pretrained_train is not None:
        def pretrained():
            net = trained_on("DA-Net pretrained recipe", *pretrained_train)
            return DensityChainClustering(network=net).fit(X[te]).labels_
        add("DA-Net pretrained recipe", pretrained)
    elif wanted("DA-Net pretrained (shipped)"):
        # The shipped network is for dlib features: on faces of another
        # extractor it refuses to cluster, and the page says so.
        try:
            add("DA-Net pretrained (shipped)", lambda: DensityChainClustering(
                network=TrainedNetwork.pretrained("dlib128")).fit(X[te]).labels_)
        except ValueError as exc:
            if "another extractor" not in str(exc):
                raise
            rows[SHIPPED_REFUSED] = str(exc)
    if "labels" in label_free:
        Xn = l2_normalize(np.asarray(X[te], dtype=np.float64))
        rows[STRAYS] = stray_anatomy(Xn, y[te], label_free["labels"])
        rows[MIXED] = {**mixed_anatomy(y[te], label_free["labels"]), "seed": seed}
    return rows


def pretrained_training_set(name, seed, sets):
    """The train halves of both real sets (this split seed): the pretrained recipe
    evaluated on people it never saw. None for other sets."""
    if name not in ("lfw", "dev") or not all(s in sets for s in ("lfw", "dev")):
        return None
    parts, offset = [], 0
    for other in ("lfw", "dev"):
        Xo, yo = sets[other]
        tr, _ = split_identities(yo, test_size=0.5, random_state=seed)
        parts.append((Xo[tr], yo[tr] + offset))
        offset += int(yo.max()) + 1
    return np.vstack([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def run_set(name, data, seeds, wanted, sets):
    X, y = data
    Xn = l2_normalize(np.asarray(X, dtype=np.float64))
    per_seed = []
    for seed in seeds:
        tr, te = split_identities(y, test_size=0.5, random_state=seed)
        t = time.perf_counter()
        rows = raw_rows(Xn, y, tr, te, wanted)
        rows.update(danet_rows(X, y, tr, te, seed, wanted,
                               pretrained_training_set(name, seed, sets)))
        rows[CEILING] = clustering_report(y[te], ideal_at_min_samples(y[te], 5))
        per_seed.append(rows)
        print(f"# {name}: split seed {seed} done in {time.perf_counter() - t:.0f} s",
              file=sys.stderr, flush=True)
    return per_seed


def table(per_seed):
    """Rows of (method, cells): mean ± spread (std) over split seeds."""
    out = []
    for method in per_seed[0]:
        if method.startswith("_"):
            continue
        cells = []
        for key, _ in COLUMNS:
            v = np.array([r[method][key] for r in per_seed], dtype=float)
            if key in ("n_clusters", "seconds"):
                cells.append(f"{v.mean():.0f}")
            else:
                cells.append(f"{v.mean():.4f} ± {v.std():.4f}")
        out.append((method, cells))
    return out


def best_raw(per_seed, metric):
    """B: the best raw row's ``metric`` on each split seed (None without raw rows)."""
    raw = [n for n in per_seed[0] if "raw" in n and not n.startswith("_")]
    if not raw:
        return None
    return np.array([max(r[n][metric] for n in raw) for r in per_seed])


def targets(per_seed):
    """Quality targets against B, the best raw row per split seed and metric."""
    lines = []
    names = list(per_seed[0])
    for metric in ("pairwise_f", "bcubed_f"):
        B = best_raw(per_seed, metric)
        if B is None:
            continue
        for name, share in TARGET_SHARES.items():
            if name not in names:
                continue
            got = np.array([r[name][metric] for r in per_seed])
            target = B + (1 - B) / share
            lines.append(f"{name}, {metric}: {got.mean():.4f} against B + (1 - B) / {share} = "
                         f"{target.mean():.4f} (B = {B.mean():.4f}): "
                         f"{'met' if got.mean() >= target.mean() else 'not met'} in the mean, "
                         f"on {int(np.sum(got >= target))} of {len(got)} split seeds")
        lines += pipeline_targets(per_seed, metric)
    return (lines + untrained_kept_lines(per_seed) + stray_lines(per_seed) + mixed_lines(per_seed)
            + refusal_lines(per_seed))


def untrained_kept_lines(per_seed):
    """How often training's held-out check kept the untrained network, per trained row."""
    if UNTRAINED_KEPT not in per_seed[0]:
        return []
    return [(f"{name}: training's held-out check kept the untrained network (the raw "
             f"features, radius calibrated on labelled people) on "
             f"{sum(r[UNTRAINED_KEPT][name] for r in per_seed)} of {len(per_seed)} split seeds")
            for name in per_seed[0][UNTRAINED_KEPT]]


def refusal_lines(per_seed):
    """The shipped network on faces of another extractor: refused, and why."""
    refusals = [r[SHIPPED_REFUSED] for r in per_seed if SHIPPED_REFUSED in r]
    if not refusals:
        return []
    return [(f"DA-Net pretrained (shipped), for dlib features: refused these faces on "
             f"{len(refusals)} of {len(per_seed)} split seeds, so it has no row: "
             f"\"{refusals[0]}\"")]


def stray_lines(per_seed):
    """The label-free row's strays (:func:`stray_anatomy`), beside its targets."""
    best = [best_raw(per_seed, m) for m in ("pairwise_f", "bcubed_f")]
    if STRAYS not in per_seed[0] or best[0] is None:
        return []

    def mean(key):
        return np.mean([r[STRAYS][key] for r in per_seed])

    share = TARGET_SHARES["DA-Net label-free"]
    goals = [np.mean(B + (1 - B) / share) for B in best]
    return [(f"DA-Net label-free, strays (faces left alone whose person has other photos "
             f"here): {mean('stray_share'):.1%} of the faces; the most similar other face "
             f"of {mean('nearest_other'):.0%} of them is another person's (raw features). "
             f"The true clusters with the strays left alone score pairwise F "
             f"{mean('pairwise_f'):.4f} and BCubed F {mean('bcubed_f'):.4f}, against the "
             f"label-free targets {goals[0]:.4f} and {goals[1]:.4f}")]


def mixed_lines(per_seed):
    """The label-free row's mixed clusters (:func:`mixed_anatomy`), beside its targets."""
    if MIXED not in per_seed[0]:
        return []

    def mean(key):
        return np.mean([r[MIXED][key] for r in per_seed])

    worst = max((r[MIXED] for r in per_seed), key=lambda m: m["most_people"])
    median_people = np.median([r[MIXED]["most_people"] for r in per_seed])
    return [(f"DA-Net label-free, errors on each side: {mean('wholesale'):.0%} of the wrongly "
             f"joined pairs lie in clusters joining two people wholesale (the second with "
             f"{WHOLESALE_PHOTOS} or more photos there), the rest a few photos of another "
             f"person in a cluster. Its clusters split by person score pairwise F "
             f"{mean('split_pairwise_f'):.4f} and "
             f"BCubed F {mean('split_bcubed_f'):.4f}; each person's clusters joined, "
             f"{mean('joined_pairwise_f'):.4f} and {mean('joined_bcubed_f'):.4f}. "
             f"The cluster joining the most people: {worst['most_people']} people in "
             f"{worst['most_people_faces']} faces (split seed {worst['seed']}); on the median "
             f"seed, {median_people:g} people")]


def pipeline_targets(per_seed, metric):
    """The design card's Pipeline against tuned raw DBSCAN, and the one at ``eps_``
    against the clusterer with the same network (within 0.01)."""
    names = per_seed[0]

    def mean(name):
        return np.mean([r[name][metric] for r in per_seed])

    lines = []
    if all(n in names for n in (PIPELINE_DEFAULTS, "DBSCAN raw", DBSCAN_DEFAULTS_RAW)):
        got = mean(PIPELINE_DEFAULTS)
        verdicts = [f"{'met' if got >= mean(raw) else 'not met'} against {raw} "
                    f"({mean(raw):.4f})" for raw in (DBSCAN_DEFAULTS_RAW, "DBSCAN raw")]
        lines.append(f"{PIPELINE_DEFAULTS}, {metric}: {got:.4f}; at least as good as tuned "
                     f"raw DBSCAN: {'; '.join(verdicts)}. With min_samples=5 a perfect "
                     f"embedding scores {mean(CEILING):.4f} (people with fewer than five "
                     "photos are noise)")
    if all(n in names for n in (PIPELINE_AT_EPS, "DA-Net supervised")):
        gaps = np.array([r["DA-Net supervised"][metric] - r[PIPELINE_AT_EPS][metric]
                         for r in per_seed])
        side = "below" if gaps.mean() >= 0 else "above"
        lines.append(f"{PIPELINE_AT_EPS}, {metric}: {abs(gaps.mean()):.4f} {side} DA-Net "
                     f"supervised (same network; at most 0.01 below): "
                     f"{'met' if gaps.mean() <= 0.01 else 'not met'} in the mean, "
                     f"on {int(np.sum(gaps <= 0.01))} of {len(gaps)} split seeds")
    return lines


def print_table(name, per_seed):
    print(f"\n## {name} ({len(per_seed)} split seeds)")
    print(f"{'method':<40}" + "".join(f"{label:>18}" for _, label in COLUMNS))
    for method, cells in table(per_seed):
        print(f"{method:<40}" + "".join(f"{c:>18}" for c in cells))
    for line in targets(per_seed):
        print("  " + line)


def rst_text(text):
    """``text`` with each word-ending underscore escaped: ``eps_`` would be an rst reference."""
    return re.sub(r"(?<=\w)_(?!\w)", r"\\_", text)


def write_rst(path, results, argv):
    lines = [".. Written by benchmarks/bench_quality.py; do not edit by hand.", "",
             ".. _results:", "", "Results", "=======", "",
             ("Clustering people nobody trained or tuned on: each face set's identities are "
              "split in half; baselines are tuned, and supervised networks trained, on one "
              "half; every row clusters the other half. Mean ± standard deviation over split "
              "seeds. Pairwise and BCubed precision (P), recall (R) and F, NMI: noise counts "
              "as singletons in every score. ``seconds``: tuning and clustering of the "
              "unseen half (for DA-Net supervised, training included; label-free trains on "
              "the unseen half itself)."), "",
             (f"Made by ``python benchmarks/bench_quality.py {' '.join(argv)}`` on "
              f"{os.cpu_count()} CPU cores ({platform.machine()})."), ""]
    for name, per_seed in results.items():
        title = f"{TITLES.get(name, name)}, {len(per_seed)} split seeds"
        lines += [title, "-" * len(title), "", ".. list-table::", "   :header-rows: 1", "",
                  "   * - method"] + [f"     - {label}" for _, label in COLUMNS]
        for method, cells in table(per_seed):
            lines += [f"   * - {rst_text(method)}"]
            lines += [f"     - {c}" for c in cells]
        lines.append("")
        for line in targets(per_seed):
            lines.append(f"* {rst_text(line)}")
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", nargs="+", default=["lfw", "dev", "face_like"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--methods", nargs="+", help="only rows whose name contains one of these")
    p.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "shared", "data"))
    p.add_argument("--write", help="write the tables to this rst page (docs/results.rst)")
    args = p.parse_args(argv)

    def wanted(name):
        return args.methods is None or any(m.lower() in name.lower() for m in args.methods)

    sets = {name: data for name in ("lfw", "dev")
            if (data := load_set(name, args.data_dir)) is not None}
    results = {}
    for name in args.sets:
        data = sets.get(name) or load_set(name, args.data_dir)
        if data is None:
            print(f"# {name}: not found in {args.data_dir}, skipped", file=sys.stderr)
            continue
        results[name] = run_set(name, data, args.seeds, wanted, sets)
        print_table(name, results[name])
    if args.write:
        write_rst(args.write, results, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
