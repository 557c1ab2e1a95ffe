"""k-nearest-neighbour search over L2-normalised rows (cosine similarity).

Three searches: exact blocked products (small sets), an inverted-file index
(``_ivf.py``: the default above ``EXACT_SEARCH_MAX_ROWS``, deterministic and
parallel; its results refined through the neighbours' own lists, see
:func:`refine_through_neighbours`) and HNSW (hnswlib, built on one thread so
that it is deterministic).
Plain numpy / hnswlib: no torch and no estimator plumbing, so that this stage
can be tested against brute force and benchmarked on its own.

Conventions shared by the whole graph core:

* similarities are inner products of L2-normalised rows (cosine similarity);
* neighbour lists are sorted by decreasing similarity, ties by increasing index,
  so that the exact search is fully deterministic;
* :func:`knn_graph` returns ``n_neighbors + 1`` columns, column 0 being the row
  itself (similarity ``<x, x>``), so that ``sims[:, 1:]`` are the neighbours
  N(v) of the method's equations.
"""

import numbers
import warnings

import numpy as np
from sklearn.utils import check_array

from ..utils._arrays import first_identical_rows
from ..utils._parallel import gather_blocks, map_blocks, row_blocks
from ..utils._threads import one_blas_thread
from ._ivf import N_PROBE, IVFIndex
from ._selection import largest_columns

# Similarities this close count as equal when an identical reference row is
# looked for: rounding differs with where a product was computed.
_SAME_SIMILARITY = 1e-6
# Below this many reference rows the exact blocked search is both fast enough
# and exact; above it the inverted-file index wins by a growing margin.
EXACT_SEARCH_MAX_ROWS = 30_000

# Exact search computes similarities for a block of query rows at a time; the
# block is sized so that one block of similarities takes about this many bytes.
_EXACT_BLOCK_BYTES = 128 * 2**20
_REFINE_BLOCK = 4096

# IVF search is refined through the kNN lists of each face's first
# REFINE_NEIGHBOURS neighbours other than itself (see refine_through_neighbours).
# Each further list costs about as many comparisons as the one before and
# finds fewer of the missed neighbours; the scale page measures the trade.
REFINE_NEIGHBOURS = 2
# HNSW settings: recall@k >= 0.99 on 20K x 128 face-like rows.
HNSW_M = 24
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH_MIN = 128


def l2_normalize(X, *, zero_rows="raise"):
    """Return a copy of ``X`` with unit-norm rows.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64
    zero_rows : {"raise", "warn", "ignore"}, default="raise"
        What to do with zero rows: refuse them, or keep them as zero vectors
        (similarity 0 to every face), with a warning or silently.

    Returns
    -------
    X_normalized : ndarray of the same shape and dtype

    Raises
    ------
    ValueError
        If a row has zero norm: it has no direction, so no cosine similarity.
    """
    X = np.asarray(X)
    out = np.empty_like(X)
    zero = [np.empty(0, dtype=np.int64)]
    # Row blocks: the same bits as the whole array at once, without its
    # float64 temporaries (twice the data, fresh pages) at a million faces.
    for start, stop in gather_blocks(len(X), X.shape[1]):
        out[start:stop], empty = _unit_rows(X[start:stop])
        zero.append(start + np.flatnonzero(empty))
    zero = np.concatenate(zero)
    if zero.size:
        message = (
            f"{zero.size} row(s) of X have zero norm (first: row {zero[0]}); a zero "
            "vector has no direction, so it has no cosine similarity to any face. "
            "Drop these rows (they usually come from a failed face detection)."
        )
        if zero_rows == "raise":
            raise ValueError(message)
        if zero_rows == "warn":
            warnings.warn(message + " They are kept as zero vectors, similar to nothing "
                      "and identical to each other.", UserWarning, stacklevel=3)
    return out


