"""A connection check for a new merchant: names the cause in plain words."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from backoffice.exceptions import ExternalServiceError

from ..clients.kaspi_shop import KaspiShopClient, windows


def check_kaspi_connection(client: KaspiShopClient | None = None) -> tuple[bool, str]:
    if not settings.KASPI_SHOP_TOKEN and client is None:
        return False, (
            "No token: set KASPI_SHOP_TOKEN (seller cabinet → Настройки → Токен API) in the "
            "environment or .env."
        )
    try:
        client = client or KaspiShopClient()
        now = timezone.now()
        window = windows(now - timedelta(days=14), now)[-1]
        page = next(client.order_pages(window, page_size=1))
    except ExternalServiceError as exc:
        if exc.status in (401, 403):
            return False, f"Token rejected (HTTP {exc.status}): {exc.message}."
        if exc.status == 400:
            return False, f"Kaspi refused the date filter (HTTP 400): {exc.title or exc.message}"
        if exc.status is None and "no answer" in exc.message:
            return False, (
                "The request hangs: Kaspi answers nothing to requests without a browser "
                "User-Agent (HTTP_USER_AGENT), or the network/IP cannot reach kaspi.kz. "
                f"Details: {exc.message}"
            )
        return False, str(exc)
    total = (page.get("meta") or {}).get("totalCount", len(page.get("data") or []))
    return True, f"OK: Kaspi answered; {total} orders in the last 14 days."
