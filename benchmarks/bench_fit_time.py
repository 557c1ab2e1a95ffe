"""Seconds of a label-free DensityChainClustering().fit on real faces, by thread count.

Prints one row per setting: LFW faces drawn at random (seeded), default
parameters, ``n_jobs`` None (one thread) and -1 (every core).

Usage: python benchmarks/bench_fit_time.py [--n 6000] [--repeats 1]
"""

import argparse
import os
import time
import warnings

import numpy as np

from skdanet import DensityChainClustering
from skdanet.datasets import load_lfw_features


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=6000)
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    X, _ = load_lfw_features(return_X_y=True)
    rows = np.random.default_rng(0).choice(len(X), args.n, replace=False)
    print(f"label-free fit of {args.n} LFW faces, {os.cpu_count()} cores")
    print(f"{'n_jobs':>8} {'seconds (best of repeats)':>28}")
    for n_jobs in (None, -1):
        best = np.inf
        for _ in range(args.repeats):
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                DensityChainClustering(random_state=0, n_jobs=n_jobs).fit(X[rows])
            best = min(best, time.perf_counter() - t)
        print(f"{str(n_jobs):>8} {best:>28.1f}")


if __name__ == "__main__":
    main()
