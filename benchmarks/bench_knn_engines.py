"""kNN engines on the same faces and cores: recall@k against seconds.

Can an engine reach recall@30 >= 0.95 on a million faces within 1.5x the
time of skdanet's default index, measured in the same run? Each row is one
engine at one setting, timed for the whole kNN graph of all n faces (index
build plus search of every face), its seconds as a ratio to skdanet's default
(the baseline), and its recall@k on 1,000 sampled faces against exact search:

- skdanet's kNN graph (:func:`skdanet.graph.knn_graph`: the inverted-file
  index, refined through the neighbours' lists, as the default path builds
  it) at its default ``n_probe`` (the baseline), with ``n_probe="auto"``
  (each face searches the lists almost as near as its nearest) and at more
  fixed probes;
- hnswlib (the design card's engine), built and searched on every core;
- faiss IVF-Flat (inner product), when ``faiss-cpu`` is installed.

Usage::

    python benchmarks/bench_knn_engines.py [--n 1000000] [--k 30]
        [--ivf-probes 32 auto 64 80 96] [--hnsw-ef 64 128] [--faiss-probes 8 16]
        [--write docs/knn_engines_run.txt]

The skdanet rows are what ``DensityChainClustering(n_probe=...)`` searches
(``graph_method="auto"`` above 30,000 faces, or ``"ivf"``).
"""

import argparse
import sys
import time

import joblib
import numpy as np

from skdanet.datasets import make_face_like
from skdanet.graph import N_PROBE, NeighborIndex, knn_graph, l2_normalize

BUDGET = 1.5  # the time budget, as a ratio to the default index
TARGET_RECALL = 0.95
N_SAMPLE = 1000
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 100
FAISS_LIST_SIZE = 250  # 4,000 lists at a million faces


def recall_at_k(found, exact):
    """Mean share of each sampled face's exact k neighbours that ``found`` holds."""
    k = exact.shape[1]
    return float(np.mean([len(np.intersect1d(a, b)) / k for a, b in zip(found, exact)]))


def without_self(idx, rows, k):
    """Each row's first ``k`` neighbours other than itself."""
    return np.array([r[r != i][:k] for r, i in zip(idx, rows)])


def ivf_rows(X, k, probes, sample, exact, n_jobs):
    """skdanet's kNN graph as the default path builds it, at each ``n_probe``."""
    rows = []
    for n_probe in probes:
        t = time.perf_counter()
        _, idx = knn_graph(X, k, method="ivf", n_probe=n_probe, n_jobs=n_jobs, normalize=False)
        seconds = time.perf_counter() - t
        name = "lists within the margin" if n_probe == "auto" else f"{n_probe} probes"
        rows.append((f"skdanet IVF, {name}, refined", seconds,
                     recall_at_k(idx[sample, 1:], exact)))
    return rows


def hnsw_rows(X, k, efs, sample, exact, n_jobs):
    import hnswlib

    t = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=X.shape[1])
    index.init_index(max_elements=len(X), ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M,
                     random_seed=0)
    X32 = X.astype(np.float32)
    index.add_items(X32, np.arange(len(X)), num_threads=n_jobs)
    build = time.perf_counter() - t
    rows = []
    for ef in efs:
        index.set_ef(max(ef, k + 1))
        t = time.perf_counter()
        idx, _ = index.knn_query(X32, k=k + 1, num_threads=n_jobs)
        seconds = build + time.perf_counter() - t
        found = without_self(idx[sample].astype(np.int64), sample, k)
        rows.append((f"hnswlib M={HNSW_M} ef_construction={HNSW_EF_CONSTRUCTION}, ef={ef}",
                     seconds, recall_at_k(found, exact)))
    return rows


