"""Shared by the examples: a small-data switch for quick documentation builds."""

import os

# SKDANET_EXAMPLES_SMALL=1 (set by the docs build in CI) runs every example on
# fewer faces and epochs: same code path, smaller numbers.
SMALL = os.environ.get("SKDANET_EXAMPLES_SMALL", "") not in ("", "0")
