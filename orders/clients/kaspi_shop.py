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

from django.conf import settings

from backoffice.exceptions import ExternalServiceError
from backoffice.http import HttpClient, error_title

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
    exactly on a boundary falls in exactly one window.
    """
    days = min(days or settings.KASPI_ORDERS_WINDOW_DAYS, MAX_WINDOW_DAYS)
    span = int(timedelta(days=days).total_seconds() * 1000)
    start, end = to_ms(since), to_ms(until)
    result = []
    while start <= end:
        stop = min(start + span - 1, end)
        result.append(Window(start, stop))
        start = stop + 1
    return result


class KaspiShopClient(HttpClient):
    """Orders and status changes; returns the JSON:API documents as plain dicts."""

    def __init__(self, *, token: str | None = None, base_url: str | None = None, **kwargs):
        token = settings.KASPI_SHOP_TOKEN if token is None else token
        if not token:
            raise ExternalServiceError(
                SERVICE,
                "no API token: set KASPI_SHOP_TOKEN (seller cabinet → Настройки → Токен API)",
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
        status = response.status_code
        title = error_title(response)
        if status in (401, 403):
            message = (
                "the token was rejected: KASPI_SHOP_TOKEN is wrong, revoked or for another "
                "shop, or API access is off in the seller cabinet"
            )
        elif status == 400:
            message = f"Kaspi refused the request: {title}" if title else "bad request"
        elif status == 404:
            message = title or "not found (an order id is not its code)"
        elif status in (406, 415):
            message = f"Kaspi refused the content type ({title or response.reason})"
        else:
            message = title or response.reason or "request failed"
        return ExternalServiceError(SERVICE, message, status=status, title=title)

    def request(self, method, path, **kwargs):
        try:
            return super().request(method, path, **kwargs)
        except ExternalServiceError as exc:
            if exc.status is None and "no answer within" in exc.message:
                exc.message += (
                    " (Kaspi never answers requests without a browser User-Agent; if it "
                    "is set, check the network or Kaspi's availability)"
                )
            raise

    # --- Orders ---------------------------------------------------------------------------

    def order_pages(
        self, window: Window, *, status: str | None = None, page_size: int | None = None
    ) -> Iterator[dict]:
        """Yield each JSON:API page of orders created within `window`."""
        size = min(page_size or settings.KASPI_ORDERS_PAGE_SIZE, MAX_PAGE_SIZE)
        number = 0
        while True:
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
                    SERVICE, f"orders page {number}: not a JSON:API document with data[]"
                )
            yield page
            page_count = (page.get("meta") or {}).get("pageCount")
            number += 1
            if not isinstance(page_count, int) or number >= page_count or not page["data"]:
                return
            if number >= settings.KASPI_ORDERS_MAX_PAGES:
                raise ExternalServiceError(
                    SERVICE, f"more than {settings.KASPI_ORDERS_MAX_PAGES} pages in one window"
                )

    def order_entries(self, order_id: str) -> list[dict]:
        page = self.get_json(f"orders/{order_id}/entries")
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise ExternalServiceError(SERVICE, f"entries of order {order_id}: unexpected shape")
        return page["data"]

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
            return response.json()
        except ValueError:
            return {}
