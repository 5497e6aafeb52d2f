from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from backoffice.models import Alert
from catalog.models import (
    CityPrice,
    KaspiCardLink,
    KaspiCommission,
    MarketState,
    PriceChange,
    Product,
    RepricingRule,
)
from catalog.services.pricing import break_even_price, reprice_products
from catalog.services.repricer import reprice
from tests import factories

ALMATY, ASTANA = "750000000", "710000000"
OURS = "30999001"
COST = 100_000
FLOOR = 118_344  # ceil(100000 / (1 - 0.125 - 0.03))


@pytest.fixture(autouse=True)
def repricer_settings(settings):
    settings.KASPI_OFFERS_MERCHANT_ID = OURS
    settings.KASPI_HOME_CITY = ALMATY
    settings.KASPI_CITIES = [ALMATY]
    settings.KASPI_COMMISSION_PERCENT = Decimal("12.5")
    settings.KASPI_COMMISSION_WITH_VAT = True
    settings.SALES_TAX_PERCENT = Decimal("3")
    settings.KASPI_DELIVERY_COST = 0
    settings.KASPI_PACKAGING_COST = 0
    settings.REPRICER_MODE = "suggest"
    settings.REPRICER_MAX_STEP_PERCENT = Decimal("5")
    settings.REPRICER_ANOMALY_SHARE = Decimal("0.2")
    settings.REPRICER_FEED_CYCLE_MINUTES = 60
    settings.REPRICER_RAISE_COOLDOWN_MINUTES = 180
    return settings


@pytest.fixture
def rule():
    return RepricingRule.objects.create(name="beat by 1", strategy="beat", step_amount=1)


def offer(merchant, price, **kw):
    return {
        "merchant_id": merchant,
        "merchant_name": f"Shop {merchant}",
        "merchant_sku": "x",
        "price": price,
        "rating": kw.pop("rating", "4.5"),
        "reviews": kw.pop("reviews", 100),
        "preorder": kw.pop("preorder", 0),
        "inter_city": kw.pop("inter_city", False),
        **kw,
    }


def listing(
    current=132_000,
    *,
    sku="AS10001",
    cost=COST,
    retail=150_000,
    offers=(),
    city=ALMATY,
    status=MarketState.Status.OK,
    **link_kw,
):
    product = factories.product(
        sku=sku, article=sku[2:], price1=cost, price2=retail, kaspi_price=current
    )
    KaspiCardLink.objects.create(
        product=product, card_id="1" + sku[2:], source="url", status="linked", **link_kw
    )
    state(product, offers, city=city, status=status)
    return product


def state(product, offers, *, city=ALMATY, status=MarketState.Status.OK):
    offers = list(offers) + [offer(OURS, product.kaspi_price)]
    offers.sort(key=lambda o: o["price"])
    for position, o in enumerate(offers, start=1):
        o["position"] = position
    now = timezone.now()
    competitors = [o for o in offers if o["merchant_id"] != OURS]
    MarketState.objects.update_or_create(
        product=product,
        city=city,
        defaults={
            "card_id": product.kaspi_link.card_id,
            "status": status,
            "read_at": now,
            "ok_at": now,
            "offers": offers if status == MarketState.Status.OK else [],
            "competitors": len(competitors),
            "best_price": competitors[0]["price"] if competitors else None,
        },
    )


def proposal_for(product, city=ALMATY, **kw):
    proposals = reprice(**kw)
    return next(p for p in proposals if p.product.pk == product.pk and p.city == city)


def test_break_even_uses_the_commission_of_the_card_category():
    KaspiCommission.objects.create(
        master_category="Master - Phone cables",
        percent_without_vat=Decimal("13.5"),
        percent_with_vat=Decimal("15.5"),
    )

    assert break_even_price(dealer_price=COST, master_category="Master - Notebooks") == FLOOR
    assert break_even_price(dealer_price=COST, master_category="Master - Phone cables") == 122_700
    assert break_even_price(dealer_price=COST, master_category="*") == FLOOR  # seeded row


def test_the_commission_table_without_vat_and_without_a_default_row(settings):
    settings.KASPI_COMMISSION_WITH_VAT = False
    assert break_even_price(dealer_price=COST, master_category="x") == 116_145  # 10.9 %
    KaspiCommission.objects.all().delete()
    settings.KASPI_COMMISSION_PERCENT = Decimal("10")
    assert break_even_price(dealer_price=COST, master_category="x") == 114_943


