"""LFW benchmark: clustering unseen people (issue: DANetEmbedder).

Protocol: LFW features, identities split in half (seeded); every method is
tuned on the train identities only and reported on the unseen identities:
pairwise P/R/F, BCubed P/R/F, NMI, number of clusters, seconds.

Usage: python benchmarks/bench_lfw.py [--seeds 0 1 2] [--epochs 30] [--quick]
       [--methods raw label-free]   (rows whose name contains one of these)

Results (2 CPU cores; mean ± spread over split seeds 0, 1, 2; DA-Net rows
cluster with DensityChainClustering's defaults, query expansion included;
raw rows from commit 062a6b4 (re-run unchanged with the label-free row),
supervised rows from the commit adding query expansion (with other jobs
running: the seconds are upper bounds), the label-free row from the commit
adding the weight average and the expanded re-labelling (unloaded). "seconds"
is the clustering of the unseen half, training excluded except for
label-free, which trains on that half)::

    method                          pair P  pair R  pair F         B3 P    B3 R    B3 F           NMI    clusters  seconds
    DBSCAN raw                      .9269   .9379   .9305 ± .0092  .9719   .8626   .9136 ± .0093  .9777  3526        15
    HDBSCAN raw                     .9774   .9702   .9738 ± .0171  .9309   .9140   .9220 ± .0029  .7431  3029        80
    HAC average raw                 .9761   .9667   .9713 ± .0180  .9055   .9541   .9292 ± .0030  .9835  2532        53
    DA-Net supervised (default)     .9929   .9733   .9830 ± .0094  .9750   .9417   .9580 ± .0013  .9902  3042
    ablation: no chain (length 1)   .9928   .9677   .9800 ± .0110  .9747   .9395   .9568 ± .0008  .9899  3047
    paper full model: + clique GCN  .9899   .9775   .9837 ± .0087  .9691   .9432   .9560 ± .0020  .9896  3006
    ablation: GCN only (chain 1)    .9903   .9709   .9805 ± .0073  .9734   .9401   .9565 ± .0017  .9898  3040
    variant: LSTM chain network     .9910   .9766   .9837 ± .0075  .9729   .9412   .9568 ± .0003  .9900  3033
    DA-Net label-free               .9821   .9802   .9811 ± .0120  .9791   .9323   .9550 ± .0023  .9894  3134        50

Targets (B = best raw row per seed): supervised pairwise F .9830 vs .9828
met (2 of 3 seeds), BCubed F .9580 vs .9528 met (3 of 3); label-free
pairwise F .9811 vs .9785 met (2 of 3; seed 2 .9884 vs .9889), BCubed F
.9550 vs .9410 met (3 of 3). Label-free before the weight average and the
expanded re-labelling: .9758 / .9517; with the expanded re-labelling alone:
.9773 / .9550. Without query expansion (query_expansion=0): supervised
.9808 / .9551. Seconds per epoch (supervised, unloaded): 0.99. Held-out
split seeds 3, 4, 5 (pairwise / BCubed F; best raw rows there HDBSCAN .9831
/ HAC .9395): supervised .9876 / .9574 (.9795 / .9493 without expansion;
targets .9887 / .9597 NOT met, seed 4 misses both), label-free .9892 / .9565
(.9875 / .9522 before the weight average and the expanded re-labelling;
targets .9859 / .9496 met, 3 of 3 seeds). Transform throughput at
100,000 face-like faces: see benchmarks/bench_scale.py (about 5,800 faces/s
end to end on 2 cores).

Label-free on generated faces (``make_face_like(8000)``, data seeds 1-4,
pairwise / BCubed F; not this script): before the two label-free changes
.9920/.9382, .9870/.9399, .9840/.9373, .9641/.9322; with the expanded
re-labelling .9935/.9514, .9921/.9562, .9887/.9521, .9673/.9411; with the
weight average too (the default) .9945/.9545, .9907/.9537, .9843/.9431,
.9641/.9375. The average lost there on three of four seeds what it gained
on LFW (real faces; six of six split seeds in pairwise F); the default
follows the real faces.
"""

import argparse
import time

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.metrics import normalized_mutual_info_score

from skdanet import DANetEmbedder, DensityChainClustering
from skdanet._demo import clustering_scores, tune_dbscan_eps
from skdanet.datasets import load_lfw_features, split_identities
from skdanet.graph import l2_normalize

HAC_GRID = np.round(np.arange(0.03, 0.12, 0.005), 4)  # cosine distance thresholds


def score(y, pred, seconds):
    s = clustering_scores(y, pred)
    s["nmi"] = normalized_mutual_info_score(y, pred)
    s["seconds"] = seconds
    return s


def hac_labels(X, threshold):
    return fcluster(linkage(X, method="average", metric="cosine"), t=threshold,
                    criterion="distance")


def tune(fn, grid, X, y):
    best, best_s = grid[0], -1
    for v in grid:
        s = clustering_scores(y, fn(X, v))
        if (s["pairwise_f"] + s["bcubed_f"]) / 2 > best_s:
            best, best_s = v, (s["pairwise_f"] + s["bcubed_f"]) / 2
    return best


