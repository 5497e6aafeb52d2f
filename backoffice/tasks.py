"""django-q2 tasks of the backoffice app."""

from .retention import cleanup


def cleanup_task() -> dict:
    """Daily: apply the retention settings (see backoffice/retention.py)."""
    return cleanup()
