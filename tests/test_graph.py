"""Graph core against brute-force references written plainly here."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skdanet.datasets import make_face_like
from skdanet.graph import (
    NeighborIndex,
    build_density_graph,
    chain_roots,
    density,
    knn_graph,
    l2_normalize,
    otsu_threshold,
    pruned_cliques,
)

from .conftest import clustered_unit_rows

try:
    import hnswlib  # noqa: F401  (optional: pip install "skdanet[hnsw]")
except ImportError:
    HAVE_HNSWLIB = False
else:
    HAVE_HNSWLIB = True
needs_hnswlib = pytest.mark.skipif(not HAVE_HNSWLIB, reason="hnswlib is an optional extra")


def brute_knn(X, k):
    """Self first, then the k most similar other rows (ties: smaller index)."""
    S = X @ X.T
    n = len(X)
    sims, idx = [], []
    for i in range(n):
        others = sorted((j for j in range(n) if j != i), key=lambda j: (-S[i, j], j))[:k]
        idx.append([i] + others)
        sims.append([S[i, i]] + [S[i, j] for j in others])
    return np.array(sims), np.array(idx)


def brute_chain(i, X, idx, rank, stop, max_length):
    """Eq. 3 followed literally, one node at a time."""
    chain = [i]
    while len(chain) < max_length:
        c = chain[-1]
        cands = [u for u in idx[c, 1:] if rank[u] > rank[c]]
        if not cands:
            break
        best = max(cands, key=lambda u: (X[c] @ X[u], rank[u]))
        if X[c] @ X[best] < stop:
            break
        chain.append(best)
    return chain


def test_knn_exact_matches_brute_force(small_faces):
    X, _ = small_faces
    sims, idx = knn_graph(X, 10, method="exact")
    bs, bi = brute_knn(X, 10)
    np.testing.assert_array_equal(idx, bi)
    np.testing.assert_allclose(sims, bs, atol=1e-12)


def test_knn_normalises_a_copy():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 8)) * 7
    before = X.copy()
    sims, _ = knn_graph(X, 5)
    np.testing.assert_array_equal(X, before)
    np.testing.assert_allclose(sims[:, 0], 1.0)


def test_knn_clamps_k_with_warning():
    X, _ = clustered_unit_rows(6, 4, 2, 0.3, seed=2)
    with pytest.warns(UserWarning, match="n_neighbors=10 but only 5"):
        sims, idx = knn_graph(X, 10)
    assert idx.shape == (6, 6)
    assert all(sorted(row) == list(range(6)) for row in idx.tolist())


def test_knn_rejects_zero_rows():
    X = np.eye(4)
    X[2] = 0
    with pytest.raises(ValueError, match="zero norm.*row 2"):
        knn_graph(X, 2)


def test_knn_duplicate_rows_self_first():
    X, _ = clustered_unit_rows(40, 6, 3, 0.4, seed=3)
    X = np.vstack([X, X[:10], X[:10]])
    for method in ("exact", "ivf") + (("hnsw",) if HAVE_HNSWLIB else ()):
        sims, idx = knn_graph(X, 5, method=method)
        np.testing.assert_array_equal(idx[:, 0], np.arange(len(X)))
        # Each row's neighbours are other rows, and its duplicates come first.
        assert not (idx[:, 1:] == idx[:, :1]).any()
        np.testing.assert_allclose(sims[:10, 1:3], 1.0, atol=1e-6)


@needs_hnswlib
def test_hnsw_recall_on_20k():
    X, _ = clustered_unit_rows(20_000, 128, 2000, 0.6, seed=4)
    X = X.astype(np.float32)
    k = 10
    _, exact = knn_graph(X, k, method="exact")
    _, approx = knn_graph(X, k, method="hnsw", random_state=0, n_jobs=2)
    hits = sum(len(set(a[1:]) & set(e[1:])) for a, e in zip(approx, exact))
    assert hits / (len(X) * k) >= 0.99


def test_ivf_recall_on_20k_face_like():
    # Face-like data (identity structure calibrated on LFW), the case the index is
    # the default for; exact search is the reference.
    X = make_face_like(20_000, random_state=4)[0]
    k = 30
    _, exact = knn_graph(X, k, method="exact")
    _, approx = knn_graph(X, k, method="ivf", random_state=0, n_jobs=2)
    np.testing.assert_array_equal(approx[:, 0], np.arange(len(X)))
    hits = sum(len(set(a[1:]) & set(e[1:])) for a, e in zip(approx, exact))
    assert hits / (len(X) * k) >= 0.97
    # The nearest neighbour, which the density chains mostly follow, is found.
    assert np.mean(approx[:, 1] == exact[:, 1]) >= 0.995


def test_ivf_bounded_search_is_exact_when_every_list_is_probed():
    # The bound from each query's nearest list only prunes rows that cannot be
    # in its top k: probing every list must give the brute-force top k, in order.
    from skdanet.graph._ivf import IVFIndex

    rng = np.random.default_rng(11)
    X = rng.normal(size=(1500, 16))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    index = IVFIndex(X, random_state=0, list_size=50, n_probe=10_000)
    sims, idx = index.search(X[:300], 12)
    S = X[:300].astype(np.float32) @ X.astype(np.float32).T
    expected = np.argsort(-S, axis=1, kind="stable")[:, :12]
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(sims, np.take_along_axis(S, expected, axis=1), atol=1e-5)


def test_ivf_keeps_k_rows_when_many_tie_above_the_bound():
    # 500 identical faces: every query among them must get k of them, each once.
    from skdanet.graph._ivf import IVFIndex

    X = make_face_like(3000, random_state=8)[0]
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    X[:500] = X[0]
    sims, idx = IVFIndex(X, random_state=0, list_size=40, n_probe=6).search(X[:50], 20)
    assert (idx < 500).all() and (idx >= 0).all()
    assert all(len(set(row)) == 20 for row in idx)
    np.testing.assert_allclose(sims, 1.0, atol=1e-5)


def test_knn_graph_n_probe_reaches_the_index():
    # 3,000 faces make 8 lists: probing all of them is the exact graph, and
    # probing fewer finds fewer of the true neighbours, refinement included.
    X = make_face_like(3000, random_state=4)[0]
    exact = knn_graph(X, 10, method="exact")[1]

    def recall(n_probe):
        idx = knn_graph(X, 10, method="ivf", n_probe=n_probe)[1]
        return np.mean([len(np.intersect1d(a, b)) for a, b in zip(idx, exact)]) / 11

    np.testing.assert_array_equal(knn_graph(X, 10, method="ivf", n_probe=8)[1], exact)
    assert recall(1) < recall(2) < 1.0
    built = build_density_graph(l2_normalize(X), 10, method="ivf", n_probe=1)
    np.testing.assert_array_equal(built.knn_indices,
                                  knn_graph(X, 10, method="ivf", n_probe=1)[1])


def test_auto_probe_searches_the_lists_within_the_margin():
    # Against the rule written plainly: of each query's AUTO_PROBE_MAX nearest
    # lists, the AUTO_PROBE_MIN nearest and every one within the margin of
    # the nearest; none other. 200 lists, so that the cap matters too.
    from skdanet.graph import _ivf

    X = l2_normalize(make_face_like(4000, random_state=12)[0])
    index = _ivf.IVFIndex(X, random_state=0, list_size=20, n_probe="auto")
    Q = X[::7]
    probes = _ivf._probed_lists(Q, index.centroids, "auto")
    S = Q @ index.centroids.T
    np.testing.assert_array_equal(probes[:, 0], S.argmax(axis=1))
    counts = []
    for q, row in enumerate(probes):
        order = np.argsort(-S[q], kind="stable")[: _ivf.AUTO_PROBE_MAX]
        near = S[q, order] >= S[q, order[0]] - _ivf.AUTO_PROBE_MARGIN
        near[: _ivf.AUTO_PROBE_MIN] = True
        got = set(row[row >= 0].tolist())
        assert len(got) == (row >= 0).sum()  # no list twice
        differ = got.symmetric_difference(order[near].tolist())
        # Only lists on a boundary (the margin or the cap) may differ, by rounding.
        edge = [S[q, order[0]] - _ivf.AUTO_PROBE_MARGIN, S[q, order[-1]],
                S[q, order[_ivf.AUTO_PROBE_MIN - 1]]]
        assert all(min(abs(S[q, j] - e) for e in edge) < 1e-5 for j in differ)
        counts.append(len(got))
    # The number of lists is each query's own, between the floor and the cap.
    assert _ivf.AUTO_PROBE_MIN <= min(counts) < max(counts) <= _ivf.AUTO_PROBE_MAX


def test_auto_probe_lists_on_every_path():
    # Rows with few, some and many lists within the margin, and ties: each
    # row gets the number of lists the rule says (the floor, its count within
    # the margin, or the cap), and they are its most similar ones, the most
    # similar first, whichever path (comparison or selection) found them.
    from skdanet.graph import _ivf

    rng = np.random.default_rng(5)
    S = np.round(rng.random((300, 160)), 2).astype(np.float32)
    S[:100] = np.round(0.98 + 0.03 * S[:100], 3)  # more lists within the margin than the cap
    S[100:200] = np.round(0.9 + 0.1 * S[100:200], 2)  # between the floor and the cap
    S[200:, 7] = 2.0  # one list far ahead: fewer than the floor within the margin
    n_min, n_max = 16, 120
    probes = _ivf._lists_within_margin(S, n_min, n_max)
    within = (S >= S.max(axis=1, keepdims=True) - _ivf.AUTO_PROBE_MARGIN).sum(axis=1)
    assert (within[:100] > n_max).all() and (within[200:] < n_min).all()
    assert ((within[100:200] >= n_min) & (within[100:200] <= n_max)).all()
    np.testing.assert_array_equal(S[np.arange(300), probes[:, 0]], S.max(axis=1))
    for row, lists, count in zip(S, probes, within):
        chosen = lists[lists >= 0]
        assert len(chosen) == len(set(chosen)) == min(max(count, n_min), n_max)
        others = np.setdiff1d(np.arange(len(row)), chosen)
        assert row[chosen].min() >= row[others].max()


def test_knn_graph_auto_probe_finds_more_than_its_floor():
    # 20,000 faces, 52 lists: "auto" searches at least the 16 nearest lists of
    # each face and more where lists crowd around it, so it finds more true
    # neighbours than 16 fixed probes and fewer than every list (exact); its
    # graph is the same for any n_jobs.
    X = make_face_like(20_000, random_state=13)[0]
    Xn = l2_normalize(X)
    rows = np.arange(0, 20_000, 40)
    exact = NeighborIndex(Xn, method="exact").search(Xn[rows], 11)[1]

    def recall(idx):
        return np.mean([len(np.intersect1d(a, b)) for a, b in zip(idx[rows], exact)]) / 11

    auto = knn_graph(X, 10, method="ivf", n_probe="auto", n_jobs=1)[1]
    assert recall(knn_graph(X, 10, method="ivf", n_probe=16)[1]) < recall(auto) < 1.0
    np.testing.assert_array_equal(knn_graph(X, 10, method="ivf", n_probe="auto", n_jobs=2)[1],
                                  auto)


def test_knn_graph_refuses_an_unknown_n_probe():
    X = make_face_like(200, random_state=0)[0]
    for bad in ("fast", 0, 2.5):
        with pytest.raises(ValueError, match="n_probe must be"):
            knn_graph(X, 5, method="ivf", n_probe=bad)


def test_ivf_same_for_any_n_jobs_and_row_independent():
    X = make_face_like(4000, random_state=5)[0]
    index1 = NeighborIndex(X, method="ivf", random_state=3, n_jobs=1)
    index2 = NeighborIndex(X, method="ivf", random_state=3, n_jobs=2)
    a = index1.search(X, 9)
    b = index2.search(X, 9)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    # A query's answer does not depend on the other queries searched with it.
    rows = np.array([5, 900, 3999, 17])
    part = index2.search(X[rows], 9)
    np.testing.assert_array_equal(part[1], a[1][rows])
    np.testing.assert_array_equal(part[0], a[0][rows])


def test_ivf_falls_back_to_exact_when_lists_are_short():
    # About 8 rows per list, 2 lists probed, 20 neighbours asked: many queries'
    # lists are too short, and those queries must get the exact answer.
    from skdanet.graph._ivf import IVFIndex

    X = make_face_like(300, random_state=6)[0].astype(np.float64)
    exact = NeighborIndex(X, method="exact").search(X, 20)
    raw = IVFIndex(X, random_state=0, n_probe=2, list_size=8)
    short = (raw.search(X, 20)[1] < 0).any(axis=1)
    assert short.mean() > 0.1
    ivf = NeighborIndex(X, method="exact")
    ivf.method, ivf._ivf = "ivf", raw
    sims, idx = ivf.search(X, 20)
    assert (idx >= 0).all()
    np.testing.assert_array_equal(idx[short], exact[1][short])
    np.testing.assert_array_equal(sims[short], exact[0][short])


@needs_hnswlib
def test_hnsw_deterministic_for_seed():
    X, _ = clustered_unit_rows(3000, 32, 50, 0.5, seed=5)
    a = knn_graph(X, 8, method="hnsw", random_state=7, n_jobs=2)
    b = knn_graph(X, 8, method="hnsw", random_state=7, n_jobs=1)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])


def test_density_is_eq2(small_faces):
    X, _ = small_faces
    sims, idx = knn_graph(X, 7)
    rho = density(sims)
    expected = [sum(X[i] @ X[j] for j in idx[i, 1:]) for i in range(len(X))]
    np.testing.assert_allclose(rho, expected)


def test_background_is_the_farthest_searched_neighbour(small_faces):
    # k=7 searches SPLIT_NEIGHBORS=30 neighbours per face: the background is
    # the 30th most similar other face, whatever k keeps.
    X, _ = small_faces
    graph = build_density_graph(X, 7)
    S = X @ X.T
    np.fill_diagonal(S, -np.inf)
    thirtieth = -np.sort(-S, axis=1)[:, 29]
    np.testing.assert_allclose(graph.background_sim, thirtieth, rtol=0, atol=1e-6)
    assert graph.knn_sims.shape[1] == 8


def test_stands_out_compares_distances_to_the_background(small_faces):
    X, _ = small_faces
    graph = build_density_graph(X, 7)
    sims = graph.knn_sims[:, 1]
    expected = [(1 - s) * 2.0 <= 1 - b for s, b in zip(sims, graph.background_sim)]
    np.testing.assert_array_equal(graph.stands_out(sims), expected)
    # Closer than the background by more than the contrast; never for NaN.
    assert graph.stands_out(np.ones(len(X))).all()
    assert not graph.stands_out(graph.background_sim).any()
    assert not graph.stands_out(np.full(len(X), np.nan)).any()


def test_stranger_similarity_is_the_lower_quartile_of_pair_similarities(small_faces):
    from skdanet.graph import stranger_similarity

    X, _ = small_faces
    S = X.astype(np.float64) @ X.T.astype(np.float64)
    every_pair = S[np.triu_indices(len(X), k=1)]
    # Few enough rows for the pairs asked: every pair, exactly.
    assert stranger_similarity(X, n_pairs=every_pair.size) == pytest.approx(
        np.percentile(every_pair, 25), abs=1e-9)
    # Sampled pairs: near the quartile of every pair, and the same every call.
    sampled = stranger_similarity(X, n_pairs=2000)
    assert sampled == stranger_similarity(X, n_pairs=2000)
    assert 0.2 < np.mean(every_pair <= sampled) < 0.3
    assert build_density_graph(X, 7).stranger_sim == stranger_similarity(X)
    assert np.isnan(stranger_similarity(X[:1]))


def test_stranger_similarity_never_pairs_a_face_with_itself():
    from skdanet.graph import stranger_similarity

    # Orthogonal rows: distinct rows pair at 0, a row with itself at 1, so
    # the largest sampled similarity is 1 if any pair is a self-pair.
    X = np.eye(300)
    assert stranger_similarity(X, n_pairs=20_000, percentile=100) == 0.0
    assert stranger_similarity(X[:20], percentile=100) == 0.0


@pytest.mark.parametrize("stop", [-1.0, 0.5, 0.8])
@pytest.mark.parametrize("max_length", [1, 3, 6])
def test_chains_match_brute_force(small_faces, stop, max_length):
    X, _ = small_faces
    g = build_density_graph(X, 8, tau=0.5, stop_threshold=stop, max_length=max_length)
    for i in range(len(X)):
        expected = brute_chain(i, X, g.knn_indices, g.rank, stop, max_length)
        got = [c for c in g.chains[i] if c >= 0]
        assert got == expected


def test_chain_properties(small_faces):
    X, _ = small_faces
    stop, L = 0.6, 5
    g = build_density_graph(X, 8, tau=0.7, stop_threshold=stop, max_length=L)
    for chain in g.chains:
        chain = [c for c in chain if c >= 0]
        rho = g.density[chain]
        # strictly increasing density (or equal density with a higher tie-break)
        assert all(g.rank[a] < g.rank[b] for a, b in zip(chain, chain[1:]))
        assert np.all(np.diff(rho) >= 0)
        # each step's similarity is at least the stop threshold
        assert all(X[a] @ X[b] >= stop - 1e-12 for a, b in zip(chain, chain[1:]))
        # ends at max length, or where no kNN candidate is higher and similar enough
        if len(chain) < L:
            last = chain[-1]
            nb = g.knn_indices[last, 1:]
            ok = [u for u in nb if g.rank[u] > g.rank[last] and X[last] @ X[u] >= stop]
            assert ok == []


def test_cliques_satisfy_eq4(small_faces):
    X, _ = small_faces
    tau = 0.6
    sims, idx = knn_graph(X, 9)
    indptr, members, msims = pruned_cliques(sims, idx, tau)
    for c in range(len(X)):
        row = members[indptr[c] : indptr[c + 1]]
        assert row[0] == c
        expected = {u for u in idx[c, 1:] if X[u] @ X[c] > tau}
        assert set(row[1:].tolist()) == expected
        np.testing.assert_allclose(msims[indptr[c] : indptr[c + 1]], X[row] @ X[c])


def test_equal_densities_terminate():
    # Vertices of a regular simplex: every density ties exactly.
    X = np.eye(6)
    X = np.vstack([X, X, X])  # and every row duplicated
    g = build_density_graph(X, 4, tau=-1.0, stop_threshold=-1.0, max_length=50)
    roots = chain_roots(g.parent)
    assert np.all(g.parent[roots] == -1)
    for chain in g.chains:
        chain = chain[chain >= 0]
        assert np.all(np.diff(g.rank[chain]) > 0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(5, 60), k=st.integers(1, 8))
def test_permuting_rows_permutes_outputs(seed, n, k):
    X, _ = clustered_unit_rows(n, 5, 3, 0.5, seed=seed)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    inv = np.argsort(perm)
    a = build_density_graph(X, k, tau=0.3, max_length=4)
    b = build_density_graph(X[perm], k, tau=0.3, max_length=4)
    # Row i of b is row perm[i] of a; node ids map through inv.
    np.testing.assert_allclose(b.density, a.density[perm], rtol=1e-12)
    mapped = np.where(a.chains >= 0, inv[np.maximum(a.chains, 0)], -1)
    np.testing.assert_array_equal(b.chains, mapped[perm])
    np.testing.assert_array_equal(np.sort(b.knn_indices[:, 1:], axis=1),
                                  np.sort(inv[a.knn_indices[perm, 1:]], axis=1))


def test_otsu_separates_two_modes():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0.83, 0.03, 5000), rng.normal(0.95, 0.015, 1000)])
    t = otsu_threshold(v)
    assert 0.86 < t < 0.93


def test_l2_normalize_keeps_dtype():
    X = np.arange(1, 7, dtype=np.float32).reshape(3, 2)
    Z = l2_normalize(X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, rtol=1e-6)


def test_hnsw_without_hnswlib_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_hnswlib(name, *args, **kwargs):
        if name == "hnswlib":
            raise ImportError("No module named 'hnswlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hnswlib)
    X, _ = clustered_unit_rows(40, 6, 3, 0.4, seed=3)
    with pytest.raises(ValueError, match=r"skdanet\[hnsw\]"):
        knn_graph(X, 5, method="hnsw")


@pytest.mark.parametrize("values", [[1.0, 1.0 + 2**-52], [0.5, 0.5 + 1e-15, 0.5 + 3e-15],
                                    [3e-8 * i + 0.9 for i in range(5)]])
def test_otsu_threshold_on_near_identical_values(values):
    t = otsu_threshold(values)
    assert min(values) <= t <= max(values)


def test_near_duplicate_rows_with_automatic_tau():
    from skdanet import DANetEmbedder

    rng = np.random.default_rng(0)
    X = np.ones((30, 8)) + 3e-8 * rng.standard_normal((30, 8))
    Z = DANetEmbedder(k=5, n_epochs=1, hidden_size=4, random_state=0).fit_transform(X)
    assert Z.shape == (30, 8) and np.all(np.isfinite(Z))


def test_parent_forest_functions_refuse_bad_parents_instead_of_looping():
    from skdanet.graph import chain_roots, density_chains, follow_parents

    with pytest.raises(ValueError, match="not a forest"):
        chain_roots(np.array([1, 2, 0, -1]))  # a cycle 0 -> 1 -> 2 -> 0
    with pytest.raises(ValueError, match="outside"):
        chain_roots(np.array([5, -1]))
    with pytest.raises(ValueError, match="integer"):
        density_chains(np.array([0.5, -1.0]), 3)
    with pytest.raises(ValueError, match="length"):
        follow_parents(np.array([0]), np.array([-1]), -2)
    # A long path (depth n) still resolves: the bound is on jumps, not depth.
    n = 1000
    path = np.r_[np.arange(1, n), -1]
    np.testing.assert_array_equal(chain_roots(path), np.full(n, n - 1))


def test_build_times_the_search_apart_from_the_rest_and_drops_the_callback(small_faces):
    from contextlib import contextmanager

    from skdanet.graph import DensityGraph

    X = l2_normalize(small_faces[0])
    stages, batches = [], []

    @contextmanager
    def stage_timer(name):
        stages.append(name)
        yield

    # The IVF search reports its chunks to ``progress``.
    g = DensityGraph.build(X, 10, method="ivf", progress=lambda *a: batches.append(a),
                           stage_timer=stage_timer)
    assert stages == ["kNN graph", "density and chains"] and batches
    assert g.index.progress is None  # not part of the graph, nor of its pickle
    plain = DensityGraph.build(X, 10, method="ivf")
    for name in ("knn_indices", "density", "rank", "parent", "chains"):
        np.testing.assert_array_equal(getattr(g, name), getattr(plain, name))
    assert (g.tau, g.similarity_split) == (plain.tau, plain.similarity_split)


def test_chain_memory_follows_the_chains_not_the_parameter(small_faces):
    from skdanet import DANetEmbedder
    from skdanet.graph import DensityGraph

    X, y = small_faces
    g = DensityGraph.build(X, 10, max_length=1000)
    longest = int((g.chains >= 0).sum(axis=1).max())
    assert g.chains.shape[1] == longest < 1000
    np.testing.assert_array_equal(g.chains, DensityGraph.build(X, 10, max_length=longest).chains)
    # The embedding does not depend on chain slots no chain fills.
    params = dict(k=10, n_epochs=2, hidden_size=8, random_state=0)
    a = DANetEmbedder(max_chain_length=1000, **params).fit(X, y)
    b = DANetEmbedder(max_chain_length=longest + 1, **params).fit(X, y)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.transform(X[:7] * 2), b.transform(X[:7] * 2))


def test_concurrent_ivf_searches_leave_blas_threads_as_they_were():
    import threading

    from threadpoolctl import threadpool_info

    from skdanet.graph._ivf import IVFIndex

    def blas_threads():
        return sorted((i["internal_api"], i["num_threads"]) for i in threadpool_info()
                      if i["user_api"] == "blas")

    before = blas_threads()
    X = make_face_like(3000, random_state=2)[0]
    index = IVFIndex(X, random_state=0, n_jobs=2, list_size=100, n_probe=4)
    workers = [threading.Thread(target=index.search, args=(X[i::8], 5)) for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert blas_threads() == before


def test_ivf_memory_stays_bounded_with_many_identical_rows():
    # Identical faces share one inverted list; its similarity block must not
    # grow with the square of its size (and the result must not change).
    import tracemalloc

    import skdanet.graph._ivf as ivf

    X = make_face_like(12_000, random_state=4)[0]
    X[:6000] = X[0]
    tracemalloc.start()
    sims, idx = knn_graph(X, 10, method="ivf", random_state=0, n_jobs=2)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 300 * 2**20, peak / 2**20  # one block for the list: 614 MB
    np.testing.assert_allclose(sims[:6000, 1:], 1.0, atol=1e-6)  # duplicates find each other
    original = ivf._LIST_BLOCK_ELEMENTS
    try:
        ivf._LIST_BLOCK_ELEMENTS = 2**40  # one block per list: the same graph
        unblocked = knn_graph(X, 10, method="ivf", random_state=0, n_jobs=2)
    finally:
        ivf._LIST_BLOCK_ELEMENTS = original
    # The same graph up to which of several identical faces fills a tied slot.
    np.testing.assert_array_equal(unblocked[0], sims)
    np.testing.assert_array_equal(X[unblocked[1]], X[idx])


def test_public_graph_functions_say_what_is_wrong_with_their_input(small_faces):
    from skdanet.graph import (
        chain_parents,
        clique_mask,
        density,
        density_rank,
        knn_graph,
        pruned_cliques,
    )

    X, _ = small_faces
    sims, idx = knn_graph(X, 5)
    rank = density_rank(density(sims), np.zeros(len(X)))
    bad_sims = sims.copy()
    bad_sims[3, 2] = np.nan
    with pytest.raises(ValueError, match="knn_sims must be a 2-d float array"):
        density(sims[:, 0])
    with pytest.raises(ValueError, match="NaN"):
        clique_mask(bad_sims, 0.5)
    with pytest.raises(ValueError, match="knn_indices must be an integer array"):
        pruned_cliques(sims, idx[:, :3], 0.5)
    with pytest.raises(ValueError, match="outside"):
        chain_parents(sims, idx + len(X), rank, 0.5)
    with pytest.raises(ValueError, match="rank must be"):
        chain_parents(sims, idx, rank[:-1], 0.5)
    with pytest.raises(ValueError, match="tie_key must be"):
        density_rank(density(sims), np.zeros(3))


def test_refinement_keeps_the_best_of_each_querys_neighbours_and_theirs():
    from skdanet.graph._knn import refine_through_neighbours, row_similarities

    rng = np.random.default_rng(0)
    R = rng.normal(size=(400, 16))
    R /= np.linalg.norm(R, axis=1, keepdims=True)
    # A poor search: 9 random rows each, sorted as a search returns them; the
    # lists to refine through: exact.
    Q = R[:50] + 0.01 * rng.normal(size=(50, 16))
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    idx = np.stack([rng.choice(400, 9, replace=False) for _ in range(50)])
    idx = np.take_along_axis(idx, np.argsort(-np.einsum("ij,ikj->ik", Q, R[idx]), axis=1), 1)
    through = np.argsort(-(R @ R.T), axis=1)[:, :9]
    sims, out = refine_through_neighbours(Q, R, row_similarities(Q, R, idx), idx, through,
                                          n_hops=3)
    for q in range(50):
        cand = np.unique(np.concatenate([idx[q], through[idx[q, :3]].ravel()]))
        best = cand[np.argsort(-(R[cand] @ Q[q]), kind="stable")[:9]]
        assert set(out[q]) == set(best)
        np.testing.assert_allclose(sims[q], np.sort(R[cand] @ Q[q])[::-1][:9])
    # Never worse than the search it starts from.
    before = np.sort(np.einsum("ij,ikj->ik", Q, R[idx]), axis=1)[:, ::-1]
    assert np.all(sims >= before - 1e-12)
    # Searched and new candidates alike: the bits of a product row by row.
    np.testing.assert_array_equal(sims, row_similarities(Q, R, out))


def test_refinement_hops_past_identical_rows_and_breaks_ties_by_index():
    from skdanet.graph._knn import refine_through_neighbours, row_similarities

    rng = np.random.default_rng(1)
    R = rng.normal(size=(300, 8))
    R[150:] = R[:150]  # every row twice: exact ties everywhere
    R /= np.linalg.norm(R, axis=1, keepdims=True)
    exact = np.argsort(-(R @ R.T), axis=1, kind="stable")
    through = exact[:, :6]
    # Fitted faces: each query is a reference row, itself and its copy first.
    Q = R[:40]
    idx = np.stack([np.concatenate([r[:2], rng.choice(np.setdiff1d(np.arange(300), r[:2]), 4,
                                                      replace=False)]) for r in exact[:40]])
    sims = row_similarities(Q, R, idx)
    order = np.stack([np.lexsort((i, -s)) for i, s in zip(idx, sims)])
    idx = np.take_along_axis(idx, order, axis=1)
    sims = np.take_along_axis(sims, order, axis=1)
    out_sims, out = refine_through_neighbours(Q, R, sims, idx, through, n_hops=2)
    for q in range(40):
        identical = np.all(R[idx[q]] == Q[q], axis=1)
        assert identical[:2].all() and not identical[2:].any()
        # The hops skip the two identical rows: columns 2 and 3.
        cand = np.unique(np.concatenate([idx[q], through[idx[q, 2:4]].ravel()]))
        s = R[cand] @ Q[q]
        best = cand[np.lexsort((cand, -s))[:6]]
        # Ties (each row has a copy) go to the smaller index.
        np.testing.assert_array_equal(np.sort(out[q]), np.sort(best))
    np.testing.assert_array_equal(out_sims, row_similarities(Q, R, out))
    # The same candidates in another order give the same result.
    shuffled = through[:, ::-1].copy()
    np.testing.assert_array_equal(
        refine_through_neighbours(Q, R, sims, idx, shuffled, n_hops=2)[1], out)


def test_ivf_refinement_raises_recall_and_transform_refines_through_the_fitted_graph():
    from skdanet.graph import DensityGraph
    from skdanet.graph._knn import NeighborIndex

    X, _ = make_face_like(6000, random_state=0)
    X = l2_normalize(X)
    _, exact = knn_graph(X, 10, method="exact")
    index = NeighborIndex(X, method="ivf", random_state=0)
    index._ivf.n_probe = 2  # a poor search, for refinement to repair
    unrefined = index.search(X, 11)[1]
    _, refined = knn_graph(X, 10, index=index)

    def recall(idx):
        return np.mean([len(np.intersect1d(a[1:], b[1:])) for a, b in zip(idx, exact)]) / 10

    assert recall(unrefined) < 0.9 and recall(refined) > recall(unrefined) + 0.02
    graph = DensityGraph.build(X, 10, index=index)
    _, idx, twin = graph.query_neighbours(X[:200])
    np.testing.assert_array_equal(twin, np.arange(200))
    np.testing.assert_array_equal(idx, graph.knn_indices[:200, 1:])


def test_l2_normalize_in_row_blocks_is_the_whole_array_formula(monkeypatch):
    # Blocks of 3 rows must give the bits of the formula applied to all rows at once.
    import skdanet.utils._parallel as parallel

    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64):
        X = rng.normal(size=(20, 8)).astype(dtype)
        X[3] *= 1e30 if dtype == np.float64 else 1e15
        X[4] *= 1e-30 if dtype == np.float64 else 1e-15
        X[7] = 0
        peak = np.abs(X).max(axis=1).astype(np.float64)
        peak[7] = 1.0
        scaled = X / peak[:, None]
        norms = np.sqrt(np.einsum("ij,ij->i", scaled, scaled, dtype=np.float64))
        norms[7] = 1.0
        expected = (scaled / norms[:, None]).astype(dtype)
        monkeypatch.setattr(parallel, "GATHER_ELEMENTS", 3 * 8)
        with pytest.warns(UserWarning, match=r"1 row\(s\) of X have zero norm \(first: row 7\)"):
            Z = l2_normalize(X, zero_rows="warn")
        monkeypatch.undo()
        assert Z.dtype == dtype
        np.testing.assert_array_equal(Z, expected)
        np.testing.assert_allclose(np.linalg.norm(np.delete(Z, 7, axis=0), axis=1), 1, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=0, max_size=300))
def test_ivf_candidate_sort_is_numpys_stable_sort(values):
    # Many ties: equal keys must keep the order of their positions.
    from skdanet.graph._ivf import _stable_argsort

    key = np.array(values, dtype=np.float64) * 0.25
    np.testing.assert_array_equal(_stable_argsort(key), np.argsort(key, kind="stable"))


def test_ivf_candidates_above_the_bound_are_the_mask_definition():
    # Each row's entries strictly above its bound, or its k best when more are
    # above (the lowest columns of those tied at the k-th value), in row-major
    # order; the bound is raised to the k-th best where k are above.
    from skdanet.graph._ivf import _entries_above

    rng = np.random.default_rng(2)
    S = np.round(rng.random((60, 40)), 1).astype(np.float32)  # many ties
    bound = np.r_[np.full(20, 0.95), np.full(20, 0.5), np.full(20, -1.0)].astype(np.float32)
    k = 7
    given = bound.copy()
    row, col, raised = _entries_above(S, bound, k)
    np.testing.assert_array_equal(bound, given)  # the caller's bound is not modified
    assert np.all(np.diff(row * S.shape[1] + col) > 0)
    for i in range(len(S)):
        got = col[row == i]
        above = np.flatnonzero(S[i] > bound[i])
        if len(above) <= k:
            np.testing.assert_array_equal(got, above)
            assert raised[i] == bound[i]
            continue
        kth = np.sort(S[i])[-k]
        np.testing.assert_array_equal(got, np.sort(np.argsort(-S[i], kind="stable")[:k]))
        # k entries of this row reach kth: nothing at or below it can enter the top k.
        assert raised[i] == kth
    assert (np.bincount(row, minlength=len(S))[40:] == k).all()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_ivf_nearest_lists_take_the_lowest_of_tied_centroids(n_nearest, seed):
    # Identical faces make identical centroids and argmax sends their rows to
    # the lowest-numbered one: the probe order must reach that one first, and
    # a tie at the cut must keep the lowest columns (a stable sort's choice).
    from skdanet.graph._ivf import _nearest_first

    rng = np.random.default_rng(seed)
    S = rng.integers(0, 4, size=(30, 12)).astype(np.float32)  # many ties
    got = _nearest_first(S.copy(), n_nearest)
    expected = np.argsort(-S, axis=1, kind="stable")[:, :n_nearest]
    np.testing.assert_array_equal(got[:, 0], S.argmax(axis=1))
    np.testing.assert_array_equal(np.sort(got, axis=1), np.sort(expected, axis=1))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 14), st.integers(1, 40), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_largest_columns_are_a_stable_sorts_first_k(k, n_columns, n_values, seed):
    # The one tie rule of every search: a row's k largest entries, the lowest
    # columns among those tied at the k-th value -- what a stable sort keeps.
    from skdanet.graph._selection import largest_columns

    rng = np.random.default_rng(seed)
    S = rng.integers(0, n_values, size=(25, n_columns)).astype(np.float32)
    given = S.copy()
    got = largest_columns(S, k)
    expected = np.sort(np.argsort(-S, axis=1, kind="stable")[:, :k], axis=1)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(S, given)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_exact_search_with_tied_rows_keeps_the_lowest_indices(k, seed):
    # Small integer rows: every product is exact, and repeated rows tie at
    # the cut. The search must return a stable sort's neighbours, in order.
    from skdanet.graph import exact_knn

    rng = np.random.default_rng(seed)
    R = rng.integers(0, 3, size=(40, 4)).astype(np.float32)
    Q = R[rng.integers(0, 40, size=15)]
    sims, idx = exact_knn(Q, R, k)
    S = Q @ R.T
    expected = np.argsort(-S, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_array_equal(sims, np.take_along_axis(S, expected, axis=1))


def test_query_finds_a_copy_hidden_behind_more_than_k_equally_similar_rows():
    # Rows a hair apart (distinct rows, similarities all 1 to float precision):
    # a short search can miss a face's own copy, yet each reference row
    # queried is that row, not a new face; a distinct direction is new.
    rng = np.random.default_rng(11 * 31 + 2)
    R = l2_normalize(1.0 + 3e-8 * rng.normal(size=(11, 2)))
    assert len(np.unique(R, axis=0)) == len(R)
    index = NeighborIndex(R, method="exact")
    _, idx, twin = index.query(np.vstack([R, [[1.0, 0.0]]]), 1)
    np.testing.assert_array_equal(twin, np.r_[np.arange(len(R)), -1])
    assert idx.shape == (len(R) + 1, 1)
