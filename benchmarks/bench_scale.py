"""Scale benchmark: the default path on make_face_like sets of 10K to 1M faces.

Each run happens in its own process (peak RSS is that run's own):

- ``DensityChainClustering()`` as a new user runs it: no labels, no network,
  every core (label-free training on a bounded sample of neighbourhoods);
  with kNN recall@30 of the index against exact search on 1,000 sampled
  faces;
- the same at one size with the exact kNN graph (do the index's missing
  neighbours change the clusters?), and, at ``--probe-sizes``, with more
  inverted lists searched (``--n-probe``);
- FINCH (finch-clust), the field's parameter-free method, at its best
  partition level, on the same faces and cores; FINCH and the default
  alternate (``--finch-repeats`` runs each) and their median times are
  compared;
- a network trained once on labelled faces of other people, end to end
  (also with ``--n-probe`` lists when it is given);
- the label-free default on a Dask LocalCluster of two worker processes
  (``joblib.parallel_backend("dask")``), labels compared with the local run.

Targets (2 cores): label-free 1M in <= 15 min and <= 8 GB, BCubed F at 1M
within 0.02 of 100K, time exponent 100K -> 1M <= 1.1; at 200K <= 1.5x FINCH's
time with BCubed F >= FINCH's best level; trained network 1M <= 5 min.

Usage:
    python benchmarks/bench_scale.py [--sizes 10000 100000 200000 1000000]
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

# Inverted lists searched in the --probe-sizes runs: each face its own number
# (more where lists crowd around it); recall@30 above 0.95 at a million faces
# (benchmarks/bench_knn_engines.py).
MORE_PROBES = "auto"
STAGES = ["kNN graph", "density and chains", "training", "clique network", "chain network",
          "kNN-pair distances", "query expansion", "DBSCAN", "merging", "reciprocal links"]
TRAIN_FACES = 20_000
RECALL_QUERIES = 1000


def peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def faces(n, random_state=0):
    from skdanet.datasets import make_face_like

    return make_face_like(n, random_state=random_state)


def scores(y, labels):
    from skdanet.metrics import bcubed_f_score, pairwise_f_score

    return {"pair_f": pairwise_f_score(y, labels), "bcubed_f": bcubed_f_score(y, labels),
            "clusters": len(np.unique(labels))}


def knn_recall(reference, knn_indices, n_queries=RECALL_QUERIES):
    """Recall@k of the fitted kNN lists against exact search, on sampled faces."""
    from skdanet.graph import exact_knn

    k = knn_indices.shape[1] - 1
    rows = np.random.default_rng(0).choice(len(reference), n_queries, replace=False)
    _, exact = exact_knn(reference[rows], reference, k + 1)
    found = [len(np.intersect1d(a[1:], b)) for a, b in zip(knn_indices[rows], exact)]
    # Exact lists include the face itself; count the k others.
    wanted = [len(np.setdiff1d(b, [r])[:k]) for r, b in zip(rows, exact)]
    return float(np.sum(found) / np.sum(wanted))


def run_default(n, graph_method="auto", network=None, dask=False, n_probe=None):
    """DensityChainClustering() on n faces (label-free unless ``network``)."""
    import joblib

    from skdanet import DensityChainClustering, TrainedNetwork

    X, y = faces(n)
    rss_data = peak_rss_gb()
    params = {"random_state": 0, "graph_method": graph_method}
    if n_probe is not None:
        params["n_probe"] = n_probe
    if network is not None:
        params["network"] = TrainedNetwork.load(network)
    if dask:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster):
            t = time.perf_counter()
            with joblib.parallel_backend("dask"):
                model = DensityChainClustering(**params).fit(X)
            total = time.perf_counter() - t
    else:
        t = time.perf_counter()
        model = DensityChainClustering(**params).fit(X)
        total = time.perf_counter() - t
    emb = model.embedder_
    out = {"n": n, "total": total, "rss_peak": peak_rss_gb(), "rss_data": rss_data,
           **{stage: emb.timings_.get(stage, model.timings_.get(stage, 0.0)) for stage in STAGES},
           **scores(y, model.labels_), "labels_sha": _digest(model.labels_)}
    if not dask and graph_method == "auto":
        out["recall@30"] = knn_recall(emb.reference_, emb.graph_.knn_indices)
    return out


def _listed(seconds):
    return ", ".join(f"{s:.1f}" for s in seconds)


def _digest(labels):
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.int64).tobytes()).hexdigest()[:12]


def train(path, n_train, verbose):
    """Train a network on ``n_train`` labelled faces of other people; save it."""
    from skdanet import DANetEmbedder

    X, y = faces(n_train, random_state=12345)
    t = time.perf_counter()
    emb = DANetEmbedder(random_state=0, verbose=verbose).fit(X, y)
    emb.network_.save(path)
    return time.perf_counter() - t


def run_finch(n):
    """FINCH (finch-clust) as its authors run it: cosine, its own first neighbours
    (exact below 20,000 faces, pynndescent above); every partition level scored."""
    from finch import FINCH

    X, y = faces(n)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    t = time.perf_counter()
    c, _, _ = FINCH(X, distance="cosine", verbose=False, random_state=0)
    seconds = time.perf_counter() - t
    levels = [scores(y, c[:, lv]) for lv in range(c.shape[1])]
    best = max(range(len(levels)), key=lambda lv: levels[lv]["bcubed_f"])
    return {"seconds": seconds, "rss_peak": peak_rss_gb(), "level": best, **levels[best]}


def child(args):
    if args.child == "finch":
        out = run_finch(args.n)
    else:
        out = run_default(args.n, graph_method=args.graph_method, network=args.network,
                          dask=args.child == "dask", n_probe=args.n_probe)
    print(json.dumps(out))


def spawn(kind, n, *, network=None, graph_method="auto", n_probe=None, timeout=None):
    cmd = [sys.executable, __file__, "--child", kind, "--n", str(n),
           "--graph-method", graph_method]
    if network:
        cmd += ["--network", network]
    if n_probe is not None:
        cmd += ["--n-probe", str(n_probe)]
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


def print_rows(title, rows, cols):
    print(title)
    print("".join(f"{c[:13]:>14}" for c in cols), flush=True)
    for row in rows:
        print("".join(f"{row[c]:>14.4f}" if isinstance(row.get(c), float)
                      else f"{row.get(c, '')!s:>14}" for c in cols), flush=True)
    print()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+",
                   default=[10_000, 100_000, 200_000, 1_000_000],
                   help="label-free default at these sizes")
    p.add_argument("--exact-size", type=int, default=200_000,
                   help="also run the label-free default with the exact kNN graph here (0: no)")
    p.add_argument("--probe-sizes", type=int, nargs="*", default=[],
                   help="also run the label-free default with --n-probe lists here")
    # Default None, not MORE_PROBES: child runs parse this flag too, and one
    # that is not given it must search the estimator's default lists.
    p.add_argument("--n-probe", type=n_probe_arg, default=None,
                   help="inverted lists each face searches in the --probe-sizes runs "
                   f"(default {MORE_PROBES})")
    p.add_argument("--finch-sizes", type=int, nargs="*", default=[200_000])
    p.add_argument("--finch-repeats", type=int, default=3,
                   help="runs of FINCH and of the default, alternating, at each FINCH size")
    p.add_argument("--network-sizes", type=int, nargs="*", default=[1_000_000],
                   help="trained network (on other people) end to end at these sizes")
    p.add_argument("--dask-sizes", type=int, nargs="*", default=[100_000],
                   help="label-free default on a two-process Dask LocalCluster")
    p.add_argument("--train-faces", type=int, default=TRAIN_FACES)
    p.add_argument("--calibration", action="store_true")
    p.add_argument("--write", help="also write the printed tables to this file "
                   "(docs/scale_run.txt, included by the scale page)")
    p.add_argument("--verbose", type=int, default=0)
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--network", help=argparse.SUPPRESS)
    p.add_argument("--graph-method", default="auto", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child(a)
    if a.calibration:
        return calibration()
    if a.write:
        with open(a.write, "w") as f:
            sys.stdout = _Tee(sys.__stdout__, f)
            try:
                return run_all(a)
            finally:
                sys.stdout = sys.__stdout__
    return run_all(a)


class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for stream in self.streams:
            stream.write(text)

    def flush(self):
        for stream in self.streams:
            stream.flush()


def n_probe_arg(text):
    """``--n-probe``: an integer or "auto", as the estimators take it."""
    return text if text == "auto" else int(text)


def run_all(a):
    print(f"make_face_like (n/5 people, 128-d), {os.cpu_count()} cores, one process per run; "
          "seconds, peak RSS in GB\n")
    cols = ["n", *STAGES, "total", "rss_peak", "pair_f", "bcubed_f", "clusters", "recall@30"]
    rows = []
    for n in a.sizes:
        rows.append(spawn("default", n))
    print_rows("DensityChainClustering() label-free default (n_jobs=None: every core); "
               "recall@30 of the kNN index on 1,000 sampled faces", rows, cols)
    by_n = {r["n"]: r for r in rows}

    if a.exact_size:
        exact = spawn("default", a.exact_size, graph_method="exact")
        index = by_n.get(a.exact_size) or spawn("default", a.exact_size)
        print(f"kNN graph at {a.exact_size}: index BCubed F {index['bcubed_f']:.4f} "
              f"(recall@30 {index.get('recall@30', float('nan')):.3f}, kNN "
              f"{index['kNN graph']:.0f} s) vs exact graph {exact['bcubed_f']:.4f} "
              f"(kNN {exact['kNN graph']:.0f} s); difference "
              f"{index['bcubed_f'] - exact['bcubed_f']:+.4f}\n", flush=True)

    n_probe = a.n_probe or MORE_PROBES
    for n in a.probe_sizes:
        more = spawn("default", n, n_probe=n_probe)
        index = by_n.get(n) or spawn("default", n)
        print(f"n_probe={n_probe} at {n}: BCubed F {more['bcubed_f']:.4f} (recall@30 "
              f"{more['recall@30']:.3f}, kNN {more['kNN graph']:.0f} s, total "
              f"{more['total']:.0f} s) vs default: BCubed F {index['bcubed_f']:.4f} (recall@30 "
              f"{index['recall@30']:.3f}, kNN {index['kNN graph']:.0f} s, total "
              f"{index['total']:.0f} s); difference "
              f"{more['bcubed_f'] - index['bcubed_f']:+.4f}\n", flush=True)

    for n in a.finch_sizes:
        try:
            finch_runs = [spawn("finch", n)]
        except RuntimeError as exc:
            print(f"FINCH at {n}: not run ({str(exc).strip().splitlines()[-1]})\n")
            continue
        ours_runs = [by_n.get(n) or spawn("default", n)]
        # The machine's speed drifts between runs by more than the margins
        # compared here: both methods alternate, and the medians are compared.
        for _ in range(a.finch_repeats - 1):
            finch_runs.append(spawn("finch", n))
            ours_runs.append(spawn("default", n))
        f, ours = finch_runs[0], ours_runs[0]
        f_s = float(np.median([r["seconds"] for r in finch_runs]))
        ours_s = float(np.median([r["total"] for r in ours_runs]))
        print(f"FINCH at {n}: best level {f['level']}: pairwise F {f['pair_f']:.4f}, BCubed F "
              f"{f['bcubed_f']:.4f}, {f['clusters']} clusters, {f['rss_peak']:.2f} GB | "
              f"label-free default: pairwise F {ours['pair_f']:.4f}, BCubed F "
              f"{ours['bcubed_f']:.4f}")
        print(f"  seconds, {len(finch_runs)} runs each, alternating: FINCH "
              f"{_listed(r['seconds'] for r in finch_runs)} (median {f_s:.1f}); default "
              f"{_listed(r['total'] for r in ours_runs)} (median {ours_s:.1f}); "
              f"median ratio {ours_s / f_s:.2f}x FINCH\n", flush=True)

    if a.network_sizes:
        # With --n-probe, each size also with those lists: one configuration
        # for both the time and the recall target.
        probes = [None] + ([a.n_probe] if a.n_probe is not None else [])
        with tempfile.TemporaryDirectory() as tmp:
            network = os.path.join(tmp, "network.npz")
            seconds = train(network, a.train_faces, a.verbose)
            net_rows = [{**spawn("default", n, network=network, n_probe=probe),
                         "n_probe": "default" if probe is None else probe}
                        for n in a.network_sizes for probe in probes]
        print_rows(f"Trained network (supervised on {a.train_faces} faces of other people, "
                   f"{seconds:.0f} s), end to end", net_rows, ["n", "n_probe", *cols[1:]])

    for n in a.dask_sizes:
        remote = spawn("dask", n)
        local = by_n.get(n) or spawn("default", n)
        same = remote["labels_sha"] == local["labels_sha"]
        print(f"Dask LocalCluster (2 worker processes, 1 thread each) at {n}: "
              f"{remote['total']:.1f} s vs local {local['total']:.1f} s; labels "
              f"{'identical' if same else 'DIFFERENT'} (BCubed F {remote['bcubed_f']:.4f})\n",
              flush=True)

    if 100_000 in by_n and 1_000_000 in by_n:
        exponent = np.log(by_n[1_000_000]["total"] / by_n[100_000]["total"]) / np.log(10)
        drop = by_n[100_000]["bcubed_f"] - by_n[1_000_000]["bcubed_f"]
        print(f"label-free default: time exponent 100K -> 1M {exponent:.3f}; "
              f"BCubed F 100K -> 1M {-drop:+.4f}")


if __name__ == "__main__":
    main()
