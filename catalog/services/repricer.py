"""Pricing against the market, within a break-even floor, per city (issue 19).

From the stored market (catalog/services/market.py), never from a live call: for each
linked product and city the repricing rule gives a target (beat the cheapest by a step,
match it, hold position N, or a fixed price) among the competitors the rule counts; the
break-even floor and the ceiling always win; moves are bounded (one change per product per
feed cycle — Kaspi shows our new price up to an hour later, so the market still shows the
old one —, a cap per step, raises only after a cooldown, and a change above the anomaly
share waits for approval). Mode REPRICER_MODE: `suggest` (staff approve) or `auto`.
Every change is a PriceChange row (old, new, reason, rule, the market seen).
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from backoffice.core.alerts import send_alert
from backoffice.core.runs import enqueue_job, run_job
from backoffice.models import SyncRun

from ..models import (
    OFFERABLE,
    CityPrice,
    KaspiCardLink,
    MarketState,
    PriceChange,
    Product,
    RepricingRule,
)
from ..rules import has_price
from .market import best_sellers
from .pricing import CommissionTable, Pricer, break_even_price

logger = logging.getLogger(__name__)

MODES = ("suggest", "auto")


@dataclass
class Proposal:
    product: Product
    city: str
    old: int | None
    new: int | None  # None: unchanged
    reason: str
    floor: int | None = None
    ceiling: int | None = None
    flag: str = ""
    rule: RepricingRule | None = None
    anomaly: bool = False
    market: dict = field(default_factory=dict)
    below_floor: bool = False

    @property
    def changes(self) -> bool:
        return self.new is not None and self.new != self.old


# --- Rules ----------------------------------------------------------------------------


def rule_specificity(rule: RepricingRule, product: Product, path: tuple[int, ...]):
    if not rule.active:
        return None
    if rule.scope == RepricingRule.Scope.PRODUCT:
        return (4, 0) if rule.product_id == product.pk else None
    if rule.scope == RepricingRule.Scope.CATEGORY:
        return (3, path.index(rule.category_id)) if rule.category_id in path else None
    if rule.scope == RepricingRule.Scope.BRAND:
        return (2, 0) if rule.brand_id and rule.brand_id == product.brand_id else None
    return (0, 0)


def select_rule(product: Product, rules, path: tuple[int, ...]) -> RepricingRule | None:
    fits = [(rule_specificity(r, product, path), r) for r in rules]
    fits = [(spec, r) for spec, r in fits if spec is not None]
    if not fits:
        return None
    return max(fits, key=lambda item: (item[0], item[1].priority, -(item[1].pk or 0)))[1]


def counted_competitors(offers: list[dict], rule: RepricingRule, *, our_id: str) -> list[dict]:
    """The competitors the rule prices against, cheapest first."""
    ignored = rule.ignored_ids | {our_id}
    out = []
    for offer in offers:
        if offer.get("merchant_id") in ignored:
            continue
        rating = Decimal(offer["rating"]) if offer.get("rating") else None
        if rule.ignore_without_reviews and (rating is None or not offer.get("reviews")):
            continue
        if rule.min_rating is not None and (rating is None or rating < rule.min_rating):
            continue
        if rule.ignore_preorders and offer.get("preorder"):
            continue
        if rule.ignore_other_city and offer.get("inter_city"):
            continue
        out.append(offer)
    return sorted(out, key=lambda o: o["price"])


def _step(rule: RepricingRule, price: int) -> int:
    if rule.step_percent:
        return int((Decimal(price) * rule.step_percent / 100).to_integral_value(ROUND_CEILING))
    return int(rule.step_amount)


def target_price(rule: RepricingRule, competitors: list[dict]) -> tuple[int | None, str]:
    """The rule's wish before the floor, ceiling and caps; None when it has no target."""
    if rule.strategy == RepricingRule.Strategy.FIXED:
        return rule.fixed_price, _("fixed price %(price)s") % {"price": rule.fixed_price}
    if not competitors:
        return None, _("no competitors")
    cheapest = competitors[0]
    name = cheapest.get("merchant_name") or cheapest.get("merchant_id")
    if rule.strategy == RepricingRule.Strategy.MATCH:
        reason = _("match %(shop)s at %(price)s") % {"shop": name, "price": cheapest["price"]}
        return cheapest["price"], reason
    if rule.strategy == RepricingRule.Strategy.HOLD and rule.position > 1:
        n = rule.position
        if len(competitors) < n:
            return None, _("fewer than %(n)s competitors") % {"n": n}
        ahead = competitors[n - 1]
        step = _step(rule, ahead["price"])
        return ahead["price"] - step, _("hold position %(n)s: below %(price)s by %(step)s") % {
            "n": n,
            "price": ahead["price"],
            "step": step,
        }
    step = _step(rule, cheapest["price"])
    return cheapest["price"] - step, _("beat %(shop)s at %(price)s by %(step)s") % {
        "shop": name,
        "price": cheapest["price"],
        "step": step,
    }


