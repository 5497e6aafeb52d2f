"""Al-Style as a supplier adapter, over the dealer API client (catalog/clients/alstyle.py).

Everything Al-Style-specific stays in the client and its record parser: the token, the
shared rate limiter (one call per `min_interval` + ALSTYLE_SLOT_MARGIN, across processes),
403 holds, read-timeout holds, pagination quirks and hostile records. This module only
speaks the adapter interface (catalog/suppliers/base.py).
"""

from dataclasses import dataclass

from django.conf import settings

from ..clients.alstyle import AlStyleClient, CartRefused
from ..clients.records import (
    BadRecord,
    parse_element,
    parse_money,
    parse_quantity,
    parse_warehouse_stock,
)
from .base import NotSupported, OfferPage, StockPrice

__all__ = ["AlStyleAdapter", "Budget", "CartRefused", "alstyle_client", "budget", "min_interval"]


@dataclass(frozen=True)
class Budget:
    """Al-Style's rate budget and schedule: the Supplier row's once it exists (the row
    wins), the ALSTYLE_* / *_SYNC_INTERVAL_MINUTES settings before that. A schedule of 0
    minutes on the row means "not scheduled"; the planner then uses the setting's tick."""

    min_interval: float
    full_sync_minutes: int
    stock_sync_minutes: int


def budget() -> Budget:
    from ..models import Supplier

    row = (
        Supplier.objects.filter(code=Supplier.ALSTYLE)
        .values_list("min_interval", "full_sync_minutes", "stock_sync_minutes")
        .first()
    )
    if row is None:
        return Budget(
            settings.ALSTYLE_MIN_INTERVAL,
            settings.CATALOG_SYNC_INTERVAL_MINUTES,
            settings.STOCK_SYNC_INTERVAL_MINUTES,
        )
    return Budget(float(row[0]), row[1], row[2])


def alstyle_client(**kwargs) -> AlStyleClient:
    """An Al-Style client paced by the Supplier row's interval (the row wins)."""
    kwargs.setdefault("min_interval", min_interval())
    return AlStyleClient(**kwargs)


def min_interval(supplier=None) -> float:
    """Seconds between two Al-Style calls: the Supplier row's value once the row exists,
    ALSTYLE_MIN_INTERVAL before that (and in the settings-only code paths)."""
    if supplier is None:
        return budget().min_interval
    return float(supplier.min_interval)


class AlStyleAdapter:
    supports_stock = True
    supports_cards = True
    supports_cart = True

    def __init__(self, supplier=None, *, client: AlStyleClient | None = None):
        self.supplier = supplier
        self._client = client

    @property
    def client(self) -> AlStyleClient:
        if self._client is None:
            self._client = AlStyleClient(min_interval=min_interval(self.supplier))
        return self._client

    # --- Catalog -------------------------------------------------------------------------

    def categories(self) -> list[dict]:
        return self.client.categories()

    def brands(self) -> list[dict]:
        return self.client.brands()

    def offer_page(self, offset: int = 0) -> OfferPage:
        """One `elements-pagination` page, parsed; bad records are listed, not raised."""
        elements, next_offset, total = self.client.product_page(offset=offset)
        records, bad = parse_elements(elements)
        return OfferPage(
            records=records, raw_rows=len(elements), next_offset=next_offset, total=total, bad=bad
        )

    def iter_offer_pages(self, start: int = 0):
        offset = start
        for _number in range(settings.ALSTYLE_MAX_PAGES):
            page = self.offer_page(offset)
            yield page
            if page.next_offset is None:
                return
            offset = page.next_offset
        from backoffice.core.exceptions import ExternalServiceError

        raise ExternalServiceError(
            "Al-Style",
            f"pagination did not end after {settings.ALSTYLE_MAX_PAGES} pages "
            "(ALSTYLE_MAX_PAGES); the run stops to avoid an endless loop",
        )

    def fetch_stock(self, articles: list[str]) -> dict[str, StockPrice]:
        """`quantity-price` for up to ALSTYLE_STOCK_CHUNK articles (one call); rows whose
        prices are not numbers are left out."""
        answer = self.client.quantity_price(list(articles))
        result = {}
        for article, row in answer.items():
            try:
                price1, price2 = parse_money(row.get("price1")), parse_money(row.get("price2"))
            except ValueError:
                continue
            quantity, quantity_raw, _ok = parse_quantity(row.get("quantity"))
            warehouses = parse_warehouse_stock(row.get("warehouse"), article=article)
            result[article] = StockPrice(
                article, quantity, quantity_raw, price1, price2, warehouse_stock=warehouses
            )
        return result

    def card_data(self, articles: list[str]) -> list[dict]:
        return self.client.element_info(list(articles))

    # --- Cart ----------------------------------------------------------------------------

    def cart(self, action: str, **params) -> dict:
        return self.client.cart(action, **params)

    def place_order(self, lines: list[tuple[str, int]], **submit) -> dict:
        """Empty the cart, add `lines`, submit with `submit` (attorney, delivery, dates …).
        CartRefused: a definite "no"; ExternalServiceError on submit: the order may exist."""
        if not lines:
            raise NotSupported("an order needs at least one line")
        self.client.cart("clear")
        self.client.cart(
            "add",
            add=",".join(article for article, _qty in lines),
            quantity=",".join(str(quantity) for _article, quantity in lines),
        )
        return self.client.cart("submit", method="POST", **submit)

    def order_status(self, order_id: str) -> dict:
        return self.client.order(order_id)

    def orders(self, **kwargs) -> list[dict]:
        return self.client.orders(**kwargs)


def parse_elements(elements) -> tuple[list, list[tuple[str, str]]]:
    """(record, raw) pairs of the usable elements, and (article, reason) of the others."""
    records, bad = [], []
    for raw in elements:
        try:
            records.append((parse_element(raw), raw))
        except BadRecord as exc:
            bad.append((exc.article, str(exc)))
    return records, bad