def _unit_rows(X):
    """Rows of ``X`` divided by their norms (computed in float64), and the mask of zero rows."""
    # Divide by the largest entry first: squaring 1e200 overflows and squaring
    # 1e-200 underflows, which would make non-zero rows look infinite or zero.
    peak = np.abs(X).max(axis=1, initial=0).astype(np.float64)
    zero = peak == 0
    peak[zero] = 1.0
    scaled = X / peak[:, None]
    norms = np.sqrt(np.einsum("ij,ij->i", scaled, scaled, dtype=np.float64))
    norms[zero] = 1.0
    return scaled / norms[:, None], zero


def clamp_n_neighbors(n_neighbors, n_reference, *, exclude_self):
    """Clamp ``n_neighbors`` to what ``n_reference`` rows can provide, with a warning."""
    available = n_reference - 1 if exclude_self else n_reference
    if n_neighbors > available:
        warnings.warn(
            f"n_neighbors={n_neighbors} but only {available} other rows are "
            f"available; using n_neighbors={available}.",
            UserWarning,
            stacklevel=3,
        )
        return max(available, 0)
    return n_neighbors


def _sort_neighbors(sims, idx):
    """Sort each row by decreasing similarity, ties by increasing index."""
    order = np.argsort(idx, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)
    sims = np.take_along_axis(sims, order, axis=1)
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(sims, order, axis=1), np.take_along_axis(idx, order, axis=1)


def row_similarities(Q, R, idx):
    """``sims[i, j] = <Q[i], R[idx[i, j]]>``, each row on its own (row-independent bits)."""
    sims = np.empty(idx.shape, dtype=Q.dtype)
    for start, stop in gather_blocks(len(Q), idx.shape[1] * R.shape[1]):
        sims[start:stop] = np.einsum("ij,ikj->ik", Q[start:stop], R[idx[start:stop]])
    return sims


def pair_similarities(Q, R, rows, cols):
    """``<Q[rows[i]], R[cols[i]]>`` for each pair: the same bits as :func:`row_similarities`."""
    out = np.empty(len(rows), dtype=Q.dtype)
    for start, stop in gather_blocks(len(rows), Q.shape[1]):
        out[start:stop] = np.einsum("ij,ij->i", Q[rows[start:stop]], R[cols[start:stop]])
    return out


