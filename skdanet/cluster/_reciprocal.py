"""Reciprocal links: joining clusters whose faces share their neighbourhoods.

A person's odd photo (in profile, in the dark, blurred) can lie farther from
the person's other photos than any radius that keeps strangers apart, so
DBSCAN leaves it on its own. Its neighbourhood still gives it away: the faces
it counts among its nearest neighbours count it among theirs (k-reciprocal
neighbours), and its reciprocal neighbourhood overlaps theirs. A stranger who
merely happens to be close shares far less of it. The Jaccard distance
between two faces' reciprocal neighbourhoods (k-reciprocal re-ranking) reads
that overlap from the kNN lists alone, with no radius of its own, so one
threshold serves any feature extractor.

Everything here is O(n k) in time and memory and works on the rows it needs:
only faces in a candidate pair get a neighbourhood.
"""

import numpy as np
import scipy.sparse as sp

from ..utils._arrays import sorted_unique
from ..utils._parallel import gather_blocks, map_blocks, row_blocks
from ._dbscan import edge_components, number_by_first_point

# Reciprocal neighbours are looked for among the first RECIPROCAL_K
# neighbours; a neighbour's own (half-size) reciprocal set joins a face's when
# more than EXPANSION_OVERLAP of it is already there, so a person's photos
# that just miss each other's lists still count.
RECIPROCAL_K = 20
EXPANSION_OVERLAP = 2 / 3
# Each neighbourhood is averaged with those of the face's nearest neighbours
# (itself and NEIGHBOURHOOD_SMOOTHING - 1 others), which steadies the overlap
# of faces with few reciprocal neighbours.
NEIGHBOURHOOD_SMOOTHING = 6
DEFAULT_JACCARD_EPS = 0.45
# A pair is only a candidate when its embedding distance is within this
# multiple of the network's radius: the overlap decides among close faces,
# it does not reach across the space.
DISTANCE_GATE = 1.05
_PAIR_BLOCK = 32_768
_ROW_BLOCK = 65_536


def reciprocal_ranks(neighbors, k, faces=None, *, n_jobs=1):
    """Where each face stands in the lists of its first ``k`` neighbours.

    Parameters
    ----------
    neighbors : ndarray of int of shape (n_samples, >= k)
        kNN lists, self excluded, nearest first.
    k : int
    faces : ndarray of int, optional
        The faces whose ranks are wanted (default: all, in order).
    n_jobs : int, default=1
        Workers over blocks of faces (the result does not depend on it).

    Returns
    -------
    ranks : ndarray of int of shape (n_faces, k)
        ``ranks[r, j]``: the position of face ``i = faces[r]`` among the
        first ``k`` neighbours of ``neighbors[i, j]``, ``k`` when it is not
        there.
    """
    faces = np.arange(len(neighbors)) if faces is None else np.asarray(faces, dtype=np.int64)
    ranks = np.empty((len(faces), k), dtype=np.int16 if k < 2**15 else np.int64)
    blocks = gather_blocks(len(faces), k * k)
    tasks = ((neighbors, faces[start:stop], k) for start, stop in blocks)
    for (start, stop), block in map_blocks(_ranks_block, blocks, tasks, n_jobs):
        ranks[start:stop] = block
    return ranks


def _ranks_block(neighbors, rows, k):
    theirs = neighbors[neighbors[rows, :k], :k]            # (b, k, k)
    here = theirs == rows[:, None, None]
    return np.where(here.any(axis=2), here.argmax(axis=2), k)


def reciprocal_mask(neighbors, k):
    """Whether each face is among the first ``k`` neighbours of its neighbours.

    Returns
    -------
    mask : ndarray of bool of shape (n_samples, k)
        ``mask[i, j]``: face ``i`` is among the first ``k`` neighbours of
        ``neighbors[i, j]``.
    """
    return reciprocal_ranks(neighbors, k) < k


def _padded_sets(faces, neighbors, mask):
    """The reciprocal sets of ``faces`` (each itself first), padded with -1.

    ``neighbors`` and ``mask`` are the faces' rows of the kNN lists and of
    their reciprocal mask.
    """
    members = np.where(mask, neighbors[:, :mask.shape[1]], -1)
    return np.concatenate([faces[:, None], members], axis=1)


