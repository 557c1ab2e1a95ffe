"""Every class of bad input: a clear error (type and message), or the right result."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skdanet import DANetEmbedder, DensityChainClustering
from skdanet.graph import knn_graph
from skdanet.metrics import bcubed_f_score, pairwise_f_score

from .conftest import clustered_unit_rows

FAST = dict(k=5, n_epochs=1, hidden_size=8, random_state=0)
ESTIMATORS = [DANetEmbedder, DensityChainClustering]


def data(n=40, d=6):
    X, y = clustered_unit_rows(n, d, 4, 0.4, seed=1)
    return X, y


def run(est, X, y=None):
    """fit, then the estimator's output (transform or labels)."""
    est.fit(X, y)
    return est.transform(X) if hasattr(est, "transform") else est.labels_


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize(
    "bad, message",
    [
        (np.nan, "NaN"),
        (np.inf, "infinity"),
    ],
)
def test_nan_inf_rejected(Est, bad, message):
    X, _ = data()
    X[3, 2] = bad
    with pytest.raises(ValueError, match=message):
        Est(**FAST).fit(X)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_empty_and_one_sample(Est):
    with pytest.raises(ValueError, match="0 sample"):
        Est(**FAST).fit(np.empty((0, 4)))
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        Est(**FAST).fit(np.ones((1, 4)))
    with pytest.raises(ValueError, match="0 feature"):
        Est(**FAST).fit(np.empty((5, 0)))


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_one_feature_works(Est):
    X = np.random.default_rng(0).normal(size=(30, 1))
    out = run(Est(**FAST), X)
    assert len(out) == 30 and np.all(np.isfinite(out))


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_k_larger_than_n_warns_and_clamps(Est):
    X, _ = data(n=6)
    with pytest.warns(UserWarning, match="n_neighbors=5 but only 5|n_neighbors=50 but only 5"):
        est = Est(**{**FAST, "k": 50}).fit(X)
    assert est.k_ == 5 if hasattr(est, "k_") else est.embedder_.k_ == 5


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_identical_rows_and_many_duplicates(Est):
    X = np.tile(np.arange(1.0, 7.0), (25, 1))
    out = run(Est(**FAST), X)
    assert np.all(np.isfinite(out))
    if Est is DensityChainClustering:
        assert len(np.unique(out)) == 1  # one face, photographed 25 times
    X2, _ = data()
    X2 = np.vstack([X2] + [X2[:5]] * 10)
    assert np.all(np.isfinite(run(Est(**FAST), X2)))


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_zero_norm_rows_warn(Est):
    X, _ = data()
    X[4] = 0
    with pytest.warns(UserWarning, match="zero norm.*row 4"):
        out = run(Est(**FAST), X)
    assert np.all(np.isfinite(out))


def test_graph_core_rejects_zero_rows():
    X, _ = data()
    X[1] = 0
    with pytest.raises(ValueError, match="zero norm"):
        knn_graph(X, 3)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_unnormalised_rows_are_normalised(Est):
    X, y = data()
    scale = np.random.default_rng(0).uniform(0.1, 50, size=(len(X), 1))
    a = run(Est(**FAST), X, y)
    b = run(Est(**FAST), X * scale, y)
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_int_and_bool_input_converted(Est, dtype):
    X = (np.random.default_rng(0).uniform(size=(30, 5)) * 4).astype(dtype)
    X[X.sum(1) == 0, 0] = 1
    out = run(Est(**FAST), X)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_object_and_string_input(Est):
    X, _ = data()
    run(Est(**FAST), X.astype(object))  # numbers as objects: converted
    bad = X.astype(str).astype(object)
    bad[0, 0] = "face"
    with pytest.raises(ValueError, match="could not convert|Unable to convert"):
        Est(**FAST).fit(bad)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_lists_accepted(Est):
    X, y = data()
    np.testing.assert_allclose(run(Est(**FAST), X.tolist(), y.tolist()), run(Est(**FAST), X, y))


def test_dataframe_feature_names_checked_at_transform():
    X, y = data()
    cols = [f"f{i}" for i in range(X.shape[1])]
    emb = DANetEmbedder(**FAST).fit(pd.DataFrame(X, columns=cols), y)
    assert list(emb.feature_names_in_) == cols
    with pytest.raises(ValueError, match="feature names"):
        emb.transform(pd.DataFrame(X, columns=cols[::-1]))


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_sparse_rejected(Est):
    X, _ = data()
    with pytest.raises(TypeError, match="dense data is required"):
        Est(**FAST).fit(sp.csr_matrix(X))


def test_readonly_memmap(tmp_path):
    X, y = data()
    path = tmp_path / "X.npy"
    np.save(path, X)
    Xm = np.load(path, mmap_mode="r")
    out = DANetEmbedder(**FAST).fit(Xm, y).transform(Xm)
    np.testing.assert_allclose(out, DANetEmbedder(**FAST).fit(X, y).transform(X))


