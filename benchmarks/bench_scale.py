"""Scale benchmark: clustering make_face_like sets of 10K to 1M faces with a trained network.

A network is trained once on a separate labelled face-like set (other people,
same feature space), then each size is clustered end to end (kNN graph,
density and chains, clique network, chain network, DBSCAN) in its own process,
so that peak RSS is that size's own. Side by side, in the same run: DBSCAN on
the raw features over the same kNN pairs (radius tuned on the training set),
and scikit-learn's DBSCAN and HDBSCAN on the raw features where they finish
within --baseline-timeout seconds.

Targets (2 cores): 1M faces in <= 10 min and <= 8 GB peak RSS;
scaling exponent of total time between 100K and 1M <= 1.15; BCubed F at 1M
no worse than at 100K by more than 0.02.

Usage:
    python benchmarks/bench_scale.py [--sizes 10000 100000 300000 1000000]
    python benchmarks/bench_scale.py --calibration   # make_face_like vs LFW statistics
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

STAGES = ["kNN graph", "density and chains", "clique network", "chain network",
          "query expansion", "DBSCAN", "merging"]
TRAIN_FACES = 20_000
N_JOBS = 2


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def faces(n, random_state):
    from skdanet.datasets import make_face_like

    return make_face_like(n, random_state=random_state)


def train(path, n_train, verbose):
    """Train on ``n_train`` faces of other people; save the network; tune raw eps."""
    from skdanet import DANetEmbedder
    from skdanet.cluster import RAW_EPS_GRID, best_threshold, graph_dbscan
    from skdanet.metrics import mean_f_score

    X, y = faces(n_train, random_state=12345)
    t = time.perf_counter()
    emb = DANetEmbedder(n_jobs=N_JOBS, random_state=0, verbose=verbose).fit(X, y)
    seconds = time.perf_counter() - t
    emb.network_.save(path)
    # Raw DBSCAN radius: best mean of pairwise and BCubed F on the training faces.
    neighbors = emb.graph_.neighbors
    raw_eps, _ = best_threshold(lambda eps: graph_dbscan(emb.reference_, neighbors, eps),
                                RAW_EPS_GRID, y)
    info = {"train_seconds": seconds, "epochs": len(emb.history_), "raw_eps": raw_eps,
            "eps": emb.network_.config["eps"], "finch_level": None}
    try:
        c, _ = finch_partitions(emb.reference_, neighbors[:, 0])
        info["finch_level"] = max(range(c.shape[1]), key=lambda lv: mean_f_score(y, c[:, lv]))
    except ImportError:
        pass
    return info


def scores(y, labels):
    from skdanet.metrics import bcubed_f_score, pairwise_f_score

    return {"pair_f": pairwise_f_score(y, labels), "bcubed_f": bcubed_f_score(y, labels),
            "clusters": len(np.unique(labels))}


def run_danet(n, network_path, raw_eps):
    from skdanet import DensityChainClustering, TrainedNetwork
    from skdanet.cluster import graph_dbscan, percolation_safe_eps

    X, y = faces(n, random_state=0)
    rss_data = peak_rss_gb()
    net = TrainedNetwork.load(network_path)
    t = time.perf_counter()
    model = DensityChainClustering(network=net, n_jobs=N_JOBS, random_state=0).fit(X)
    total = time.perf_counter() - t
    out = {"n": n, "total": total, "rss_peak": peak_rss_gb(), "rss_data": rss_data,
           "eps": model.eps_, "merge_eps": model.merge_eps_,
           "min_merge_eps": model.min_merge_eps_,
           **model.timings_, **scores(y, model.labels_)}
    # One stage (no merging): guarded DBSCAN at the calibrated radius, same embedding.
    neighbors = model.embedder_.graph_.neighbors
    # merge_eps_ ("auto") is the network's calibrated radius carried into the
    # space of embedding_ (query expansion), where one-stage DBSCAN runs too.
    one_eps = percolation_safe_eps(model.embedding_, neighbors, model.merge_eps_)
    one = scores(y, graph_dbscan(model.embedding_, neighbors, one_eps))
    out.update(one_stage_eps=one_eps, one_stage_pair_f=one["pair_f"],
               one_stage_bcubed_f=one["bcubed_f"])
    # Raw-feature baseline over the same kNN pairs (O(n k), any size).
    t = time.perf_counter()
    emb = model.embedder_
    raw_labels = graph_dbscan(emb.reference_, emb.graph_.neighbors, raw_eps)
    out["raw_knn_dbscan"] = {"seconds": time.perf_counter() - t + emb.timings_["kNN graph"],
                             **scores(y, raw_labels)}
    return out


def finch_partitions(X, first_neighbor):
    """FINCH's hierarchy of partitions (finch-clust, optional), from our first neighbours."""
    from finch import FINCH

    c, num_clust, _ = FINCH(X, initial_rank=first_neighbor, distance="cosine",
                            ann_threshold=10**9, verbose=False, random_state=0)
    return c, num_clust


def run_finch(n, level):
    """FINCH at the partition level that was best on the training faces."""
    from skdanet.graph import knn_graph

    X, y = faces(n, random_state=0)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    t = time.perf_counter()
    _, idx = knn_graph(X, 1, n_jobs=N_JOBS)
    c, _ = finch_partitions(X, idx[:, 1])
    labels = c[:, min(level, c.shape[1] - 1)]
    return {"seconds": time.perf_counter() - t, "rss_peak": peak_rss_gb(), **scores(y, labels)}


