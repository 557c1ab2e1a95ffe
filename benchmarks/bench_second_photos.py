"""Label-free clustering of sets where few people have a second photo, or few people.

Label-free training learns from the confident steps of the density chains,
found above the Otsu split of the kNN similarities. Where hardly anybody has
a second photo, the similarities show no same-person mode, the split falls
among strangers, and those steps join strangers; the chain anchors then keep
only the steps that stand out from each face's strangers
(``DensityGraph.stands_out``). Few steps stand out either where a few people
have many photos each (a face's farthest searched neighbour is its own
person); those sets are told apart by strangers lying far beyond the search
(``searched_neighbours_are_one_person``), and in them the pseudo-labels' pairs
are pushed apart, face by face, below a split between a face's own person and
a far stranger (``stranger_split``), not below the Otsu split, which falls
inside the person's photos; where hardly anybody has a second photo, pairs
are pushed apart unless they stand out. This sweeps the share of faces with
a second photo down to none, and the number of people down to two, on dlib
features and on ArcFace-like ones (another extractor's similarity scale),
and compares

* ``DensityChainClustering()`` label-free, as shipped;
* the same with the standing-out check alone (without the gap test);
* the same with every confident step kept (the anchors without either);
* the same pushing apart below the Otsu split in every set (without either
  push rule);
* DBSCAN (``min_samples=1``) on the raw features, its radius tuned on other
  people of the same source (LFW: people with several photos not drawn into
  the set; generated faces: a set drawn with another seed).

Face sets: the LFW people with one photo, plus every photo of M people drawn
from those with several; generated faces (``make_face_like``, 4,000 faces)
with more and more people; the LFW people with the most photos, alone and
among 300 people with one photo; generated faces of a few people, and of 150
people whose photo counts run from hundreds down to one (a few big people
among many small ones); ArcFace-like features (512-d, same-person cosine
0.6, strangers near 0) of a few people, of many people with ten photos each
and of strangers. Pairwise and BCubed F (pairwise F is undefined where
nobody has a second photo: shown as -), mean over draw seeds.

A second table gives both statistics on the sets where people do have
second photos, where the check must not fire: the unseen halves of
``bench_quality.py``'s face sets (LFW, the in-the-wild set from
``--data-dir`` when present, generated faces) over its split seeds, and
larger generated sets. A third gives the gap of generated crowds of
strangers of growing size, where it must stay below the threshold.

Usage::

    python benchmarks/bench_second_photos.py [--seeds 0 1] [--split-seeds 0 1 2 3 4 5 6 7]
        [--data-dir ../shared/data] [--write docs/second_photos_run.txt]
"""

import argparse
import contextlib
import io
import os
import sys
import time

import numpy as np
from bench_quality import TITLES, load_set
from sklearn.cluster import DBSCAN

import skdanet.model._trainer as trainer
from skdanet import DensityChainClustering
from skdanet.cluster import best_threshold
from skdanet.datasets import load_lfw_features, make_face_like, split_identities
from skdanet.graph import build_density_graph, l2_normalize
from skdanet.metrics import bcubed_f_score, pairwise_f_score

LFW_EXTRA_PEOPLE = (0, 50, 100, 1000)
GENERATED_PEOPLE_SHARES = (0.8, 0.9, 1.0)
GENERATED_FACES = 4000
LFW_MOST_PHOTOGRAPHED = (2, 5)
# LFW people with at least this many photos tune the raw radius for its
# most photographed people.
LFW_MANY_PHOTOS = 20
# One-photo LFW people drawn among its most photographed (a family's photo
# library with its acquaintances).
LFW_ONE_PHOTO_AMONG_FEW = 300
# 150 people in 4,000 faces: a few people with hundreds of photos among
# many with a few, the set where the gap test passes and a face's searched
# neighbours may be its own person's or strangers.
GENERATED_FEW_PEOPLE = (5, 10, 20, 50, 150)
# (people, photos each) of the ArcFace-like sets.
ARCFACE_LIKE = ((5, 400), (20, 100), (200, 10), (2000, 1))
RAW_RADII = np.round(np.r_[np.arange(0.20, 0.601, 0.04), np.arange(0.70, 1.301, 0.1)], 2)
LARGE_GENERATED_FACES = (20_000, 200_000)
# Sizes of the generated crowds of strangers whose gap is measured.
CROWD_SIZES = (4_000, 20_000, 100_000)


