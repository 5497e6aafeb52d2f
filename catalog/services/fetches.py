"""Aggregated record of /feed.xml downloads, written at most once a minute per process so a
download costs no database write; every download is also a line in the log file.

Which downloads are Kaspi's is not known in advance: once staff name Kaspi's User-Agent
words (KASPI_FEED_USER_AGENTS) or addresses (KASPI_FEED_ADDRESSES, IPs or networks),
matching downloads are counted in the "feed" row and the others in the "other" row; with
neither set every download is counted in "feed" (unverified)."""

import ipaddress
import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError
from django.db.models import F
from django.utils import timezone

from ..models import FeedFetch

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 60
KASPI, OTHER = "feed", "other"  # FeedFetch keys
_lock = threading.Lock()
_state = {key: {"pending": 0, "flushed_at": 0.0} for key in (KASPI, OTHER)}


def kaspi_marked() -> bool:
    """Staff said which downloads are Kaspi's."""
    return bool(settings.KASPI_FEED_USER_AGENTS or settings.KASPI_FEED_ADDRESSES)


def is_kaspi(user_agent: str, ip: str) -> bool:
    """A download matches a configured User-Agent word (case-insensitive) or address."""
    agent = (user_agent or "").lower()
    if any(word.strip().lower() in agent for word in settings.KASPI_FEED_USER_AGENTS if word):
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for entry in settings.KASPI_FEED_ADDRESSES:
        try:
            if address in ipaddress.ip_network(entry.strip(), strict=False):
                return True
        except ValueError:
            logger.warning("KASPI_FEED_ADDRESSES: %r is not an address or network", entry)
    return False


def record_fetch(request, status: int) -> None:
    user_agent = request.META.get("HTTP_USER_AGENT", "")
    ip = request.META.get("REMOTE_ADDR", "")
    key = KASPI if not kaspi_marked() or is_kaspi(user_agent, ip) else OTHER
    state = _state[key]
    with _lock:
        state["pending"] += 1
        if time.monotonic() - state["flushed_at"] < FLUSH_SECONDS:
            return
        pending, state["pending"] = state["pending"], 0
        state["flushed_at"] = time.monotonic()
    values = {
        "last_fetch_at": timezone.now(),
        "last_user_agent": user_agent[:255],
        "last_ip": ip[:64],
        "last_status": status,
    }
    try:
        if not FeedFetch.objects.filter(key=key).update(
            fetch_count=F("fetch_count") + pending, **values
        ):
            FeedFetch.objects.get_or_create(key=key, defaults={"fetch_count": pending, **values})
    except DatabaseError:
        # The feed must be served even when the database is down.
        logger.warning("could not record the feed download", exc_info=True)


def reset_fetch_throttle() -> None:
    with _lock:
        for state in _state.values():
            state["pending"] = 0
            state["flushed_at"] = 0.0
