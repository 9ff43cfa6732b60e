"""Integration tests use the shared fixtures of tests/conftest.py (the real local stack)."""
