"""Al-Style on a simulated clock, for the supplier-budget tests and bench/supplier_budget.py.

A `responses` callback: it answers 403 to any call within `interval` seconds of the last
one (Al-Style's rate limit) and serves categories, brands, elements-pagination and
quantity-price from `items` (article -> raw element). Time advances only when the client's
limiter sleeps (and `answer_seconds` per answer), so hours of schedule run in seconds.
Nothing here imports Django at import time: the bench sets Django up first, pytest too.
"""

import json
from datetime import UTC, datetime, timedelta
from itertools import islice
from urllib.parse import parse_qs, urlparse

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


class SimSupplier:
    """Al-Style on a simulated clock: answers 403 to a call within `interval` of the last."""

    def __init__(
        self,
        items: dict[str, dict],
        *,
        interval: float = 5.0,
        start: datetime = START,
        category: tuple[int, str] = (3500, "Ноутбуки"),
        answer_seconds: float = 0.2,
    ):
        self.items = items
        self.interval = interval
        self.start = start
        self.category = category
        self.answer_seconds = answer_seconds
        self.t = 0.0
        self.last: float | None = None
        self.calls: list[tuple[float, str, dict]] = []
        self.refused = 0
        self.fail_offsets: set[str] = set()

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)

    def client(self, *, key: str = "sim", margin: float | None = 0.5):
        """The real Al-Style client whose limiter sleeps on the simulated clock."""
        from catalog.clients.alstyle import AlStyleClient, RateLimiter

        limiter = RateLimiter(key, self.interval, margin=margin, clock=self.clock, sleep=self.sleep)
        return AlStyleClient(limiter=limiter, sleep=self.sleep)

    def change(self, share: float, seed: int) -> None:
        """Raise the dealer price of about `share` of the items (every 1/share-th)."""
        step = max(1, int(1 / share))
        for i, article in enumerate(self.items):
            if i % step == seed % step:
                self.items[article]["price1"] += 10

    def __call__(self, request):
        url = urlparse(request.url)
        method = url.path.rsplit("/", 1)[-1]
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if self.last is not None and self.t - self.last < self.interval:
            self.refused += 1
            return 403, {}, "{}"
        self.last = self.t
        if method == "elements-pagination" and query.get("offset") in self.fail_offsets:
            self.calls.append((self.t, "failed", query))
            return 503, {}, "{}"
        self.calls.append((self.t, method, query))
        self.t += self.answer_seconds  # the answer takes a moment
        if method == "categories":
            key, name = self.category
            body = [{"id": key, "name": name, "level": 1, "left": 1, "right": 2}]
        elif method == "brands":
            body = {"data": [{"id": "g", "name": "Demo"}]}
        elif method == "elements-pagination":
            offset, limit = int(query["offset"]), int(query["limit"])
            total = len(self.items)
            body = {
                "elements": list(islice(self.items.values(), offset, offset + limit)),
                "pagination": {
                    "totalCount": total,
                    "totalPages": max(1, -(-total // limit)),
                    "currentPage": offset // limit + 1,
                },
            }
        elif method == "quantity-price":
            body = {
                a: {k: self.items[a][k] for k in ("quantity", "price1", "price2")}
                for a in query["article"].split(",")
                if a in self.items
            }
        else:
            return 404, {}, "{}"
        return 200, {}, json.dumps(body, ensure_ascii=False)

    def calls_in_window(self, seconds: float = 3600.0, *, since: float = 0.0) -> int:
        """The most calls sent in any window of `seconds` (from `since` on)."""
        times = [t for t, _m, _q in self.calls if t >= since]
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= seconds:
                lo += 1
            best = max(best, hi - lo + 1)
        return best
