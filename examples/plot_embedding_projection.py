"""
Before and after: the 20 largest identities in raw and DA-Net space
===================================================================

A network trained on other people embeds the faces of the 20 people with
the most photos (none of them seen in training). Both spaces are projected to
2-D with t-SNE: in the learned space each person's faces are tighter and
further from the others.
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from sklearn.manifold import TSNE

from skdanet import DANetEmbedder
from skdanet.datasets import load_lfw_features
from skdanet.graph import l2_normalize

# SKDANET_EXAMPLES_SMALL=1 (the documentation build) runs on fewer faces and
# epochs: the same code, smaller numbers.
SMALL = os.environ.get("SKDANET_EXAMPLES_SMALL", "") not in ("", "0")

X, y = load_lfw_features(return_X_y=True)
counts = np.bincount(y)
top = np.argsort(counts)[::-1][:20]
shown = np.isin(y, top)
if SMALL:
    shown &= np.arange(len(y)) % 4 == 0
# Train on people outside the top 20 (every other remaining identity, for speed).
others = ~np.isin(y, top) & (y % 2 == 0) & (counts[y] >= 2)
network = DANetEmbedder(n_epochs=8 if SMALL else 20, random_state=0).fit(X[others], y[others]).network_

Z = DANetEmbedder(network=network).fit_transform(X[shown])
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
for ax, space, title in [(axes[0], l2_normalize(X[shown]), "raw dlib features"),
                         (axes[1], Z, "DA-Net embedding")]:
    P = TSNE(n_components=2, random_state=0, init="pca", perplexity=30).fit_transform(space)
    ax.scatter(P[:, 0], P[:, 1], c=np.searchsorted(np.sort(top), y[shown]), cmap="tab20", s=6)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("20 largest LFW identities (unseen in training), t-SNE")
fig.tight_layout()
fig.savefig("embedding_projection.png", dpi=100)


def spread(E):
    """Mean within-identity cosine distance over mean between-identity distance."""
    S = E @ E.T
    same = y[shown][:, None] == y[shown][None, :]
    return (1 - S[same]).mean() / (1 - S[~same]).mean()


print(f"within/between distance ratio: raw {spread(l2_normalize(X[shown])):.3f}, "
      f"DA-Net {spread(Z):.3f}")