def reciprocal_neighbourhoods(neighbors, rows, k=RECIPROCAL_K, *, n_jobs=1):
    """Expanded k-reciprocal neighbourhoods of ``rows``, uniform weights.

    Face ``i``'s set is itself and its reciprocal neighbours among its first
    ``k``; each member ``j``'s half-size set (reciprocal among the first
    ``round(k / 2)``) is added when more than 2/3 of it lies in ``i``'s set.

    Parameters
    ----------
    neighbors : ndarray of int of shape (n_samples, >= k)
    rows : ndarray of int
        The faces whose neighbourhoods are wanted.
    k : int, default=20
    n_jobs : int, default=1
        Workers over blocks of rows (the result does not depend on it).

    Returns
    -------
    V : scipy.sparse.csr_matrix of shape (len(rows), n_samples)
        Row ``r`` is face ``rows[r]``'s set, each member weighted 1 / size.
    """
    n = len(neighbors)
    half = max(round(k / 2), 1)
    rows = np.asarray(rows, dtype=np.int64)
    # Only these faces' sets are read: the rows' own and their members' half
    # sets (members are among a row's first k neighbours).
    involved = sorted_unique(np.concatenate([rows, neighbors[rows, :k].ravel()]))
    ranks = reciprocal_ranks(neighbors, k, involved, n_jobs=n_jobs)
    near = neighbors[involved, :k]
    full_sets = _padded_sets(involved, near, ranks < k)
    half_sets = _padded_sets(involved, near, ranks[:, :half] < half)
    owners, members = [], []
    # Row blocks bound the (face, member, member's half set) arrays.
    blocks = row_blocks(len(rows), _ROW_BLOCK)
    tasks = ((full_sets, half_sets, involved, rows[start:stop], n) for start, stop in blocks)
    for (start, _), (owner, member) in map_blocks(_expanded_members, blocks, tasks, n_jobs):
        # int32 (n < 2**31): these pairs are the stage's largest arrays.
        owners.append((start + owner).astype(np.int32))
        members.append(member.astype(np.int32))
    V = sp.csr_matrix((np.ones(sum(map(len, owners))),
                       (np.concatenate(owners), np.concatenate(members))),
                      shape=(len(rows), n))
    V.sum_duplicates()
    V.data[:] = 1.0
    sizes = np.diff(V.indptr)
    V.data /= np.repeat(sizes, sizes)
    return V


def _expanded_members(full_sets, half_sets, involved, rows, n):
    """(row position, member) pairs of the expanded sets of ``rows`` (duplicates kept).

    ``full_sets`` and ``half_sets`` are the sets of the faces ``involved``
    (sorted), which hold the rows and their members.
    """
    own = full_sets[np.searchsorted(involved, rows)]
    owner = np.repeat(np.arange(len(rows)), own.shape[1])
    member = own.ravel()
    listed = member >= 0
    owner, member = owner[listed], member[listed]
    own_keys = np.sort(owner * n + member)
    # For every (face, member) pair: how much of the member's half set the
    # face's set already holds.
    candidate = half_sets[np.searchsorted(involved, member)]
    keys = owner[:, None] * n + candidate
    at = np.minimum(np.searchsorted(own_keys, keys), len(own_keys) - 1)
    inside = (own_keys[at] == keys) & (candidate >= 0)
    half_sizes = (candidate >= 0).sum(axis=1)
    accepted = inside.sum(axis=1) > EXPANSION_OVERLAP * half_sizes
    added = candidate[accepted]
    added_owner = np.repeat(owner[accepted], added.shape[1])
    added = added.ravel()
    keep = added >= 0
    return (np.concatenate([owner, added_owner[keep]]),
            np.concatenate([member, added[keep]]))


def _smoothing_matrix(neighbors, faces, smoothing, needed):
    """Rows averaging each face's neighbourhood with its nearest faces' ones,
    over the neighbourhood matrix whose rows are the sorted faces ``needed``."""
    near = np.concatenate([faces[:, None], neighbors[faces, :smoothing - 1]], axis=1)
    return sp.csr_matrix((np.full(near.size, 1.0 / near.shape[1]),
                          (np.repeat(np.arange(len(faces)), near.shape[1]),
                           np.searchsorted(needed, near.ravel()))),
                         shape=(len(faces), len(needed)))


