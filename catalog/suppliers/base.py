"""The supplier adapter interface: what the catalog, orders and purchases ask of any
supplier (Al-Style's API, a distributor's price file …).

An adapter turns one supplier's quirks (endpoints, headers, payload oddities, status
words, pagination) into plain records; services never see the supplier's wire format.
Adapters live in this package (`alstyle.py`, `pricefile/`) and are found by
`catalog.suppliers.get_adapter(supplier)`.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..clients.records import BadRecord, OfferRecord
from ..rules import is_price_on_request

__all__ = [
    "BadRecord",
    "OfferPage",
    "OfferRecord",
    "StockPrice",
    "SupplierAdapter",
]


@dataclass
class OfferPage:
    """One page of a supplier's listing.

    `records` are (record, raw) pairs: the parsed offer and the supplier's own row (kept
    as the offer's raw text). `bad` lists rows that could not be used, as (row number or
    article, reason): counted and shown, never stopping the run. `next_offset` is None
    after the last page; a listing that stops can resume from the offset it kept."""

    records: list[tuple[OfferRecord, Any]]
    raw_rows: int
    next_offset: int | None
    total: int | None = None
    bad: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class StockPrice:
    """Stock and prices of one article from a quick check (no full record)."""

    article: str
    quantity: int
    quantity_raw: str
    dealer_price: int | None
    retail_price: int | None
    # {warehouse code: units} where the answer says it; None: the answer does not say.
    warehouse_stock: dict | None = None

    @property
    def price_on_request(self) -> bool:
        return is_price_on_request(self.dealer_price)


@runtime_checkable
class SupplierAdapter(Protocol):
    """What every supplier adapter offers. Optional abilities say so by a flag."""

    supplier: Any  # the catalog.models.Supplier row
    supports_stock: bool  # fetch_stock works (else stock comes with the listing only)
    supports_cards: bool  # card_data works
    supports_cart: bool  # place_order / order_status work (else: a purchase list)

    def categories(self) -> list[dict]:
        """The supplier's categories as raw dicts (id, name, nesting where given)."""

    def brands(self) -> list[dict]:
        """The supplier's brands as raw dicts (name, id where given)."""

    def iter_offer_pages(self, start: int = 0):
        """Yield OfferPage objects from offset `start` to the end of the listing."""

    def fetch_stock(self, articles: list[str]) -> dict[str, StockPrice]:
        """Stock and prices for some articles; an article missing from the answer is not
        (or no longer) offered. Raises BadRecord-free: unusable rows are left out."""

    def card_data(self, articles: list[str]) -> list[dict]:
        """Images, description, weight and properties for a few articles (optional)."""

    def place_order(self, lines: list[tuple[str, int]], **options) -> dict:
        """Put `lines` (article, quantity) into the supplier's cart and submit (optional)."""

    def order_status(self, order_id: str) -> dict:
        """The supplier's view of one of our orders (optional)."""


class NotSupported(NotImplementedError):
    """The supplier has no such ability (e.g. no cart API: staff get a purchase list)."""
