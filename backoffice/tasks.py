"""django-q2 tasks of the backoffice app."""

from backoffice.ops.retention import cleanup


def cleanup_task() -> dict:
    """Daily: apply the retention settings (see backoffice/ops/retention.py)."""
    return cleanup()


def incidents_task() -> int:
    """Every few minutes: alert staff about failing jobs, a stale feed, stuck payments."""
    from backoffice.ops.incidents import alert_incidents

    return alert_incidents()


def probe_task(n: int, seconds: float = 0) -> int:
    """Records that task `n` ran (an Alert with channel "probe"): used to check a worker
    setup, e.g. that two clusters on one Redis queue run every task exactly once, or (with
    `seconds`, recorded as "probe-start:n" first) that stopping a worker lets a task in
    flight finish."""
    import time

    from backoffice.models import Alert

    if seconds:
        Alert.objects.create(key=f"probe-start:{n}", channel="probe", text="", ok=True)
        time.sleep(seconds)
    Alert.objects.create(key=f"probe:{n}", channel="probe", text="", ok=True)
    return n