def jaccard_distances(neighbors, first, second, k=RECIPROCAL_K,
                      smoothing=NEIGHBOURHOOD_SMOOTHING, *, n_jobs=1):
    """Jaccard distance between the neighbourhoods of faces ``first[p]`` and ``second[p]``.

    ``1 - sum(min(u, v)) / sum(max(u, v))`` of the two faces' neighbourhood
    weights, each averaged with those of the face's ``smoothing - 1`` nearest
    faces: 0 for the same neighbourhood, 1 for disjoint ones. Each needed
    neighbourhood is built once; the smoothed ones only block by block of
    pairs, so memory stays O(n k). Blocks run on ``n_jobs`` workers (the
    result does not depend on it).

    Returns
    -------
    distances : ndarray of shape (n_pairs,)
    """
    first, second = np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64)
    smoothing = max(int(smoothing), 1)
    faces = sorted_unique(np.concatenate([first, second]))
    needed = sorted_unique(np.concatenate([faces, neighbors[faces, :smoothing - 1].ravel()]))
    V = reciprocal_neighbourhoods(neighbors, needed, k, n_jobs=n_jobs)
    out = np.empty(len(first))
    blocks = row_blocks(len(first), _PAIR_BLOCK)
    tasks = ((neighbors, first[start:stop], second[start:stop], smoothing, needed, V)
             for start, stop in blocks)
    for (start, stop), block in map_blocks(_jaccard_block, blocks, tasks, n_jobs):
        out[start:stop] = block
    return np.clip(out, 0.0, 1.0)  # against rounding


def _jaccard_block(neighbors, first, second, smoothing, needed, V):
    u = _smoothing_matrix(neighbors, first, smoothing, needed) @ V
    v = _smoothing_matrix(neighbors, second, smoothing, needed) @ V
    shared = np.asarray(u.minimum(v).sum(axis=1)).ravel()
    # Rows sum to 1, so sum(max) = 2 - sum(min).
    return 1.0 - shared / (2.0 - shared)


def reciprocal_links(labels, neighbors, distances, *, jaccard_eps, max_distance,
                     k=RECIPROCAL_K, n_jobs=1):
    """Join clusters that a close pair of faces with a shared neighbourhood links.

    A kNN pair across two clusters links them when its embedding distance is
    at most ``max_distance`` and the Jaccard distance of the two faces'
    reciprocal neighbourhoods at most ``jaccard_eps``. Noise (-1) stays noise.

    Parameters
    ----------
    labels : ndarray of int of shape (n_samples,)
    neighbors : ndarray of int of shape (n_samples, n_neighbors)
        The kNN graph, self excluded.
    distances : ndarray of shape (n_samples, n_neighbors)
        Embedding distances of the kNN pairs.
    jaccard_eps : float
    max_distance : float
    k : int, default=20
        Reciprocal neighbours are looked for among the first ``k`` (at most
        ``n_neighbors``).
    n_jobs : int, default=1
        Workers of :func:`jaccard_distances`.

    Returns
    -------
    labels : ndarray of int of shape (n_samples,)
        Renumbered by first point; every input cluster lies in one output cluster.
    """
    n, width = neighbors.shape
    k = min(k, width)
    rows = np.repeat(np.arange(n), width)
    cols = neighbors.ravel()
    a, b = labels[rows], labels[cols]
    candidate = (a != b) & (a >= 0) & (b >= 0) & (distances.ravel() <= max_distance)
    if not candidate.any():
        return labels
    jaccard = jaccard_distances(neighbors, rows[candidate], cols[candidate], k, n_jobs=n_jobs)
    # Components of the clusters over the pairs within jaccard_eps, as merging joins them.
    joined = next(edge_components(a[candidate], b[candidate], jaccard,
                                  int(labels.max()) + 1, [jaccard_eps]))
    out = np.where(labels >= 0, joined[np.maximum(labels, 0)], -1)
    return number_by_first_point(out)
