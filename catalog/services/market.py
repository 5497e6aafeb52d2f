"""Reading the market: the offers of our linked Kaspi cards in each city we sell in.

One paced client per run (catalog/clients/kaspi_offers.py holds the endpoint's habits).
Each read is stored (an observation with every shop seen) and summarised per (card, city)
in MarketState, whose age drives the planner: the (card, city) pairs that matter (home
city, on sale, with competitors or a market that moved) are due after
KASPI_MARKET_HOT_MINUTES, every other pair after KASPI_MARKET_MAX_AGE_MINUTES; the most
overdue are read first. An error is "market unknown" for that pair and keeps what we knew;
it never becomes "no competitors".
"""

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.core.alerts import send_alert
from backoffice.core.runs import enqueue_run, heartbeat, is_locked, run_job
from backoffice.models import SyncRun

from ..clients.kaspi_offers import (
    CardMarket,
    FormatChanged,
    IpBlocked,
    KaspiOffersClient,
    MarketUnknown,
)
from ..demand import demand
from ..models import OFFERABLE, KaspiCardLink, MarketObservation, MarketState, Product

logger = logging.getLogger(__name__)

# A pair is due once its age reaches this share of its target age (so a run reads what is
# getting old, not everything all the time).
DUE_SHARE = 0.5

# How long a staff selection's read waits for the read in progress before it is skipped.
SELECTION_WAIT_SECONDS = 600


# --- The planner (pure: bench/market_budget.py runs it on a simulated clock) --------------


@dataclass
class PlanItem:
    key: object
    read_at: datetime | None
    hot: bool


def due_score(item: PlanItem, now: datetime, *, hot_minutes: float, max_minutes: float) -> float:
    """Age as a share of the pair's target age; never read = infinitely overdue."""
    if item.read_at is None:
        return math.inf
    age = (now - item.read_at).total_seconds() / 60
    return age / (hot_minutes if item.hot else max_minutes)


def plan_reads(
    items: Iterable[PlanItem],
    now: datetime,
    *,
    limit: int,
    hot_minutes: float | None = None,
    max_minutes: float | None = None,
    due_share: float = DUE_SHARE,
) -> list[PlanItem]:
    """The `limit` most overdue pairs among those due, most overdue first (hot first on ties)."""
    hot_minutes = hot_minutes or settings.KASPI_MARKET_HOT_MINUTES
    max_minutes = max_minutes or settings.KASPI_MARKET_MAX_AGE_MINUTES
    scored = []
    for item in items:
        score = due_score(item, now, hot_minutes=hot_minutes, max_minutes=max_minutes)
        if score >= due_share:
            scored.append((score, item.hot, item))
    scored.sort(key=lambda row: (row[0], row[1]), reverse=True)
    return [item for _score, _hot, item in scored[:limit]]


def age_percentiles(ages_minutes: list[float]) -> dict:
    """p50 / p95 of ages in minutes (None when nothing was read)."""
    if not ages_minutes:
        return {"p50": None, "p95": None, "count": 0}
    ordered = sorted(ages_minutes)

    def pick(share: float) -> float:
        return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]

    return {"p50": round(pick(0.5), 1), "p95": round(pick(0.95), 1), "count": len(ordered)}


def freshness(now=None) -> dict:
    """p50/p95 age of every linked (card, city) pair, and of the home city's (admin)."""
    now = now or timezone.now()
    rows = MarketState.objects.filter(ok_at__isnull=False).values_list("city", "ok_at")
    ages = [((now - ok_at).total_seconds() / 60, city) for city, ok_at in rows]
    return {
        "all": age_percentiles([age for age, _city in ages]),
        "home": age_percentiles([a for a, city in ages if city == settings.KASPI_HOME_CITY]),
    }


# --- Entry points -----------------------------------------------------------------------


def run_market_read(
    *,
    triggered_by: str = "command",
    user=None,
    sku: str | None = None,
    city: str | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    run_id: int | None = None,
    client: KaspiOffersClient | None = None,
    wait_seconds: float = SELECTION_WAIT_SECONDS,
) -> SyncRun:
    run = SyncRun.objects.get(pk=run_id) if run_id else None
    params = {"sku": sku, "city": city, "dry_run": dry_run, "limit": limit}
    if run is not None:
        params.update({k: v for k, v in run.params.items() if k in (*params, "skus")})
        if params.get("skus"):
            # A staff selection is a run of its own: it waits for the read in progress
            # (one reader at a time, one IP) instead of being skipped.
            _wait_for_reader(wait_seconds)
    return run_job(
        kind=SyncRun.Kind.MARKET,
        run=run,
        triggered_by=triggered_by,
        user=user,
        params=params,
        job=lambda run: read_market(run=run, client=client, **params),
    )