# --- One product in one city ----------------------------------------------------------


@dataclass
class Context:
    rules: list
    paths: dict
    pricer: Pricer
    commissions: CommissionTable
    city_prices: dict
    last_applied: dict
    now: object
    our_id: str


def load_context(now=None) -> Context:
    pricer = Pricer()
    last_applied = dict(
        PriceChange.objects.filter(status=PriceChange.Status.APPLIED)
        .order_by("product_id", "applied_at")
        .values_list("product_id", "applied_at")
    )
    return Context(
        rules=list(RepricingRule.objects.filter(active=True)),
        paths=pricer._paths,
        pricer=pricer,
        commissions=CommissionTable(),
        city_prices={
            (p, c): price
            for p, c, price in CityPrice.objects.values_list("product_id", "city", "price")
        },
        last_applied=last_applied,
        now=now or timezone.now(),
        our_id=str(settings.KASPI_OFFERS_MERCHANT_ID or "").strip(),
    )


def bounds(product: Product, link: KaspiCardLink, rule: RepricingRule, ctx: Context):
    """(floor, ceiling, commission %): break-even + margin, never below the staff floor."""
    commission = ctx.commissions.percent(link.master_category)
    floor = None
    if has_price(product.price1):
        floor = break_even_price(
            dealer_price=product.price1,
            master_category=link.master_category,
            commissions=ctx.commissions,
            extra_costs=settings.KASPI_DELIVERY_COST + settings.KASPI_PACKAGING_COST,
        )
        floor += rule.min_margin
    if link.floor_price:
        floor = max(floor or 0, int(link.floor_price))
    ceiling = link.ceiling_price or rule.max_price
    if not ceiling:
        # The higher of the supplier's retail price and our fixed-markup price: the most
        # either of our usual price policies would ask.
        retail = product.price2 if has_price(product.price2) else None
        markup = ctx.pricer.quote(product, market=False).price
        ceiling = max([p for p in (retail, markup) if p], default=None)
    return floor, (int(ceiling) if ceiling else None), commission