def faiss_rows(X, k, probes, sample, exact):
    import faiss

    X32 = np.ascontiguousarray(X, dtype=np.float32)
    n_lists = max(1, len(X) // FAISS_LIST_SIZE)
    t = time.perf_counter()
    quantiser = faiss.IndexFlatIP(X.shape[1])
    index = faiss.IndexIVFFlat(quantiser, X.shape[1], n_lists, faiss.METRIC_INNER_PRODUCT)
    index.train(X32)
    index.add(X32)
    build = time.perf_counter() - t
    rows = []
    for n_probe in probes:
        index.nprobe = n_probe
        t = time.perf_counter()
        _, idx = index.search(X32, k + 1)
        seconds = build + time.perf_counter() - t
        found = without_self(idx[sample], sample, k)
        rows.append((f"faiss IVF-Flat, {n_lists} lists, {n_probe} probes", seconds,
                     recall_at_k(found, exact)))
    return rows


def optional_rows(engine, run):
    """``run()``'s rows, or none when the engine is not installed."""
    try:
        return run()
    except ImportError:
        print(f"# {engine} not installed: its rows are left out", file=sys.stderr)
        return []


def table(rows, n, k, n_cores, n_sample):
    """The rows as text, times as ratios to the first row's (the default)."""
    baseline = rows[0][1]
    title = (f"kNN graph of make_face_like({n}) (128-d), k={k}, {n_cores} cores; seconds: "
             f"index build + search of every face; recall@{k} on {n_sample} sampled faces "
             "against exact search")
    lines = [title, f"{'engine':<52} {'seconds':>8} {'x default':>9} {'recall':>7}"]
    for name, seconds, recall in rows:
        lines.append(f"{name:<52} {seconds:8.1f} {seconds / baseline:9.2f} {recall:7.3f}")
    best = max((r for r in rows if r[1] <= BUDGET * baseline), key=lambda r: r[2])
    reached = [r[1] / baseline for r in rows if r[2] >= TARGET_RECALL]
    first = (f"recall >= {TARGET_RECALL} first at {min(reached):.2f}x" if reached
             else f"no row reaches recall {TARGET_RECALL}")
    lines.append(f"best recall within {BUDGET}x the default's time: {best[2]:.3f} "
                 f"({best[0]}); {first}")
    return "\n".join(lines)


def n_probe_arg(text):
    """An ``--ivf-probes`` entry: an integer or "auto", as ``knn_graph`` takes it."""
    return text if text == "auto" else int(text)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--k", type=int, default=30)
    p.add_argument("--ivf-probes", type=n_probe_arg, nargs="*",
                   default=[N_PROBE, "auto", 64, 80, 96])
    p.add_argument("--hnsw-ef", type=int, nargs="*", default=[64, 128])
    p.add_argument("--faiss-probes", type=int, nargs="*", default=[8, 16])
    p.add_argument("--write", metavar="PATH", help="also write the table to this file")
    args = p.parse_args(argv)
    if not args.ivf_probes or args.ivf_probes[0] != N_PROBE:
        p.error(f"--ivf-probes must start with the default, {N_PROBE} (the baseline)")
    n_jobs = joblib.cpu_count()
    X = l2_normalize(make_face_like(args.n, random_state=0)[0])
    sample = np.sort(np.random.default_rng(1).choice(args.n, min(args.n, N_SAMPLE),
                                                     replace=False))
    _, exact, _ = NeighborIndex(X, method="exact").query(X[sample], args.k,
                                                         self_indices=sample)
    rows = ivf_rows(X, args.k, args.ivf_probes, sample, exact, n_jobs)
    print(f"# {rows[0][0]}: {rows[0][1]:.1f} s", file=sys.stderr, flush=True)
    if args.hnsw_ef:
        rows += optional_rows("hnswlib", lambda: hnsw_rows(X, args.k, args.hnsw_ef, sample,
                                                           exact, n_jobs))
    if args.faiss_probes:
        rows += optional_rows("faiss", lambda: faiss_rows(X, args.k, args.faiss_probes,
                                                          sample, exact))
    text = table(rows, args.n, args.k, n_jobs, len(sample))
    print(text)
    if args.write:
        with open(args.write, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
