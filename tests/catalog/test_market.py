import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import responses
from django.core.management import call_command
from django.test import Client as WebClient
from django.urls import reverse
from django.utils import timezone

from backoffice.models import Alert, SyncRun
from catalog.clients.kaspi_offers import KaspiOffersClient
from catalog.models import KaspiCardLink, MarketObservation, MarketState
from catalog.services.market import (
    PlanItem,
    age_percentiles,
    plan_reads,
    read_market,
    run_market_read,
)
from catalog.tasks import read_market_task
from tests import factories

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kaspi_offers"
BASE = "http://kaspi.test"
ALMATY, ASTANA = "750000000", "710000000"


def page(name):
    return json.loads((FIXTURES / name).read_text())


def offers_url(card_id):
    return f"{BASE}/yml/offer-view/offers/{card_id}"


@pytest.fixture
def market_settings(settings):
    settings.KASPI_OFFERS_MERCHANT_ID = "30999001"
    settings.KASPI_HOME_CITY = ALMATY
    settings.KASPI_CITIES = [ALMATY]
    settings.KASPI_PUBLIC_URL = BASE
    return settings


@pytest.fixture
def client():
    return KaspiOffersClient(base_url=BASE, min_interval=0, sleep=lambda s: None)


def linked(sku="AS10001", card_id="123456789", **kw):
    product = factories.product(sku=sku, article=sku[2:], kaspi_price=295000, **kw)
    return KaspiCardLink.objects.create(product=product, card_id=card_id, source="url")


@responses.activate
def test_a_read_stores_every_shop_and_verifies_the_link(market_settings, client):
    link = linked()
    responses.post(offers_url("123456789"), json=page("page_almaty.json"))

    counts = read_market(client=client)

    assert counts["read"] == 1
    state = MarketState.objects.get(product=link.product, city=ALMATY)
    assert (state.status, state.competitors, state.best_price) == ("ok", 2, 289990)
    assert (state.our_position, state.our_price) == (3, 295000)
    observation = MarketObservation.objects.get()
    assert [o["merchant_id"] for o in observation.offers] == ["17240031", "30581207", "30999001"]
    assert observation.offers[1]["rating"] is None
    link.refresh_from_db()
    assert link.status == KaspiCardLink.Status.LINKED
    assert link.master_category == "Master - Notebooks"
    assert link.verified_at is not None


@responses.activate
def test_our_offer_with_another_sku_is_conflicting(market_settings, client):
    link = linked(sku="AS99999")
    responses.post(offers_url("123456789"), json=page("page_almaty.json"))

    read_market(client=client)

    link.refresh_from_db()
    assert link.status == KaspiCardLink.Status.CONFLICTING
    assert "'AS10001'" in link.note


@responses.activate
def test_our_own_offer_missing_leaves_the_link_unverified(market_settings, client):
    market_settings.KASPI_OFFERS_MERCHANT_ID = "11111111"
    link = linked()
    responses.post(offers_url("123456789"), json=page("page_almaty.json"))

    read_market(client=client)

    link.refresh_from_db()
    assert link.status == KaspiCardLink.Status.UNVERIFIED
    assert link.note == "our shop is not among the card's offers in the home city"


@responses.activate
def test_a_card_nobody_sells_cannot_be_verified(market_settings, client):
    link = linked()
    responses.post(offers_url("123456789"), json=page("empty.json"))

    read_market(client=client)

    link.refresh_from_db()
    assert link.status == KaspiCardLink.Status.UNVERIFIED
    assert "cannot verify" in link.note
    assert MarketState.objects.get().status == MarketState.Status.EMPTY


@responses.activate
def test_market_unknown_keeps_what_we_knew_and_is_never_no_competitors(market_settings, client):
    link = linked()
    responses.post(offers_url("123456789"), json=page("page_almaty.json"))
    read_market(client=client)
    responses.replace(responses.POST, offers_url("123456789"), status=502, body="<html>502</html>")

    run = run_market_read(client=client, sku=link.product.sku)

    state = MarketState.objects.get()
    assert state.status == MarketState.Status.UNKNOWN
    assert "3 attempts failed" in state.error
    assert (state.competitors, state.best_price) == (2, 289990)  # not "no competitors"
    assert len(state.offers) == 3
    assert run.status == SyncRun.Status.PARTIAL
    assert run.error == "market unknown for 1 of 1 (card, city) reads"


@responses.activate
def test_a_shape_change_is_format_changed_with_an_alert(market_settings, client):
    linked()
    responses.post(offers_url("123456789"), json=page("shape_changed.json"))

    counts = read_market(client=client)

    assert counts["format_changed"] == 1
    assert MarketState.objects.get().status == MarketState.Status.FORMAT
    assert Alert.objects.filter(key="kaspi-offers-format").count() == 1


