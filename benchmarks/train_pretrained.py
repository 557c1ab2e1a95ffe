"""Train the pretrained network shipped with skdanet: dlib 128-d face descriptors.

Trained with labels on every person of the bundled LFW features and of the
in-the-wild development set (``--data-dir``), with DANetEmbedder's defaults,
and written to ``skdanet/model/pretrained/dlib128.npz``, which
``TrainedNetwork.pretrained("dlib128")`` loads. How the same recipe does on
people it was not trained on is measured by ``bench_quality.py`` (the
"pretrained recipe" row: trained on the other halves of both sets).

Usage: python benchmarks/train_pretrained.py [--data-dir ../shared/data]
"""

import argparse
import os

import numpy as np

from skdanet import DANetEmbedder
from skdanet.datasets import load_lfw_features

OUT = os.path.join(os.path.dirname(__file__), "..", "skdanet", "model", "pretrained",
                   "dlib128.npz")


def load_both(data_dir, lfw_rows=None, dev_rows=None):
    """LFW and the dev set stacked, with disjoint identity labels."""
    X1, y1 = load_lfw_features(return_X_y=True)
    with np.load(os.path.join(data_dir, "celeba_dev_dlib128.npz"), allow_pickle=False) as f:
        X2, y2 = f["features"], f["labels"].astype(np.int64)
    if lfw_rows is not None:
        X1, y1 = X1[lfw_rows], y1[lfw_rows]
    if dev_rows is not None:
        X2, y2 = X2[dev_rows], y2[dev_rows]
    return np.vstack([X1, X2]), np.concatenate([y1, y2 + y1.max() + 1])


def train(X, y, random_state=0):
    return DANetEmbedder(random_state=random_state).fit(X, y).network_


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..",
                                                      "shared", "data"))
    args = p.parse_args()
    X, y = load_both(args.data_dir)
    network = train(X, y)
    network.save(OUT)
    print(f"trained on {len(X)} faces of {len(np.unique(y))} people: {network!r}; "
          f"wrote {os.path.normpath(OUT)} ({os.path.getsize(OUT) / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
