"""The supplier budget: what the scheduled Al-Style syncs may ask for, and in what order.

Al-Style answers one call per ALSTYLE_MIN_INTERVAL (+ ALSTYLE_SLOT_MARGIN) seconds per token
for everything: catalog, stock, card data and cart. That is the capacity per hour. The
planner keeps ALSTYLE_RESERVE_CALLS_PER_HOUR of it for purchases, card data and connection
checks and splits the rest between the two scheduled syncs:

- stock (quantity-price, 250 articles a call) first keeps the "hot" products — in open
  orders, on sale on Kaspi, changed at the supplier within CATALOG_RECENT_HOURS — at most
  STOCK_HOT_MAX_AGE_MINUTES old, then spends what is left of its share on the rest of the
  catalog, oldest check first;
- the full listing (elements-pagination) gets at least CATALOG_LISTING_MIN_SHARE of the sync
  budget, and no more than one listing per CATALOG_SYNC_INTERVAL_MINUTES; at 10× the catalog
  one listing spans several runs (resumable by page, see sync.py).

Each run asks `plan_run(kind)` for its allowance: the calls left of its kind's share over the
trailing hour (attempts counted, retries included, from the runs' `calls` counts), at most
one tick's share with some catch-up, and never more than fit in SUPPLIER_RUN_MAX_SECONDS.
The run also stops at that deadline, so no task comes near Q_TIMEOUT.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from backoffice.core.db import refresh_statistics
from backoffice.models import SyncRun

from ..demand import demand
from ..models import ON_SALE, CatalogListing, Product, Supplier, SupplierCheck, SupplierOffer
from ..suppliers.alstyle import budget as alstyle_budget

HOUR = timedelta(hours=1)
HOT_HEADROOM = 1.25  # the stock share over what the hot set needs on paper
CATCH_UP = 1.5  # a run may spend this many ticks' worth of its share (after a skipped tick)


def _alstyle_listed():
    return SupplierOffer.unordered.filter(supplier=Supplier.alstyle(), listed=True)


def catalog_minutes() -> int:
    """Minutes between scheduled catalog runs (the Supplier row's, else the setting)."""
    return alstyle_budget().full_sync_minutes or settings.CATALOG_SYNC_INTERVAL_MINUTES


def stock_minutes() -> int:
    """Minutes between scheduled stock runs (the Supplier row's, else the setting)."""
    return alstyle_budget().stock_sync_minutes or settings.STOCK_SYNC_INTERVAL_MINUTES


def spacing() -> float:
    """Seconds between two supplier calls (0: no limit, e.g. tests)."""
    interval = alstyle_budget().min_interval
    return interval + max(settings.ALSTYLE_SLOT_MARGIN, 0.0) if interval > 0 else 0.0


def capacity_per_hour() -> int | None:
    """Calls an hour the shared limiter lets through; None when it is off."""
    gap = spacing()
    return int(3600 // gap) if gap > 0 else None


@dataclass(frozen=True)
class Plan:
    capacity: int | None  # calls/hour the limiter allows (None: unlimited)
    reserve: int  # kept for cart, card data, connection checks
    catalog_per_hour: int | None
    stock_per_hour: int | None
    products: int  # listed products
    hot: int  # products whose stock matters first
    listing_calls: int  # calls of one complete listing
    hot_calls_per_hour: int  # what keeping the hot set fresh needs

    @property
    def sync_budget(self) -> int | None:
        return None if self.capacity is None else self.capacity - self.reserve

    @property
    def listing_minutes(self) -> float | None:
        """How long one complete listing takes at the catalog's share."""
        if not self.catalog_per_hour:
            return None
        return 60 * self.listing_calls / self.catalog_per_hour


def hot_filter(now: datetime | None = None) -> Q:
    """Products whose stock and price matter first: on sale on Kaspi, in an open order, or
    changed at the supplier recently."""
    now = now or timezone.now()
    in_open_orders = Q(pk__in=demand.open_order_products())
    recent = Q(last_seen__gte=now - timedelta(hours=settings.CATALOG_RECENT_HOURS))
    return Q(listed=True) & (ON_SALE | in_open_orders | recent)


def make_plan(*, now: datetime | None = None) -> Plan:
    now = now or timezone.now()
    # Al-Style's listed offers: what its listing pages and quantity-price calls cover.
    products = _alstyle_listed().count()
    # A catalog being listed for the first time: the supplier's announced size counts.
    announced = CatalogListing.objects.exclude(total=None).values_list("total", flat=True)
    products = max(products, next(iter(announced[:1]), 0) or 0)
    hot = Product.objects.filter(hot_filter(now)).count()
    page = max(1, min(settings.ALSTYLE_PAGE_SIZE, 250))
    chunk = max(1, settings.ALSTYLE_STOCK_CHUNK)
    # categories + brands + the pages (a new catalog: at least one page).
    listing_calls = 2 + max(1, math.ceil(products / page))
    tick = max(1, stock_minutes())
    # A hot product is refreshed once it is due (older than the target less one tick), so
    # it comes round every (target - tick) minutes.
    period = max(settings.STOCK_HOT_MAX_AGE_MINUTES - tick, tick)
    hot_calls_per_hour = math.ceil(math.ceil(hot / chunk) * 60 / period)
    capacity = capacity_per_hour()
    if capacity is None:
        return Plan(None, 0, None, None, products, hot, listing_calls, hot_calls_per_hour)
    reserve = min(max(settings.ALSTYLE_RESERVE_CALLS_PER_HOUR, 0), capacity // 4)
    sync = capacity - reserve
    floor = math.ceil(sync * min(max(settings.CATALOG_LISTING_MIN_SHARE, 0.0), 1.0))
    # Headroom: runs bunch up behind a long listing run, and a due product waits a tick.
    stock = min(math.ceil(hot_calls_per_hour * HOT_HEADROOM), sync - floor)
    most = math.ceil(listing_calls * 60 / max(1, catalog_minutes()))
    catalog = min(most, sync - stock)
    # What the listing does not need refreshes the rest of the catalog through stock calls.
    return Plan(
        capacity, reserve, catalog, sync - catalog, products, hot, listing_calls,
        hot_calls_per_hour,
    )  # fmt: skip


def calls_used(kind: str, *, now: datetime | None = None) -> int:
    """Supplier calls (attempts) of `kind`'s runs over the trailing hour. A run that
    finished within the hour counts whole (conservative)."""
    since = (now or timezone.now()) - HOUR
    runs = SyncRun.objects.filter(kind=kind).filter(
        Q(finished_at__gte=since) | Q(finished_at__isnull=True, started_at__gte=since)
    )
    return sum(
        int((counts or {}).get("calls") or 0) for counts in runs.values_list("counts", flat=True)
    )


class CallBudget:
    """How many supplier calls one run may still send, and until when."""

    def __init__(
        self,
        calls: int | None = None,
        *,
        seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        reason: str = "",
    ):
        self.calls = calls
        self.clock = clock
        self.deadline = clock() + seconds if seconds is not None else None
        self.reason = reason
        self.stopped = ""  # why the run stopped early, if it did
        self.tick_calls = calls  # calls for optional work (see plan_run)
        self._base: int | None = None

    def used(self, client) -> int:
        """Attempts `client` sent since this budget first saw it."""
        if self._base is None:
            self._base = client.attempts
        return client.attempts - self._base

    def allows(self, client, n: int = 1) -> bool:
        """True if `n` more calls (beyond what `client` sent) fit in the budget and time."""
        if self.calls is not None and self.used(client) + n > self.calls:
            self.stopped = "budget"
            return False
        if self.deadline is not None and self.clock() + n * spacing() >= self.deadline:
            self.stopped = "time"
            return False
        return True


def plan_run(
    kind: str, *, now: datetime | None = None, clock: Callable[[], float] = time.monotonic
) -> tuple[CallBudget, Plan]:
    """The call allowance of one scheduled run of `kind` (catalog or stock)."""
    now = now or timezone.now()
    plan = make_plan(now=now)
    seconds = float(settings.SUPPLIER_RUN_MAX_SECONDS)
    if plan.capacity is None:
        return CallBudget(None, seconds=seconds, clock=clock), plan
    if kind == SyncRun.Kind.CATALOG:
        per_hour, tick = plan.catalog_per_hour, catalog_minutes()
    else:
        per_hour, tick = plan.stock_per_hour, stock_minutes()
    used = calls_used(kind, now=now)
    per_tick = per_hour * max(1, tick) / 60
    in_time = int(seconds // spacing())
    calls = max(0, min(per_hour - used, math.ceil(per_tick * CATCH_UP), in_time))
    reason = f"{calls} calls (share {per_hour}/h, used {used} in the last hour)"
    budget = CallBudget(calls, seconds=seconds, clock=clock, reason=reason)
    # Catch-up is for what is due; optional work (the rest of the catalog) gets one tick's
    # worth, so the share lasts the hour and hot products are never starved later.
    budget.tick_calls = min(calls, math.floor(per_tick))
    return budget, plan


# --- What the stock run refreshes --------------------------------------------------------


def stock_articles(
    *, limit: int, rest_limit: int | None = None, now: datetime | None = None
) -> list[str]:
    """Up to `limit` listed articles for this stock run, most important first: hot products
    that are due (older than the target less one tick, or never checked), oldest first;
    then, up to `rest_limit` in all, the rest of the catalog, oldest check first, if not
    checked within the tick."""
    rest_limit = limit if rest_limit is None else min(rest_limit, limit)
    if limit <= 0:
        return []
    now = now or timezone.now()
    tick = timedelta(minutes=max(1, stock_minutes()))
    hot_due_before = now - max(timedelta(minutes=settings.STOCK_HOT_MAX_AGE_MINUTES) - tick, tick)
    checked = dict(SupplierCheck.objects.values_list("article", "checked_at"))
    # Al-Style's articles: of its listed offers, those whose product is hot come first.
    hot = set(
        _alstyle_listed()
        .filter(product__in=Product.objects.filter(hot_filter(now)))
        .values_list("article", flat=True)
    )
    listed = _alstyle_listed().values_list("article", flat=True)
    never = datetime.min.replace(tzinfo=now.tzinfo)
    due_hot, rest = [], []
    for article in listed:
        at = checked.get(article) or never
        if article in hot:
            if at <= hot_due_before:
                due_hot.append((at, article))
        elif at <= now - tick:
            rest.append((at, article))
    due_hot.sort()
    chosen = [article for _at, article in due_hot[:limit]]
    if len(chosen) < rest_limit:
        rest.sort()
        chosen += [article for _at, article in rest[: rest_limit - len(chosen)]]
    return chosen


def record_checks(articles, *, now: datetime, listed: bool = False) -> None:
    """Stock and price of `articles` were just confirmed by the supplier (and, with
    `listed`, a full listing returned them): one UPDATE, plus an INSERT for new ones."""
    articles = list(articles)
    if not articles:
        return
    values = {"checked_at": now, **({"listed_at": now} if listed else {})}
    updated = SupplierCheck.objects.filter(article__in=articles).update(**values)
    if updated < len(articles):
        known = set(
            SupplierCheck.objects.filter(article__in=articles).values_list("article", flat=True)
        )
        SupplierCheck.objects.bulk_create(
            [
                SupplierCheck(article=a, checked_at=now, listed_at=now if listed else None)
                for a in articles
                if a not in known
            ],
            ignore_conflicts=True,
        )
        refresh_statistics(SupplierCheck)


# --- Freshness, for the admin -------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile of sorted `values` (None when empty)."""
    if not values:
        return None
    rank = max(1, math.ceil(share * len(values)))
    return values[rank - 1]


def freshness(*, now: datetime | None = None) -> dict:
    """Age in minutes of Al-Style's stock and price (checked together: every listing page
    and quantity-price answer carries both) for the listed products whose chosen offer is
    Al-Style's, on sale on Kaspi and the rest: {"on_sale": {count, never, p50, p95},
    "rest": {...}}. A product never checked is infinitely old (it counts in `never` and
    pushes the percentiles to None = "never").

    A product another supplier supplies (issue 18) is as fresh as that supplier's last
    sync, not as Al-Style's checks of the same article: "suppliers" lists each other
    supplier (enabled, or supplying a product on sale) with `last_sync` (the end of its
    last successful run, ok or partial; None = never) and `on_sale` (its products on sale).
    """
    now = now or timezone.now()
    checked = dict(SupplierCheck.objects.values_list("article", "checked_at"))
    alstyle = Product.objects.filter(listed=True, offer__supplier__code=Supplier.ALSTYLE)
    # SupplierCheck is keyed by Al-Style's article: the chosen offer's, not the product's.
    on_sale = set(alstyle.filter(ON_SALE).values_list("pk", flat=True))
    groups: dict[str, list[float]] = {"on_sale": [], "rest": []}
    for pk, article in alstyle.values_list("pk", "offer__article"):
        at = checked.get(article)
        age = (now - at).total_seconds() / 60 if at else math.inf
        groups["on_sale" if pk in on_sale else "rest"].append(age)
    result: dict = {}
    for name, ages in groups.items():
        ages.sort()
        p50, p95 = _percentile(ages, 0.5), _percentile(ages, 0.95)
        result[name] = {
            "count": len(ages),
            "never": sum(1 for age in ages if age == math.inf),
            "p50": None if p50 in (None, math.inf) else p50,
            "p95": None if p95 in (None, math.inf) else p95,
        }
    result["suppliers"] = _other_suppliers(now)
    return result


def _other_suppliers(now: datetime) -> list[dict]:
    """Each supplier but Al-Style: its products on sale and its last successful sync."""
    from django.db.models import Count

    supplying = dict(
        Product.objects.filter(ON_SALE)
        .exclude(offer__supplier__code=Supplier.ALSTYLE)
        .filter(offer__isnull=False)
        .order_by()
        .values_list("offer__supplier")
        .annotate(n=Count("pk"))
    )
    suppliers = Supplier.objects.exclude(code=Supplier.ALSTYLE).filter(
        Q(enabled=True) | Q(pk__in=list(supplying))
    )
    rows = []
    for supplier in suppliers.order_by("priority", "code"):
        last = (
            SyncRun.objects.filter(
                kind=SyncRun.Kind.SUPPLIER,
                params__supplier=supplier.code,
                status__in=[SyncRun.Status.OK, SyncRun.Status.PARTIAL],
                finished_at__isnull=False,
            )
            # Not `exclude(params__dry_run=True)`: on SQLite it also drops runs without the key.
            .filter(Q(params__dry_run=False) | Q(params__dry_run__isnull=True))
            .order_by("-finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )
        rows.append(
            {
                "code": supplier.code,
                "name": str(supplier),
                "on_sale": supplying.get(supplier.pk, 0),
                "last_sync": last,
                "age": (now - last).total_seconds() / 60 if last else None,
                "late": _sync_late(supplier, last, now),
            }
        )
    return rows


def _sync_late(supplier: Supplier, last: datetime | None, now: datetime) -> bool:
    """Never synced, or not within twice its schedule (a supplier synced by hand only
    is late only when it never was)."""
    if last is None:
        return True
    minutes = supplier.full_sync_minutes
    return bool(minutes) and now - last > timedelta(minutes=2 * minutes)


def freshness_lines(
    *, now: datetime | None = None, alstyle: bool | None = None
) -> tuple[list[str], str]:
    """The dashboard card's lines and level: Al-Style's freshness by part and its calls of
    the hour (`alstyle`, by default: its token is set), then each other supplier's last
    sync. No lines: nothing to show (no Al-Style token, no other supplier)."""
    from django.utils.translation import gettext as _

    def age(minutes):
        if minutes is None:
            return _("never")
        if minutes < 120:
            return _("%(n).0f min") % {"n": minutes}
        return _("%(n).1f h") % {"n": minutes / 60}

    now = now or timezone.now()
    show_alstyle = bool(settings.ALSTYLE_TOKEN) if alstyle is None else alstyle
    figures = freshness(now=now) if show_alstyle else {"suppliers": _other_suppliers(now)}
    lines = []
    late = False
    if show_alstyle:
        lines += _alstyle_lines(figures, now, age)
        on_sale = figures["on_sale"]
        late = bool(on_sale["count"]) and (on_sale["p95"] is None or on_sale["p95"] > 60)
    for row in figures["suppliers"]:
        if row["last_sync"] is None:
            synced = _("never synced successfully")
        else:
            synced = _("last successful sync %(at)s (%(age)s ago)") % {
                "at": f"{timezone.localtime(row['last_sync']):%d.%m %H:%M}",
                "age": age(row["age"]),
            }
        lines.append(
            _("%(supplier)s: %(n)d of its products on sale, %(synced)s")
            % {"supplier": row["name"], "n": row["on_sale"], "synced": synced}
        )
        late = late or (row["late"] and row["on_sale"] > 0)
    return lines, "amber" if late else "green"


def _alstyle_lines(figures: dict, now: datetime, age) -> list[str]:
    from django.utils.translation import gettext as _

    labels = {
        "on_sale": _("its products on sale on Kaspi"),
        "rest": _("the rest of its products"),
    }
    lines = []
    for part in ("on_sale", "rest"):
        f = figures[part]
        line = _("Al-Style stock and price, %(part)s (%(n)d): age p50 %(p50)s, p95 %(p95)s") % {
            "part": labels[part],
            "n": f["count"],
            "p50": age(f["p50"]),
            "p95": age(f["p95"]),
        }
        if f["never"]:
            line += " · " + _("never checked: %(n)d") % {"n": f["never"]}
        lines.append(line)
    plan = make_plan(now=now)
    used = calls_used(SyncRun.Kind.CATALOG, now=now) + calls_used(SyncRun.Kind.STOCK, now=now)
    if plan.capacity is not None:
        lines.append(
            _(
                "Al-Style calls of the syncs, last hour: %(used)d of %(budget)d "
                "(%(reserve)d kept for purchases and card data)"
            )
            % {"used": used, "budget": plan.sync_budget, "reserve": plan.reserve}
        )
    return lines
