"""kNN graph (IVF) on faces of which many are identical, against all-distinct faces.

Each run in its own process (peak RSS its own); the ratio to the distinct
baseline of the same size and run is what to read.

Usage: python benchmarks/bench_knn_duplicates.py [--n 32000] [--share 0.5]
"""

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys, time
from skdanet.datasets import make_face_like
from skdanet.graph import knn_graph
n, share = int(sys.argv[1]), float(sys.argv[2])
X, _ = make_face_like(n, random_state=0)
X[: int(n * share)] = X[0]
t = time.perf_counter()
knn_graph(X, 30, method="ivf", random_state=0, n_jobs=2)
print(json.dumps({"seconds": time.perf_counter() - t,
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def run(n, share):
    out = subprocess.run([sys.executable, "-c", CHILD, str(n), str(share)], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=32_000)
    p.add_argument("--share", type=float, default=0.5)
    args = p.parse_args()
    base, dup = run(args.n, 0.0), run(args.n, args.share)
    print(f"IVF kNN graph (k=30, 2 threads) of {args.n} make_face_like faces")
    print(f"{'identical share':>16} {'seconds':>8} {'peak RSS GB':>12}")
    for share, r in ((0.0, base), (args.share, dup)):
        print(f"{share:>16.2f} {r['seconds']:>8.1f} {r['rss_gb']:>12.2f}")
    print(f"ratio (identical / distinct): time {dup['seconds'] / base['seconds']:.2f}, "
          f"memory {dup['rss_gb'] / base['rss_gb']:.2f}")


if __name__ == "__main__":
    main()
