"""Input transforms before the graph: why skdanet only L2-normalises the features.

dlib descriptors are far from centred (two different people's faces have
cosine similarity about 0.83 on average), so centring or whitening them
before the kNN graph is the first thing a practitioner tries. This measures
it: each transform is fitted on the set it is applied to (no labels), the
rows are L2-normalised after it, and then

* DBSCAN (``min_samples=1``) and Infomap on a kNN graph, each with its
  threshold tuned on the train identities (a grid of the train half's own kNN
  similarity quantiles, so that every transform gets a grid on its own
  scale), cluster the unseen identities;
* ``DensityChainClustering()`` clusters the unseen identities, label-free.

Protocol and face sets as in ``bench_quality.py`` (identities split in half,
split seeds); pairwise and BCubed F, mean ± spread over split seeds.

Usage::

    python benchmarks/bench_preprocessing.py [--sets lfw dev] [--seeds 0 1 2]
        [--data-dir ../shared/data] [--write docs/preprocessing_run.txt]
"""

import argparse
import os
import sys
import time

import numpy as np
from bench_quality import INFOMAP_K, infomap_labels, load_set
from sklearn.cluster import DBSCAN

from skdanet import DensityChainClustering
from skdanet.cluster import best_threshold
from skdanet.datasets import split_identities
from skdanet.graph import knn_graph, l2_normalize
from skdanet.metrics import clustering_report

# Quantiles of a half's kNN similarities (self excluded) tried as thresholds.
THRESHOLD_QUANTILES = np.linspace(0.30, 0.99, 24)


def centred(X):
    return l2_normalize(X - X.mean(axis=0))


def whitened(X):
    """PCA whitening over all components (eigenvalues floored for stability)."""
    Xc = X - X.mean(axis=0)
    values, vectors = np.linalg.eigh(np.cov(Xc.T))
    scale = 1 / np.sqrt(np.maximum(values, 1e-6 * values.max()))
    return l2_normalize(Xc @ vectors * scale)


TRANSFORMS = {"L2-normalised (skdanet)": l2_normalize, "centred": centred,
              "PCA-whitened": whitened}


def threshold_grid(knn):
    """Cosine thresholds from the kNN similarities' quantiles, tight (high) first."""
    return np.quantile(knn[0][:, 1:], THRESHOLD_QUANTILES)[::-1]


def tuned_on_train(cluster, train, ytr, test):
    """``cluster(X, knn, threshold)`` tuned on the train half, applied to the other;
    ``train`` and ``test`` are each half's ``(X, knn)``."""
    value, _ = best_threshold(lambda v: cluster(*train, v), threshold_grid(train[1]), ytr)
    return cluster(*test, value)


def dbscan_at(X, knn, threshold):
    return DBSCAN(eps=np.sqrt(max(2 - 2 * threshold, 0.0)), min_samples=1).fit_predict(X)


def infomap_at(X, knn, threshold):
    return infomap_labels(X, threshold, knn)


def run_seed(X, y, seed):
    tr, te = split_identities(y, test_size=0.5, random_state=seed)
    rows = {}
    for name, transform in TRANSFORMS.items():
        Xtr, Xte = transform(X[tr]), transform(X[te])
        # Each half's kNN graph, built once: Infomap's edges and both grids.
        train, test = (Xtr, knn_graph(Xtr, INFOMAP_K)), (Xte, knn_graph(Xte, INFOMAP_K))
        methods = {"DBSCAN raw": lambda: tuned_on_train(dbscan_at, train, y[tr], test),
                   "Infomap raw": lambda: tuned_on_train(infomap_at, train, y[tr], test),
                   "DA-Net label-free": lambda: DensityChainClustering(
                       random_state=seed).fit_predict(Xte)}
        for method, run in methods.items():
            report = clustering_report(y[te], run())
            rows[(name, method)] = (report["pairwise_f"], report["bcubed_f"])
    return rows


def table_lines(name, per_seed):
    lines = [f"{name} ({len(per_seed)} split seeds)",
             f"{'input':<26}{'method':<20}{'pair F':>18}{'BCubed F':>18}"]
    for key in per_seed[0]:
        v = np.array([r[key] for r in per_seed])
        cells = "".join(f"{m:>10.4f} ± {s:.4f}" for m, s in zip(v.mean(0), v.std(0)))
        lines.append(f"{key[0]:<26}{key[1]:<20}{cells}")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sets", nargs="+", default=["lfw", "dev"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "shared", "data"))
    p.add_argument("--write", help="also write the tables to this file")
    args = p.parse_args(argv)
    try:
        import infomap  # noqa: F401
    except ImportError:
        p.error("needs infomap: pip install -e '.[benchmarks]'")
    lines = []
    for name in args.sets:
        data = load_set(name, args.data_dir)
        if data is None:
            print(f"# {name}: not found in {args.data_dir}, skipped", file=sys.stderr)
            continue
        X, y = l2_normalize(np.asarray(data[0], dtype=np.float64)), data[1]
        per_seed = []
        for seed in args.seeds:
            t = time.perf_counter()
            per_seed.append(run_seed(X, y, seed))
            print(f"# {name}: split seed {seed} done in {time.perf_counter() - t:.0f} s",
                  file=sys.stderr, flush=True)
        lines += table_lines(name, per_seed) + [""]
    print("\n".join(lines))
    if args.write:
        with open(args.write, "w") as f:
            f.write("\n".join(lines))


if __name__ == "__main__":
    main()
