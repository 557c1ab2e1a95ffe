"""Verbose output in the scikit-learn style: stage timings and an epoch table."""

import sys
import time
from contextlib import contextmanager


class StageTimer:
    """Times named stages and prints them when ``verbose`` is set."""

    def __init__(self, verbose, prefix="[DANetEmbedder]"):
        self.verbose = verbose
        self.prefix = prefix
        self.timings = {}

    @contextmanager
    def __call__(self, stage):
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.timings[stage] = elapsed
        if self.verbose:
            print(f"{self.prefix} {stage}: {elapsed:.2f} s", file=sys.stdout, flush=True)


class EpochTable:
    """Prints one row per epoch, skorch style: a header, then aligned columns."""

    columns = ("round", "epoch", "train_loss", "valid_score", "eps", "best", "dur")

    def __init__(self, verbose):
        self.verbose = verbose
        self._printed_header = False

    def row(self, entry):
        if not self.verbose:
            return
        if not self._printed_header:
            print("  ".join(f"{c:>11}" for c in self.columns), flush=True)
            print("  ".join("-" * 11 for _ in self.columns), flush=True)
            self._printed_header = True
        cells = []
        for c in self.columns:
            v = entry.get(c)
            if v is None:
                cells.append(f"{'':>11}")
            elif isinstance(v, bool):
                cells.append(f"{'*' if v else '':>11}")
            elif isinstance(v, float):
                cells.append(f"{v:>11.4f}")
            else:
                cells.append(f"{v:>11}")
        print("  ".join(cells), flush=True)

    def note(self, text):
        """A line under the table: a decision the training made."""
        if self.verbose:
            print(text, flush=True)


def _format_seconds(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class BatchProgress:
    """Progress of a long batched stage: batch i of m, rate and ETA.

    Prints at most every ``every`` seconds (and at the last batch), so that a
    million-face run says where it is without flooding the log.
    """

    def __init__(self, verbose, stage, n_items, n_batches=None, *, unit="faces",
                 prefix="[DANetEmbedder]", every=10.0):
        self.verbose = verbose
        self.stage = stage
        self.n_items = n_items
        self.n_batches = n_batches
        self.unit = unit
        self.prefix = prefix
        self.every = every
        self._start = self._last = time.perf_counter()

    def __call__(self, batch, n_done, n_batches=None):
        """Report that ``batch`` (1-based) is done, ``n_done`` items in all."""
        if n_batches is not None:
            self.n_batches = n_batches
        if not self.verbose:
            return
        now = time.perf_counter()
        if now - self._last < self.every and batch < self.n_batches:
            return
        self._last = now
        rate = n_done / max(now - self._start, 1e-9)
        eta = (self.n_items - n_done) / rate if rate > 0 else float("inf")
        print(f"{self.prefix} {self.stage}: batch {batch}/{self.n_batches} "
              f"({n_done:,}/{self.n_items:,} {self.unit}), {rate:,.0f} {self.unit}/s, "
              f"ETA {_format_seconds(eta)}", file=sys.stdout, flush=True)
