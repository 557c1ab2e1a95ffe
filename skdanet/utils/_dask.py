"""Dask arrays through a fitted transformer, block by block (dask imported only when given one)."""

import numpy as np


def is_dask_array(X):
    """Whether ``X`` is a dask array (without importing dask)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "map_blocks")


def transform_dask_array(X, transform, *, n_features_in, n_features_out):
    """``transform`` applied to each row block of the dask array ``X``: a lazy dask array.

    ``transform`` (a fitted estimator's bound method) enters the task graph
    once, as one delayed object, so each worker receives the estimator once
    rather than with every block. Rows are independent in ``transform``, so
    the result equals ``transform`` of the whole array.
    """
    import dask

    if X.ndim != 2 or X.shape[1] != n_features_in:
        raise ValueError(f"X has shape {X.shape} but this estimator was fitted on "
                         f"{n_features_in} features; give a 2-d array of {n_features_in} "
                         "columns.")
    X = X.rechunk({1: -1})
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    return X.map_blocks(_apply, dask.delayed(transform, traverse=False), dtype=dtype,
                        chunks=(X.chunks[0], (n_features_out,)),
                        meta=np.empty((0, n_features_out), dtype=dtype))


def _apply(block, transform):
    return transform(block)
