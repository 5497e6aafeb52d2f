"""Kaspi's public offers and search endpoints (docs/kaspi-offers.md), with their quirks.

Not a documented API: no token, no SLA. We are a light guest: one request at a time, at
least KASPI_OFFERS_MIN_INTERVAL seconds apart, a browser User-Agent kept in a setting, the
headers the product page sends, back-off with a first wait of 15 s after a 403 (the block
lasts ~10 s), at most 3 attempts, and a stop after 5 consecutive 403s. An error, an HTML
page, a truncated answer or an empty answer after an error is "market unknown", never
"no competitors". Never send cabinet cookies or the Shop API token here.
"""

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.utils.translation import gettext as _

from backoffice.core.exceptions import ExternalServiceError
from backoffice.core.http import HttpClient, build_session, json_body, retry_after_seconds

logger = logging.getLogger(__name__)

SERVICE = "Kaspi offers"
OFFERS_PATH = "yml/offer-view/offers/{card_id}"
SEARCH_PATH = "yml/product-view/pl/results"
PAGE_LIMIT = 64  # 100 gets HTTP 400 (xbatyr, unconfirmed); 64 works
ATTEMPTS = 3
FIRST_WAIT_AFTER_403 = 15.0
STOP_AFTER_403 = 5
TIMEOUT = (10.0, 20.0)  # connect, read (docs/kaspi-offers.md §6)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# Card id from a card URL: the digits (rarely a letter suffix) after the last "-" of the
# path segment of /shop/p/<slug>-<id>/; the slug may be empty (/shop/p/-123/).
_CARD_URL = re.compile(r"/shop/p/[^/?#]*-(\w+)/?(?:[?#]|$)")
_CARD_ID = re.compile(r"^\d{5,}[a-z]?$")
# Kaspi-made SKUs of offers created in the cabinet: {cardId}_{n}.
_KASPI_SKU = re.compile(r"^(\d{5,})_\d+$")


class MarketUnknown(ExternalServiceError):
    """The offers of this card in this city could not be read: keep our price."""

    def __init__(self, title: str, *, status: int | None = None):
        super().__init__(SERVICE, title, status=status)
        self.reason = title


class FormatChanged(MarketUnknown):
    """A non-empty answer without one usable entry: the endpoint changed shape."""


class IpBlocked(MarketUnknown):
    """Five 403s in a row: Kaspi refused our IP; the whole run stops."""


def card_id_from_url(text: str) -> str | None:
    """The card id of a pasted card URL (or a bare id), else None."""
    text = (text or "").strip()
    if _CARD_ID.match(text):
        return text
    match = _CARD_URL.search(text)
    if match and _CARD_ID.match(match.group(1)):
        return match.group(1)
    return None


def card_id_from_sku(sku: str) -> str | None:
    """The card id carried by a Kaspi-made SKU `{cardId}_{n}`, else None."""
    match = _KASPI_SKU.match((sku or "").strip())
    return match.group(1) if match else None


def card_url(card_id: str, city: str | None = None) -> str:
    base = f"{settings.KASPI_PUBLIC_URL}/shop/p/-{card_id}/"
    return f"{base}?c={city}" if city else base


