"""
What DA-Net changes: the pairs it links and the bridges it cuts
===============================================================

A network trained on half of the LFW people clusters the other half, and
DBSCAN on the raw features (its radius tuned on the training half) clusters
the same faces. Compared pair by pair, the two clusterings agree on almost
everything; what matters is where they differ:

* **links gained**: photos of one person that DA-Net puts together and raw
  DBSCAN leaves apart;
* **bridges cut**: photos of two people that raw DBSCAN chains together and
  DA-Net keeps apart;
* and the opposite errors, links lost and bridges added.

A 2-D projection of the two spaces looks much the same (the embedding is a
residual correction of the raw features), so the figure counts these pairs
instead.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import DBSCAN

from skdanet import DANetEmbedder, DensityChainClustering
from skdanet.cluster import RAW_EPS_GRID, calibrate_eps
from skdanet.datasets import load_lfw_features, split_identities
from skdanet.graph import l2_normalize

# SKDANET_EXAMPLES_SMALL=1 (the documentation build) runs on fewer faces and
# epochs: the same code, smaller numbers.
SMALL = os.environ.get("SKDANET_EXAMPLES_SMALL", "") not in ("", "0")

X, y = load_lfw_features(return_X_y=True)
if SMALL:
    keep = np.isin(y, np.unique(y)[::8])
    X, y = X[keep], y[keep]
train, test = split_identities(y, test_size=0.5, random_state=0)
Xn = l2_normalize(X.astype(np.float64))
print(f"{len(test)} faces of {len(np.unique(y[test]))} unseen LFW people"
      + (" (every 8th person: small-data build)" if SMALL else ""))

eps, _ = calibrate_eps(Xn[train], y[train], grid=RAW_EPS_GRID, tolerance=0.0)
raw = DBSCAN(eps=eps, min_samples=1).fit_predict(Xn[test])
network = DANetEmbedder(n_epochs=10 if SMALL else 30, random_state=0).fit(X[train], y[train]).network_
danet = DensityChainClustering(network=network).fit(X[test]).labels_


def pairs_within(*labelings):
    """Number of face pairs that share every one of the given labels."""
    codes = np.unique(np.stack(labelings, axis=1), axis=0, return_inverse=True)[1].ravel()
    n = np.bincount(codes).astype(np.int64)
    return int((n * (n - 1) // 2).sum())


person = y[test]
same = pairs_within(person)
same_raw, same_danet = pairs_within(person, raw), pairs_within(person, danet)
same_both = pairs_within(person, raw, danet)
diff_raw = pairs_within(raw) - same_raw
diff_danet = pairs_within(danet) - same_danet
diff_both = pairs_within(raw, danet) - same_both
counts = {
    "links gained\n(same person, only DA-Net joins)": same_danet - same_both,
    "links lost\n(same person, only raw joins)": same_raw - same_both,
    "bridges cut\n(two people, only raw joins)": diff_raw - diff_both,
    "bridges added\n(two people, only DA-Net joins)": diff_danet - diff_both,
}
print(f"same-person pairs: {same}; together in raw DBSCAN: {same_raw}, in DA-Net: {same_danet}")
print(f"different-people pairs together in raw DBSCAN: {diff_raw}, in DA-Net: {diff_danet}")
for name, value in counts.items():
    print(f"{name.splitlines()[0]:>14}: {value}")

fig, ax = plt.subplots(figsize=(7.5, 3.6))
names = list(counts)
colors = ["tab:green", "tab:red", "tab:green", "tab:red"]
bars = ax.barh(np.arange(4), [counts[n] for n in names], color=colors)
ax.bar_label(bars, padding=3)
ax.set_yticks(np.arange(4), names, fontsize=8)
ax.invert_yaxis()
ax.set_xlabel("face pairs (green: DA-Net right, raw DBSCAN wrong; red: the reverse)")
ax.set_xlim(0, max(counts.values()) * 1.2 + 1)
ax.set_title(f"Where DA-Net and raw DBSCAN disagree: {len(test)} faces of unseen LFW people"
             + ("\n(small-data build)" if SMALL else ""), fontsize=10)
fig.tight_layout()
fig.savefig("embedding_projection.png", dpi=100)
