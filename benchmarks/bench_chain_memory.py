"""Memory and seconds of a label-free fit by max_chain_length: they follow the chains.

Each setting runs in its own process, so that peak RSS is its own.

Usage: python benchmarks/bench_chain_memory.py [--lengths 4 1000] [--n 3000] [--d 64]
"""

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from skdanet import DANetEmbedder
from skdanet.datasets import make_face_like
n, d, length = map(int, sys.argv[1:4])
X, _ = make_face_like(n, n_features=d, random_state=0)
t = time.perf_counter()
emb = DANetEmbedder(max_chain_length=length, random_state=0).fit(X)
print(json.dumps({"seconds": time.perf_counter() - t, "longest": emb.graph_.chains.shape[1],
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[4, 1000])
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--d", type=int, default=64)
    args = p.parse_args()
    print(f"label-free fit of make_face_like({args.n}, n_features={args.d})")
    print(f"{'max_chain_length':>17} {'longest chain':>14} {'seconds':>8} {'peak RSS GB':>12}")
    for length in args.lengths:
        out = subprocess.run([sys.executable, "-c", CHILD, str(args.n), str(args.d), str(length)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{length:>17} {r['longest']:>14} {r['seconds']:>8.1f} {r['rss_gb']:>12.2f}")


if __name__ == "__main__":
    main()
