"""Inverted-file (IVF) nearest-neighbour search: deterministic and parallel.

The reference rows are partitioned by a seeded spherical k-means into lists of
a few hundred rows; a query is compared exactly with every row of the
``n_probe`` lists whose centroids are most similar to it, and keeps its top k.
With ``n_probe="auto"`` the number of lists is the query's own: every list
whose centroid is almost as similar as the nearest one (within
``AUTO_PROBE_MARGIN``). A face deep inside its identity's cluster has one
clearly nearest list and needs few; a face between clusters has many lists at
the same distance, and its neighbours may sit in any of them.

Why not only HNSW: an HNSW graph built on several threads depends on thread
timing, so for results that are the same for a seed it must be built on one
thread, which is slow at scale. Here every step is a fixed
computation: the index depends only on the data and the seed, a query's result
depends only on that query (the candidate lists are its own), and query blocks
are split over joblib workers, each block's products computed on one BLAS
thread, so the result is bit-identical for any ``n_jobs`` or backend. Face
embeddings cluster by identity, so a query's neighbours sit in a few lists and
recall is high.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from ..utils._parallel import gather_blocks, map_blocks, row_blocks
from ..utils._threads import one_blas_thread
from ._selection import largest_columns

# Rows per list on average: the per-query cost is n_probe * LIST_SIZE exact
# similarities plus n / LIST_SIZE centroid similarities.
LIST_SIZE = 384
N_PROBE = 32
# n_probe="auto": lists within this cosine similarity of the nearest centroid,
# at least AUTO_PROBE_MIN and at most AUTO_PROBE_MAX of them. Chosen on a
# million face-like rows, where it finds more true neighbours than any fixed
# n_probe of the same cost (benchmarks/bench_knn_engines.py).
AUTO_PROBE_MARGIN = 0.025
AUTO_PROBE_MIN = 16
AUTO_PROBE_MAX = 120
KMEANS_ITERATIONS = 8
KMEANS_SAMPLES_PER_LIST = 48
# Queries are processed in blocks, one per worker at a time; a block keeps
# its candidates above the bound, 20 bytes each (a few hundred per face).
# Large blocks give each list many queries at once (block x lists a face /
# lists: hundreds at a million faces), so the products are fewer and larger
# and the per-list work in the nearest-list pass is not spent on a few queries.
_QUERY_CHUNK = 32_768
# Similarities computed at once between the queries of one list and its rows.
_LIST_BLOCK_ELEMENTS = 2**22


def _nearest_centroids(X, centroids, n_nearest, pool=None):
    """Indices of the ``n_nearest`` most similar centroids of each row, the most similar first.

    The others follow in no particular order. Row blocks go to ``pool``'s
    threads when given (call it under one BLAS thread: the products are then
    the same bits for any number of threads). A block holds about ``GATHER_ELEMENTS`` similarities:
    larger blocks are slower, their similarities being fresh pages to fault
    in on every block.
    """
    out = np.empty((X.shape[0], n_nearest), dtype=np.int64)
    CT = np.ascontiguousarray(centroids.T)
    n_lists = CT.shape[1]

    def block(rows):
        start, stop = rows
        S = X[start:stop] @ CT
        if n_nearest == 1:
            out[start:stop, 0] = S.argmax(axis=1)
        else:
            out[start:stop] = _nearest_first(S, n_nearest)

    blocks = gather_blocks(X.shape[0], n_lists)
    list(pool.map(block, blocks) if pool is not None else map(block, blocks))
    return out


def _nearest_first(S, n_nearest):
    """Columns of each row's ``n_nearest`` largest entries of ``S``, the largest first.

    Ties go to the lower column (:func:`largest_columns`), as ``argmax``
    breaks them when a row is assigned to its list: identical faces can make
    identical centroids, and only the lowest-numbered of those holds their
    rows, so a query must probe that one.
    """
    nearest = largest_columns(S, n_nearest)
    each_row = np.arange(len(S))
    first = S.argmax(axis=1)
    at = np.argmax(nearest == first[:, None], axis=1)
    nearest[each_row, at] = nearest[:, 0]
    nearest[:, 0] = first
    return nearest


def _probed_lists(Q, centroids, n_probe):
    """The lists each query searches: ``(n_queries, width)`` indices, the nearest first.

    An int ``n_probe`` gives every query its ``n_probe`` nearest lists. With
    ``"auto"`` a query keeps, of its ``AUTO_PROBE_MAX`` nearest, those whose
    similarity is within ``AUTO_PROBE_MARGIN`` of the nearest's, and at least
    its ``AUTO_PROBE_MIN`` nearest; the others are -1. A query's lists depend
    on its own similarities alone.
    """
    n_lists = centroids.shape[0]
    if n_probe != "auto":
        return _nearest_centroids(Q, centroids, min(int(n_probe), n_lists))
    n_max = min(AUTO_PROBE_MAX, n_lists)
    n_min = min(AUTO_PROBE_MIN, n_max)
    probes = np.empty((Q.shape[0], n_max), dtype=np.int64)
    CT = np.ascontiguousarray(centroids.T)
    for start, stop in gather_blocks(Q.shape[0], n_lists):
        probes[start:stop] = _lists_within_margin(Q[start:stop] @ CT, n_min, n_max)
    return probes


def _lists_within_margin(S, n_min, n_max):
    """Each row's columns of ``S`` within ``AUTO_PROBE_MARGIN`` of its largest, that first.

    At least the ``n_min`` and at most the ``n_max`` largest; -1 pads to
    ``n_max`` columns. Most rows have between ``n_min`` and ``n_max``
    columns within the margin, which a comparison finds; the others need
    only their ``n_min`` or ``n_max`` largest selected.
    """
    n_rows = S.shape[0]
    each_row = np.arange(n_rows)
    nearest = S.argmax(axis=1)
    within = S >= (S[each_row, nearest] - AUTO_PROBE_MARGIN)[:, None]
    count = np.count_nonzero(within, axis=1)
    out = np.full((n_rows, n_max), -1, dtype=np.int64)
    plain = np.flatnonzero((count >= n_min) & (count <= n_max))
    row, col = np.nonzero(within[plain])
    rank = np.arange(len(row)) - np.searchsorted(row, row, side="left")
    out[plain[row], rank] = col
    # The nearest to the front: its column swaps with the first.
    at = np.argmax(out[plain] == nearest[plain, None], axis=1)
    out[plain, at] = out[plain, 0]
    out[plain, 0] = nearest[plain]
    # The others: fewer than n_min lists within the margin (keep the n_min
    # nearest) or more than n_max (all n_max nearest are within it).
    few = np.flatnonzero(count < n_min)
    if few.size:
        out[few, :n_min] = _nearest_first(S[few], n_min)
    many = np.flatnonzero(count > n_max)
    if many.size:
        out[many] = _nearest_first(S[many], n_max)
    return out


def _normalized(rows):
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


def spherical_kmeans(X, n_clusters, *, rng, n_iter=KMEANS_ITERATIONS, pool=None):
    """Unit-norm centroids of a seeded spherical k-means (Lloyd) on rows of ``X``.

    A cluster that loses all its rows keeps its previous centroid: it then
    simply gets few rows in the final assignment.
    """
    n = X.shape[0]
    centroids = X[np.sort(rng.choice(n, size=n_clusters, replace=False))].astype(np.float64)
    for _ in range(n_iter):
        assign = _nearest_centroids(X, centroids.astype(X.dtype), 1, pool)[:, 0]
        onehot = sp.csr_matrix((np.ones(n), (assign, np.arange(n))), shape=(n_clusters, n))
        sums = np.asarray(onehot @ X.astype(np.float64))
        empty = np.asarray(onehot.sum(axis=1)).ravel() == 0
        sums[empty] = centroids[empty]
        centroids = _normalized(sums)
    return centroids.astype(X.dtype)


class IVFIndex:
    """Exact search inside the ``n_probe`` nearest of ``~n/LIST_SIZE`` lists.

    Parameters
    ----------
    R : ndarray of shape (n_reference, n_features), L2-normalised rows
    random_state : int
        Seed of the k-means sample and initialisation.
    n_jobs : int
        Threads of the k-means build; joblib workers of the search.
    n_probe : int or "auto"
        Lists searched per query; more is slower and closer to exact.
        ``"auto"``: each query's own number (see :func:`_probed_lists`).
    """

    def __init__(self, R, *, random_state=0, n_jobs=1, n_probe=N_PROBE, list_size=LIST_SIZE):
        n = R.shape[0]
        self.n_jobs = max(1, int(n_jobs))
        n_lists = max(1, int(round(n / list_size)))
        self.n_probe = n_probe  # clamped to the lists by _probed_lists, "auto" or not
        rng = np.random.default_rng(random_state)
        sample = R
        if n > KMEANS_SAMPLES_PER_LIST * n_lists:
            sample = R[np.sort(rng.choice(n, KMEANS_SAMPLES_PER_LIST * n_lists, replace=False))]
        # Threads over row blocks, one BLAS thread each: same index for any n_jobs.
        with one_blas_thread(), ThreadPoolExecutor(self.n_jobs) as pool:
            self.centroids = spherical_kmeans(sample, n_lists, rng=rng, pool=pool)
            assign = _nearest_centroids(R, self.centroids, 1, pool)[:, 0]
        # Rows grouped by list, contiguous, so that a list is one slice.
        self.members = np.argsort(assign, kind="stable")
        self.offsets = np.concatenate([[0], np.cumsum(np.bincount(assign, minlength=n_lists))])
        # float32: the lists only select candidates (their similarities are
        # recomputed in the data's precision), at half the memory and time.
        self.R_by_list = np.ascontiguousarray(R[self.members], dtype=np.float32)

    def search(self, Q, n_neighbors, progress=None):
        """Top-``n_neighbors`` (similarities, reference indices), most similar first.

        Similarities are float32 products: they select the candidates, and
        callers that need exact values recompute them (as
        :class:`~skdanet.graph.NeighborIndex` does).

        Columns a query could not fill (its lists hold fewer rows than asked)
        have similarity ``-inf`` and index ``-1``. Query blocks run through
        :func:`~skdanet.utils._parallel.map_blocks` on ``n_jobs`` workers
        (each block on one BLAS thread). ``progress(i, n_done, m)``, if
        given, is called after each of the ``m`` blocks.
        """
        k = n_neighbors
        sims = np.empty((Q.shape[0], k), dtype=Q.dtype)
        idx = np.empty((Q.shape[0], k), dtype=np.int64)
        R_by_list = self.R_by_list
        centroids = self.centroids.astype(np.float32)
        blocks = row_blocks(Q.shape[0], _QUERY_CHUNK)
        with one_blas_thread():
            tasks = ((block, Q, k, R_by_list, centroids, self.members, self.offsets,
                      self.n_probe) for block in blocks)
            results = map_blocks(_search_block, blocks, tasks, self.n_jobs)
            for i, ((start, stop), (s, j)) in enumerate(results, 1):
                sims[start:stop] = s
                idx[start:stop] = j
                if progress is not None:
                    progress(i, stop, len(blocks))
        return sims, idx


def _search_block(block, Q, k, R_by_list, centroids, members, offsets, n_probe):
    """The top ``k`` of the queries ``Q[start:stop]`` in their ``n_probe`` lists.

    Each query's nearest list is searched first; the k-th best similarity
    found there bounds what the other lists can add, so only their rows above
    it are kept (a few percent of them on faces) instead of a top k being
    selected in every list. A list with more than k rows above the bound
    raises it to its own k-th best: nothing below that can enter the top k,
    so later lists keep fewer rows and the result is the same. Lists are
    visited in a fixed order and a query's result depends on that query alone
    (its own lists and bound), so blocks can run anywhere, in any order.
    """
    Q = Q[block[0] : block[1]].astype(np.float32, copy=False)
    n_q = Q.shape[0]
    probes = _probed_lists(Q, centroids, n_probe)
    sims = np.full((n_q, k), -np.inf, dtype=Q.dtype)
    idx = np.full((n_q, k), -1, dtype=np.int64)
    for q, lo, S in _list_products(Q, np.arange(n_q), probes[:, 0], R_by_list, offsets):
        m = min(k, S.shape[1])
        top = largest_columns(S, m)
        sims[q, :m] = np.take_along_axis(S, top, axis=1)
        idx[q, :m] = members[lo + top]
    bound = sims.min(axis=1)
    found = [(np.repeat(np.arange(n_q), k), sims.ravel(), idx.ravel())]
    others, rank = np.nonzero(probes[:, 1:] >= 0)
    for q, lo, S in _list_products(Q, others, probes[others, rank + 1], R_by_list, offsets):
        row, col, bound[q] = _entries_above(S, bound[q], k)
        found.append((q[row], S[row, col], members[lo + col]))
    query, cand_sims, cand_idx = map(np.concatenate, zip(*found))
    # At least k candidates of a query are at or above its final bound, so
    # those below it cannot enter its top k: drop them before the sort.
    keep = cand_sims >= bound[query]
    return _best_per_query(query[keep], cand_sims[keep], cand_idx[keep], n_q, k)


def _entries_above(S, bound, k):
    """``(row, col, bound)``: each row's entries strictly above its bound, at most its ``k`` best.

    In row-major order. Strictly: a row equal to the bound only ties with
    one already found. The cap keeps a block's candidates at most ``k`` a
    list, however many rows tie above the bound (identical faces); a capped
    row's bound is raised to its k-th best (a new array: the caller's is kept).
    Rows are counted from the few entries above the bound, not by summing the
    mask.
    """
    n = S.shape[1]
    above = np.flatnonzero(S > bound[:, None])
    row = above // n
    count = np.bincount(row, minlength=len(S))
    crowded = np.flatnonzero(count > k)
    if crowded.size:
        top = largest_columns(S[crowded], k)
        bound = bound.copy()
        bound[crowded] = np.take_along_axis(S[crowded], top, axis=1).min(axis=1)
        capped = (crowded[:, None] * n + top).ravel()
        above = np.sort(np.concatenate([above[count[row] <= k], capped]))
        row = above // n
    return row, above - row * n, bound


def _list_products(Q, queries, lists, R_by_list, offsets):
    """``(q, lo, Q[q] @ rows.T)`` for each list's queries and its rows ``lo:hi``.

    ``queries[j]`` probes ``lists[j]``. Queries come in blocks, so that the
    product stays bounded even when one list is huge (many identical faces
    share one list).
    """
    order = np.argsort(lists, kind="stable")
    bounds = np.searchsorted(lists[order], np.arange(len(offsets)))
    for lst in range(len(offsets) - 1):
        q_all = queries[order[bounds[lst] : bounds[lst + 1]]]
        lo, hi = offsets[lst], offsets[lst + 1]
        if q_all.size == 0 or hi == lo:
            continue
        step = max(1, _LIST_BLOCK_ELEMENTS // (hi - lo))
        for start in range(0, len(q_all), step):
            q = q_all[start : start + step]
            yield q, lo, Q[q] @ R_by_list[lo:hi].T


def _best_per_query(query, sims, idx, n_q, k):
    """The ``k`` most similar candidates of each query, sorted; ``-inf``/``-1`` pads.

    Candidates come query by query in a fixed order (nearest list, then lists
    by number), and the sort is stable, so ties resolve the same way wherever
    the query is searched.
    """
    real = idx >= 0
    query, sims, idx = query[real], sims[real], idx[real]
    # Sims lie in [-1, 1]: query * 4 - sim orders by query, then by decreasing
    # similarity, exactly in float64.
    order = _stable_argsort(query * 4.0 - sims.astype(np.float64))
    query, sims, idx = query[order], sims[order], idx[order]
    rank = np.arange(len(query)) - np.searchsorted(query, np.arange(n_q))[query]
    keep = rank < k
    out_sims = np.full((n_q, k), -np.inf, dtype=sims.dtype)
    out_idx = np.full((n_q, k), -1, dtype=np.int64)
    out_sims[query[keep], rank[keep]] = sims[keep]
    out_idx[query[keep], rank[keep]] = idx[keep]
    return out_sims, out_idx


def _stable_argsort(key):
    """``np.argsort(key, kind="stable")``, about twice as fast on keys with few ties.

    An unstable sort, then each run of equal keys put back in the order of
    its positions in ``key``.
    """
    order = np.argsort(key)
    sorted_key = key[order]
    tie = sorted_key[1:] == sorted_key[:-1]
    if tie.any():
        in_run = np.flatnonzero(np.r_[tie, False] | np.r_[False, tie])
        run = order[in_run]
        order[in_run] = run[np.lexsort((run, sorted_key[in_run]))]
    return order
