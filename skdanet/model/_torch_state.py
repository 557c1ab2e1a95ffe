"""Torch settings an estimator needs, set for one fit or transform and restored.

Nothing here leaves torch's process-global state changed: the thread count
and the deterministic-algorithms switch are restored on exit.
"""

from contextlib import contextmanager

import torch


def resolve_device(device):
    """The ``torch.device`` named by ``device``, or a clear error."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device name ('cpu', 'cuda', "
                         "'cuda:0').") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA GPU here; use device='cpu'.")
    return dev


@contextmanager
def deterministic_torch(n_threads):
    """Run torch with ``n_threads`` threads and deterministic algorithms, then restore.

    Some CPU kernels pick their algorithm by thread count and problem size;
    deterministic mode fixes that, so the same random_state gives the same bits.
    """
    threads = torch.get_num_threads()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(int(n_threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)
