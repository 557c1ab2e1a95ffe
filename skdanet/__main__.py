"""The main job: cluster LFW faces of people the network has never seen.

Run with ``python -m skdanet``. Trains DA-Net on half of the LFW identities,
embeds the other half through its own kNN graph with the trained network,
clusters it with DensityChainClustering (DBSCAN at a tight radius, then merging of pieces with
close mean embeddings; both radii from the calibrated one), and prints pairwise / BCubed F next
to DBSCAN on the raw features (its eps tuned on the training half).
"""

import argparse
import time

import numpy as np
from sklearn.cluster import DBSCAN

from . import DANetEmbedder, DensityChainClustering
from .cluster import RAW_EPS_GRID, calibrate_eps
from .datasets import load_lfw_features, split_identities
from .graph import l2_normalize
from .metrics import clustering_report

def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m skdanet", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="identity split and training seed")
    parser.add_argument("--epochs", type=int, default=30, help="maximum training epochs")
    parser.add_argument("--verbose", type=int, default=0)
    args = parser.parse_args(argv)

    lfw = load_lfw_features()
    X, y = lfw.data, lfw.target
    train, test = split_identities(y, test_size=0.5, random_state=args.seed)
    print(f"LFW features: {len(X)} faces; training on {len(train)} faces of "
          f"{len(np.unique(y[train]))} people, clustering {len(test)} faces of "
          f"{len(np.unique(y[test]))} other people.")
    rows = []

    start = time.perf_counter()
    Xn = l2_normalize(X)
    eps, _ = calibrate_eps(Xn[train], y[train], grid=RAW_EPS_GRID, tolerance=0.0)
    pred = DBSCAN(eps=eps, min_samples=1).fit_predict(Xn[test])
    rows.append(("DBSCAN, raw features", eps, clustering_report(y[test], pred),
                 time.perf_counter() - start))

    start = time.perf_counter()
    trained = DANetEmbedder(n_epochs=args.epochs, random_state=args.seed,
                            verbose=args.verbose).fit(X[train], y[train])
    network = trained.network_
    model = DensityChainClustering(network=network, random_state=args.seed).fit(X[test])
    eps, pred = model.eps_, model.labels_
    rows.append(("DA-Net (other people) + QE + DBSCAN + merge", eps,
                 clustering_report(y[test], pred), time.perf_counter() - start))

    header = f"{'method':<44} {'eps':>6} {'pair P':>7} {'pair R':>7} {'pair F':>7} " \
             f"{'B3 P':>7} {'B3 R':>7} {'B3 F':>7} {'clusters':>8} {'sec':>6}"
    print(header)
    print("-" * len(header))
    for name, eps, s, sec in rows:
        print(f"{name:<44} {eps:>6.3f} {s['pairwise_p']:>7.4f} {s['pairwise_r']:>7.4f} "
              f"{s['pairwise_f']:>7.4f} {s['bcubed_p']:>7.4f} {s['bcubed_r']:>7.4f} "
              f"{s['bcubed_f']:>7.4f} {s['n_clusters']:>8} {sec:>6.1f}")
    print(f"(true number of people among the clustered faces: {len(np.unique(y[test]))})")
    return rows


if __name__ == "__main__":
    main()
