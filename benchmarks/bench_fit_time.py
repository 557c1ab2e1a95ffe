"""Seconds of a label-free fit on real faces, by worker count and by training threads.

Two tables on LFW faces drawn at random (seeded), default parameters:

1. ``DensityChainClustering().fit`` with ``n_jobs=1`` and ``n_jobs=None``
   (every core: kNN queries and embedding blocks in parallel);
2. label-free :func:`skdanet.model.train_network` alone on the same graph
   with one and with every torch thread for the optimisation steps (the
   estimators use one: this table is why).

Usage: python benchmarks/bench_fit_time.py [--n 6000] [--repeats 1]
"""

import argparse
import os
import time
import warnings

import numpy as np
import torch

from skdanet import DensityChainClustering
from skdanet.cluster import ClusteringRule
from skdanet.datasets import load_lfw_features
from skdanet.graph import DensityGraph, l2_normalize
from skdanet.model import TrainingParams, train_network


def best_seconds(run, repeats):
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=6000)
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    X, _ = load_lfw_features(return_X_y=True)
    X = X[np.random.default_rng(0).choice(len(X), args.n, replace=False)]
    cores = os.cpu_count()
    print(f"label-free fit of {args.n} LFW faces, {cores} cores, best of {args.repeats}")
    print(f"{'n_jobs':>8} {'seconds':>10}")
    for n_jobs in (1, None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seconds = best_seconds(
                lambda n_jobs=n_jobs: DensityChainClustering(random_state=0,
                                                             n_jobs=n_jobs).fit(X),
                args.repeats)
        print(f"{n_jobs!s:>8} {seconds:>10.1f}")

    reference = l2_normalize(X)
    graph = DensityGraph.build(reference, 30)
    print("\nlabel-free training alone (train_network), same graph")
    print(f"{'torch threads':>14} {'seconds':>10}")
    for threads in sorted({1, cores}):
        seconds = best_seconds(lambda threads=threads: train_network(
            reference, graph, None, params=TrainingParams(), rule=ClusteringRule(), seed=0,
            device=torch.device("cpu"), n_jobs=1, torch_threads=threads), args.repeats)
        print(f"{threads:>14} {seconds:>10.1f}")


if __name__ == "__main__":
    main()
