"""Remarketing: the framework-free core library (settings, storage, data, models, runs)."""

__version__ = "0.1.0"
