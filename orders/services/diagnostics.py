"""A connection check for a new merchant: names the cause in plain words.

It asks for the whole last 14 days in one window (Kaspi allows `$le − $ge` up to 14
days), says how many orders the token sees and which is the newest, so the shop can tell
that the token belongs to *its* cabinet.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.core.exceptions import ExternalServiceError, ServiceTimeout
from catalog.clients.kaspi_shop import MAX_WINDOW_DAYS, KaspiShopClient, windows

from .kaspi_records import from_ms

CHECK_PAGE_SIZE = 100


def check_kaspi_connection(client: KaspiShopClient | None = None, *, now=None) -> tuple[bool, str]:
    if not settings.KASPI_SHOP_TOKEN and client is None:
        return False, _(
            "No token: set KASPI_SHOP_TOKEN (seller cabinet → Настройки → Токен API) in the "
            "environment or .env."
        )
    now = now or timezone.now()
    (window,) = windows(now - timedelta(days=MAX_WINDOW_DAYS), now, days=MAX_WINDOW_DAYS)
    try:
        client = client or KaspiShopClient()
        first = client.order_page(window, 0, page_size=CHECK_PAGE_SIZE)
        pages = [first]
        page_count = (first.get("meta") or {}).get("pageCount")
        if isinstance(page_count, int) and page_count > 1:
            # Kaspi's sort order is not documented: the newest order is on the first page
            # (newest first) or on the last one (oldest first).
            pages.append(client.order_page(window, page_count - 1, page_size=CHECK_PAGE_SIZE))
    except ServiceTimeout as exc:
        return False, _(
            "The request hangs: no answer within %(timeout)s. Kaspi answers nothing to "
            "requests without a browser User-Agent (HTTP_USER_AGENT), or this network/IP "
            "cannot reach kaspi.kz."
        ) % {"timeout": exc.timeout_text}
    except ExternalServiceError as exc:
        if exc.status in (401, 403):
            return False, _("Token rejected (HTTP %(status)s): %(message)s.") % {
                "status": exc.status,
                "message": exc.message,
            }
        if exc.status == 400:
            return False, _("Kaspi refused the date filter (HTTP 400): %(title)s") % {
                "title": exc.title or exc.message
            }
        return False, str(exc)
    meta = first.get("meta") or {}
    total = meta.get("totalCount")
    if not isinstance(total, int):
        total = len(first["data"])
    newest = _newest(item for page in pages for item in page["data"])
    if newest is None:
        return True, _("OK: Kaspi answered. Orders in the last 14 days: %(count)d.") % {
            "count": total
        }
    code, created = newest
    return True, _(
        "OK: Kaspi answered. Orders in the last 14 days: %(count)d; the newest is "
        "%(code)s of %(date)s."
    ) % {
        "count": total,
        "code": code,
        "date": timezone.localtime(created).strftime("%d.%m.%Y %H:%M"),
    }


def _newest(items) -> tuple[str, object] | None:
    best = None
    for item in items:
        attrs = (item.get("attributes") or {}) if isinstance(item, dict) else {}
        try:
            created = from_ms(attrs.get("creationDate"))
        except (TypeError, ValueError, OverflowError):
            continue
        if created and attrs.get("code") and (best is None or created > best[1]):
            best = (str(attrs["code"]), created)
    return best