def exact_knn(Q, R, n_neighbors):
    """Exact top-``n_neighbors`` of each row of ``Q`` among the rows of ``R``.

    Blocked matrix products: memory is O(block * n_reference), never n x n.

    Returns
    -------
    sims : ndarray of shape (n_queries, n_neighbors), dtype of ``Q``
    indices : ndarray of shape (n_queries, n_neighbors), int64
    """
    n_q, n_r = Q.shape[0], R.shape[0]
    k = n_neighbors
    block = max(1, min(n_q, _EXACT_BLOCK_BYTES // max(1, n_r * Q.itemsize)))
    sims = np.empty((n_q, k), dtype=Q.dtype)
    idx = np.empty((n_q, k), dtype=np.int64)
    RT = np.ascontiguousarray(R.T)
    for start in range(0, n_q, block):
        S = Q[start : start + block] @ RT
        part = largest_columns(S, k)
        part_sims = np.take_along_axis(S, part, axis=1)
        s, i = _sort_neighbors(part_sims, part.astype(np.int64))
        sims[start : start + block] = s
        idx[start : start + block] = i
    return sims, idx


class NeighborIndex:
    """A searchable set of reference rows (exact or HNSW), L2-normalised.

    Parameters
    ----------
    R : ndarray of shape (n_reference, n_features)
        L2-normalised reference rows (see :func:`l2_normalize`).
    method : {"auto", "exact", "ivf", "hnsw"}
        ``"auto"`` uses exact search up to ``EXACT_SEARCH_MAX_ROWS`` rows and
        the inverted-file index above.
    random_state : int
        Seed of the IVF k-means or of the HNSW level generator (the HNSW index
        is built single-threaded so that it is the same for a given seed).
    n_jobs : int
        Workers of the IVF queries and refinement (joblib) and threads of
        HNSW; the result does not depend on it.
    n_probe : int or "auto", default=32
        IVF: the lists each face is compared with. More probes find more of
        the true neighbours, in more time; the share of the set they cover
        shrinks as the set grows (lists hold about 384 rows). ``"auto"``:
        each face searches every list whose centroid is almost as similar
        as its nearest (16 to 120 lists), many where lists crowd around it,
        few where one list clearly holds its neighbours.
    progress : callable or None
        ``progress(i, n_done, m)`` after each chunk of an IVF search (verbose
        output of long runs).
    """

    def __init__(self, R, *, method="auto", random_state=0, n_jobs=1, n_probe=N_PROBE,
                 progress=None):
        self.R = R
        self.progress = progress
        if method == "auto":
            method = "exact" if R.shape[0] <= EXACT_SEARCH_MAX_ROWS else "ivf"
        if method not in ("exact", "ivf", "hnsw"):
            raise ValueError(
                f"method must be 'auto', 'exact', 'ivf' or 'hnsw', got {method!r}.")
        if not (n_probe == "auto" or (isinstance(n_probe, numbers.Integral) and n_probe >= 1)):
            raise ValueError(f"n_probe must be an integer >= 1 or 'auto', got {n_probe!r}.")
        self.method = method
        self.n_jobs = n_jobs
        self._hnsw = self._ivf = None
        self._searched_lists = None  # IVF: the reference's own search, refined through
        if method == "hnsw":
            self._hnsw = self._build_hnsw(R, random_state)
        elif method == "ivf":
            self._ivf = IVFIndex(R, random_state=random_state, n_jobs=n_jobs, n_probe=n_probe)

    @staticmethod
    def _build_hnsw(R, random_state):
        try:
            import hnswlib
        except ImportError as exc:
            raise ValueError(
                "graph_method='hnsw' needs the optional hnswlib package: pip install "
                "'skdanet[hnsw]' (or use the default graph_method='auto')."
            ) from exc

        index = hnswlib.Index(space="ip", dim=R.shape[1])
        index.init_index(
            max_elements=R.shape[0],
            ef_construction=HNSW_EF_CONSTRUCTION,
            M=HNSW_M,
            random_seed=int(random_state),
        )
        # One thread: concurrent insertion makes the graph depend on thread timing.
        index.add_items(np.asarray(R, dtype=np.float32), np.arange(R.shape[0]), num_threads=1)
        return index

    @property
    def n_reference(self):
        return self.R.shape[0]

    def search(self, Q, n_neighbors):
        """Top-``n_neighbors`` reference rows of each query row, sorted."""
        if n_neighbors == 0:
            return (np.empty((Q.shape[0], 0), Q.dtype), np.empty((Q.shape[0], 0), np.int64))
        if self.method == "exact":
            _, idx = exact_knn(Q, self.R, n_neighbors)
        elif self.method == "ivf":
            idx = self._search_ivf(Q, n_neighbors)
        else:
            self._hnsw.set_ef(max(HNSW_EF_SEARCH_MIN, 2 * n_neighbors))
            labels, _ = self._hnsw.knn_query(
                np.asarray(Q, dtype=np.float32), k=n_neighbors, num_threads=self.n_jobs
            )
            idx = labels.astype(np.int64)
        # Similarities recomputed one row at a time in the data's precision: matrix
        # products round differently depending on how many rows share a call, and
        # HNSW's are float32; this way a face's graph is the same bits whether it
        # was searched alone, in a batch, or with another method.
        return sorted_by_similarity(Q, self.R, idx, n_jobs=self.n_jobs)

    def _search_ivf(self, Q, n_neighbors):
        _, idx = self._ivf.search(Q, n_neighbors, progress=self.progress)
        # A query whose lists hold fewer than k rows (tiny or very unbalanced
        # sets) gets the exact answer instead of padding.
        short = np.flatnonzero((idx < 0).any(axis=1))
        if len(short):
            idx[short] = exact_knn(Q[short], self.R, n_neighbors)[1]
        return idx

    def _refined(self, Q, sims, idx, self_indices):
        """An IVF search refined through the reference's own searched lists.

        The search of the whole reference (``self_indices`` covering every
        row) is kept as the lists to refine through, so that a face's
        neighbours follow one rule whether it was fitted or is new. Before
        that search there is nothing to refine through.
        """
        if self_indices is not None and len(self_indices) == self.n_reference:
            lists = np.empty(idx.shape, dtype=np.int32)
            lists[self_indices] = idx
            self._searched_lists = lists
        if self._searched_lists is None:
            return sims, idx
        return refine_through_neighbours(Q, self.R, sims, idx, self._searched_lists,
                                         n_jobs=self.n_jobs)

    def query(self, Q, n_neighbors, self_indices=None):
        """Neighbours of query rows, each query's own copy in the reference excluded.

        A query row identical to a reference row is that reference face, so that
        copy is not its own neighbour: the result for a training row is then the
        same whether it comes from :func:`knn_graph` or from a later query, which
        is what makes ``transform`` on the training set reproduce the training
        graph.

        Parameters
        ----------
        Q : ndarray of shape (n_queries, n_features), L2-normalised
        n_neighbors : int
        self_indices : ndarray of shape (n_queries,), optional
            Known reference index of each query row (the graph of the reference
            set itself); otherwise an identical reference row is looked for.

        Returns
        -------
        sims, indices : ndarrays of shape (n_queries, n_neighbors)
        twin : ndarray of shape (n_queries,), int64
            Reference index of the row identical to each query, or -1.
        """
        k = min(n_neighbors + 1, self.n_reference)
        sims, idx = self.search(Q, k)
        if self.method == "ivf":
            sims, idx = self._refined(Q, sims, idx, self_indices)
        n_q = Q.shape[0]
        twin = np.full(n_q, -1, dtype=np.int64)
        if self_indices is not None:
            is_self = idx == np.asarray(self_indices)[:, None]
            has = is_self.any(axis=1)
            twin[has] = self_indices[has]
            col = np.where(has, is_self.argmax(axis=1), -1)
        else:
            col = np.full(n_q, -1, dtype=np.int64)
        # Candidate identical rows have the top similarity; compare them exactly.
        todo = np.flatnonzero((col < 0) & (k > 0))
        if todo.size and k > 0:
            top = idx[todo, 0]
            same = np.all(Q[todo] == self.R[top], axis=1)
            twin[todo[same]] = top[same]
            col[todo[same]] = 0
            # A duplicate may not be the first of several equally similar rows.
            rest = todo[~same]
            if rest.size:
                near = sims[rest] >= sims[rest, :1] - _SAME_SIMILARITY
                for j in range(1, k):
                    cand = rest[near[:, j] & (col[rest] < 0)]
                    if cand.size == 0:
                        continue
                    eq = np.all(Q[cand] == self.R[idx[cand, j]], axis=1)
                    twin[cand[eq]] = idx[cand[eq], j]
                    col[cand[eq]] = j
        if self_indices is None and k > 0:
            # More than k rows as similar to a query as itself (near-duplicate
            # faces) can hide its copy from the list: look for it exactly.
            alone = np.flatnonzero(twin < 0)
            self_sims = np.einsum("ij,ij->i", Q[alone], Q[alone])
            hidden = alone[sims[alone, -1] >= self_sims - _SAME_SIMILARITY]
            if hidden.size:
                twin[hidden] = first_identical_rows(self.R, Q[hidden])
        # Drop the twin's column, or the last column if there is no twin.
        drop = np.where(col >= 0, col, k - 1)
        keep = np.ones_like(idx, dtype=bool)
        if k > n_neighbors:
            keep[np.arange(n_q), drop] = False
        width = keep.sum(axis=1)[0] if n_q else k
        sims = sims[keep].reshape(n_q, width)
        idx = idx[keep].reshape(n_q, width)
        return sims, idx, twin


def sorted_by_similarity(Q, R, idx, *, n_jobs=1):
    """``(sims, idx)`` with ``sims[i, j] = <Q[i], R[idx[i, j]]>``, each row sorted.

    By decreasing similarity, ties by increasing index; row by row (see
    :func:`row_similarities`), in blocks over ``n_jobs`` workers.
    """
    return _neighbours_by_row_block(_sorted_block, Q, R, idx, (), n_jobs)


def _sorted_block(Q, R, idx):
    return _sort_neighbors(row_similarities(Q, R, idx), idx)


def refine_through_neighbours(Q, R, sims, idx, through, *, n_hops=REFINE_NEIGHBOURS, n_jobs=1):
    """Each query's best ``idx.shape[1]`` among its neighbours and theirs, sorted.

    An approximate search misses some true neighbours; a neighbour's own kNN
    list (``through``, rows of ``R``) often holds them. ``idx`` is sorted by
    decreasing similarity and, like ``through``, complete (no -1); ``sims``
    are its :func:`row_similarities`, as a search returns them. Each query's
    candidates are its ``idx`` row and the lists of its first ``n_hops``
    neighbours other than rows identical to it (such a row is the query
    itself or its twin, whose list is the query's own search: it adds
    nothing). Only candidates not already in ``idx`` are compared (the same
    products, so the same bits), and the best are chosen by similarity, ties
    by index, so the result depends on the candidates alone. Row by row (a
    query's result depends on its own row and the fixed lists alone), in
    blocks over ``n_jobs`` workers.
    """
    return _neighbours_by_row_block(_refine_block, Q, R, idx, (through, n_hops), n_jobs,
                                    per_row=(sims,))


def _neighbours_by_row_block(block_func, Q, R, idx, args, n_jobs, per_row=()):
    """``(sims, idx)`` of ``idx``'s shape from ``block_func(Q[a:b], R, idx[a:b], *args)``.

    Arrays of ``per_row`` (one row per query) are sliced the same way and
    passed after ``idx[a:b]``. Fixed row blocks over ``n_jobs`` workers, each on one BLAS thread, so
    the result does not depend on the number of workers.
    """
    blocks = row_blocks(len(Q), _REFINE_BLOCK)
    tasks = ((Q[a:b], R, idx[a:b], *(x[a:b] for x in per_row), *args) for a, b in blocks)
    sims = np.empty(idx.shape, dtype=Q.dtype)
    out = np.empty_like(idx)
    with one_blas_thread():
        for (a, b), (s, i) in map_blocks(block_func, blocks, tasks, n_jobs):
            sims[a:b], out[a:b] = s, i
    return sims, out


def _refine_block(Q, R, idx, sims, through, n_hops):
    n_q, k = idx.shape
    hops = np.take_along_axis(idx, _hop_columns(Q, R, idx, n_hops), axis=1)
    cand = np.concatenate([idx, through[hops].reshape(n_q, -1)], axis=1)
    # Searched candidates keep their similarities; the others are still to compare.
    cand_sims = np.concatenate([sims, np.full((n_q, cand.shape[1] - k), -np.inf, sims.dtype)],
                               axis=1)
    # By index, a search result before a repeat of it from a neighbour's list.
    order = np.argsort(cand, axis=1, kind="stable")
    cand = np.take_along_axis(cand, order, axis=1)
    cand_sims = np.take_along_axis(cand_sims, order, axis=1)
    repeat = np.zeros(cand.shape, dtype=bool)
    repeat[:, 1:] = cand[:, 1:] == cand[:, :-1]
    searched = order < k
    # Each candidate once (a repeat never wins a second slot); only the new
    # ones are compared.
    new = ~searched & ~repeat
    rows, cols = np.nonzero(new)
    cand_sims[rows, cols] = pair_similarities(Q, R, rows, cand[rows, cols])
    return _sort_neighbors(*_most_similar(cand_sims, cand, k))


def _hop_columns(Q, R, idx, n_hops):
    """Columns of each query's first ``n_hops`` neighbours not identical to it.

    Identical rows come first (the highest similarity); a query has one (itself)
    when it is a searched reference row, more with duplicates.
    """
    n_q, k = idx.shape
    n_hops = min(n_hops, k)
    lead = np.zeros(n_q, dtype=np.int64)
    todo = np.arange(n_q)
    while todo.size:
        todo = todo[lead[todo] < k - n_hops]
        same = np.all(Q[todo] == R[idx[todo, lead[todo]]], axis=1)
        todo = todo[same]
        lead[todo] += 1
    return lead[:, None] + np.arange(n_hops)


def _most_similar(sims, idx, k):
    """The ``k`` most similar entries of each row, ties by position.

    Rows sorted by index tie by index. Exactly ``k`` per row, in row order.
    """
    columns = largest_columns(sims, k)
    return np.take_along_axis(sims, columns, axis=1), np.take_along_axis(idx, columns, axis=1)


def knn_graph(X, n_neighbors, *, method="auto", random_state=0, n_jobs=1, n_probe=N_PROBE,
              normalize=True, index=None):
    """kNN graph of the rows of ``X`` under cosine similarity, self first.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_neighbors : int
        Number of neighbours k of each row (itself excluded). Clamped to
        ``n_samples - 1`` with a warning.
    method : {"auto", "exact", "ivf", "hnsw"}, default="auto"
        Exact blocked search up to ``EXACT_SEARCH_MAX_ROWS`` rows, the
        inverted-file index (``"ivf"``) above; ``"hnsw"`` is an alternative.
    random_state : int, default=0
        Seed of the IVF or HNSW index (the exact search uses none).
    n_jobs : int, default=1
        Workers of the IVF search (joblib) and threads of HNSW; the result
        does not depend on it.
    n_probe : int or "auto", default=32
        Lists each face is compared with in the inverted-file index (see
        :class:`NeighborIndex`).
    normalize : bool, default=True
        L2-normalise the rows first (a copy; ``X`` is never modified).
    index : NeighborIndex, optional
        A prebuilt index over (normalised) ``X``, reused instead of building one.

    Returns
    -------
    sims : ndarray of shape (n_samples, k + 1)
        ``sims[:, 0]`` is the self-similarity, then neighbours in decreasing
        similarity.
    indices : ndarray of shape (n_samples, k + 1), int64
        ``indices[:, 0]`` is the row itself.

    Examples
    --------
    >>> import numpy as np
    >>> from skdanet.graph import knn_graph
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> sims, idx = knn_graph(X, n_neighbors=1)
    >>> idx.tolist()
    [[0, 1], [1, 0], [2, 1]]
    """
    X = check_array(X, dtype=[np.float64, np.float32], ensure_min_samples=2,
                    input_name="X")
    if normalize:
        X = l2_normalize(X)
    n = X.shape[0]
    k = clamp_n_neighbors(int(n_neighbors), n, exclude_self=True)
    if index is None:
        index = NeighborIndex(X, method=method, random_state=random_state, n_jobs=n_jobs,
                              n_probe=n_probe)
    sims, idx, _ = index.query(X, k, self_indices=np.arange(n))
    self_sims = np.einsum("ij,ij->i", X, X).astype(sims.dtype)
    return (
        np.concatenate([self_sims[:, None], sims], axis=1),
        np.concatenate([np.arange(n, dtype=np.int64)[:, None], idx], axis=1),
    )
