"""One BLAS thread per worker, shared safely by concurrent callers.

``threadpool_limits`` changes a process-global setting and restores what it
found on exit; two threads that enter and leave overlapping contexts restore
each other's values and can leave BLAS at one thread for good. Here the
first caller sets the limit, the last one restores it.
"""

import threading
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

_LOCK = threading.Lock()
_users = 0
_limiter = None


@contextmanager
def one_blas_thread():
    """BLAS limited to one thread inside, restored when the last caller leaves."""
    global _users, _limiter
    with _LOCK:
        if _users == 0:
            _limiter = threadpool_limits(1)
        _users += 1
    try:
        yield
    finally:
        with _LOCK:
            _users -= 1
            if _users == 0:
                _limiter.restore_original_limits()
                _limiter = None
