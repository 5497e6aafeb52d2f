"""Aggregated record of /feed.xml downloads, written at most once a minute per process so a
download costs no database write; every download is also a line in the log file."""

import logging
import threading
import time

from django.db import DatabaseError
from django.db.models import F
from django.utils import timezone

from ..models import FeedFetch

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 60
_lock = threading.Lock()
_state = {"pending": 0, "flushed_at": 0.0}


def record_fetch(request, status: int) -> None:
    with _lock:
        _state["pending"] += 1
        if time.monotonic() - _state["flushed_at"] < FLUSH_SECONDS:
            return
        pending, _state["pending"] = _state["pending"], 0
        _state["flushed_at"] = time.monotonic()
    values = {
        "last_fetch_at": timezone.now(),
        "last_user_agent": request.META.get("HTTP_USER_AGENT", "")[:255],
        "last_ip": request.META.get("REMOTE_ADDR", "")[:64],
        "last_status": status,
    }
    try:
        if not FeedFetch.objects.filter(key="feed").update(
            fetch_count=F("fetch_count") + pending, **values
        ):
            FeedFetch.objects.get_or_create(key="feed", defaults={"fetch_count": pending, **values})
    except DatabaseError:
        # The feed must be served even when the database is down.
        logger.warning("could not record the feed download", exc_info=True)


def reset_fetch_throttle() -> None:
    with _lock:
        _state["pending"] = 0
        _state["flushed_at"] = 0.0
