"""
Cluster unseen people with a network trained on other people
=============================================================

Train DA-Net on half of the LFW identities, then embed the other half
through its own kNN graph with the trained network (no retraining) and
cluster it with DBSCAN at the radius calibrated during training. DBSCAN on
the raw features, its radius tuned on the training people, is the reference.
"""

import numpy as np
from sklearn.cluster import DBSCAN

from skdanet import DANetEmbedder
from skdanet._demo import tune_dbscan_eps
from skdanet.datasets import load_lfw_features, split_identities
from skdanet.graph import l2_normalize
from skdanet.metrics import bcubed_f_score, pairwise_f_score

X, y = load_lfw_features(return_X_y=True)
train, test = split_identities(y, test_size=0.5, random_state=0)

network = DANetEmbedder(n_epochs=30, random_state=0).fit(X[train], y[train]).network_
Z = DANetEmbedder(network=network).fit_transform(X[test])
danet = DBSCAN(eps=network.config["eps"], min_samples=1).fit_predict(Z)

Xn = l2_normalize(X)
raw = DBSCAN(eps=tune_dbscan_eps(Xn[train], y[train]), min_samples=1).fit_predict(Xn[test])

for name, labels in [("DBSCAN on raw features", raw), ("DA-Net + DBSCAN", danet)]:
    print(f"{name:<24} pairwise F {pairwise_f_score(y[test], labels):.4f}  "
          f"BCubed F {bcubed_f_score(y[test], labels):.4f}  "
          f"clusters {len(np.unique(labels))}")
