"""Policies as data: the typed model, the loader with its checking stages, and lint."""
