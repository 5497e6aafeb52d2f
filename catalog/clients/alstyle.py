"""Al-Style dealer API client (docs/alstyle-api.md).

The token travels as the `access-token` query parameter (masked in every log line). The
supplier answers 403 when called more than about once per 5 s per token, so every attempt
(first try or retry, catalog, stock, card data or cart) waits for a slot on a clock kept in
the shared cache, ALSTYLE_MIN_INTERVAL + ALSTYLE_SLOT_MARGIN apart: the web process, the
workers and cron commands all share one budget. A 403 is retried after a pause
(ALSTYLE_RATE_LIMIT_PAUSE) that holds back every process, and the retry takes a new slot.
"""

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext

from backoffice.core.exceptions import ExternalServiceError
from backoffice.core.http import HttpClient, RetryRule, error_title, json_body, status_words

logger = logging.getLogger(__name__)

SERVICE = "Al-Style"


class RateLimiter:
    """At least `interval` + `margin` seconds between calls for one token, across processes.

    Every attempt takes a slot, first try or retry, catalog, stock, card data or cart call,
    from any process (the HTTP client calls `wait()` before each attempt). A short mutex in
    the shared cache (`add` is atomic on the DB and Redis caches) guards reading the last
    slot and reserving the next one; the caller sleeps outside the mutex. The mutex is
    released only by its holder: it carries a random token, and a holder that is slower
    than half the mutex's lifetime lets it expire rather than risk deleting a successor's.
    """

    MUTEX_TTL = 10  # seconds: a holder that died frees the mutex after this
    MUTEX_WAIT = 30.0  # seconds a caller waits for the mutex before giving up

    def __init__(
        self,
        key: str,
        interval: float,
        *,
        margin: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.key = f"alstyle:rate:{key}"
        self.interval = interval
        self.margin = settings.ALSTYLE_SLOT_MARGIN if margin is None else margin
        self.clock = clock
        self.sleep = sleep

    @property
    def spacing(self) -> float:
        return self.interval + max(self.margin, 0.0) if self.interval > 0 else 0.0

    def wait(self) -> float:
        """Block until this caller's slot; return the seconds waited."""
        if self.spacing <= 0:
            return 0.0
        waited = 0.0
        while True:
            with self._mutex():
                now = self.clock()
                last = cache.get(self.key)
                slot = max(now, (last or 0.0) + self.spacing)
                cache.set(self.key, slot, timeout=int(self.spacing * 4) + 60)
            delay = slot - now
            if delay > 0:
                self.sleep(delay)
                waited += delay
            # A hold placed while we slept (a 403 or a timeout elsewhere) voids our slot.
            held_until = cache.get(f"{self.key}:hold")
            if held_until is None or self.clock() >= held_until:
                return waited

    def hold(self, seconds: float) -> None:
        """After a 403: no caller (any process) gets a slot for `seconds` from now."""
        if self.spacing <= 0 or seconds <= 0:
            return
        with self._mutex():
            last = cache.get(self.key) or 0.0
            until = self.clock() + seconds
            slot = max(last, until - self.spacing)
            cache.set(self.key, slot, timeout=int(seconds + self.spacing * 4) + 60)
            held = cache.get(f"{self.key}:hold") or 0.0
            cache.set(f"{self.key}:hold", max(held, until), timeout=int(seconds) + 60)

    @contextmanager
    def _mutex(self):
        mutex = f"{self.key}:mutex"
        token = uuid.uuid4().hex
        deadline = self.clock() + self.MUTEX_WAIT
        while not cache.add(mutex, token, timeout=self.MUTEX_TTL):
            if self.clock() >= deadline:
                raise ExternalServiceError(
                    SERVICE,
                    f"could not take a call slot of the shared rate limiter within "
                    f"{self.MUTEX_WAIT:g} s (the cache is slow or unreachable); "
                    "nothing was sent, try again later",
                )
            self.sleep(0.02)
        taken = time.monotonic()
        try:
            yield
        finally:
            # Ours to delete only while it surely has not expired and been re-taken.
            if time.monotonic() - taken < self.MUTEX_TTL / 2 and cache.get(mutex) == token:
                cache.delete(mutex)


class AlStyleClient:
    """Catalog, brands, products and stock from Al-Style; returns plain dicts and lists."""

    def __init__(
        self,
        *,
        token: str | None = None,
        base_url: str | None = None,
        session=None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        cart_url: str | None = None,
        min_interval: float | None = None,
    ):
        self.token = settings.ALSTYLE_TOKEN if token is None else token
        if not self.token:
            raise ExternalServiceError(
                SERVICE, gettext("no API token: set ALSTYLE_TOKEN (dealer cabinet → API section)")
            )
        token_key = hashlib.sha256(self.token.encode()).hexdigest()[:16]
        # The Supplier row's interval is passed in by catalog.suppliers.alstyle; a client
        # made without it (tests, scripts) falls back to ALSTYLE_MIN_INTERVAL.
        interval = settings.ALSTYLE_MIN_INTERVAL if min_interval is None else min_interval
        self.limiter = limiter or RateLimiter(token_key, interval, sleep=sleep)
        pause = settings.ALSTYLE_RATE_LIMIT_PAUSE
        self.http = _AlStyleHttp(
            service=SERVICE,
            base_url=base_url or settings.ALSTYLE_API_URL,
            session=session,
            extra_rules=[
                RetryRule(
                    status=403,
                    pause=pause,
                    tries=settings.ALSTYLE_RATE_LIMIT_RETRIES,
                    # A 403 slows every process down for the pause, not only this one.
                    when=lambda response: self.limiter.hold(pause) or True,
                )
            ],
            sleep=sleep,
            # Every attempt (first try and each retry) takes a slot from the one limiter.
            before_attempt=self._before_attempt,
        )
        self.http.session = _HoldAfterReadTimeout(self.http.session, self.limiter)
        self.calls = 0
        # The cart follows the catalog: a client pointed at another host never sends the
        # token to the real cart API (settings derive ALSTYLE_CART_API_URL the same way).
        self.cart_url = cart_url or (
            cart_api_url(base_url) if base_url else settings.ALSTYLE_CART_API_URL
        )
        # Attempts sent (retries included): what the supplier budget counts.
        self.attempts = 0

    def _before_attempt(self) -> float:
        self.attempts += 1
        return self.limiter.wait()

    def get(self, method: str, **params: Any) -> Any:
        """One throttled GET of `method`; the token is added to the query string.

        Each attempt waits for its slot (`before_attempt`); a truncated or non-JSON answer
        and a read timeout are retried, bounded, with back-off.
        """
        self.calls += 1
        params = {key: value for key, value in params.items() if value is not None}
        params["access-token"] = self.token
        return self.http.get_json(method, params=params)

    # --- Methods -------------------------------------------------------------------------

    def categories(self) -> list[dict]:
        data = self.get("categories")
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if not isinstance(data, list):
            raise ExternalServiceError(SERVICE, "categories: expected a list")
        return [item for item in data if isinstance(item, dict)]

    def brands(self) -> list[dict]:
        data = self.get("brands")
        if isinstance(data, dict):
            data = data.get("data", [])
        if not isinstance(data, list):
            raise ExternalServiceError(SERVICE, "brands: expected a list")
        return [item for item in data if isinstance(item, dict)]

    def iter_product_pages(self, *, limit: int | None = None) -> Iterator[list[dict]]:
        """Yield pages of raw elements from `elements-pagination` until exhausted.

        Stops on an empty page, on `currentPage >= totalPages`, or when the offset passes
        `totalCount`; ALSTYLE_MAX_PAGES guards against a page that never ends.
        """
        offset = 0
        for _page_number in range(1, settings.ALSTYLE_MAX_PAGES + 1):
            elements, next_offset, _total = self.product_page(offset=offset, limit=limit)
            if elements:
                yield elements
            if next_offset is None:
                return
            offset = next_offset
        raise ExternalServiceError(
            SERVICE,
            f"pagination did not end after {settings.ALSTYLE_MAX_PAGES} pages "
            "(ALSTYLE_MAX_PAGES); the run stops to avoid an endless loop",
        )

    def product_page(
        self, *, offset: int, limit: int | None = None
    ) -> tuple[list[dict], int | None, int | None]:
        """One `elements-pagination` page: (elements, next offset or None after the last
        page, totalCount when the supplier says it). A resumable listing keeps the offset."""
        limit = min(limit or settings.ALSTYLE_PAGE_SIZE, 250)
        fields = ",".join(settings.ALSTYLE_ADDITIONAL_FIELDS) or None
        data = self.get("elements-pagination", limit=limit, offset=offset, additional_fields=fields)
        if isinstance(data, list):  # some deployments answer with a bare array
            elements, pagination = data, {}
        elif isinstance(data, dict) and isinstance(data.get("elements"), list):
            elements, pagination = data["elements"], data.get("pagination") or {}
        else:
            raise ExternalServiceError(
                SERVICE,
                f"elements-pagination page {offset // limit + 1}: unexpected answer shape",
            )
        total_count = _int(pagination.get("totalCount"))
        if not elements:
            return elements, None, total_count
        next_offset = offset + limit
        total_pages = _int(pagination.get("totalPages"))
        current = _int(pagination.get("currentPage"))
        if total_pages is not None and current is not None and current >= total_pages:
            return elements, None, total_count
        if total_count is not None and next_offset >= total_count:
            return elements, None, total_count
        if not pagination and len(elements) < limit:
            return elements, None, total_count
        return elements, next_offset, total_count

    def element_info(self, articles: list[str]) -> list[dict]:
        """Full cards (images, description, weight, properties) for a few articles."""
        data = self.get(
            "element-info",
            article=",".join(articles),
            additional_fields="description,images,weight,properties",
        )
        if isinstance(data, dict):  # some clients see one object, or a wrapper
            data = data.get("data") or data.get("elements") or [data]
        if not isinstance(data, list):
            raise ExternalServiceError(SERVICE, "element-info: expected a list")
        return [item for item in data if isinstance(item, dict)]

    def user_data(self) -> dict:
        data = self.get("user-data")
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            return data["data"]
        if not isinstance(data, dict):
            raise ExternalServiceError(SERVICE, "user-data: expected an object")
        return data

    def cart(self, action: str, *, method: str = "GET", **params) -> dict:
        """One call of the cart API (shared by every process using the token); each attempt
        takes a slot from the same limiter as the catalog calls.

        A definite "no" from the supplier (`{"status": false, "error": …}` with any 2xx, or
        an HTTP 4xx) raises CartRefused with the supplier's text: nothing was done. Anything
        else that is not a clear answer (timeout, connection error, 5xx, a body that is not
        JSON or was cut off) raises ExternalServiceError: for `submit` that means the order
        may or may not exist.
        """
        self.calls += 1
        params = {key: value for key, value in params.items() if value is not None}
        params["access-token"] = self.token
        url = self.cart_url.rstrip("/") + "/" + action
        try:
            response = self.http.request(
                method,
                url,
                params=params,
                raise_for_status=False,
                # Only reading or emptying the cart may be resent: a resent "add" adds the
                # lines twice, a resent "submit" may buy twice.
                idempotent=action in ("get", "clear"),
            )
        except ExternalServiceError as exc:
            raise ExternalServiceError(SERVICE, f"cart {action}: {exc.message}") from None
        status = response.status_code
        try:
            data = json_body(response)
        except ValueError:
            data = None
        text = supplier_text(data)
        if 400 <= status < 500 and status != 408:
            if status == 401:
                text = text or "the token was rejected: check ALSTYLE_TOKEN"
            raise CartRefused(
                SERVICE,
                f"cart {action} refused: {text or status_words(response)}",
                status=status,
                supplier_text=text or response.reason or "",
            )
        if status >= 400:
            raise ExternalServiceError(
                SERVICE,
                f"cart {action}: Al-Style answered with a server error"
                + (" after the order was sent" if action == "submit" else ""),
                status=status,
                title=text,
            )
        if data is None:
            raise ExternalServiceError(
                SERVICE, f"cart {action}: the answer is not JSON or was cut off", status=status
            )
        if isinstance(data, dict) and (
            data.get("status") is False
            or str(data.get("status")).lower() in ("error", "fail", "false")
            or data.get("success") is False
        ):
            raise CartRefused(
                SERVICE,
                f"cart {action} refused: {text or 'no reason given'}",
                status=status,
                supplier_text=text,
            )
        return data if isinstance(data, dict) else {"data": data}

    def orders(
        self, *, date_from: date, date_to: date, kind: str = "index", max_pages: int = 20
    ) -> list[dict]:
        """Our orders at Al-Style placed between two dates (`/api/orders`), newest first.

        The entries' fields are unconfirmed (docs/alstyle-api.md §2): each one is normalised
        to {id, date, status, sum, comment, external_id, raw}, accepting several key names.
        """
        result: list[dict] = []
        for page in range(1, max_pages + 1):
            data = self.get(
                "orders",
                type=kind,
                page=page,
                date_from=date_from.strftime("%d.%m.%Y"),
                date_to=date_to.strftime("%d.%m.%Y"),
            )
            if isinstance(data, dict) and data.get("status") is False:
                raise ExternalServiceError(
                    SERVICE, f"order list refused: {supplier_text(data) or 'no reason given'}"
                )
            rows = data
            if isinstance(rows, dict):
                rows = rows.get("data", rows.get("orders", rows.get("items")))
            if isinstance(rows, dict) and isinstance(rows.get("orders"), list | dict):
                rows = rows["orders"]
            if isinstance(rows, dict):  # keyed by order id
                rows = [
                    {"id": key, **value} if isinstance(value, dict) else {}
                    for key, value in rows.items()
                ]
            if rows in (None, []):
                break
            if not isinstance(rows, list):
                raise ExternalServiceError(SERVICE, "order list: unexpected answer shape")
            result += [_order_summary(row) for row in rows if isinstance(row, dict)]
            pagination = (data.get("pagination") if isinstance(data, dict) else None) or {}
            total_pages = _int(pagination.get("totalPages") or pagination.get("pageCount"))
            if total_pages is None or page >= total_pages:
                break
        return result

    def order(self, order_id: str) -> dict:
        """One Al-Style order (`/api/order?id=`) with its lines as [{article, quantity}]."""
        data = self.get("order", id=order_id)
        if isinstance(data, dict) and data.get("status") is False:
            raise ExternalServiceError(
                SERVICE, f"order {order_id}: {supplier_text(data) or 'not found'}"
            )
        if isinstance(data, dict) and isinstance(data.get("data"), dict):
            data = data["data"]
        if not isinstance(data, dict):
            raise ExternalServiceError(SERVICE, f"order {order_id}: expected an object")
        summary = _order_summary(data)
        items = next(
            (data[k] for k in ("cart", "items", "lines", "products", "basket") if k in data), []
        )
        if isinstance(items, dict):
            items = list(items.values())
        summary["lines"] = [
            {
                "article": str(item.get("article") or item.get("item_id") or "").strip(),
                "quantity": _int(item.get("quantity") or item.get("count") or item.get("qty")),
            }
            for item in items or []
            if isinstance(item, dict)
        ]
        return summary

    def quantity_price(self, articles: list[str]) -> dict[str, dict]:
        """Stock and prices for `articles`: {article: {quantity, price1, price2, ...}}."""
        data = self.get("quantity-price", article=",".join(articles))
        if isinstance(data, dict) and isinstance(data.get("data"), dict | list):
            data = data["data"]
        if isinstance(data, list):  # tolerate a list of rows carrying their article
            data = {str(row.get("article")): row for row in data if isinstance(row, dict)}
        if not isinstance(data, dict):
            raise ExternalServiceError(SERVICE, "quantity-price: expected an object")
        return {str(key): value for key, value in data.items() if isinstance(value, dict)}


class _HoldAfterReadTimeout:
    """The session, except that a read timeout holds the limiter back.

    A request we stopped waiting for may still reach Al-Style later and count as a call
    there (seen with a slow supplier: 403s right after each timeout). Every process waits
    one more read timeout and slot before the next call, the retry included.
    """

    def __init__(self, session, limiter: RateLimiter):
        self._session = session
        self._limiter = limiter

    def request(self, method, url, **kwargs):
        try:
            return self._session.request(method, url, **kwargs)
        except requests.ReadTimeout:
            timeout = kwargs.get("timeout")
            read = timeout[1] if isinstance(timeout, tuple) else timeout
            self._limiter.hold(float(read or 0) + self._limiter.spacing)
            raise

    def __getattr__(self, name):
        return getattr(self._session, name)


class _AlStyleHttp(HttpClient):
    def error_for(self, response):
        status = response.status_code
        title = error_title(response)
        sent = getattr(getattr(response, "request", None), "url", None) or ""
        if status == 401:
            message = "the token was rejected: check ALSTYLE_TOKEN in the dealer cabinet"
        elif status == 403:
            message = (
                "access refused (rate limit of one call per 5 s, or the token is not "
                "allowed to use the API); retried and still refused"
            )
        elif status == 500 and "additional_fields=" in sent:
            message = (
                "server error; an unknown name in ALSTYLE_ADDITIONAL_FIELDS causes this, "
                "drop the last one added"
            )
        elif status >= 500:
            method = urlsplit(sent).path.rstrip("/").rsplit("/", 1)[-1]
            message = f"{method}: server error at Al-Style; try again later"
        else:
            message = title or status_words(response)
        return ExternalServiceError(SERVICE, message, status=status, title=title)


class CartRefused(ExternalServiceError):
    """The supplier answered a cart call with a definite "no": nothing was done."""

    def __init__(self, *args, supplier_text: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.supplier_text = supplier_text


def cart_api_url(api_url: str) -> str:
    """The cart API base on the catalog API's scheme and host: `…/cart-api/`."""
    parts = urlsplit(api_url)
    return urlunsplit((parts.scheme, parts.netloc, "/cart-api/", "", ""))


def supplier_text(data) -> str:
    """The supplier's own words in an answer: `error`, `message` or a list of them."""
    if not isinstance(data, dict):
        return ""
    for key in ("error", "message", "errors", "msg"):
        value = data.get(key)
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        elif isinstance(value, dict):
            value = "; ".join(str(v) for v in value.values())
        if value not in (None, "", False):
            return str(value)[:1000]
    return ""


def _first(row: dict, *keys):
    for key in keys:
        if row.get(key) not in (None, ""):
            return row[key]
    return None


def _order_summary(row: dict) -> dict:
    """An entry of the order list in one shape, whatever key names the supplier uses."""
    return {
        "id": str(_first(row, "id", "order_id", "orderId", "number", "ID", "order") or ""),
        "date": str(_first(row, "date", "created_at", "created", "date_create", "DATE") or ""),
        "status": str(_first(row, "status", "status_id", "state", "STATUS") or ""),
        "sum": _first(row, "sum", "total", "amount", "price", "summa", "SUM"),
        "comment": str(_first(row, "comment", "comments", "COMMENT", "description") or ""),
        "external_id": str(
            _first(row, "external_id", "externalId", "external", "ext_id", "EXTERNAL_ID") or ""
        ),
        "raw": row,
    }


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
