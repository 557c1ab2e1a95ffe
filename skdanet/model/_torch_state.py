"""Torch settings an estimator needs, set for one fit or transform and restored.

Nothing here leaves torch's process-global state changed: the thread count
and the deterministic-algorithms switch are restored on exit.
"""

import threading
from contextlib import contextmanager

import torch

# torch's thread count and deterministic switch are process-global: fits in
# several threads take turns in the torch sections, so that each restores
# exactly what it found.
_TORCH_STATE_LOCK = threading.RLock()


def resolve_device(device):
    """The ``torch.device`` named by ``device``, or a clear error."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a torch device name ('cpu', 'cuda', "
                         "'cuda:0').") from exc
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r} cannot run skdanet: use 'cpu', 'cuda' (a CUDA "
                         "GPU) or 'mps' (Apple GPU).")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but torch sees no CUDA GPU here; use device='cpu'.")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} but torch sees no Apple GPU here; use device='cpu'.")
    return dev


@contextmanager
def seeded_torch(seed, device=None):
    """torch's global generator seeded with ``seed`` inside, restored after.

    Module initialisation draws from the global generator; under the lock,
    fits in several threads cannot interleave their draws.
    """
    devices = [device] if device is not None and device.type == "cuda" else []
    with _TORCH_STATE_LOCK, torch.random.fork_rng(devices=devices):
        if seed is not None:
            torch.manual_seed(seed)
        yield


@contextmanager
def deterministic_torch(n_threads):
    """Run torch with ``n_threads`` threads and deterministic algorithms, then restore.

    Some CPU kernels pick their algorithm by thread count and problem size;
    deterministic mode fixes that, so the same random_state gives the same bits.
    """
    with _TORCH_STATE_LOCK:
        threads = torch.get_num_threads()
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        torch.set_num_threads(int(n_threads))
        _set_deterministic_kernels(True, warn_only=True)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            _set_deterministic_kernels(was_deterministic, warn_only=was_warn_only)


def _set_deterministic_kernels(mode, *, warn_only):
    """torch's deterministic-kernels switch, without the compiler's.

    ``torch.use_deterministic_algorithms`` also sets the deterministic flag of
    torch's compiler, importing it (about two seconds, once per process), and
    then leaves that flag at whatever value it is restored with. skdanet
    compiles nothing, so it sets the kernels' switch alone where torch
    exposes it.
    """
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        setter(mode, warn_only=warn_only)
