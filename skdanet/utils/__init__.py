"""Helpers shared by every layer (no torch): progress output, fit-time safety,
row-parallel work through joblib, dask arrays."""
