"""Helpers shared by every layer: progress output and fit-time safety (no torch)."""