def propose(product: Product, city: str, state: MarketState | None, ctx: Context) -> Proposal:
    """What the rule wants for `product` in `city`, bounded; `new` None = leave it."""
    link = product.kaspi_link
    old = ctx.city_prices.get((product.pk, city)) or product.kaspi_price
    keep = lambda reason, **kw: Proposal(product, city, old, None, reason, **kw)  # noqa: E731
    if product.manual_price is not None:
        return keep(_("manual price"))
    if product.price_on_request or not has_price(old):
        return keep(_("not offered at a price"))
    if state is None:
        return keep(_("market not read yet"))
    if state.status != MarketState.Status.OK:
        return keep(
            _("market %(status)s: %(error)s")
            % {"status": state.get_status_display(), "error": state.error or "—"}
        )
    age = ctx.now - (state.ok_at or ctx.now)
    if age > timedelta(minutes=settings.REPRICER_MARKET_MAX_AGE_MINUTES):
        return keep(_("market read too long ago"))
    rule = select_rule(product, ctx.rules, ctx.paths.get(product.category_id, ()))
    if rule is None:
        return keep(_("no repricing rule applies"))
    floor, ceiling, commission = bounds(product, link, rule, ctx)
    competitors = counted_competitors(state.offers, rule, our_id=ctx.our_id)
    market = {
        "read_at": state.ok_at.isoformat() if state.ok_at else None,
        "competitors": [
            {k: o.get(k) for k in ("merchant_id", "merchant_name", "price", "position")}
            for o in competitors[:5]
        ],
        "our_position": state.our_position,
        "our_price_seen": state.our_price,
        "commission_percent": str(commission),
    }
    made = lambda new, reason, flag="": Proposal(  # noqa: E731
        product, city, old, new, reason, floor, ceiling, flag, rule, market=market
    )
    if floor is None:
        return keep(_("no dealer price: no floor"), rule=rule, market=market)
    target, reason = target_price(rule, competitors)
    flag, below_floor = "", False
    if ceiling is not None and floor > ceiling:
        new = floor
        flag = _("floor %(floor)s above ceiling %(ceiling)s") % {"floor": floor, "ceiling": ceiling}
        reason = _("stay at the floor (%(reason)s)") % {"reason": reason}
    elif target is None:
        if floor <= old and (ceiling is None or old <= ceiling):
            return keep(reason, floor=floor, ceiling=ceiling, rule=rule, market=market)
        new = floor if old < floor else ceiling
        reason = _("%(reason)s: back within floor and ceiling") % {"reason": reason}
    elif target < floor:
        new = floor
        below = competitors[0]["price"] if competitors else target
        if below < floor:
            below_floor = True
            flag = _("competitor at %(price)s below our floor %(floor)s") % {
                "price": below,
                "floor": floor,
            }
        reason = _("%(reason)s; the floor %(floor)s wins") % {"reason": reason, "floor": floor}
    elif ceiling is not None and target > ceiling:
        new = ceiling
        reason = _("%(reason)s; the ceiling %(ceiling)s wins") % {
            "reason": reason,
            "ceiling": ceiling,
        }
    else:
        new = target
    new = _capped(old, new, floor, ceiling)
    if new == old:
        unchanged = made(None, reason, flag)
        unchanged.below_floor = below_floor
        return unchanged
    last = ctx.last_applied.get(product.pk)
    cycle = timedelta(minutes=settings.REPRICER_FEED_CYCLE_MINUTES)
    if last and ctx.now - last < cycle and floor <= old:
        return made(None, _("waiting for Kaspi to show our last change"), flag)
    cooldown = timedelta(minutes=settings.REPRICER_RAISE_COOLDOWN_MINUTES)
    if new > old and last and ctx.now - last < cooldown and old >= floor:
        return made(None, _("a raise waits for the cooldown"), flag)
    proposal = made(new, reason, flag)
    proposal.below_floor = below_floor
    share = abs(Decimal(new - old)) / Decimal(old)
    proposal.anomaly = share > settings.REPRICER_ANOMALY_SHARE
    return proposal


def _capped(old: int, new: int, floor: int, ceiling: int | None) -> int:
    """At most REPRICER_MAX_STEP_PERCENT per move; the floor and ceiling win over the cap."""
    cap = Decimal(settings.REPRICER_MAX_STEP_PERCENT) / 100
    if cap > 0 and old:
        low = int((Decimal(old) * (1 - cap)).to_integral_value(ROUND_CEILING))
        high = int((Decimal(old) * (1 + cap)).to_integral_value(ROUND_FLOOR))
        new = min(max(new, low), high)
    if ceiling is not None and floor <= ceiling:
        new = min(new, ceiling)
    return max(new, floor)


# --- Runs -------------------------------------------------------------------------------


