"""The main job: cluster LFW faces of people the network has never seen.

Run with ``python -m skdanet``. Trains DA-Net on half of the LFW identities,
embeds the other half through its own kNN graph with the trained network,
clusters it with DensityChainClustering (DBSCAN at the calibrated radius, then links between
clusters through close faces whose k-reciprocal neighbourhoods overlap), and prints pairwise /
BCubed F next to DBSCAN on the raw features (its eps tuned on the training half).
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


def _say(message):
    print(message, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m skdanet", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="identity split and training seed")
    parser.add_argument("--epochs", type=int, default=30, help="maximum training epochs")
    parser.add_argument("--verbose", type=int, default=0,
                        help="1: also print the training epochs and every stage's time")
    args = parser.parse_args(argv)

    X, y = load_lfw_features(return_X_y=True)
    train, test = split_identities(y, test_size=0.5, random_state=args.seed)
    _say(f"LFW features: {len(X)} faces; training on {len(train)} faces of "
         f"{len(np.unique(y[train]))} people, clustering {len(test)} faces of "
         f"{len(np.unique(y[test]))} other people. About 30 s on two idle cores (a few minutes on a busy machine).")
    rows = []

    _say(f"[1/3] DBSCAN on the raw features: choosing its radius among {len(RAW_EPS_GRID)} "
         "on the training people (about 15 s) ...")
    start = time.perf_counter()
    Xn = l2_normalize(X)
    eps, _ = calibrate_eps(Xn[train], y[train], grid=RAW_EPS_GRID, tolerance=0.0)
    pred = DBSCAN(eps=eps, min_samples=1).fit_predict(Xn[test])
    rows.append(("DBSCAN, raw features", eps, clustering_report(y[test], pred),
                 time.perf_counter() - start))

    _say(f"[2/3] Training DA-Net on the training people (at most {args.epochs} epochs, "
         "stops early; about 10 to 30 s) ...")
    start = time.perf_counter()
    trained = DANetEmbedder(n_epochs=args.epochs, random_state=args.seed,
                            verbose=args.verbose).fit(X[train], y[train])
    _say(f"      trained {len(trained.history_)} epochs in {time.perf_counter() - start:.0f} s")
    _say("[3/3] Clustering the other people with the trained network (a few seconds) ...")
    model = DensityChainClustering(network=trained.network_, random_state=args.seed,
                                   verbose=args.verbose).fit(X[test])
    rows.append(("DA-Net (trained on other people)", model.eps_,
                 clustering_report(y[test], model.labels_), time.perf_counter() - start))

    header = f"{'method':<34} {'eps':>6} {'pair P':>7} {'pair R':>7} {'pair F':>7} " \
             f"{'B3 P':>7} {'B3 R':>7} {'B3 F':>7} {'clusters':>8} {'sec':>6}"
    _say("")
    _say(header)
    _say("-" * len(header))
    for name, eps, s, sec in rows:
        _say(f"{name:<34} {eps:>6.3f} {s['pairwise_p']:>7.4f} {s['pairwise_r']:>7.4f} "
             f"{s['pairwise_f']:>7.4f} {s['bcubed_p']:>7.4f} {s['bcubed_r']:>7.4f} "
             f"{s['bcubed_f']:>7.4f} {s['n_clusters']:>8} {sec:>6.1f}")
    _say(f"""
true number of people among the clustered faces: {len(np.unique(y[test]))}
pair P / R / F: pairwise precision, recall, F (share of same-person pairs put together);
B3 P / R / F: BCubed precision, recall, F (the same, averaged face by face);
clusters: clusters found; sec: seconds, radius search (DBSCAN) or training and clustering
(DA-Net) included. eps: DBSCAN's radius between unit-norm rows, for raw DBSCAN the one
chosen on the training people; for DA-Net the radius that linked faces in its embedding
after query expansion (each face averaged with its 4 most similar neighbours): the radius
calibrated on held-out training people, carried into that space. Clusters are then joined
through close faces whose k-reciprocal neighbourhoods overlap (reciprocal links).""")
    return rows


if __name__ == "__main__":
    main()
