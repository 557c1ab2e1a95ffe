"""
Unlabelled faces in a Pipeline, and a network saved for another process
=======================================================================

Two workflows end to end:

1. ``Pipeline([DANetEmbedder(), DBSCAN()]).fit_predict(X)`` on faces without
   any labels (label-free training on the faces themselves);
2. train on labelled people, save the network to a file, load it in a fresh
   Python process and cluster new people there. The file is plain arrays
   (loading never unpickles), and the result is identical.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import DBSCAN
from sklearn.pipeline import Pipeline

from skdanet import DANetEmbedder, DensityChainClustering
from skdanet.datasets import load_lfw_features, split_identities
from skdanet.metrics import bcubed_f_score, pairwise_f_score

# SKDANET_EXAMPLES_SMALL=1 (the documentation build) runs on fewer faces and
# epochs: the same code, smaller numbers.
SMALL = os.environ.get("SKDANET_EXAMPLES_SMALL", "") not in ("", "0")

X, y = load_lfw_features(return_X_y=True)
keep = np.isin(y, np.unique(y)[:: 8 if SMALL else 3])
X, y = X[keep], y[keep]
train, test = split_identities(y, test_size=0.5, random_state=0)
epochs = 5 if SMALL else 20

# 1. No labels at all: a pipeline on the faces to cluster. DANetEmbedder scales
#    its output so that at DBSCAN's default radius (0.5, its eps_) DBSCAN
#    clusters these faces as DensityChainClustering would, as closely as one
#    radius can; min_samples=1 keeps LFW's many one-photo people as clusters
#    of their own instead of noise (DBSCAN's default min_samples is 5).
pipe = Pipeline([("danet", DANetEmbedder(n_epochs=epochs, n_rounds=2, random_state=0)),
                 ("dbscan", DBSCAN(min_samples=1))])
labels = pipe.fit_predict(X[test])
print(f"label-free pipeline: pairwise F {pairwise_f_score(y[test], labels):.4f}, "
      f"BCubed F {bcubed_f_score(y[test], labels):.4f}, {len(np.unique(labels))} clusters "
      f"for {len(np.unique(y[test]))} people")

# 2. Train on labelled people, save, load in a fresh process, cluster new people.
trained = DensityChainClustering(n_epochs=epochs, random_state=0).fit(X[train], y[train])
here = DensityChainClustering(network=trained.network_).fit(X[test]).labels_
with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    trained.network_.save(tmp / "network.npz")
    np.save(tmp / "faces.npy", X[test])
    code = (
        "import numpy as np\n"
        "from skdanet import DensityChainClustering, TrainedNetwork\n"
        f"net = TrainedNetwork.load({str(tmp / 'network.npz')!r})\n"
        f"X = np.load({str(tmp / 'faces.npy')!r})\n"
        "labels = DensityChainClustering(network=net).fit(X).labels_\n"
        f"np.save({str(tmp / 'labels.npy')!r}, labels)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    there = np.load(tmp / "labels.npy")
print(f"trained network, loaded in a fresh process: identical labels: "
      f"{np.array_equal(here, there)}; pairwise F {pairwise_f_score(y[test], there):.4f}, "
      f"BCubed F {bcubed_f_score(y[test], there):.4f}")


scores = {
    "label-free pipeline\n(DANetEmbedder + DBSCAN)": labels,
    "trained network,\nthis process": here,
    "trained network, loaded\nin a fresh process": there,
}
fig, ax = plt.subplots(figsize=(8, 3.4))
pos = np.arange(len(scores))
for offset, score, name in ((-0.2, pairwise_f_score, "pairwise F"), (0.2, bcubed_f_score, "BCubed F")):
    bars = ax.barh(pos + offset, [score(y[test], v) for v in scores.values()], 0.4, label=name)
    ax.bar_label(bars, fmt="%.3f", padding=2, fontsize=8)
ax.set_yticks(pos, list(scores), fontsize=8)
ax.invert_yaxis()
ax.set_xlim(0, 1.12)
ax.set_xlabel(f"score on {len(test)} faces of unseen LFW people")
ax.set_title("A pipeline; a saved network reloaded elsewhere gives the same labels"
             + ("\n(small-data build)" if SMALL else ""), fontsize=10)
ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
fig.tight_layout()
fig.savefig("pipeline_and_persistence.png", dpi=100)
