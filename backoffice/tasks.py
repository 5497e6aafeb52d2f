"""django-q2 tasks of the backoffice app."""

from .retention import cleanup


def cleanup_task() -> dict:
    """Daily: apply the retention settings (see backoffice/retention.py)."""
    return cleanup()


def incidents_task() -> int:
    """Every few minutes: alert staff about failing jobs, a stale feed, stuck payments."""
    from .incidents import alert_incidents

    return alert_incidents()