@responses.activate
def test_five_403s_in_a_row_stop_the_run_as_partial(market_settings, client):
    for n in range(4):
        linked(sku=f"AS1000{n}", card_id=f"12345678{n}")
        responses.post(offers_url(f"12345678{n}"), status=403, body="<html>403</html>")

    run = run_market_read(client=client)

    assert run.status == SyncRun.Status.PARTIAL
    assert run.error == "Kaspi refused our IP (403); the repricer paused, retry later"
    assert len(responses.calls) == 5  # 3 attempts on the first card, 2 on the second
    assert run.counts["unknown"] == 2
    assert MarketState.objects.count() == 2


@responses.activate
def test_dry_run_stores_nothing(market_settings, client):
    linked()
    responses.post(offers_url("123456789"), json=page("page_almaty.json"))

    read_market(client=client, dry_run=True)

    assert not MarketState.objects.exists()
    assert not MarketObservation.objects.exists()


@responses.activate
def test_every_city_we_sell_in_is_read(market_settings, client):
    market_settings.KASPI_CITIES = [ALMATY, ASTANA]
    linked()
    responses.post(offers_url("123456789"), json=page("page_almaty.json"))

    read_market(client=client)

    sent = [json.loads(call.request.body)["cityId"] for call in responses.calls]
    assert sorted(sent) == [ASTANA, ALMATY]
    assert MarketState.objects.count() == 2


def test_planner_reads_hot_pairs_first_and_skips_fresh_ones():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    items = [
        PlanItem("never", None, hot=False),
        PlanItem("hot-old", now - timedelta(minutes=50), hot=True),
        PlanItem("cold-old", now - timedelta(hours=22), hot=False),
        PlanItem("hot-fresh", now - timedelta(minutes=5), hot=True),
        PlanItem("cold-fresh", now - timedelta(hours=2), hot=False),
    ]

    plan = plan_reads(items, now, limit=10, hot_minutes=60, max_minutes=24 * 60)

    assert [i.key for i in plan] == ["never", "cold-old", "hot-old"]
    assert [i.key for i in plan_reads(items, now, limit=1, hot_minutes=60, max_minutes=1440)] == [
        "never"
    ]


def test_age_percentiles():
    assert age_percentiles([float(n) for n in range(1, 101)]) == {
        "p50": 50.0,
        "p95": 95.0,
        "count": 100,
    }
    assert age_percentiles([]) == {"p50": None, "p95": None, "count": 0}


@responses.activate
def test_kaspi_market_command_exits_2_when_partial(market_settings, monkeypatch):
    linked()
    responses.post(offers_url("123456789"), status=503, body="<html>503</html>")
    monkeypatch.setattr(
        "catalog.services.market.KaspiOffersClient",
        lambda: KaspiOffersClient(base_url=BASE, min_interval=0, sleep=lambda s: None),
    )

    with pytest.raises(SystemExit) as exit_info:
        call_command("kaspi_market")

    assert exit_info.value.code == 2


def test_observations_are_kept_for_the_retention_days(settings):
    from backoffice.ops.retention import cleanup

    settings.RETENTION_MARKET_DAYS = 30
    link = linked()
    old = timezone.now() - timedelta(days=31)
    MarketObservation.objects.create(
        product=link.product, card_id="1", city=ALMATY, status="ok", observed_at=old
    )
    fresh = MarketObservation.objects.create(
        product=link.product, card_id="1", city=ALMATY, status="ok"
    )

    assert cleanup()["market_observations"] == 1
    assert list(MarketObservation.objects.all()) == [fresh]


@responses.activate
def test_reading_ticked_cards_reads_every_one_in_one_run(market_settings, admin_user, monkeypatch):
    links = [linked(sku=f"AS1000{n}", card_id=f"12345678{n}") for n in (1, 2, 3)]
    for link in links:
        responses.post(offers_url(link.card_id), json=page("page_almaty.json"))
    monkeypatch.setattr(
        "catalog.services.market.KaspiOffersClient",
        lambda: KaspiOffersClient(base_url=BASE, min_interval=0, sleep=lambda s: None),
    )

    staff = WebClient()
    staff.force_login(admin_user)
    response = staff.post(
        reverse("admin:catalog_kaspicardlink_changelist"),
        {"action": "read_market_now", "_selected_action": [link.pk for link in links]},
    )

    assert response.status_code == 302
    assert len(responses.calls) == 0  # queued, not read in the request
    run = SyncRun.objects.get(kind=SyncRun.Kind.MARKET)
    assert run.status == SyncRun.Status.QUEUED
    read_market_task(run.pk)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.OK
    assert run.counts["read"] == 3
    assert (run.progress_done, run.progress_total) == (3, 3)
    assert MarketState.objects.filter(city=ALMATY).count() == 3
