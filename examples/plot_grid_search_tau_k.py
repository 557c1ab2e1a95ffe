"""
Choosing tau and k with GridSearchCV
====================================

``GroupKFold`` by identity makes every test fold a set of unseen people. The
transfer scorer clusters each test fold with the network trained on the other
folds, through the fold's own kNN graph. The heat map shows the mean BCubed F
over folds for each (tau, k).
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, GroupKFold

from skdanet import DensityChainClustering
from skdanet.datasets import load_lfw_features
from skdanet.model_selection import clustering_scorers

# SKDANET_EXAMPLES_SMALL=1 (the documentation build) runs on fewer faces and
# epochs: the same code, smaller numbers.
SMALL = os.environ.get("SKDANET_EXAMPLES_SMALL", "") not in ("", "0")

X, y = load_lfw_features(return_X_y=True)
# People with at least two photos, every other such person: a few thousand faces.
counts = np.bincount(y)
keep = (counts[y] >= 2) & (y % (8 if SMALL else 3) == 0)
X, y = X[keep], y[keep]

taus = ["auto", 0.90, 0.93]
ks = [10, 30]
search = GridSearchCV(
    DensityChainClustering(n_epochs=5 if SMALL else 10, random_state=0),
    {"tau": taus, "k": ks},
    scoring=clustering_scorers(),
    refit="bcubed_f",
    cv=GroupKFold(n_splits=2),
)
search.fit(X, y, groups=y)

grid = np.array(search.cv_results_["mean_test_bcubed_f"]).reshape(len(ks), len(taus))
fig, ax = plt.subplots(figsize=(5, 3.5))
im = ax.imshow(grid, cmap="viridis")
ax.set_xticks(range(len(taus)), [str(t) for t in taus])
ax.set_yticks(range(len(ks)), [str(k) for k in ks])
ax.set_xlabel("tau")
ax.set_ylabel("k")
for (i, j), v in np.ndenumerate(grid):
    # Dark text on the light (high) end of the colour map, white on the dark end.
    ax.text(j, i, f"{v:.3f}", ha="center", va="center",
            color="black" if im.norm(v) > 0.5 else "white")
ax.set_title(f"GridSearchCV, {len(X)} LFW faces" + (" (small-data build)" if SMALL else ""),
             fontsize=10)
fig.colorbar(im, label="BCubed F, unseen people")
fig.tight_layout()
fig.savefig("grid_search_tau_k.png", dpi=100)
print(f"{len(X)} faces of {len(np.unique(y))} people")
print("best:", search.best_params_, f"BCubed F {search.best_score_:.4f}")
for params, b, p in zip(search.cv_results_["params"], search.cv_results_["mean_test_bcubed_f"],
                        search.cv_results_["mean_test_pairwise_f"]):
    print(f"  {params}: BCubed F {b:.4f}, pairwise F {p:.4f}")
