"""
Clustering unseen people: DA-Net against DBSCAN, HDBSCAN and HAC
================================================================

LFW features, identities split in half. Every method is tuned on the
training people only; the table reports the unseen people: pairwise and
BCubed F, NMI and the number of clusters. DA-Net is trained on the training
people and then embeds the unseen people through their own kNN graph with
that network (no retraining); DBSCAN then uses the radius calibrated during
training.
"""

import os
import time

import matplotlib.pyplot as plt
import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import DBSCAN, HDBSCAN

from skdanet import DensityChainClustering
from skdanet.cluster import RAW_EPS_GRID, best_threshold
from skdanet.datasets import load_lfw_features, split_identities
from skdanet.graph import l2_normalize
from skdanet.metrics import clustering_report

# SKDANET_EXAMPLES_SMALL=1 (the documentation build) runs on fewer faces and
# epochs: the same code, smaller numbers.
SMALL = os.environ.get("SKDANET_EXAMPLES_SMALL", "") not in ("", "0")

X, y = load_lfw_features(return_X_y=True)
if SMALL:
    keep = np.isin(y, np.unique(y)[::8])
    X, y = X[keep], y[keep]
train, test = split_identities(y, test_size=0.5, random_state=0)
Xn = l2_normalize(X.astype(np.float64))
print(f"{len(X)} LFW faces{' (every 8th person: small-data build)' if SMALL else ''}; "
      f"tuning / training on {len(train)}, clustering {len(test)} faces of unseen people")


def tuned(cluster, grid):
    """The grid value with the best mean of pairwise and BCubed F on the training people."""
    return best_threshold(lambda v: cluster(Xn[train], v), grid, y[train])[0]


rows = {}
t = time.perf_counter()
eps = tuned(lambda Z, v: DBSCAN(eps=v, min_samples=1).fit_predict(Z), RAW_EPS_GRID)
rows["DBSCAN"] = (DBSCAN(eps=eps, min_samples=1).fit_predict(Xn[test]), time.perf_counter() - t)
t = time.perf_counter()
mcs = int(tuned(lambda Z, v: HDBSCAN(min_cluster_size=int(v), copy=True).fit_predict(Z),
                np.array([2, 3, 4])))
rows["HDBSCAN"] = (HDBSCAN(min_cluster_size=mcs, copy=True).fit_predict(Xn[test]),
                   time.perf_counter() - t)
t = time.perf_counter()
tree = linkage(Xn[train], method="average", metric="cosine")
thr = tuned(lambda Z, v: fcluster(tree, t=v, criterion="distance"), np.arange(0.03, 0.12, 0.01))
labels = fcluster(linkage(Xn[test], method="average", metric="cosine"), t=thr, criterion="distance")
rows["HAC (average)"] = (labels, time.perf_counter() - t)
t = time.perf_counter()
trained = DensityChainClustering(n_epochs=10 if SMALL else 30, random_state=0)
trained.fit(X[train], y[train])
unseen = DensityChainClustering(network=trained.network_).fit(X[test])
rows["DA-Net"] = (unseen.labels_, time.perf_counter() - t)

# Noise (HDBSCAN's -1) counts as singletons in every score, NMI included.
print(f"{'method':<16} {'pair F':>7} {'BCubed F':>9} {'NMI':>7} {'clusters':>9} {'sec':>6}")
scores = {}
for name, (labels, sec) in rows.items():
    s = scores[name] = clustering_report(y[test], labels)
    print(f"{name:<16} {s['pairwise_f']:>7.4f} {s['bcubed_f']:>9.4f} {s['nmi']:>7.4f} "
          f"{s['n_clusters']:>9} {sec:>6.1f}")
print(f"true number of people: {len(np.unique(y[test]))}")

fig, ax = plt.subplots(figsize=(7, 3.2))
names = list(scores)
pos = np.arange(len(names))
for offset, key, label in ((-0.2, "pairwise_f", "pairwise F"), (0.2, "bcubed_f", "BCubed F")):
    values = [scores[n][key] for n in names]
    bars = ax.barh(pos + offset, values, 0.4, label=label)
    ax.bar_label(bars, fmt="%.3f", padding=2, fontsize=8)
low = min(min(s["pairwise_f"], s["bcubed_f"]) for s in scores.values())
ax.set_xlim(max(0.0, np.floor(low * 20) / 20 - 0.05), 1.02)
ax.set_yticks(pos, names)
ax.set_xlabel("score on unseen people (higher is better)")
ax.set_title(f"LFW, {len(test)} faces of unseen people" + (" (small-data build)" if SMALL else ""))
ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
fig.tight_layout()
fig.savefig("lfw_benchmark.png", dpi=100)
