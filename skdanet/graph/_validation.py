"""Input checks shared by the public graph functions: clear errors, as the estimators give."""

import numpy as np


def check_knn(knn_sims, knn_indices=None):
    """A self-first kNN graph as arrays, or a ValueError saying what is wrong.

    ``knn_sims``: 2-d, finite floats, at least one column (the face itself);
    ``knn_indices``: same shape, integers in ``[0, n_samples)``.
    """
    sims = np.asarray(knn_sims)
    if sims.ndim != 2 or sims.shape[1] < 1 or not np.issubdtype(sims.dtype, np.floating):
        raise ValueError("knn_sims must be a 2-d float array of shape (n_samples, k + 1), "
                         f"self first (see knn_graph); got dtype {sims.dtype}, shape "
                         f"{sims.shape}.")
    if not np.all(np.isfinite(sims)):
        raise ValueError("knn_sims holds NaN or infinite similarities.")
    if knn_indices is None:
        return sims
    idx = np.asarray(knn_indices)
    if idx.shape != sims.shape or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"knn_indices must be an integer array shaped like knn_sims "
                         f"{sims.shape}; got dtype {idx.dtype}, shape {idx.shape}.")
    if idx.size and (idx.min() < 0 or idx.max() >= len(idx)):
        raise ValueError(f"knn_indices holds rows outside [0, {len(idx)}): min {idx.min()}, "
                         f"max {idx.max()}.")
    return sims, idx


def check_per_face(name, values, n_samples):
    """A 1-d array of ``n_samples`` finite values, or a ValueError."""
    values = np.asarray(values)
    if values.shape != (n_samples,) or not np.issubdtype(values.dtype, np.number) \
            or not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be {n_samples} finite numbers, one per face; got dtype "
                         f"{values.dtype}, shape {values.shape}.")
    return values
