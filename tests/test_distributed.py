"""Past one machine: the row-parallel stages on a Dask cluster give the local bits.

A LocalCluster of two worker processes (not threads), as a real cluster
would run them: kNN queries, embedding blocks and the re-labelling embedding
go through joblib's Dask backend; ``transform`` takes and returns dask arrays.
"""

import os

import joblib
import numpy as np
import pytest

from skdanet import DANetEmbedder, DensityChainClustering
from skdanet.datasets import make_face_like

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

# Small blocks, so that every stage splits into several tasks.
BLOCKS = dict(inference_batch_size=256, graph_method="ivf")


@pytest.fixture(scope="module")
def client():
    # Starting worker processes sets OMP_NUM_THREADS=1 (and the like) in this
    # process's environment for good; the other tests must not inherit it.
    environment = dict(os.environ)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            yield client
    finally:
        os.environ.clear()
        os.environ.update(environment)


@pytest.fixture(scope="module")
def faces():
    return make_face_like(1500, random_state=0)


def test_label_free_fit_on_a_dask_cluster_gives_the_local_labels(client, faces):
    X, _ = faces
    params = dict(k=10, n_epochs=3, random_state=0, **BLOCKS)
    local = DensityChainClustering(n_jobs=1, **params).fit(X)
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        remote = DensityChainClustering(**params).fit(X)
    # The blocks ran on the workers, in both of them.
    assert len(stream.data) >= 10
    assert len({task["worker"] for task in stream.data}) == 2
    assert len(np.unique(local.labels_)) > 10
    np.testing.assert_array_equal(remote.embedding_, local.embedding_)
    np.testing.assert_array_equal(remote.labels_, local.labels_)


def test_transform_of_a_dask_array_is_lazy_and_equals_the_local_transform(client, faces):
    X, y = faces
    emb = DANetEmbedder(k=10, n_epochs=3, random_state=0, **BLOCKS).fit(X[:1000], y[:1000])
    new = da.from_array(X[1000:], chunks=(128, 64))
    out = emb.transform(new)
    assert isinstance(out, da.Array) and out.shape == (500, emb.network_.config["n_components"])
    np.testing.assert_array_equal(out.compute(), emb.transform(X[1000:]))
    out32 = emb.transform(new.astype(np.float32))
    assert out32.dtype == np.float32 and out32.compute().dtype == np.float32


def test_a_dask_array_of_the_wrong_width_is_refused(faces):
    X, _ = faces
    emb = DANetEmbedder(k=10, n_epochs=1, random_state=0).fit(X[:300])
    with pytest.raises(ValueError, match="fitted on 128 features"):
        emb.transform(da.from_array(X[:10, :64]))
