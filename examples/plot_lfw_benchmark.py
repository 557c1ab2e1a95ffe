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

import time

import matplotlib.pyplot as plt
import numpy as np
from _small import SMALL
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.cluster import DBSCAN, HDBSCAN
from sklearn.metrics import normalized_mutual_info_score

from skdanet import DensityChainClustering
from skdanet._demo import clustering_scores, tune_dbscan_eps
from skdanet.datasets import load_lfw_features, split_identities
from skdanet.graph import l2_normalize

X, y = load_lfw_features(return_X_y=True)
if SMALL:
    keep = np.isin(y, np.unique(y)[::8])
    X, y = X[keep], y[keep]
train, test = split_identities(y, test_size=0.5, random_state=0)
Xn = l2_normalize(X.astype(np.float64))


def tuned(fn, grid):
    def mean_f(v):
        s = clustering_scores(y[train], fn(Xn[train], v))
        return s["pairwise_f"] + s["bcubed_f"]
    return max(grid, key=mean_f)


rows = {}
t = time.perf_counter()
eps = tune_dbscan_eps(Xn[train], y[train])
rows["DBSCAN"] = (DBSCAN(eps=eps, min_samples=1).fit_predict(Xn[test]), time.perf_counter() - t)
t = time.perf_counter()
mcs = tuned(lambda Z, v: HDBSCAN(min_cluster_size=v, copy=True).fit_predict(Z), [2, 3, 4])
rows["HDBSCAN"] = (HDBSCAN(min_cluster_size=mcs, copy=True).fit_predict(Xn[test]),
                   time.perf_counter() - t)
t = time.perf_counter()
# One dendrogram per set, cut at each candidate threshold.
tree = linkage(Xn[train], method="average", metric="cosine")
thr = tuned(lambda Z, t: fcluster(tree, t=t, criterion="distance"), np.arange(0.03, 0.12, 0.01))
labels = fcluster(linkage(Xn[test], method="average", metric="cosine"), t=thr, criterion="distance")
rows["HAC (average)"] = (labels, time.perf_counter() - t)
t = time.perf_counter()
trained = DensityChainClustering(n_epochs=10 if SMALL else 30, random_state=0)
trained.fit(X[train], y[train])
unseen = DensityChainClustering(network=trained.network_).fit(X[test])
rows["DA-Net + DBSCAN"] = (unseen.labels_, time.perf_counter() - t)

print(f"{'method':<16} {'pair F':>7} {'BCubed F':>9} {'NMI':>7} {'clusters':>9} {'sec':>6}")
scores = {}
for name, (labels, sec) in rows.items():
    s = clustering_scores(y[test], labels)
    scores[name] = s
    print(f"{name:<16} {s['pairwise_f']:>7.4f} {s['bcubed_f']:>9.4f} "
          f"{normalized_mutual_info_score(y[test], labels):>7.4f} {s['n_clusters']:>9} {sec:>6.1f}")
print(f"true number of people: {len(np.unique(y[test]))}")

fig, ax = plt.subplots(figsize=(6, 3))
names = list(scores)
pos = np.arange(len(names))
ax.barh(pos - 0.2, [scores[n]["pairwise_f"] for n in names], 0.4, label="pairwise F")
ax.barh(pos + 0.2, [scores[n]["bcubed_f"] for n in names], 0.4, label="BCubed F")
ax.set_yticks(pos, names)
ax.set_xlim(0.8, 1.0)
ax.set_xlabel("score on unseen people")
ax.legend(loc="lower right")
fig.tight_layout()
fig.savefig("lfw_benchmark.png", dpi=100)