def run_sklearn(n, method, raw_eps):
    from sklearn.cluster import DBSCAN, HDBSCAN

    X, y = faces(n, random_state=0)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    t = time.perf_counter()
    if method == "dbscan":
        labels = DBSCAN(eps=raw_eps, min_samples=1, n_jobs=N_JOBS).fit_predict(X)
    else:
        labels = HDBSCAN(min_cluster_size=2, n_jobs=N_JOBS).fit_predict(X)
        # HDBSCAN's noise points are people with one photo: singletons.
        noise = labels < 0
        labels[noise] = labels.max() + 1 + np.arange(noise.sum())
    return {"seconds": time.perf_counter() - t, "rss_peak": peak_rss_gb(), **scores(y, labels)}


def child(args):
    if args.child == "danet":
        out = run_danet(args.n, args.network, args.raw_eps)
    elif args.child == "finch":
        out = run_finch(args.n, int(args.raw_eps))
    else:
        out = run_sklearn(args.n, args.child, args.raw_eps)
    print(json.dumps(out))


def spawn(kind, n, network, raw_eps, timeout=None):
    cmd = [sys.executable, __file__, "--child", kind, "--n", str(n), "--network", network,
           "--raw-eps", str(raw_eps)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def calibration():
    """make_face_like with LFW's counts vs the bundled LFW features."""
    from skdanet.datasets import face_set_statistics, load_lfw_features, make_face_like

    X, y = load_lfw_features(return_X_y=True)
    lfw = face_set_statistics(X, y)
    fake_X, fake_y = make_face_like(13_233, 5_749, random_state=0)
    ours = face_set_statistics(fake_X, fake_y)
    print(f"{'statistic':>16} {'LFW':>8} {'face_like':>10}")
    for key in lfw:
        print(f"{key:>16} {lfw[key]:>8.3f} {ours[key]:>10.3f}")
    print(f"{'largest':>16} {np.bincount(y).max():>8} {np.bincount(fake_y).max():>10}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+",
                   default=[10_000, 100_000, 300_000, 1_000_000])
    p.add_argument("--baseline-timeout", type=float, default=1800.0,
                   help="seconds allowed to sklearn DBSCAN / HDBSCAN per size")
    p.add_argument("--baseline-max-n", type=int, default=1_000_000,
                   help="skip sklearn baselines above this size (say so in the table)")
    p.add_argument("--train-faces", type=int, default=TRAIN_FACES)
    p.add_argument("--calibration", action="store_true")
    p.add_argument("--verbose", type=int, default=0)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--network", help=argparse.SUPPRESS)
    p.add_argument("--raw-eps", type=float, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child(a)
    if a.calibration:
        return calibration()

    with tempfile.TemporaryDirectory() as tmp:
        network = os.path.join(tmp, "network.npz")
        info = train(network, a.train_faces, a.verbose)
        print(f"trained on {a.train_faces} face-like faces of other people: "
              f"{info['train_seconds']:.0f} s, {info['epochs']} epochs, "
              f"eps {info['eps']:.3f}; tuned on them: raw DBSCAN eps {info['raw_eps']:.3f}, "
              f"FINCH level {info['finch_level']}")
        print(f"n_jobs={N_JOBS}, 128-d make_face_like (n/5 people), one process per size\n")
        cols = ["n", *STAGES, "total", "rss_peak", "pair_f", "bcubed_f", "clusters", "eps",
                "merge_eps", "min_merge_eps", "one_stage_pair_f", "one_stage_bcubed_f"]
        print("DA-Net (trained network) + DBSCAN + merging, seconds per stage, peak RSS in GB; "
              "one_stage_*: DBSCAN alone (merge_eps=None) on the same embedding; "
              "min_merge_eps: lowest radius the merge guard fell back to")
        print("".join(f"{c[:13]:>14}" for c in cols), flush=True)
        rows, baselines = [], []
        for n in a.sizes:
            row = spawn("danet", n, network, info["raw_eps"])
            rows.append(row)
            print("".join(f"{row[c]:>14.3f}" if isinstance(row[c], float) else f"{row[c]:>14}"
                          for c in cols), flush=True)
        # Baselines after every DA-Net row: the slow ones may take the rest of the run.
        for n, row in zip(a.sizes, rows):
            base = {"n": n, "raw kNN DBSCAN": row["raw_knn_dbscan"]}
            for kind in ("finch", "dbscan", "hdbscan"):
                if kind == "finch" and info["finch_level"] is None:
                    base[kind] = "finch-clust not installed"
                    continue
                if n > a.baseline_max_n:
                    base[kind] = "not run"
                    continue
                param = info["finch_level"] if kind == "finch" else info["raw_eps"]
                base[kind] = spawn(kind, n, network, param, a.baseline_timeout) \
                    or f"> {a.baseline_timeout:.0f} s"
            baselines.append(base)
        print("\nRaw-feature baselines (same run): seconds / pairwise F / BCubed F / clusters")
        for base in baselines:
            cells = []
            for kind in ("raw kNN DBSCAN", "finch", "dbscan", "hdbscan"):
                b = base[kind]
                cells.append(f"{kind}: " + (f"{b['seconds']:.1f} s / {b['pair_f']:.4f} / "
                                            f"{b['bcubed_f']:.4f} / {b['clusters']}"
                                            if isinstance(b, dict) else b))
            print(f"n={base['n']:>8}  " + "  |  ".join(cells), flush=True)
        by_n = {r["n"]: r for r in rows}
        if 100_000 in by_n and 1_000_000 in by_n:
            exponent = np.log(by_n[1_000_000]["total"] / by_n[100_000]["total"]) / np.log(10)
            drop = by_n[100_000]["bcubed_f"] - by_n[1_000_000]["bcubed_f"]
            print(f"\nscaling exponent of total time, 100K -> 1M: {exponent:.3f}; "
                  f"BCubed F drop 100K -> 1M: {drop:+.4f}")


if __name__ == "__main__":
    main()
