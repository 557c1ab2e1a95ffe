"""Label-free clustering of sets where few people have a second photo.

Label-free training learns from the confident steps of the density chains,
found above the Otsu split of the kNN similarities. Where hardly anybody has
a second photo, the similarities show no same-person mode, the split falls
among strangers, and those steps join strangers; the chain anchors then keep
only the steps that stand out from each face's strangers
(``DensityGraph.stands_out``). This sweeps the share of faces with a second
photo down to none and compares

* ``DensityChainClustering()`` label-free, as shipped;
* the same with every confident step kept (the anchors without the check);
* DBSCAN (``min_samples=1``) on the raw features, its radius tuned on other
  people of the same source (LFW: the people with several photos not drawn
  into the set; generated faces: a set drawn with another seed).

Face sets: the LFW people with one photo, plus every photo of M people drawn
from those with several; generated faces (``make_face_like``, 4,000 faces)
with more and more people. Pairwise and BCubed F (pairwise F is undefined
where nobody has a second photo: shown as -), mean over draw seeds.

A second table gives the share of confident steps that stand out on the sets
where people do have second photos, where the check must not fire: the unseen
halves of ``bench_quality.py``'s face sets (LFW, the in-the-wild set from
``--data-dir`` when present, generated faces) over its split seeds, and
larger generated sets.

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
RAW_RADII = np.round(np.arange(0.20, 0.601, 0.04), 2)
LARGE_GENERATED_FACES = (20_000, 200_000)


@contextlib.contextmanager
def every_confident_step():
    """The anchors without the standing-out check (an ablation)."""
    saved = trainer._MIN_STANDING_OUT_SHARE
    trainer._MIN_STANDING_OUT_SHARE = 0.0
    try:
        yield
    finally:
        trainer._MIN_STANDING_OUT_SHARE = saved


def standing_out_share(Xn):
    """Share of the confident chain steps that stand out from their faces' strangers."""
    graph = build_density_graph(Xn, 30)
    confident = trainer.confident_steps(graph)
    return (confident & graph.stands_out(graph.parent_sim)).sum() / max(confident.sum(), 1)


def second_photo_shares(split_seeds, data_dir):
    """(face set, shares): the standing-out share where people have second photos."""
    for name in ("lfw", "dev", "face_like"):
        data = load_set(name, data_dir)
        if data is None:
            print(f"# {name}: not found in {data_dir}, skipped", file=sys.stderr)
            continue
        X, y = data
        shares = [standing_out_share(l2_normalize(X[split_identities(
            y, test_size=0.5, random_state=seed)[1]])) for seed in split_seeds]
        yield f"{TITLES[name]}, unseen halves", shares
    for n_faces in LARGE_GENERATED_FACES:
        yield (f"generated, {n_faces:,} faces",
               [standing_out_share(l2_normalize(make_face_like(n_faces, random_state=0)[0]))])


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


def generated_sets(seeds):
    for share in GENERATED_PEOPLE_SHARES:
        n_people = int(GENERATED_FACES * share)
        for seed in seeds:
            X, y = make_face_like(GENERATED_FACES, n_identities=n_people, random_state=seed)[:2]
            Xt, yt = make_face_like(GENERATED_FACES, n_identities=n_people,
                                    random_state=1000 + seed)[:2]
            yield f"generated, {n_people} people in {GENERATED_FACES} faces", seed, X, y, Xt, yt


def scores(y, labels):
    has_pairs = np.bincount(y).max() > 1
    return (pairwise_f_score(y, labels) if has_pairs else np.nan, bcubed_f_score(y, labels),
            np.bincount(labels[labels >= 0]).max())


def measure(X, y, X_tune, y_tune, seed):
    Xn = l2_normalize(X)
    row = {"second photo": np.mean(np.bincount(y)[y] > 1), "standing out": standing_out_share(Xn)}
    begin = time.perf_counter()
    row["shipped"] = scores(y, DensityChainClustering(random_state=seed).fit_predict(X))
    row["seconds"] = time.perf_counter() - begin
    with every_confident_step():
        row["every step"] = scores(y, DensityChainClustering(random_state=seed).fit_predict(X))
    row["raw DBSCAN"] = scores(y, raw_dbscan(Xn, tuned_radius(l2_normalize(X_tune), y_tune)))
    return row


def fmt(value):
    return "     -" if np.isnan(value) else f"{value:.4f}"


def report(rows_by_set, out):
    methods = ("shipped", "every step", "raw DBSCAN")
    head = f"{'face set':44s} {'2nd photo':>9s} {'stand out':>9s} " + " ".join(
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
        print(f"{name:44s} {mean('second photo'):9.2f} {mean('standing out'):9.3f} "
              + " ".join(cells), file=out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--split-seeds", type=int, nargs="+", default=list(range(8)))
    p.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "shared", "data"))
    p.add_argument("--write", help="also write the tables to this file")
    args = p.parse_args(argv)
    rows_by_set = {}
    for source in (lfw_sets, generated_sets):
        for name, seed, X, y, Xt, yt in source(args.seeds):
            row = measure(X, y, Xt, yt, seed)
            rows_by_set.setdefault(name, []).append(row)
            print(f"{name} (seed {seed}): shipped B3 {row['shipped'][1]:.4f}, every step "
                  f"{row['every step'][1]:.4f}, raw {row['raw DBSCAN'][1]:.4f}, "
                  f"{row['seconds']:.1f} s", file=sys.stderr, flush=True)
    text = io.StringIO()
    print(f"Label-free clustering where few people have a second photo; mean over draw seeds "
          f"{args.seeds}, {os.cpu_count()} cores. '2nd photo': share of faces whose person has "
          "another photo in the set; 'stand out': share of the confident chain steps that stand "
          "out from their faces' strangers (below 0.15, the anchors keep only those); "
          "'largest': faces in the largest cluster.", file=text)
    report(rows_by_set, text)
    print(f"\nWhere people have second photos: share of the confident steps that stand out "
          f"(min - max over split seeds {args.split_seeds}; one set each for the larger "
          "generated sets)", file=text)
    for name, shares in second_photo_shares(args.split_seeds, args.data_dir):
        print(f"{name:66s} {min(shares):.3f} - {max(shares):.3f}", file=text)
    print(text.getvalue(), end="")
    if args.write:
        with open(args.write, "w") as f:
            f.write(text.getvalue())


if __name__ == "__main__":
    main()
