"""Pairwise and BCubed precision / recall / F, from the contingency table.

With n_ij the number of faces of true identity i in predicted cluster j (n
faces in all):

* pairwise precision = (sum n_ij^2 - n) / (sum_j |pred_j|^2 - n),
  pairwise recall    = (sum n_ij^2 - n) / (sum_i |true_i|^2 - n);
* BCubed precision = (1/n) sum_ij n_ij^2 / |pred_j|,
  BCubed recall    = (1/n) sum_ij n_ij^2 / |true_i|;
* F is the harmonic mean of each pair.

Noise (label -1) counts as singletons. Only the non-zero cells of the
contingency table are formed, so memory is O(n).
"""

import numpy as np
from sklearn.metrics import normalized_mutual_info_score
from sklearn.utils.validation import check_consistent_length, column_or_1d


def _noise_as_singletons(labels):
    labels = np.asarray(labels)
    noise = labels == -1
    if not noise.any():
        return labels
    _, labels = np.unique(labels, return_inverse=True)
    labels = labels.astype(np.int64)
    labels[noise] = labels.max() + 1 + np.arange(noise.sum())
    return labels


def _contingency_cells(labels_true, labels_pred):
    """Non-zero cells n_ij with their row and column totals."""
    labels_true = column_or_1d(labels_true)
    labels_pred = column_or_1d(labels_pred)
    check_consistent_length(labels_true, labels_pred)
    if labels_true.shape[0] == 0:
        raise ValueError("labels_true and labels_pred are empty; need at least one face.")
    _, t = np.unique(_noise_as_singletons(labels_true), return_inverse=True)
    _, p = np.unique(_noise_as_singletons(labels_pred), return_inverse=True)
    t, p = t.ravel().astype(np.int64), p.ravel().astype(np.int64)
    pairs, n_ij = np.unique(t * (p.max() + 1) + p, return_counts=True)
    size_true = np.bincount(t)
    size_pred = np.bincount(p)
    cell_t, cell_p = np.divmod(pairs, p.max() + 1)
    return n_ij.astype(np.float64), size_true[cell_t], size_pred[cell_p], size_true, size_pred


def _f(precision, recall):
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def pairwise_precision_recall_fscore(labels_true, labels_pred):
    """Pairwise precision, recall and F-score of a clustering.

    Over all unordered pairs of faces: precision is the share of pairs put in
    one cluster that are the same person; recall the share of same-person
    pairs put in one cluster. Where a side has no pair at all its value is
    1.0 (nothing to get wrong).

    Parameters
    ----------
    labels_true, labels_pred : array-like of shape (n_samples,)
        Identities and predicted clusters; -1 is noise (a singleton each).

    Returns
    -------
    precision, recall, fscore : float

    Examples
    --------
    >>> from skdanet.metrics import pairwise_precision_recall_fscore
    >>> pairwise_precision_recall_fscore([0, 0, 1, 1], [0, 0, 0, 1])
    (0.3333333333333333, 0.5, 0.4)
    """
    n_ij, _, _, size_true, size_pred = _contingency_cells(labels_true, labels_pred)
    n = float(size_true.sum())
    tp = (n_ij**2).sum() - n
    pred_pairs = (size_pred.astype(np.float64) ** 2).sum() - n
    true_pairs = (size_true.astype(np.float64) ** 2).sum() - n
    precision = tp / pred_pairs if pred_pairs > 0 else 1.0
    recall = tp / true_pairs if true_pairs > 0 else 1.0
    return float(precision), float(recall), float(_f(precision, recall))


def bcubed_precision_recall_fscore(labels_true, labels_pred):
    """BCubed precision, recall and F-score of a clustering.

    Per face: precision is the share of its predicted cluster that is the same
    person, recall the share of its identity that is in its predicted cluster;
    both averaged over faces.

    Parameters
    ----------
    labels_true, labels_pred : array-like of shape (n_samples,)
        Identities and predicted clusters; -1 is noise (a singleton each).

    Returns
    -------
    precision, recall, fscore : float

    Examples
    --------
    >>> from skdanet.metrics import bcubed_precision_recall_fscore
    >>> p, r, f = bcubed_precision_recall_fscore([0, 0, 1, 1], [0, 0, 0, 1])
    >>> round(p, 4), round(r, 4), round(f, 4)
    (0.6667, 0.75, 0.7059)
    """
    n_ij, cell_true, cell_pred, size_true, _ = _contingency_cells(labels_true, labels_pred)
    n = float(size_true.sum())
    precision = (n_ij**2 / cell_pred).sum() / n
    recall = (n_ij**2 / cell_true).sum() / n
    return float(precision), float(recall), float(_f(precision, recall))


def pairwise_f_score(labels_true, labels_pred):
    """Pairwise F-score (see :func:`pairwise_precision_recall_fscore`)."""
    return pairwise_precision_recall_fscore(labels_true, labels_pred)[2]


def bcubed_f_score(labels_true, labels_pred):
    """BCubed F-score (see :func:`bcubed_precision_recall_fscore`)."""
    return bcubed_precision_recall_fscore(labels_true, labels_pred)[2]


def mean_f_score(labels_true, labels_pred):
    """Mean of the pairwise and the BCubed F-score.

    The one score skdanet tunes radii by: pairwise F is dominated by the
    largest people, BCubed F weighs every face alike, and users read both.
    """
    return 0.5 * (pairwise_f_score(labels_true, labels_pred)
                  + bcubed_f_score(labels_true, labels_pred))


def clustering_report(labels_true, labels_pred):
    """Every score of a clustering, noise counted as singletons throughout.

    Returns
    -------
    dict
        ``pairwise_p``, ``pairwise_r``, ``pairwise_f``, ``bcubed_p``,
        ``bcubed_r``, ``bcubed_f``, ``nmi`` (scikit-learn's, on the same
        singleton convention as the F scores) and ``n_clusters`` (each noise
        face counted as a cluster of its own).
    """
    pp, pr, pf = pairwise_precision_recall_fscore(labels_true, labels_pred)
    bp, br, bf = bcubed_precision_recall_fscore(labels_true, labels_pred)
    pred = _noise_as_singletons(column_or_1d(labels_pred))
    nmi = normalized_mutual_info_score(_noise_as_singletons(column_or_1d(labels_true)), pred)
    return dict(pairwise_p=pp, pairwise_r=pr, pairwise_f=pf, bcubed_p=bp, bcubed_r=br,
                bcubed_f=bf, nmi=float(nmi), n_clusters=int(len(np.unique(pred))))
