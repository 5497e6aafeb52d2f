"""Kaspi Shop API v2 client (docs/kaspi-shop-api.md).

Every request carries `X-Auth-Token`, `Accept`/`Content-Type: application/vnd.api+json`
and a browser-like `User-Agent` (without it Kaspi accepts the connection and never
answers). Orders are listed by creation-date windows of at most 14 days, in epoch
milliseconds, pages from 0 up to `meta.pageCount`. Errors carry Kaspi's own title.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from django.conf import settings
from django.utils.translation import gettext as _

from backoffice.core.exceptions import ExternalServiceError, ServiceTimeout
from backoffice.core.http import HttpClient, error_title, json_body, status_words

logger = logging.getLogger(__name__)

SERVICE = "Kaspi"
JSONAPI = "application/vnd.api+json"
MAX_WINDOW_DAYS = 14
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Window:
    """An inclusive creation-date window in epoch milliseconds."""

    start_ms: int
    end_ms: int


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def windows(since: datetime, until: datetime, *, days: int | None = None) -> list[Window]:
    """Consecutive inclusive windows of at most `days` (≤ 14) covering [since, until].

    Each window ends 1 ms before the next begins: no gap and no overlap, so an order created
    exactly on a boundary falls in exactly one window. Kaspi allows `$le − $ge` up to the
    limit itself, so a period of exactly `days` (the last 14 days) is one window, never a
    full window plus an empty [now, now] one. An empty period gives no window at all.
    """
    days = min(days or settings.KASPI_ORDERS_WINDOW_DAYS, MAX_WINDOW_DAYS)
    span = int(timedelta(days=days).total_seconds() * 1000)
    start, end = to_ms(since), to_ms(until)
    result = []
    while start < end:
        stop = end if end - start <= span else start + span - 1
        result.append(Window(start, stop))
        start = stop + 1
    return result


def hang_advice() -> str:
    """What a Kaspi request that never answers usually means (said once per message)."""
    return _(
        "Kaspi never answers requests without a browser User-Agent; if it is set, check "
        "the network or Kaspi's availability"
    )


class KaspiShopClient(HttpClient):
    """Orders and status changes; returns the JSON:API documents as plain dicts."""

    def __init__(self, *, token: str | None = None, base_url: str | None = None, **kwargs):
        token = settings.KASPI_SHOP_TOKEN if token is None else token
        if not token:
            raise ExternalServiceError(
                SERVICE,
                _("no API token: set KASPI_SHOP_TOKEN (seller cabinet → Настройки → Токен API)"),
            )
        headers = {
            "X-Auth-Token": token,
            "Accept": JSONAPI,
            "Content-Type": JSONAPI,
            # Kaspi hangs without a browser-like agent; the shared session sets one, and we
            # set it again here so no configuration can leave it out.
            "User-Agent": settings.HTTP_USER_AGENT or settings.KASPI_USER_AGENT,
        }
        if settings.KASPI_MERCHANT_UID:
            headers["X-Merchant-Uid"] = settings.KASPI_MERCHANT_UID
        super().__init__(
            service=SERVICE,
            base_url=base_url or settings.KASPI_SHOP_API_URL,
            headers=headers,
            **kwargs,
        )

    def error_for(self, response):
        """Plain words for staff, with Kaspi's own `title` kept verbatim."""
        status = response.status_code
        title = error_title(response)
        if status in (401, 403):
            message = _(
                "the token was rejected: KASPI_SHOP_TOKEN is wrong, revoked or for another "
                "shop, or API access is off in the seller cabinet"
            )
        elif status == 400:
            message = (
                _("Kaspi refused the request: %(title)s") % {"title": title}
                if title
                else _("Kaspi refused the request (bad request)")
            )
        elif status == 404:
            message = title or _("not found (an order id is not its code)")
        elif status in (406, 415):
            message = _("Kaspi refused the content type (%(title)s)") % {
                "title": title or response.reason
            }
        else:
            message = title or status_words(response)
        return ExternalServiceError(SERVICE, message, status=status, title=title)

    def request(self, method, path, **kwargs):
        try:
            return super().request(method, path, **kwargs)
        except ServiceTimeout as exc:
            exc.message = "%s (%s)" % (exc.message, hang_advice())  # noqa: UP031
            raise

    # --- Orders ---------------------------------------------------------------------------

    def order_pages(
        self, window: Window, *, status: str | None = None, page_size: int | None = None
    ) -> Iterator[dict]:
        """Yield each JSON:API page of orders created within `window`."""
        number = 0
        while True:
            page = self.order_page(window, number, status=status, page_size=page_size)
            yield page
            page_count = (page.get("meta") or {}).get("pageCount")
            number += 1
            if not isinstance(page_count, int) or number >= page_count or not page["data"]:
                return
            if number >= settings.KASPI_ORDERS_MAX_PAGES:
                raise ExternalServiceError(
                    SERVICE,
                    _("more than %(pages)d pages in one window")
                    % {"pages": settings.KASPI_ORDERS_MAX_PAGES},
                )

    def order_page(
        self,
        window: Window,
        number: int,
        *,
        status: str | None = None,
        page_size: int | None = None,
    ) -> dict:
        """One JSON:API page (`number` from 0) of the orders created within `window`."""
        if window.end_ms <= window.start_ms:  # Kaspi would be asked for nothing
            raise ValueError(f"empty window {window}")
        size = min(page_size or settings.KASPI_ORDERS_PAGE_SIZE, MAX_PAGE_SIZE)
        params = {
            "page[number]": number,
            "page[size]": size,
            "filter[orders][creationDate][$ge]": window.start_ms,
            "filter[orders][creationDate][$le]": window.end_ms,
            "include[orders]": "user",
        }
        if status:
            params["filter[orders][status]"] = status
        page = self.get_json("orders", params=params)
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise ExternalServiceError(
                SERVICE,
                _("orders page %(number)d: not a JSON:API document with data[]")
                % {"number": number},
            )
        return page

    def entry_card_code(self, entry_id: str) -> str:
        """The Kaspi card of a sold item: `masterproducts.code` (= card id, unconfirmed)."""
        page = self.get_json(f"orderentries/{quote(entry_id, safe='=+')}/product")
        data = page.get("data") if isinstance(page, dict) else None
        attributes = data.get("attributes") if isinstance(data, dict) else None
        if not isinstance(attributes, dict):
            raise ExternalServiceError(SERVICE, f"product of entry {entry_id}: unexpected shape")
        return str(attributes.get("code") or "")

    def order_entries(self, order_id: str) -> list[dict]:
        page = self.get_json(f"orders/{quote(order_id, safe='=+')}/entries")
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise ExternalServiceError(
                SERVICE, _("entries of order %(id)s: unexpected shape") % {"id": order_id}
            )
        return page["data"]

    def order(self, order_id: str) -> dict:
        """GET /orders/{id}: one order resource (`data`)."""
        doc = self.get_json(f"orders/{quote(order_id, safe='=+')}")
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, dict):
            raise ExternalServiceError(
                SERVICE, _("order %(id)s: unexpected shape") % {"id": order_id}
            )
        return data

    def set_status(
        self,
        *,
        order_id: str,
        code: str,
        status: str,
        extra: dict | None = None,
        headers: dict | None = None,
    ) -> dict:
        """POST /orders with the new status. Never retried: it is a business action."""
        body = {
            "data": {
                "type": "orders",
                "id": order_id,
                "attributes": {"code": code, "status": status, **(extra or {})},
            }
        }
        response = self.request("POST", "orders", json=body, headers=headers or {})
        try:
            return json_body(response)
        except ValueError:
            return {}
