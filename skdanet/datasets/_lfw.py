"""Loader for the bundled LFW dlib-128 face features."""

from importlib import resources

import numpy as np
from sklearn.utils import Bunch


def _data_file(name):
    return resources.files("skdanet.datasets").joinpath(name)


def load_lfw_features(*, return_X_y=False):
    """Load the LFW face features (dlib 128-d ResNet descriptors) with identities.

    13,233 faces of 5,749 people (1,680 with two or more faces). Shipped with
    the package, nothing is downloaded. See ``DESCR`` for provenance.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data``: float32 ndarray of shape (13233, 128), L2-normalised rows;
        ``target``: int ndarray of shape (13233,), identity of each face;
        ``target_names``: ndarray of shape (5749,), identity names;
        ``fallback``: bool ndarray, True where no face was detected and a
        fixed central box was used; ``DESCR``: description.
    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from skdanet.datasets import load_lfw_features
    >>> lfw = load_lfw_features()
    >>> lfw.data.shape, lfw.data.dtype.name
    ((13233, 128), 'float32')
    >>> str(lfw.target_names[lfw.target[0]])
    'AJ_Cook'
    """
    with _data_file("data/lfw_dlib128.npz").open("rb") as f:
        npz = np.load(f, allow_pickle=False)
        data = npz["features"]
        target = npz["labels"].astype(np.int64)
        names = npz["names"]
        fallback = npz["fallback"]
    if return_X_y:
        return data, target
    descr = _data_file("descr/lfw_features.rst").read_text(encoding="utf-8")
    return Bunch(data=data, target=target, target_names=names, fallback=fallback,
                 DESCR=descr)