def danet_rows(Xtr, ytr, Xte, yte, seed, epochs, variants):
    rows = {}
    for name, params in variants.items():
        t = time.perf_counter()
        trained = DANetEmbedder(n_epochs=epochs, random_state=seed, **params).fit(Xtr, ytr)
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        pred = DensityChainClustering(network=trained.network_, random_state=seed,
                                      **params).fit(Xte).labels_
        s = score(yte, pred, time.perf_counter() - t)
        s["train_s"] = train_s
        s["epochs"] = len(trained.history_)
        s["s_per_epoch"] = float(np.mean([h["dur"] for h in trained.history_]))
        rows[name] = s
    return rows


def run_seed(seed, epochs, quick, methods=None):
    X, y = load_lfw_features(return_X_y=True)
    tr, te = split_identities(y, test_size=0.5, random_state=seed)
    Xn = l2_normalize(X.astype(np.float64))
    rows = {}

    def wanted(name):
        return methods is None or any(m.lower() in name.lower() for m in methods)

    t = time.perf_counter()
    eps = tune_dbscan_eps(Xn[tr], y[tr])
    rows["DBSCAN raw"] = score(y[te], DBSCAN(eps=eps, min_samples=1).fit_predict(Xn[te]),
                               time.perf_counter() - t)
    if wanted("HDBSCAN raw"):
        t = time.perf_counter()
        mcs = tune(lambda X_, v: HDBSCAN(min_cluster_size=int(v), copy=True).fit_predict(X_),
                   [2, 3, 4], Xn[tr], y[tr])
        rows["HDBSCAN raw"] = score(y[te], HDBSCAN(min_cluster_size=int(mcs), copy=True)
                                    .fit_predict(Xn[te]), time.perf_counter() - t)
    if not quick and wanted("HAC average raw"):
        t = time.perf_counter()
        thr = tune(hac_labels, HAC_GRID, Xn[tr], y[tr])
        rows["HAC average raw"] = score(y[te], hac_labels(Xn[te], thr), time.perf_counter() - t)

    # Defaults: chain network over projected features, no clique GCN (measured
    # better on LFW); the paper's full model adds the clique GCN.
    variants = {"DA-Net supervised": {}}
    if not quick:
        variants.update({
            "ablation: no chain (length 1)": {"max_chain_length": 1},
            "paper full model: + clique GCN": {"n_gcn_layers": 1},
            "ablation: GCN only (chain 1)": {"n_gcn_layers": 1, "max_chain_length": 1},
            "variant: LSTM chain network": {"chain_network": "lstm"},
        })
    variants = {k: v for k, v in variants.items() if wanted(k)}
    rows.update(danet_rows(X[tr], y[tr], X[te], y[te], seed, epochs, variants))

    if wanted("DA-Net label-free"):
        t = time.perf_counter()
        pred = DensityChainClustering(n_epochs=epochs, random_state=seed).fit(X[te]).labels_
        rows["DA-Net label-free"] = score(y[te], pred, time.perf_counter() - t)
    return rows


COLS = ["pairwise_p", "pairwise_r", "pairwise_f", "bcubed_p", "bcubed_r", "bcubed_f", "nmi",
        "n_clusters", "seconds"]


def print_table(per_seed):
    names = list(per_seed[0])
    print(f"{'method':<32}" + "".join(f"{c:>17}" for c in COLS))
    for name in names:
        cells = []
        for c in COLS:
            v = np.array([r[name][c] for r in per_seed], dtype=float)
            cells.append(f"{v.mean():>10.4f}±{v.std():<6.4f}" if c != "n_clusters"
                         else f"{v.mean():>10.0f}±{v.std():<6.0f}")
        print(f"{name:<32}" + "".join(cells))
    for metric in ("pairwise_f", "bcubed_f"):
        B = np.array([max(r[n][metric] for n in names if "raw" in n) for r in per_seed])
        for name, share in (("DA-Net supervised", 3), ("DA-Net label-free", 6)):
            if name not in names:
                continue
            got = np.array([r[name][metric] for r in per_seed])
            target = B + (1 - B) / share
            # B is each seed's best raw baseline; the mean line compares means.
            print(f"target {name:<20} {metric}: mean {got.mean():.4f} vs B + (1-B)/{share} = "
                  f"{target.mean():.4f} (B = {B.mean():.4f}) -> "
                  f"{'met' if got.mean() >= target.mean() else 'NOT met'} in the mean, "
                  f"met on {int(np.sum(got >= target))} of {len(got)} seed(s)")
    sup = [r["DA-Net supervised"] for r in per_seed if "DA-Net supervised" in r]
    if sup:
        print(f"seconds per epoch (supervised, CPU): {np.mean([s['s_per_epoch'] for s in sup]):.2f}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--quick", action="store_true", help="skip HAC and the ablations")
    p.add_argument("--methods", nargs="+", help="only rows whose name contains one of these "
                   "(DBSCAN raw always runs: it is the baseline B)")
    a = p.parse_args()
    per_seed = []
    for seed in a.seeds:
        t = time.perf_counter()
        per_seed.append(run_seed(seed, a.epochs, a.quick, a.methods))
        print(f"# seed {seed} done in {time.perf_counter() - t:.0f} s", flush=True)
        if len(a.seeds) > 1:
            print_table(per_seed[-1:])
    print_table(per_seed)


if __name__ == "__main__":
    main()