def test_wrong_n_features_at_transform():
    X, y = data()
    emb = DANetEmbedder(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but DANetEmbedder is expecting 6"):
        emb.transform(X[:, :5])


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_labels_one_identity_or_all_singletons(Est):
    X, _ = data()
    assert np.all(np.isfinite(run(Est(**FAST), X, np.zeros(len(X)))))
    assert np.all(np.isfinite(run(Est(**FAST), X, np.arange(len(X)))))
    with pytest.raises(ValueError, match="1-d array of 40 identity labels"):
        Est(**FAST).fit(X, np.zeros(3))


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize(
    "param, value",
    [("k", 0), ("tau", 1.5), ("tau", "otsu"), ("max_chain_length", 0), ("n_epochs", 0),
     ("learning_rate", -1.0), ("chain_network", "gru"), ("pair_margin", 1.0),
     ("pair_margin", "loose"), ("validation_fraction", 1.0), ("graph_method", "annoy")],
)
def test_out_of_range_parameters(Est, param, value):
    X, _ = data()
    with pytest.raises(ValueError, match=f"'{param}' parameter of {Est.__name__} must be"):
        Est(**{**FAST, param: value}).fit(X)


@pytest.mark.parametrize("param, value", [("merge_eps", 0.0), ("merge_eps", "always"),
                                          ("eps", -0.1), ("dbscan_algorithm", "hdbscan")])
def test_clusterer_out_of_range_parameters(param, value):
    X, _ = data()
    with pytest.raises(ValueError, match=f"'{param}' parameter of DensityChainClustering must be"):
        DensityChainClustering(**{**FAST, param: value}).fit(X)


def test_bad_device_is_clear():
    X, _ = data()
    with pytest.raises(ValueError, match="device='tpu0'"):
        DANetEmbedder(**{**FAST, "device": "tpu0"}).fit(X)


def test_metrics_bad_input():
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        pairwise_f_score([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        bcubed_f_score([], [])


# deadline: each example must finish in 30 s (no hangs).
@settings(max_examples=40, deadline=30_000, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 25),
    d=st.integers(0, 5),
    fill=st.sampled_from(["normal", "zeros", "const", "nan", "huge", "tiny", "duplicates",
                          "near_duplicates"]),
    k=st.integers(1, 40),
    length=st.integers(1, 6),
    tau=st.one_of(st.just("auto"), st.floats(-1, 1)),
    supervised=st.booleans(),
    Est=st.sampled_from(ESTIMATORS),
)
def test_fuzz_valid_result_or_clear_error(n, d, fill, k, length, tau, supervised, Est):
    rng = np.random.default_rng(n * 31 + d)
    X = {
        "normal": lambda: rng.normal(size=(n, d)),
        "zeros": lambda: np.zeros((n, d)),
        "const": lambda: np.full((n, d), 3.0),
        "nan": lambda: np.where(rng.random((n, d)) < 0.2, np.nan, 1.0),
        "huge": lambda: rng.normal(size=(n, d)) * 1e300,
        "tiny": lambda: rng.normal(size=(n, d)) * 1e-300,
        # A few distinct rows, each repeated; and rows a hair apart (3e-8).
        "duplicates": lambda: rng.normal(size=(max(1, n // 4), d))[rng.integers(0, max(1, n // 4), n)],
        "near_duplicates": lambda: 1.0 + 3e-8 * rng.normal(size=(n, d)),
    }[fill]()
    y = rng.integers(0, 3, size=n) if supervised else None
    params = dict(k=k, max_chain_length=length, tau=tau, n_epochs=1, hidden_size=4,
                  random_state=0)
    invalid = n < 2 or d == 0 or bool(np.isnan(X).any())
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", UserWarning)  # clamped k, zero rows: warned, valid
        if invalid:
            with pytest.raises(ValueError, match="sample|feature|NaN"):
                run(Est(**params), X, y)
            return
        out = run(Est(**params), X, y)
        again = run(Est(**params), X, y)
    np.testing.assert_array_equal(out, again)  # same seed, same result
    if Est is DANetEmbedder:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", UserWarning)
            np.testing.assert_array_equal(Est(**params).fit_transform(X, y), out)
    if Est is DANetEmbedder:
        assert out.shape == (n, d)
        assert np.all(np.isfinite(out))
        # Every face with a direction is embedded as a unit vector scaled to
        # DBSCAN's units (output_scale_).
        scale = Est(**params).fit(X, y).output_scale_
        assert np.isfinite(scale) and scale > 0
        has_direction = np.abs(X).max(axis=1) > 0
        np.testing.assert_allclose(np.linalg.norm(out[has_direction], axis=1), scale, rtol=1e-6)
    else:
        assert out.shape == (n,)
        clusters = np.unique(out[out >= 0])
        np.testing.assert_array_equal(clusters, np.arange(len(clusters)))  # consecutive
        assert np.all(out >= -1)


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e150, 1e300])
def test_extreme_magnitudes_normalise_exactly(scale):
    from skdanet.graph import l2_normalize

    X, _ = data()
    np.testing.assert_allclose(l2_normalize(X * scale), X, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("Exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_fit_leaves_estimator_unfitted(monkeypatch, Exc):
    import skdanet.model._trainer as trainer

    X, y = data()
    X0 = X.copy()
    fitted = DANetEmbedder(**FAST).fit(X, y)  # a fitted estimator, then refit fails

    def boom(*args, **kwargs):
        raise Exc("interrupted")

    monkeypatch.setattr(trainer._Trainer, "run_epoch", boom)
    fresh = DANetEmbedder(**FAST)
    with pytest.raises(Exc):
        fresh.fit(X, y)
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(fresh))
    with pytest.raises(Exc):
        fitted.fit(X, y)
    assert not any(k.endswith("_") and not k.startswith("_") for k in vars(fitted))
    np.testing.assert_array_equal(X, X0)


def test_load_rejects_other_format_version_and_mismatched_arrays(tmp_path):
    import json

    from skdanet import TrainedNetwork

    X, y = data()
    net = DANetEmbedder(**FAST).fit(X, y).network_
    net.save(tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(str(arrays["header"][()]))

    header_v2 = dict(header, version=2)
    np.savez(tmp_path / "v2.npz", **{**arrays, "header": np.array(json.dumps(header_v2))})
    with pytest.raises(ValueError, match="format version 2; this skdanet reads version 1"):
        TrainedNetwork.load(tmp_path / "v2.npz")

    wrong = dict(arrays)
    key = next(k for k in wrong if k.startswith("w/"))
    wrong[key] = np.zeros((3, 3), dtype=np.float32)
    np.savez(tmp_path / "shape.npz", **wrong)
    with pytest.raises(ValueError, match="do not match the declared architecture|the architecture needs"):
        TrainedNetwork.load(tmp_path / "shape.npz")

    bad_config = dict(header, config=dict(header["config"], hidden_size="big"))
    np.savez(tmp_path / "cfg.npz", **{**arrays, "header": np.array(json.dumps(bad_config))})
    with pytest.raises(ValueError, match="hidden_size"):
        TrainedNetwork.load(tmp_path / "cfg.npz")


@pytest.mark.parametrize(
    "X, error, message",
    [
        (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError, "NaN"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), ValueError, "infinity"),
        (np.ones((1, 3)), ValueError, "minimum of 2 is required"),
        (np.ones(5), ValueError, "Expected 2D array"),
        (sp.csr_matrix(np.eye(3)), TypeError, "dense data is required"),
    ],
)
def test_graph_core_bad_input(X, error, message):
    from skdanet.graph import build_density_graph

    with pytest.raises(error, match=message):
        knn_graph(X, 2)
    with pytest.raises(error, match=message):
        build_density_graph(X, 2)


def test_split_identities_bad_input():
    from skdanet.datasets import split_identities

    with pytest.raises(ValueError, match="test_size must be in"):
        split_identities([0, 1, 2], test_size=1.5)
    with pytest.raises(ValueError, match="at least two identities"):
        split_identities([4, 4, 4])


def test_load_missing_file(tmp_path):
    from skdanet import TrainedNetwork

    with pytest.raises(FileNotFoundError):
        TrainedNetwork.load(tmp_path / "nope.npz")


def test_tiny_network_radius_still_clusters():
    # Label-free radius sqrt(2 - 2 * 0.999) = 0.045, below the link tightening
    # (0.05): the link radius must stay positive instead of failing deep inside.
    X, _ = data()
    model = DensityChainClustering(**{**FAST, "pair_margin": 0.999, "query_expansion": 0}).fit(X)
    assert 0 < model.eps_ < model.merge_eps_ <= model.network_.config["eps"]
    assert model.labels_.shape == (len(X),)
    expanded = DensityChainClustering(**{**FAST, "pair_margin": 0.999}).fit(X)
    assert 0 < expanded.eps_ <= expanded.merge_eps_


@pytest.mark.parametrize("as_strings", [False, True])
def test_unknown_identity_minus_one_is_a_face_of_its_own_not_one_person(as_strings):
    # -1 reads as noise in labels_ and in the metrics; in y it must not make
    # all those faces one shared identity: training gets each its own code.
    X, y = data()
    y_unknown = np.where(y == 0, -1, y)
    if as_strings:
        y_unknown = y_unknown.astype(str)
    codes = DANetEmbedder(**FAST)._checked_labels(y_unknown, len(y))
    unknown = y == 0
    assert len(set(codes[unknown])) == unknown.sum()
    assert not set(codes[unknown]) & set(codes[~unknown])
    known = np.flatnonzero(~unknown)
    same_code = codes[known][:, None] == codes[known][None, :]
    np.testing.assert_array_equal(same_code, y[known][:, None] == y[known][None, :])
    DANetEmbedder(**FAST).fit(X, y_unknown)  # and it trains


@pytest.mark.parametrize("bad, message", [
    (lambda y: np.where(y == 0, np.nan, y.astype(float)), "NaN"),
    (lambda y: np.array([None if v == 0 else int(v) for v in y], dtype=object), "None"),
    (lambda y: np.array([1 if v == 0 else "a" for v in y], dtype=object), "label types"),
])
def test_bad_labels_get_a_clear_error(bad, message):
    X, y = data()
    with pytest.raises(ValueError, match=message):
        DANetEmbedder(**FAST).fit(X, bad(y))


def test_interrupted_save_leaves_the_previous_file(tmp_path, monkeypatch):
    from skdanet import TrainedNetwork

    X, y = data()
    net = DANetEmbedder(**FAST).fit(X, y).network_
    path = tmp_path / "net.npz"
    net.save(path)
    before = path.read_bytes()

    def interrupted(f, **arrays):
        f.write(b"PK")  # a partial zip, then the process is stopped
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        net.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]  # no temporary left
    monkeypatch.undo()
    assert TrainedNetwork.load(path).config == net.config


def test_fits_in_threads_leave_torch_global_state_as_it_was():
    import threading

    import torch

    X, y = data()
    threads_before = torch.get_num_threads()
    det_before = torch.are_deterministic_algorithms_enabled()
    results = {}

    def fit(i):
        results[i] = DANetEmbedder(**{**FAST, "n_jobs": 2}).fit_transform(X, y)

    workers = [threading.Thread(target=fit, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert torch.get_num_threads() == threads_before
    assert torch.are_deterministic_algorithms_enabled() == det_before
    for i in range(1, 4):
        np.testing.assert_array_equal(results[0], results[i])


def test_torch_sections_leave_the_compilers_determinism_flag_alone():
    # The deterministic-kernels switch is set and restored around torch work;
    # torch's compiler keeps its own flag, which a fit must not change.
    import torch
    import torch._inductor.config as inductor_config

    from skdanet.model._torch_state import deterministic_torch

    before = inductor_config.deterministic
    try:
        inductor_config.deterministic = True  # a user's choice, with kernels left free
        with deterministic_torch(1):
            assert torch.are_deterministic_algorithms_enabled()
            assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert inductor_config.deterministic is True
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        inductor_config.deterministic = before


@pytest.mark.parametrize("device", ["meta", "cpu:0:1", 3.5])
def test_unusable_device_is_a_clear_error(device):
    X, _ = data()
    with pytest.raises(ValueError, match="device"):
        DANetEmbedder(**{**FAST, "device": device}).fit(X)


@pytest.mark.parametrize("random_state", [0, np.random.RandomState(0), np.random.default_rng(0)])
def test_every_random_state_kind_is_accepted(random_state):
    from skdanet.datasets import make_face_like

    X, y = make_face_like(200, random_state=random_state)
    assert X.shape == (200, 128)
    DANetEmbedder(**{**FAST, "random_state": random_state}).fit(X[:60], y[:60])


def test_fit_transform_equals_fit_then_transform_with_exact_duplicates():
    rng = np.random.default_rng(14 * 31 + 2)
    X = rng.normal(size=(3, 2))[rng.integers(0, 3, 14)]
    params = dict(k=4, max_chain_length=2, n_epochs=1, hidden_size=4, random_state=0)
    np.testing.assert_array_equal(DANetEmbedder(**params).fit_transform(X),
                                  DANetEmbedder(**params).fit(X).transform(X))
    # Identical faces, one embedding.
    Z = DANetEmbedder(**params).fit_transform(X)
    for row in np.unique(X, axis=0):
        same = np.all(X == row, axis=1)
        assert len(np.unique(Z[same], axis=0)) == 1


def test_fit_transform_equals_fit_then_transform_with_near_duplicates():
    # Rows a hair apart: more than k rows are as similar to a face as the
    # face itself, so a search can miss its own copy; transform must still
    # recognise each fitted face.
    rng = np.random.default_rng(11 * 31 + 2)
    X = 1.0 + 3e-8 * rng.normal(size=(11, 2))
    params = dict(k=1, max_chain_length=1, n_epochs=1, hidden_size=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        np.testing.assert_array_equal(DANetEmbedder(**params).fit_transform(X),
                                      DANetEmbedder(**params).fit(X).transform(X))