def to_tenge(value) -> int | None:
    """Kaspi sends tenge as a JSON float (289990.0): Decimal via str, whole tenge."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite():
        return None
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _rating(value) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        rating = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return rating if rating.is_finite() and rating > 0 else None


def _int(value, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class Offer:
    merchant_id: str
    merchant_name: str
    merchant_sku: str
    price: int
    rating: Decimal | None = None
    reviews: int = 0
    delivery_type: str = ""
    delivery_duration: str = ""
    preorder: int = 0
    kaspi_delivery: bool = False
    inter_city: bool | None = None
    position: int = 0

    def as_dict(self) -> dict:
        return {
            "merchant_id": self.merchant_id,
            "merchant_name": self.merchant_name,
            "merchant_sku": self.merchant_sku,
            "price": self.price,
            "rating": str(self.rating) if self.rating is not None else None,
            "reviews": self.reviews,
            "delivery_type": self.delivery_type,
            "delivery_duration": self.delivery_duration,
            "preorder": self.preorder,
            "kaspi_delivery": self.kaspi_delivery,
            "inter_city": self.inter_city,
            "position": self.position,
        }


@dataclass
class CardMarket:
    card_id: str
    city: str
    offers: list[Offer] = field(default_factory=list)
    total: int = 0
    master_category: str = ""
    calls: int = 0


def parse_offer(entry) -> Offer | None:
    """One `offers[]` entry, or None when it has no merchantId or no positive price."""
    if not isinstance(entry, dict):
        return None
    merchant_id = str(entry.get("merchantId") or "").strip()
    price = to_tenge(entry.get("price"))
    if not merchant_id or price is None or price <= 0:
        return None
    options = entry.get("deliveryOptions")
    inter_city = None
    if isinstance(options, dict):
        flags = [o.get("interCity") for o in options.values() if isinstance(o, dict)]
        flags = [bool(f) for f in flags if f is not None]
        if flags:
            inter_city = all(flags)
    rating = _rating(entry.get("merchantRating"))
    return Offer(
        merchant_id=merchant_id,
        merchant_name=str(entry.get("merchantName") or "")[:255],
        merchant_sku=str(entry.get("merchantSku") or "")[:255],
        price=price,
        rating=rating,
        reviews=_int(entry.get("merchantReviewsQuantity")) if rating is not None else 0,
        delivery_type=str(entry.get("deliveryType") or "")[:20],
        delivery_duration=str(entry.get("deliveryDuration") or "")[:20],
        preorder=_int(entry.get("preorder")),
        kaspi_delivery=bool(entry.get("kaspiDelivery")),
        inter_city=inter_city,
    )


def parse_page(data) -> tuple[list[Offer], int, str, int]:
    """(usable offers, total, masterCategory, entries on the page) of one answer.

    Raises FormatChanged when the answer is not the known shape or a non-empty page has no
    usable entry (never reported as "no competitors").
    """
    if not isinstance(data, dict) or not isinstance(data.get("offers"), list):
        raise FormatChanged("the offers answer has no 'offers' list: the format changed")
    entries = data["offers"]
    offers = [offer for offer in map(parse_offer, entries) if offer is not None]
    if entries and not offers:
        raise FormatChanged(
            f"{len(entries)} offers but none with a merchantId and a price: the format changed"
        )
    total = _int(data.get("total", data.get("offersCount")), len(entries))
    category = ""
    for entry in entries:
        if isinstance(entry, dict) and entry.get("masterCategory"):
            category = str(entry["masterCategory"])[:255]
            break
    return offers, total, category, len(entries)


def rank(offers: list[Offer]) -> list[Offer]:
    """A shop listed twice (prices move between pages) keeps its lowest price; cheapest first."""
    best: dict[str, Offer] = {}
    for offer in offers:
        if offer.merchant_id not in best or offer.price < best[offer.merchant_id].price:
            best[offer.merchant_id] = offer
    ordered = sorted(best.values(), key=lambda o: o.price)  # stable: Kaspi's order on ties
    return [Offer(**{**o.__dict__, "position": i}) for i, o in enumerate(ordered, start=1)]


class KaspiOffersClient:
    """Paced, single-flight reader of the public offers endpoint (one client = one IP)."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        min_interval: float | None = None,
        max_pages: int | None = None,
        session=None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base_url = (base_url or settings.KASPI_PUBLIC_URL).rstrip("/")
        self.min_interval = (
            settings.KASPI_OFFERS_MIN_INTERVAL if min_interval is None else min_interval
        )
        self.max_pages = max(1, max_pages or settings.KASPI_OFFERS_MAX_PAGES)
        self.sleep, self.clock = sleep, clock
        self._last_call: float | None = None
        self.consecutive_403 = 0
        self.calls = 0
        self.http = HttpClient(
            service=SERVICE,
            base_url=self.base_url,
            session=session or build_session(user_agent=settings.KASPI_OFFERS_USER_AGENT),
            retries=0,
            timeout=TIMEOUT,
            sleep=sleep,
            before_attempt=self._wait_turn,
        )

    def _wait_turn(self) -> None:
        """Wait until min_interval has passed since the previous call ENDED.

        Counting from the end (not the start) keeps the gap Kaspi sees between two arrivals
        at or above the setting whatever the network adds to one request and not the next.
        """
        if self._last_call is not None:
            gap = self.clock() - self._last_call
            if gap < self.min_interval:
                self.sleep(self.min_interval - gap)
        self.calls += 1

    def _request(self, method: str, path: str, **kwargs):
        try:
            return self.http.request(method, path, **kwargs)
        finally:
            self._last_call = self.clock()

    def _headers(self, card_id: str, city: str) -> dict:
        return {
            "Content-Type": "application/json; charset=UTF-8",
            "Accept": "application/json, text/*",
            "Accept-Language": "ru-RU,ru;q=0.9",
            "X-KS-City": city,
            "Origin": self.base_url,
            "Referer": f"{self.base_url}/shop/p/-{card_id}/?c={city}",
        }

    @staticmethod
    def _backoff(attempt: int, base: float = 2.0) -> float:
        ceiling = base * (2**attempt)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto

    def _post_page(self, card_id: str, city: str, page: int) -> dict:
        """One page with the retry policy; returns the parsed JSON or raises MarketUnknown."""
        body = {
            "cityId": city,
            "id": card_id,
            "merchantUID": [],
            "limit": PAGE_LIMIT,
            "page": page,
            "sortOption": "PRICE",
            "highRating": None,
            "searchText": None,
            "isExcellentMerchant": False,
            "installationId": "-1",
        }
        problems: list[str] = []
        for attempt in range(ATTEMPTS):
            wait = None
            try:
                response = self._request(
                    "POST",
                    OFFERS_PATH.format(card_id=card_id),
                    json=body,
                    headers=self._headers(card_id, city),
                    raise_for_status=False,
                )
            except ExternalServiceError as exc:  # timeout or connection error
                self.consecutive_403 = 0
                problems.append(exc.message)
                wait = self._backoff(attempt)
            else:
                status = response.status_code
                if status == 403:
                    self.consecutive_403 += 1
                    problems.append("HTTP 403")
                    if self.consecutive_403 >= STOP_AFTER_403:
                        raise IpBlocked(
                            _("Kaspi refused our IP (403); the repricer paused, retry later"),
                            status=403,
                        )
                    after = retry_after_seconds(response)
                    wait = max(FIRST_WAIT_AFTER_403, after or 0, self._backoff(attempt, 15.0))
                else:
                    self.consecutive_403 = 0
                    if status in RETRY_STATUSES:
                        problems.append(f"HTTP {status}")
                        after = retry_after_seconds(response)
                        wait = min(after, 300.0) if after is not None else self._backoff(attempt)
                    elif status != 200:
                        raise MarketUnknown(f"HTTP {status}", status=status)
                    else:
                        try:
                            data = json_body(response)
                        except ValueError:
                            kind = response.headers.get("Content-Type", "")
                            problems.append(
                                "an HTML page instead of JSON"
                                if "html" in kind
                                else "a cut-off or non-JSON answer"
                            )
                            wait = self._backoff(attempt)
                        else:
                            if problems and isinstance(data, dict) and not data.get("offers"):
                                raise MarketUnknown(
                                    "an empty answer after an error (" + ", ".join(problems) + ")"
                                )
                            return data
            if attempt + 1 < ATTEMPTS and wait is not None:
                self.sleep(wait)
        raise MarketUnknown(f"{ATTEMPTS} attempts failed: " + ", ".join(problems))

    def card_offers(self, card_id: str, city: str) -> CardMarket:
        """Every shop selling `card_id` in `city`, cheapest first, with our position."""
        calls_before = self.calls
        market = CardMarket(card_id=card_id, city=city)
        collected: list[Offer] = []
        for page in range(self.max_pages):
            data = self._post_page(card_id, city, page)
            offers, total, category, entries = parse_page(data)
            collected.extend(offers)
            market.total = max(market.total, total)
            market.master_category = market.master_category or category
            if entries < PAGE_LIMIT or page * PAGE_LIMIT + entries >= total:
                break
        market.offers = rank(collected)
        market.calls = self.calls - calls_before
        return market

    def search(self, text: str, *, city: str | None = None, page: int = 0) -> list[dict]:
        """Candidate cards for staff to confirm: id, title, brand, unitPrice, url."""
        city = city or settings.KASPI_HOME_CITY
        try:
            response = self._request(
                "GET",
                SEARCH_PATH,
                params={"text": text, "page": page, "all": "false"},
                headers={"Accept": "application/json, text/*", "X-KS-City": city},
                expect_json=True,
            )
        except ExternalServiceError as exc:
            raise MarketUnknown(f"search failed: {exc.message}") from None
        data = getattr(response, "parsed_json", None)
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise FormatChanged("the search answer has no 'data' list: the format changed")
        out = []
        for item in data["data"]:
            if not isinstance(item, dict) or not item.get("id"):
                continue
            out.append(
                {
                    "id": str(item["id"]),
                    "title": str(item.get("title") or "")[:255],
                    "brand": str(item.get("brand") or "")[:120],
                    "unit_price": to_tenge(item.get("unitPrice")),
                    "url": f"{self.base_url}/shop/p/-{item['id']}/",
                }
            )
        return out
