"""Bundled face features and identity-disjoint splits."""

from ._lfw import load_lfw_features
from ._split import split_identities

__all__ = ["load_lfw_features", "split_identities"]