def run_reprice(
    *,
    triggered_by: str = "command",
    user=None,
    dry_run: bool = False,
    approve: bool = False,
    run_id: int | None = None,
) -> SyncRun:
    run = SyncRun.objects.get(pk=run_id) if run_id else None
    return run_job(
        kind=SyncRun.Kind.REPRICE,
        run=run,
        triggered_by=triggered_by,
        user=user,
        params={"dry_run": dry_run, "approve": approve},
        job=lambda run: reprice(run=run, dry_run=dry_run, approve=approve, user=user),
    )


def request_reprice(*, user=None, triggered_by: str = "user"):
    return enqueue_job(
        kind=SyncRun.Kind.REPRICE,
        task="catalog.tasks.reprice_kaspi_task",
        triggered_by=triggered_by,
        user=user,
    )


def reprice(
    *,
    run: SyncRun | None = None,
    dry_run: bool = False,
    approve: bool = False,
    user=None,
    mode: str | None = None,
    now=None,
) -> list[Proposal]:
    """Compute proposals for every linked product and city; store or apply them."""
    mode = mode or settings.REPRICER_MODE
    if mode not in MODES:
        from backoffice.core.exceptions import BackofficeError

        raise BackofficeError(f"REPRICER_MODE must be one of {', '.join(MODES)}, not {mode!r}")
    ctx = load_context(now)
    products = (
        Product.objects.filter(OFFERABLE, kaspi_link__isnull=False)
        .exclude(kaspi_link__card_id="")
        .exclude(kaspi_link__status=KaspiCardLink.Status.CANDIDATES)
        .select_related("kaspi_link")
        .order_by("sku")
    )
    states = {(s.product_id, s.city): s for s in MarketState.objects.all()}
    proposals, counts = (
        [],
        {"checked": 0, "proposed": 0, "applied": 0, "unchanged": 0, "flagged": 0},
    )
    sellers = best_sellers() if not dry_run else set()
    below_floor: list[str] = []
    lost_first: list[str] = []
    for product in products.iterator(chunk_size=500):
        for city in settings.KASPI_CITIES:
            state = states.get((product.pk, city))
            proposal = propose(product, city, state, ctx)
            proposals.append(proposal)
            counts["checked"] += 1
            counts["flagged"] += bool(proposal.flag)
            if dry_run:
                continue
            _note_flag(state, proposal)
            if proposal.below_floor:
                below_floor.append(f"{product.sku} ({city}): {proposal.flag}")
            if state and product.pk in sellers and state.our_position and state.our_position > 1:
                lost_first.append(f"{product.sku} ({city}): {state.our_position}")
            if not proposal.changes:
                counts["unchanged"] += 1
                continue
            change = store_proposal(proposal)
            if change is None:
                counts["unchanged"] += 1
                continue
            counts["proposed"] += 1
            if (mode == "auto" and not change.anomaly) or approve:
                counts["applied"] += apply_changes([change], user=user, build=False)
    if not dry_run:
        _alert_summary(
            "kaspi-below-floor",
            "Kaspi: конкуренты ниже нашего порога безубыточности (цена остаётся на пороге)",
            below_floor,
        )
        _alert_summary(
            "kaspi-lost-first", "Kaspi: хиты продаж, где мы не на первом месте", lost_first
        )
        pending = PriceChange.objects.filter(status=PriceChange.Status.PENDING)
        if approve:
            counts["applied"] += apply_changes(list(pending), user=user, build=False)
        counts["pending"] = pending.count()
        if counts["applied"]:
            _queue_feed_build()
    if run is not None:
        run.counts.update(counts)
        if dry_run:
            run.params["lines"] = [describe(p) for p in proposals if p.changes][:2000]
    logger.info("kaspi reprice (%s%s): %s", mode, ", dry run" if dry_run else "", counts)
    return proposals


def _alert_summary(key: str, title: str, lines: list[str]) -> None:
    """One alert per run (and per cool-down) listing the cases, not one per card."""
    if lines:
        more = f"\n… и ещё {len(lines) - 20}" if len(lines) > 20 else ""
        send_alert(key=key, text=f"{title}: {len(lines)}\n" + "\n".join(lines[:20]) + more)