def test_beat_the_cheapest_by_a_step(rule):
    product = listing(offers=[offer("1", 130_000), offer("2", 131_000)])

    p = proposal_for(product)

    assert (p.old, p.new, p.floor, p.ceiling) == (132_000, 129_999, FLOOR, 150_000)
    assert p.reason == "beat Shop 1 at 130000 by 1"
    change = PriceChange.objects.get()
    assert (change.status, change.new_price, change.rule) == ("pending", 129_999, rule)
    assert change.market["competitors"][0]["price"] == 130_000
    assert Product.objects.get(pk=product.pk).kaspi_price == 132_000  # suggest: not applied


def test_a_step_in_percent(rule):
    rule.step_percent = Decimal("0.5")
    rule.save()
    product = listing(offers=[offer("1", 130_000)])

    assert proposal_for(product).new == 129_350


def test_a_dumper_below_the_floor_keeps_us_at_the_floor_with_an_alert(rule):
    product = listing(current=120_000, offers=[offer("dumper", 60_000), offer("2", 131_000)])

    p = proposal_for(product)

    assert p.new == FLOOR
    assert p.flag == f"competitor at 60000 below our floor {FLOOR}"
    assert MarketState.objects.get().flag == p.flag
    alert = Alert.objects.get(key="kaspi-below-floor")
    assert f"AS10001 (750000000): competitor at 60000 below our floor {FLOOR}" in alert.text


def test_floor_above_ceiling_stays_at_the_floor_flagged(rule):
    product = listing(current=110_000, retail=112_000, offers=[offer("1", 111_000)])

    p = proposal_for(product)

    assert p.new == FLOOR
    assert p.flag == f"floor {FLOOR} above ceiling 112000"


def test_the_ceiling_caps_a_raise(rule):
    product = listing(current=148_000, offers=[offer("1", 170_000)])

    p = proposal_for(product)

    assert p.new == 150_000
    assert p.reason.endswith("the ceiling 150000 wins")


def test_a_step_is_capped_but_the_floor_wins_over_the_cap(rule):
    cheap = listing(offers=[offer("1", 121_000)])
    below_floor = listing(current=100_000, sku="AS10002", offers=[offer("1", 130_000)])

    proposals = {p.product.sku: p for p in reprice()}

    assert proposals[cheap.sku].new == 125_400  # 5 % below 132000, not 120999
    assert proposals[below_floor.sku].new == FLOOR  # +18 %: the floor wins over the cap


@pytest.mark.parametrize(
    "status",
    [MarketState.Status.UNKNOWN, MarketState.Status.FORMAT, MarketState.Status.EMPTY],
    ids=["unknown", "format-changed", "vanished-card"],
)
def test_nothing_is_repriced_without_a_usable_market(rule, status):
    product = listing(offers=[offer("1", 100_000)], status=status)

    p = proposal_for(product)

    assert p.new is None
    assert not PriceChange.objects.exists()


def test_no_competitors_leaves_the_price(rule):
    product = listing(offers=[])

    p = proposal_for(product)

    assert (p.new, p.reason) == (None, "no competitors")


def test_ignored_shops_preorders_low_ratings_and_other_cities(rule):
    rule.ignore_merchants = "1, 2"
    rule.min_rating = Decimal("4.0")
    rule.ignore_without_reviews = True
    rule.ignore_other_city = True
    rule.save()
    product = listing(
        offers=[
            offer("1", 120_000),
            offer("2", 121_000),
            offer("3", 122_000, preorder=5),
            offer("4", 123_000, rating="3.5"),
            offer("5", 124_000, rating=None, reviews=0),
            offer("6", 125_000, inter_city=True),
            offer("7", 129_000),
        ]
    )

    assert proposal_for(product).new == 128_999


def test_match_and_hold_position(rule):
    product = listing(offers=[offer("1", 130_000), offer("2", 131_000)])
    rule.strategy = RepricingRule.Strategy.MATCH
    rule.save()
    assert proposal_for(product).new == 130_000
    rule.strategy, rule.position, rule.step_amount = RepricingRule.Strategy.HOLD, 2, 10
    rule.save()
    assert proposal_for(product).new == 130_990


def test_the_most_specific_rule_wins(rule):
    product = listing(offers=[offer("1", 130_000)])
    RepricingRule.objects.create(
        name="this product", scope="product", product=product, strategy="match"
    )

    assert proposal_for(product).new == 130_000