@contextlib.contextmanager
def trainer_constant(name, value):
    """The label-free trainer with its constant or function ``name`` set to
    ``value`` (an ablation), restored on the way out."""
    saved = getattr(trainer, name)
    setattr(trainer, name, value)
    try:
        yield
    finally:
        setattr(trainer, name, saved)


def every_confident_step():
    """The anchors without either test: no share of standing-out steps is too few."""
    return trainer_constant("_MIN_STANDING_OUT_SHARE", 0.0)


def standing_out_check_alone():
    """The anchors' standing-out check without the gap test: no gap is enough."""
    return trainer_constant("_MIN_STRANGER_GAP", np.inf)


def pushing_at_the_otsu_split():
    """Pseudo-label pairs pushed apart below the Otsu split of the kNN
    similarities in every set, also where the searched neighbours are one
    person (``stranger_split`` without its few-people case)."""
    return trainer_constant("stranger_split",
                            lambda graph: np.full(len(graph.knn_sims), graph.similarity_split))


def anchor_statistics(graph):
    """(share of the confident chain steps that stand out from their faces'
    strangers, ``DensityGraph.stranger_gap``): the two tests of the anchors."""
    confident = trainer.confident_steps(graph)
    share = (confident & graph.stands_out(graph.parent_sim)).sum() / max(confident.sum(), 1)
    return share, graph.stranger_gap()


def second_photo_statistics(split_seeds, data_dir):
    """(face set, [anchor_statistics]) where people have second photos."""
    for name in ("lfw", "dev", "face_like"):
        data = load_set(name, data_dir)
        if data is None:
            print(f"# {name}: not found in {data_dir}, skipped", file=sys.stderr)
            continue
        X, y = data
        stats = [anchor_statistics(build_density_graph(l2_normalize(X[split_identities(
            y, test_size=0.5, random_state=seed)[1]]), 30)) for seed in split_seeds]
        yield f"{TITLES[name]}, unseen halves", stats
    for n_faces in LARGE_GENERATED_FACES:
        yield (f"generated, {n_faces:,} faces",
               [anchor_statistics(build_density_graph(
                   l2_normalize(make_face_like(n_faces, random_state=0)[0]), 30))])


def crowd_gaps():
    """(faces, stranger gap) of generated crowds where every face is another person."""
    for n_faces in CROWD_SIZES:
        X = make_face_like(n_faces, n_identities=n_faces, random_state=0)[0]
        yield n_faces, build_density_graph(l2_normalize(X), 30).stranger_gap()


def raw_dbscan(Xn, eps):
    return DBSCAN(eps=eps, min_samples=1).fit_predict(Xn)


def tuned_radius(Xn, y):
    return best_threshold(lambda eps: raw_dbscan(Xn, eps), RAW_RADII, y)[0]


def lfw_sets(seeds):
    """(name, seed, X, y, X_tune, y_tune): one-photo people plus M drawn people."""
    X, y = load_lfw_features(return_X_y=True)
    counts = np.bincount(y)
    several = np.flatnonzero(counts >= 2)
    one = np.flatnonzero(counts[y] == 1)
    for extra in LFW_EXTRA_PEOPLE:
        for seed in seeds:
            drawn = np.random.default_rng(seed).choice(several, extra, replace=False)
            rows = np.r_[one, np.flatnonzero(np.isin(y, drawn))]
            rest = np.isin(y, np.setdiff1d(several, drawn))
            yield (f"LFW one-photo people + {extra} people", seed, X[rows], y[rows],
                   X[rest], y[rest])