def _wait_for_reader(wait_seconds: float, *, poll: float = 5.0) -> None:
    deadline = time.monotonic() + wait_seconds
    while is_locked(SyncRun.Kind.MARKET) and time.monotonic() < deadline:
        time.sleep(poll)


def request_market_read_of(*, skus, user=None, triggered_by: str = "user") -> SyncRun:
    """Queue one read of every (card, city) pair of the selected products: a run of its
    own, never joined to another (each run holds its own selection)."""
    return enqueue_run(
        kind=SyncRun.Kind.MARKET,
        task="catalog.tasks.read_market_task",
        triggered_by=triggered_by,
        user=user,
        params={"skus": sorted(set(skus))},
    )


# --- The read -----------------------------------------------------------------------------


def our_merchant_id() -> str:
    return str(settings.KASPI_OFFERS_MERCHANT_ID or "").strip()


def readable_links():
    return KaspiCardLink.objects.exclude(card_id="").exclude(status=KaspiCardLink.Status.CANDIDATES)


def best_sellers(limit: int = 50, days: int = 30) -> set[int]:
    """Product ids of the most sold units on Kaspi over the last `days` (orders answers)."""
    return set(demand.best_sellers(limit=limit, days=days))


def _plan_items(links, cities: list[str], now) -> list[PlanItem]:
    states = {
        (s.product_id, s.city): s
        for s in MarketState.objects.filter(product_id__in=[link.product_id for link in links])
    }
    on_sale = set(
        Product.objects.filter(OFFERABLE, pk__in=[link.product_id for link in links]).values_list(
            "pk", flat=True
        )
    )
    recent = now - timedelta(days=1)
    sellers = best_sellers()
    items = []
    for link in links:
        for city in cities:
            state = states.get((link.product_id, city))
            hot = (
                city == settings.KASPI_HOME_CITY
                and link.product_id in on_sale
                and (
                    state is None
                    or link.product_id in sellers
                    or state.competitors > 0
                    or (state.moved_at is not None and state.moved_at >= recent)
                )
            )
            items.append(PlanItem((link, city), state.read_at if state else None, hot))
    return items


def read_market(
    *,
    run: SyncRun | None = None,
    sku: str | None = None,
    skus: list[str] | None = None,
    city: str | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    client: KaspiOffersClient | None = None,
    cities: list[str] | None = None,
    links=None,
    now=None,
) -> dict:
    """Read the due (card, city) pairs (or all of `sku`'s) and store what was seen."""
    client = client or KaspiOffersClient()
    cities = cities or ([city] if city else list(settings.KASPI_CITIES))
    if links is None:
        links = readable_links()
        if sku:
            links = links.filter(product__sku=sku)
        if skus:
            links = links.filter(product__sku__in=skus)
    links = list(links.select_related("product") if hasattr(links, "select_related") else links)
    now = now or timezone.now()
    items = _plan_items(links, cities, now)
    if sku or skus or city:  # an explicit request reads everything it names
        plan = items
    else:
        plan = plan_reads(items, now, limit=limit or settings.KASPI_MARKET_BATCH)
    counts = {"planned": len(plan), "read": 0, "empty": 0, "unknown": 0, "format_changed": 0}
    if run is not None:
        heartbeat(run, done=0, total=len(plan), force=True)
    stopped = ""
    for done, item in enumerate(plan, start=1):
        link, pair_city = item.key
        read_now = timezone.now()
        try:
            market = client.card_offers(link.card_id, pair_city)
        except IpBlocked as exc:
            counts["unknown"] += 1
            record_unknown(link, pair_city, exc.reason, now=read_now, dry_run=dry_run)
            stopped = exc.reason
            break
        except FormatChanged as exc:
            counts["format_changed"] += 1
            record_unknown(
                link, pair_city, exc.reason, now=read_now, dry_run=dry_run, format_changed=True
            )
            if not dry_run:
                send_alert(
                    key="kaspi-offers-format",
                    text=f"Kaspi: формат ответа с предложениями изменился ({link.card_id}): "
                    f"{exc.reason}. Цены по рынку не меняются.",
                )
        except MarketUnknown as exc:
            counts["unknown"] += 1
            record_unknown(link, pair_city, exc.reason, now=read_now, dry_run=dry_run)
        else:
            counts["read"] += 1
            counts["empty"] += not market.offers
            record_market(link, market, now=read_now, dry_run=dry_run)
        if run is not None:
            heartbeat(run, done=done)
    counts["calls"] = client.calls
    if run is not None:
        run.counts.update(counts)
        problems = counts["unknown"] + counts["format_changed"]
        if stopped:
            run.status = SyncRun.Status.PARTIAL
            run.error = stopped
        elif problems:
            run.status = SyncRun.Status.PARTIAL
            run.error = _("market unknown for %(n)s of %(total)s (card, city) reads") % {
                "n": problems,
                "total": len(plan),
            }
    if not dry_run:
        alert_unread_market(now=now)
    logger.info("kaspi market read: %s%s", counts, " (dry run)" if dry_run else "")
    return counts


