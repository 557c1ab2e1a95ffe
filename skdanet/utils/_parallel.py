"""Row-parallel work through joblib: threads on this machine, or a Dask cluster.

Every stage that treats rows independently (kNN queries, embedding blocks,
the re-labelling embedding) maps a function over fixed row blocks with
:func:`map_blocks`. The blocks do not depend on the number of workers, so
neither do the results. Inside ``with joblib.parallel_backend("dask"):`` the
blocks run on the cluster's workers (joblib scatters large arguments once).
"""

import os

import joblib
from joblib.parallel import get_active_backend

# Elements (16 MB of float64) a row-wise gather such as ``R[idx[rows]]`` holds
# at a time: a larger gather is slower, not faster, its pages being fresh
# memory to fault in on every block.
GATHER_ELEMENTS = 2**21


def resolve_n_jobs(n_jobs):
    """Workers for ``n_jobs``: an int as in scikit-learn (-1 all cores, -2 all but one).

    None uses the ``n_jobs`` of an enclosing ``joblib.parallel_config`` /
    ``parallel_backend`` context, and otherwise every core, as
    scikit-learn's OpenMP estimators do, within ``OMP_NUM_THREADS`` when
    set (joblib sets it in its worker processes, so that estimators fitted
    in parallel, as by ``GridSearchCV(n_jobs=-1)``, share the cores). The
    results never depend on it.
    """
    if n_jobs is None and get_active_backend()[1] is None:
        cores = joblib.cpu_count()
        limit = os.environ.get("OMP_NUM_THREADS", "")
        return max(1, min(cores, int(limit))) if limit.isdigit() else max(1, cores)
    return max(1, int(joblib.effective_n_jobs(n_jobs)))


def row_blocks(n_rows, block_rows):
    """``(start, stop)`` of consecutive row blocks of at most ``block_rows`` rows."""
    return [(start, min(n_rows, start + block_rows)) for start in range(0, n_rows, block_rows)]


def gather_blocks(n_rows, elements_per_row):
    """:func:`row_blocks` whose rows gather about :data:`GATHER_ELEMENTS` elements in all."""
    return row_blocks(n_rows, max(1, GATHER_ELEMENTS // max(1, elements_per_row)))


def map_tasks(func, tasks, n_jobs):
    """``func(*task)`` for each argument tuple of ``tasks``, in order, as an iterator.

    One worker runs them here in turn; more go through ``joblib.Parallel``
    (threads unless the caller chose a backend, e.g. Dask's), which draws
    ``tasks`` lazily: a generator of tasks is never held whole.
    """
    if n_jobs == 1:
        return (func(*task) for task in tasks)
    return joblib.Parallel(n_jobs=n_jobs, prefer="threads", return_as="generator")(
        joblib.delayed(func)(*task) for task in tasks)


def map_blocks(func, blocks, tasks, n_jobs):
    """``((start, stop), func(*task))`` for each row block and its task, in order.

    The workers' results are read to their end even though the blocks run
    out first: a joblib generator closed early warns that its remaining
    tasks were cancelled.
    """
    return zip(blocks, map_tasks(func, tasks, n_jobs), strict=True)
