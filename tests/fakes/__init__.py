"""Fakes of external services shared by tests and benchmarks (no Django at import time)."""