def lfw_most_photographed_sets(seeds):
    """(name, seed, X, y, X_tune, y_tune): LFW's M most photographed people,
    alone and among people with one photo."""
    X, y = load_lfw_features(return_X_y=True)
    counts = np.bincount(y)
    by_photos = np.argsort(-counts, kind="stable")
    one = np.flatnonzero(counts[y] == 1)
    for m in LFW_MOST_PHOTOGRAPHED:
        rows = np.isin(y, by_photos[:m])
        rest = np.isin(y, by_photos[m:]) & (counts[y] >= LFW_MANY_PHOTOS)
        for seed in seeds:
            yield f"LFW's {m} most photographed people", seed, X[rows], y[rows], X[rest], y[rest]
    m = max(LFW_MOST_PHOTOGRAPHED)
    rest = np.isin(y, by_photos[m:]) & (counts[y] >= LFW_MANY_PHOTOS)
    for seed in seeds:
        drawn = np.random.default_rng(seed).choice(one, LFW_ONE_PHOTO_AMONG_FEW, replace=False)
        rows = np.r_[np.flatnonzero(np.isin(y, by_photos[:m])), drawn]
        yield (f"LFW's {m} most photographed + {LFW_ONE_PHOTO_AMONG_FEW} one-photo people", seed,
               X[rows], y[rows], X[rest], y[rest])


def generated_sets(seeds, people=None):
    for n_people in people or [int(GENERATED_FACES * s) for s in GENERATED_PEOPLE_SHARES]:
        for seed in seeds:
            X, y = make_face_like(GENERATED_FACES, n_identities=n_people, random_state=seed)[:2]
            Xt, yt = make_face_like(GENERATED_FACES, n_identities=n_people,
                                    random_state=1000 + seed)[:2]
            yield f"generated, {n_people} people in {GENERATED_FACES} faces", seed, X, y, Xt, yt


def generated_few_people_sets(seeds):
    return generated_sets(seeds, GENERATED_FEW_PEOPLE)


def arcface_like(n_people, photos, seed, same_person_cos=0.6, n_features=512):
    """ArcFace-like features: random person centres (strangers near cosine
    0), photos spread to a same-person cosine of ``same_person_cos``."""
    rng = np.random.default_rng(seed)
    centres = l2_normalize(rng.normal(size=(n_people, n_features)))
    y = np.repeat(np.arange(n_people), photos)
    spread = np.sqrt((1 / same_person_cos - 1) / n_features)
    return centres[y] + rng.normal(scale=spread, size=(len(y), n_features)), y


def arcface_like_sets(seeds):
    for n_people, photos in ARCFACE_LIKE:
        for seed in seeds:
            X, y = arcface_like(n_people, photos, seed)
            Xt, yt = arcface_like(n_people, photos, 1000 + seed)
            yield (f"ArcFace-like, {n_people} people x {photos} photos", seed, X, y, Xt, yt)


def scores(y, labels):
    has_pairs = np.bincount(y).max() > 1
    return (pairwise_f_score(y, labels) if has_pairs else np.nan, bcubed_f_score(y, labels),
            np.bincount(labels[labels >= 0]).max())


def measure(X, y, X_tune, y_tune, seed):
    Xn = l2_normalize(X)
    row = {"second photo": np.mean(np.bincount(y)[y] > 1)}
    # The graph label-free training builds (30 neighbours, the default k).
    graph = build_density_graph(Xn, 30)
    row["standing out"], row["gap"] = anchor_statistics(graph)
    begin = time.perf_counter()
    row["shipped"] = scores(y, DensityChainClustering(random_state=seed).fit_predict(X))
    row["seconds"] = time.perf_counter() - begin
    with standing_out_check_alone():
        row["check alone"] = scores(y, DensityChainClustering(random_state=seed).fit_predict(X))
    with every_confident_step():
        row["every step"] = scores(y, DensityChainClustering(random_state=seed).fit_predict(X))
    # Where the shipped split is the Otsu split already, it is the same fit,
    # bit for bit.
    row["Otsu push"] = row["shipped"]
    if np.any(trainer.stranger_split(graph) != graph.similarity_split):
        with pushing_at_the_otsu_split():
            row["Otsu push"] = scores(y, DensityChainClustering(random_state=seed).fit_predict(X))
    row["raw DBSCAN"] = scores(y, raw_dbscan(Xn, tuned_radius(l2_normalize(X_tune), y_tune)))
    return row


def fmt(value):
    return "     -" if np.isnan(value) else f"{value:.4f}"