def test_a_manual_floor_and_the_category_commission(rule):
    product = listing(offers=[offer("1", 120_000)], floor_price=125_000)
    assert proposal_for(product).new == 125_400  # capped step toward 125000, never below it
    KaspiCardLink.objects.update(floor_price=None, master_category="Master - Phone cables")
    KaspiCommission.objects.create(
        master_category="Master - Phone cables",
        percent_without_vat=Decimal("13.5"),
        percent_with_vat=Decimal("15.5"),
    )

    p = proposal_for(product)

    assert p.floor == 122_700
    assert p.market["commission_percent"] == "15.50"


def test_suggest_twice_keeps_one_pending_then_approve_applies(rule):
    product = listing(offers=[offer("1", 130_000)])
    reprice()
    reprice()
    assert PriceChange.objects.filter(status="pending").count() == 1

    call_command("reprice_kaspi", "--approve")

    change = PriceChange.objects.get()
    assert (change.status, change.applied_at is not None) == ("applied", True)
    product.refresh_from_db()
    assert product.kaspi_price == 129_999
    assert CityPrice.objects.get(product=product).price == 129_999
    # The supplier sync's repricing keeps the repricer's price.
    reprice_products()
    product.refresh_from_db()
    assert product.kaspi_price == 129_999


def test_dry_run_stores_nothing(rule, capsys):
    listing(offers=[offer("1", 130_000)])

    call_command("reprice_kaspi", "--dry-run")

    assert not PriceChange.objects.exists()
    out = capsys.readouterr().out
    assert "AS10001 750000000: 132000 → 129999" in out


def test_auto_mode_applies_but_a_large_change_waits(rule, settings):
    settings.REPRICER_MODE = "auto"
    settings.REPRICER_MAX_STEP_PERCENT = Decimal("50")
    small = listing(offers=[offer("1", 130_000)])
    large = listing(sku="AS10002", offers=[offer("1", 125_000)], current=160_000, retail=200_000)

    reprice()

    assert PriceChange.objects.get(product=small).status == "applied"
    waiting = PriceChange.objects.get(product=large)
    assert (waiting.status, waiting.anomaly) == ("pending", True)
    small.refresh_from_db()
    assert small.kaspi_price == 129_999


def test_one_change_per_feed_cycle_and_raises_after_the_cooldown(rule):
    product = listing(offers=[offer("1", 130_000)])
    applied = PriceChange.objects.create(
        product=product,
        city=ALMATY,
        old_price=133_000,
        new_price=132_000,
        reason="earlier",
        status="applied",
        applied_at=timezone.now() - timedelta(minutes=10),
    )
    assert proposal_for(product).reason == "waiting for Kaspi to show our last change"

    applied.applied_at = timezone.now() - timedelta(minutes=90)
    applied.save()
    state(product, [offer("1", 140_000)])
    assert proposal_for(product).reason == "a raise waits for the cooldown"

    applied.applied_at = timezone.now() - timedelta(minutes=200)
    applied.save()
    assert proposal_for(product).new == 138_600  # +5 % cap toward 139999


def test_per_city_prices(rule, settings):
    settings.KASPI_CITIES = [ALMATY, ASTANA]
    product = listing(offers=[offer("1", 130_000)])
    state(product, [offer("2", 128_000)], city=ASTANA)

    reprice(approve=True)

    assert dict(CityPrice.objects.values_list("city", "price")) == {
        ALMATY: 129_999,
        ASTANA: 127_999,
    }


def test_manual_price_and_price_on_request_are_left_alone(rule):
    manual = listing(offers=[offer("1", 130_000)])
    Product.objects.filter(pk=manual.pk).update(manual_price=140_000)

    assert proposal_for(manual).reason == "manual price"


def test_default_ceiling_is_the_higher_of_retail_and_fixed_markup(rule):
    factories.rule(name="markup", markup_percent=60, rounding=1)
    product = listing(offers=[offer("1", 170_000)], current=150_000, retail=150_000)

    p = proposal_for(product)

    assert p.ceiling == 160_000
    assert p.new == 157_500  # +5 % cap toward the ceiling


def test_below_floor_alerts_come_as_one_message_per_run(rule, settings):
    settings.TELEGRAM_BOT_TOKEN = ""
    settings.STAFF_ALERT_EMAILS = ["shop@example.kz"]
    listing(offers=[offer("dumper", 60_000)])
    listing(sku="AS10002", offers=[offer("dumper", 60_000)])

    reprice()
    reprice()  # within the cool-down: nothing new is sent

    alert = Alert.objects.get()
    assert alert.text.splitlines()[0].endswith(": 2")
