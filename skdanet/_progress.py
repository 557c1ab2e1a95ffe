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
