"""Graph-core benchmark: seconds and peak RSS per stage.

Each size runs in its own process so that peak RSS is that size's own.
Targets: the whole graph core on 1M x 128 in <= 5 min and <= 6 GB peak;
density + chains + cliques <= 15% of the kNN time.

Usage: python benchmarks/bench_graph.py [--sizes 10000 100000 1000000]
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def one_size(n, k, method):
    from skdanet.datasets import make_face_like
    from skdanet.graph import (
        NeighborIndex,
        chain_parents,
        density,
        density_chains,
        density_rank,
        knn_graph,
        otsu_threshold,
        pruned_cliques,
        tie_break_key,
    )

    X = make_face_like(n, random_state=0)[0]
    out = {"n": n, "rss_data": peak_rss_gb()}
    t = time.perf_counter()
    index = NeighborIndex(X, method=method, random_state=0, n_jobs=2)
    out["index"] = time.perf_counter() - t
    out["method"] = index.method
    t = time.perf_counter()
    sims, idx = knn_graph(X, k, normalize=False, index=index)
    out["knn_query"] = time.perf_counter() - t
    # Recall@k of the search on 1000 sampled faces, against exact search.
    sample = np.random.default_rng(1).choice(n, min(n, 1000), replace=False)
    _, exact = NeighborIndex(X, method="exact").query(X[sample], k, self_indices=sample)[:2]
    out["recall"] = float(np.mean([len(set(a) & set(b)) / k
                                   for a, b in zip(idx[sample, 1:], exact)]))
    out["knn"] = out["index"] + out["knn_query"]
    out["rss_knn"] = peak_rss_gb()
    t = time.perf_counter()
    tau = otsu_threshold(sims[:, 1:])
    rho = density(sims)
    rank = density_rank(rho, tie_break_key(X))
    out["density"] = time.perf_counter() - t
    t = time.perf_counter()
    parent, _ = chain_parents(sims, idx, rank, tau)
    density_chains(parent, 4)
    out["chains"] = time.perf_counter() - t
    t = time.perf_counter()
    pruned_cliques(sims, idx, tau)
    out["cliques"] = time.perf_counter() - t
    out["rss_peak"] = peak_rss_gb()
    out["total"] = out["knn"] + out["density"] + out["chains"] + out["cliques"]
    out["rest_share"] = (out["density"] + out["chains"] + out["cliques"]) / out["knn"]
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--k", type=int, default=30)
    p.add_argument("--method", default="auto", choices=["auto", "exact", "ivf", "hnsw"])
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(one_size(a.child, a.k, a.method)))
        return
    cols = ["n", "method", "index", "knn_query", "recall", "density", "chains", "cliques", "total",
            "rest_share", "rss_peak"]
    print(f"k={a.k}, make_face_like 128-d float32, n_jobs=2")
    print("".join(f"{c:>12}" for c in cols))
    for n in a.sizes:
        r = subprocess.run([sys.executable, __file__, "--child", str(n), "--k", str(a.k),
                            "--method", a.method],
                           capture_output=True, text=True, check=True)
        row = json.loads(r.stdout.strip().splitlines()[-1])
        print("".join(f"{row[c]:>12.3f}" if isinstance(row[c], float) else f"{row[c]:>12}"
                      for c in cols), flush=True)
    print("seconds per stage; recall = recall@k vs exact search (1000 faces); "
          "rest_share = (density+chains+cliques)/kNN; rss_peak in GB")


if __name__ == "__main__":
    main()
