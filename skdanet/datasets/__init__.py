"""Bundled face features, a face-like generator, identity-disjoint splits (numpy only)."""

from ._lfw import load_lfw_features
from ._split import split_identities
from ._statistics import face_set_statistics
from ._synthetic import make_face_like

__all__ = ["face_set_statistics", "load_lfw_features", "make_face_like", "split_identities"]