def record_unknown(
    link: KaspiCardLink,
    city: str,
    reason: str,
    *,
    now,
    dry_run: bool = False,
    format_changed: bool = False,
) -> None:
    """Keep what we knew; mark the pair unknown (the repricer leaves its price alone)."""
    status = MarketState.Status.FORMAT if format_changed else MarketState.Status.UNKNOWN
    if dry_run:
        return
    with transaction.atomic():
        MarketObservation.objects.create(
            product=link.product,
            card_id=link.card_id,
            city=city,
            observed_at=now,
            status=status,
            error=reason[:500],
        )
        state, _created = MarketState.objects.get_or_create(
            product=link.product,
            city=city,
            defaults={"card_id": link.card_id, "status": status},
        )
        state.card_id, state.status, state.read_at, state.error = (
            link.card_id,
            status,
            now,
            reason[:500],
        )
        state.save()


def record_market(link: KaspiCardLink, market: CardMarket, *, now, dry_run: bool = False) -> dict:
    """Store one successful read and verify the link in the home city."""
    ours_id = our_merchant_id()
    offers = [offer.as_dict() for offer in market.offers]
    ours = next((o for o in market.offers if o.merchant_id == ours_id), None)
    competitors = [o for o in market.offers if o.merchant_id != ours_id]
    best = competitors[0].price if competitors else None
    summary = {
        "competitors": len(competitors),
        "best_price": best,
        "our_position": ours.position if ours else None,
        "our_price": ours.price if ours else None,
    }
    if dry_run:
        return summary
    status = MarketState.Status.OK if market.offers else MarketState.Status.EMPTY
    with transaction.atomic():
        MarketObservation.objects.create(
            product=link.product,
            card_id=link.card_id,
            city=market.city,
            observed_at=now,
            status=status,
            offers=offers,
            total=market.total,
            our_position=summary["our_position"],
        )
        state = MarketState.objects.filter(product=link.product, city=market.city).first()
        moved = state is None or (state.best_price, state.competitors) != (
            best,
            len(competitors),
        )
        state = state or MarketState(product=link.product, city=market.city)
        state.card_id = link.card_id
        state.status = status
        state.read_at = state.ok_at = now
        state.error = ""
        state.offers = offers
        state.competitors = len(competitors)
        state.best_price = best
        state.our_position = summary["our_position"]
        state.our_price = summary["our_price"]
        if moved:
            state.moved_at = now
        state.save()
        if market.city == settings.KASPI_HOME_CITY:
            verify_link(link, market, ours=ours, now=now)
    return summary


def verify_link(link: KaspiCardLink, market: CardMarket, *, ours, now) -> None:
    """Our merchantId with merchantSku = our SKU on the card in the home city = linked."""
    sku = link.product.sku
    if market.master_category:
        link.master_category = market.master_category
    if ours is not None and ours.merchant_sku == sku:
        link.status = KaspiCardLink.Status.LINKED
        link.verified_at = link.verified_at or now
        link.note = ""
    elif ours is not None:
        link.status = KaspiCardLink.Status.CONFLICTING
        link.note = (
            _("our offer on this card carries SKU %(theirs)r, not %(ours)r")
            % {"theirs": ours.merchant_sku, "ours": sku}
        )[:255]
    elif not market.offers:
        if link.status != KaspiCardLink.Status.LINKED:
            link.status = KaspiCardLink.Status.UNVERIFIED
        link.note = _("nobody sells this card in the home city: cannot verify")
    else:
        if link.status != KaspiCardLink.Status.LINKED:
            link.status = KaspiCardLink.Status.UNVERIFIED
        link.note = _("our shop is not among the card's offers in the home city")
    link.save(update_fields=["status", "verified_at", "note", "master_category", "updated_at"])


def alert_unread_market(*, now=None) -> None:
    """One alert (with the cool-down) when some pairs have not been read for a day."""
    now = now or timezone.now()
    day_ago = now - timedelta(days=1)
    stale = MarketState.objects.filter(
        Q(ok_at__lt=day_ago) & ~Q(status__in=[MarketState.Status.OK, MarketState.Status.EMPTY])
    ).count()
    if stale:
        send_alert(
            key="kaspi-market-unread",
            text=f"Kaspi: рынок не удаётся прочитать больше суток для {stale} пар "
            "(карточка, город); цены по рынку не меняются.",
        )