def report(rows_by_set, out):
    methods = ("shipped", "check alone", "every step", "Otsu push", "raw DBSCAN")
    head = f"{'face set':50s} {'2nd photo':>9s} {'stand out':>9s} {'gap':>6s} " + " ".join(
        f"{m + ' pair/B3/largest':>28s}" for m in methods)
    print(head, file=out)
    for name, rows in rows_by_set.items():
        mean = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
        cells = []
        for m in methods:
            pair = np.array([r[m][0] for r in rows], dtype=float)
            b3 = np.mean([r[m][1] for r in rows])
            largest = np.mean([r[m][2] for r in rows])
            cells.append(f"{fmt(np.mean(pair)):>9s} {b3:.4f} {largest:8.0f}".rjust(28))
        print(f"{name:50s} {mean('second photo'):9.2f} {mean('standing out'):9.3f} "
              f"{mean('gap'):6.2f} " + " ".join(cells), file=out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--split-seeds", type=int, nargs="+", default=list(range(8)))
    p.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "shared", "data"))
    p.add_argument("--write", help="also write the tables to this file")
    args = p.parse_args(argv)
    rows_by_set = {}
    for source in (lfw_sets, generated_sets, lfw_most_photographed_sets,
                   generated_few_people_sets, arcface_like_sets):
        for name, seed, X, y, Xt, yt in source(args.seeds):
            row = measure(X, y, Xt, yt, seed)
            rows_by_set.setdefault(name, []).append(row)
            print(f"{name} (seed {seed}): shipped B3 {row['shipped'][1]:.4f}, check alone "
                  f"{row['check alone'][1]:.4f}, every step {row['every step'][1]:.4f}, "
                  f"Otsu push {row['Otsu push'][1]:.4f}, "
                  f"raw {row['raw DBSCAN'][1]:.4f}, "
                  f"{row['seconds']:.1f} s", file=sys.stderr, flush=True)
    text = io.StringIO()
    print(f"Label-free clustering where few people have a second photo, or few people; mean "
          f"over draw seeds {args.seeds}, {os.cpu_count()} cores. '2nd photo': share of faces "
          "whose person has another photo in the set; 'stand out': share of the confident chain "
          "steps that stand out from their faces' strangers; 'gap': how far a far stranger lies "
          "beyond a face's farthest searched neighbour, relative to a crowd of strangers "
          "(DensityGraph.stranger_gap; below 0.15 standing out and 2.25 gap, the anchors keep "
          "only the steps that stand out); 'check alone': the anchors with the standing-out "
          "test only; 'every step': the anchors without either test (and the push at the Otsu "
          "split); 'Otsu push': pairs of different pseudo-labels pushed apart below the Otsu "
          "split of the kNN similarities also where a test fires (trainer.stranger_split: "
          "where the gap test passes, for the faces whose searched neighbours are their own "
          "person's, the split lies halfway between the face's farthest searched neighbour and "
          "a far stranger; where the standing-out check fires, pairs are pushed apart unless "
          "they stand out; elsewhere the same fit as shipped); "
          "'largest': faces in the largest cluster.", file=text)
    report(rows_by_set, text)
    print(f"\nWhere people have second photos: share of the confident steps that stand out, "
          f"and the gap (min - max over split seeds {args.split_seeds}; one set each for the "
          "larger generated sets)", file=text)
    print(f"{'face set':66s} {'stand out':>13s} {'gap':>13s}", file=text)
    for name, stats in second_photo_statistics(args.split_seeds, args.data_dir):
        shares, gaps = np.array(stats).T
        print(f"{name:66s} {shares.min():.3f} - {shares.max():.3f} "
              f"{gaps.min():6.2f} - {gaps.max():6.2f}", file=text)
    print("\nGenerated crowds of strangers (every face another person): the gap by size",
          file=text)
    for n_faces, gap in crowd_gaps():
        print(f"{n_faces:>9,} faces  gap {gap:.2f}", file=text)
    print(text.getvalue(), end="")
    if args.write:
        with open(args.write, "w") as f:
            f.write(text.getvalue())


if __name__ == "__main__":
    main()