def describe(proposal: Proposal) -> str:
    """One line for the dry run and the logs."""
    flag = f" [{proposal.flag}]" if proposal.flag else ""
    approval = " (needs approval: large change)" if proposal.anomaly else ""
    return (
        f"{proposal.product.sku} {proposal.city}: {proposal.old} → {proposal.new} "
        f"(floor {proposal.floor}, ceiling {proposal.ceiling}) {proposal.reason}{flag}{approval}"
    )


def _note_flag(state: MarketState | None, proposal: Proposal) -> None:
    if state is not None and state.flag != proposal.flag[:255]:
        state.flag = proposal.flag[:255]
        MarketState.objects.filter(pk=state.pk).update(flag=state.flag)


def store_proposal(proposal: Proposal) -> PriceChange | None:
    """One pending change per (product, city): the same proposal twice changes nothing."""
    with transaction.atomic():
        pending = PriceChange.objects.select_for_update().filter(
            product=proposal.product, city=proposal.city, status=PriceChange.Status.PENDING
        )
        same = pending.filter(new_price=proposal.new, old_price=proposal.old).first()
        if same is not None:
            return same if not same.anomaly else None
        pending.update(status=PriceChange.Status.SUPERSEDED)
        return PriceChange.objects.create(
            product=proposal.product,
            city=proposal.city,
            old_price=proposal.old,
            new_price=proposal.new,
            floor=proposal.floor,
            ceiling=proposal.ceiling,
            reason=proposal.reason[:255],
            flag=proposal.flag[:255],
            rule=proposal.rule,
            market=proposal.market,
            anomaly=proposal.anomaly,
        )


def apply_changes(changes: list[PriceChange], *, user=None, build: bool = True) -> int:
    """Apply pending changes: the city price (and the home price on the product)."""
    applied = 0
    now = timezone.now()
    home = settings.KASPI_HOME_CITY
    for change in changes:
        with transaction.atomic():
            fresh = (
                PriceChange.objects.select_for_update()
                .filter(pk=change.pk, status=PriceChange.Status.PENDING)
                .first()
            )
            if fresh is None:
                continue
            CityPrice.objects.update_or_create(
                product_id=fresh.product_id,
                city=fresh.city,
                defaults={"price": fresh.new_price, "updated_at": now},
            )
            if fresh.city == home:
                Product.objects.filter(pk=fresh.product_id).update(kaspi_price=fresh.new_price)
            elif fresh.old_price:
                # The home city keeps its price; record it so the feed knows both are current.
                home_price = Product.objects.filter(pk=fresh.product_id).values_list(
                    "kaspi_price", flat=True
                )[0]
                CityPrice.objects.get_or_create(
                    product_id=fresh.product_id,
                    city=home,
                    defaults={"price": home_price or fresh.old_price, "updated_at": now},
                )
            fresh.status = PriceChange.Status.APPLIED
            fresh.applied_at = now
            fresh.decided_by = user if getattr(user, "pk", None) else None
            fresh.save(update_fields=["status", "applied_at", "decided_by"])
            applied += 1
    if applied and build:
        _queue_feed_build()
    return applied


def reject_changes(changes, *, user=None) -> int:
    return PriceChange.objects.filter(
        pk__in=[c.pk for c in changes], status=PriceChange.Status.PENDING
    ).update(
        status=PriceChange.Status.REJECTED, decided_by=user if getattr(user, "pk", None) else None
    )


def _queue_feed_build() -> None:
    from .feed import request_feed_build

    transaction.on_commit(lambda: request_feed_build(triggered_by="repricer"))


def home_price_spread(product: Product) -> dict:
    """City → price for the product page (applied prices, the home price elsewhere)."""
    prices = dict(product.city_prices.values_list("city", "price"))
    return {city: prices.get(city, product.kaspi_price) for city in settings.KASPI_CITIES}
