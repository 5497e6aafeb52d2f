"""The fake_server fixture lives in tests/conftest.py (shared with the process tests)."""
