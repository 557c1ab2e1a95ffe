"""Bundled face features and identity-disjoint splits."""

from ._lfw import load_lfw_features
from ._split import split_identities
from ._synthetic import make_face_like

__all__ = ["load_lfw_features", "make_face_like", "split_identities"]
