"""The supplier budget planner, the resumable full listing and the freshness figures (issue 20).

The supplier is faked at the HTTP layer (`responses` callbacks) on a simulated clock: the
real client, limiter, planner and sync services run; time advances only when the limiter
sleeps, so hours of schedule run in a second.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest

from backoffice.models import SyncRun
from catalog.models import CatalogListing, Product, Supplier, SupplierCheck
from catalog.services.budget import CallBudget, freshness, make_plan, plan_run, stock_articles
from catalog.services.sync import run_catalog_sync, run_stock_sync
from tests import factories
from tests.factories import element
from tests.fakes.alstyle_budget import START, SimSupplier

API = "https://api.al-style.kz/api/"


@pytest.fixture
def sim(mocked_http, monkeypatch, settings):
    settings.ALSTYLE_MIN_INTERVAL = 5.0
    factories.alstyle_row(min_interval=5.0)  # the row wins
    settings.ALSTYLE_SLOT_MARGIN = 0.5
    settings.ALSTYLE_RATE_LIMIT_PAUSE = 10.0
    settings.ALSTYLE_PAGE_SIZE = 2
    settings.ALSTYLE_STOCK_CHUNK = 2
    monkeypatch.setattr("catalog.services.feed.request_feed_build", lambda **kw: (None, False))
    supplier = SimSupplier({str(a): element(a) for a in range(1, 11)})
    mocked_http.assert_all_requests_are_fired = False
    mocked_http.add_callback("GET", re.compile(re.escape(API) + ".*"), callback=supplier)
    monkeypatch.setattr("django.utils.timezone.now", supplier.now)
    return supplier


def _sync(sim, kind="catalog", **kw):
    runner = run_catalog_sync if kind == "catalog" else run_stock_sync
    return runner(triggered_by="schedule", client=sim.client(), clock=sim.clock, **kw)


# --- The plan ------------------------------------------------------------------------------


def test_plan_splits_the_hour_within_capacity_and_keeps_a_reserve(settings):
    settings.ALSTYLE_MIN_INTERVAL, settings.ALSTYLE_SLOT_MARGIN = 5.0, 0.5
    factories.alstyle_row(min_interval=5.0)  # the row wins
    settings.ALSTYLE_PAGE_SIZE = settings.ALSTYLE_STOCK_CHUNK = 2
    settings.ALSTYLE_RESERVE_CALLS_PER_HOUR = 60
    for i in range(600):
        factories.product(
            article=str(i), kaspi_enabled=i < 200, last_seen=START - timedelta(days=9)
        )

    plan = make_plan(now=START)

    assert plan.capacity == 654  # 3600 / 5.5
    assert plan.reserve == 60
    assert plan.catalog_per_hour + plan.stock_per_hour == plan.sync_budget == 594
    assert (plan.products, plan.hot) == (600, 200)
    assert plan.listing_calls == 302
    # 100 chunks of hot products every 20 min (30 min target less one 10 min tick).
    assert plan.hot_calls_per_hour == 300
    assert plan.stock_per_hour >= plan.hot_calls_per_hour
    assert plan.catalog_per_hour >= 0.15 * plan.sync_budget


def test_hot_need_beyond_the_budget_leaves_the_listing_its_floor(settings):
    settings.ALSTYLE_MIN_INTERVAL, settings.ALSTYLE_SLOT_MARGIN = 5.0, 0.5
    factories.alstyle_row(min_interval=5.0)  # the row wins
    settings.ALSTYLE_PAGE_SIZE = settings.ALSTYLE_STOCK_CHUNK = 1
    for i in range(400):
        factories.product(article=str(i))  # all on sale: 400 calls x 3 an hour wanted

    plan = make_plan(now=START)

    assert plan.hot_calls_per_hour == 1200
    assert plan.catalog_per_hour == 90  # ceil(594 * 0.15)
    assert plan.catalog_per_hour + plan.stock_per_hour == 594


def test_allowance_subtracts_the_calls_of_the_last_hour(settings):
    settings.ALSTYLE_MIN_INTERVAL, settings.ALSTYLE_SLOT_MARGIN = 5.0, 0.5
    factories.alstyle_row(min_interval=5.0)  # the row wins
    factories.product(article="1")
    now = datetime.now(UTC)
    plan = make_plan(now=now)
    SyncRun.objects.create(
        kind="stock", status="ok", started_at=now - timedelta(minutes=20),
        finished_at=now - timedelta(minutes=15), counts={"calls": plan.stock_per_hour - 5},
    )  # fmt: skip
    SyncRun.objects.create(
        kind="stock", status="ok", started_at=now - timedelta(hours=3),
        finished_at=now - timedelta(hours=2), counts={"calls": 500},
    )  # fmt: skip

    budget, _plan = plan_run("stock", now=now)

    assert budget.calls == 5
    catalog_budget, _plan = plan_run("catalog", now=now)
    # The shares are separate: the catalog's 3-call listing twice an hour (6/h), of which
    # one 30 min tick may take 1.5 ticks' worth.
    assert catalog_budget.calls == 5


def test_stock_refreshes_due_hot_products_first_then_the_oldest_rest(settings):
    now = datetime.now(UTC)
    old = now - timedelta(days=5)
    on_sale = factories.product(article="10", last_seen=old)
    fresh_on_sale = factories.product(article="11", last_seen=old)
    rest_old = factories.product(article="20", kaspi_enabled=False, last_seen=old)
    rest_older = factories.product(article="21", kaspi_enabled=False, last_seen=old)
    rest_new = factories.product(article="22", kaspi_enabled=False, last_seen=old)
    changed = factories.product(article="23", kaspi_enabled=False, last_seen=now)
    in_order = factories.product(article="30", kaspi_enabled=False, last_seen=old)
    from orders.models import Order, OrderEntry

    order = Order.objects.create(code="K1", status="ACCEPTED_BY_MERCHANT")
    OrderEntry.objects.create(order=order, product=in_order)
    done = Order.objects.create(code="K2", status="COMPLETED")
    OrderEntry.objects.create(order=done, product=rest_old)
    OrderEntry.objects.create(order=done, product=in_order)  # also sold before: still open
    for product, minutes in [
        (on_sale, 25), (fresh_on_sale, 5), (rest_old, 120), (rest_older, 600),
        (rest_new, 3), (changed, 25), (in_order, 21),
    ]:  # fmt: skip
        SupplierCheck.objects.create(
            article=product.article, checked_at=now - timedelta(minutes=minutes)
        )

    chosen = stock_articles(limit=10, now=now)

    # Hot and due (older than 30 - 10 min), oldest first: in an order, on sale, changed.
    assert chosen[:3] == ["10", "23", "30"]
    # Then the rest, oldest check first; nothing checked within the tick.
    assert chosen[3:] == ["21", "20"]
    assert stock_articles(limit=2, now=now) == ["10", "23"]


# --- The budget in use ---------------------------------------------------------------------


def test_scheduled_runs_never_exceed_the_budget_and_keep_products_on_sale_fresh(sim, settings):
    sim.items = {str(a): element(a) for a in range(1, 601)}  # a 302-call listing
    settings.ALSTYLE_RESERVE_CALLS_PER_HOUR = 60
    settings.CATALOG_RECENT_HOURS = 0  # only "on sale" makes a product hot here
    for a in range(1, 601):  # 200 of them on sale
        factories.product(
            article=str(a), kaspi_enabled=a <= 200, last_seen=START - timedelta(days=3)
        )
    end, next_stock, next_catalog, next_sample = 4 * 3600.0, 0.0, 0.0, 2 * 3600.0
    samples = []
    while sim.t < end:
        if sim.t >= next_catalog:
            _sync(sim, "catalog")
            next_catalog += settings.CATALOG_SYNC_INTERVAL_MINUTES * 60
        if sim.t >= next_stock:
            _sync(sim, "stock")
            next_stock += settings.STOCK_SYNC_INTERVAL_MINUTES * 60
        if sim.t >= next_sample:
            samples.append(freshness(now=sim.now()))
            next_sample += 600
        sim.t = max(sim.t, min(next_stock, next_catalog, next_sample))

    plan = make_plan(now=sim.now())
    assert sim.refused == 0
    assert sim.calls_in_window(3600) <= plan.sync_budget  # the reserve stays free
    assert CatalogListing.objects.filter(phase="done").count() >= 2
    assert not SyncRun.objects.filter(status="failed").exists()
    assert samples[-1]["on_sale"]["count"] == 200
    assert samples[-1]["rest"]["count"] == 400
    # One worker here: stock runs wait behind a 15-minute listing run (the target
    # is 60 min; the planner aims at STOCK_HOT_MAX_AGE_MINUTES = 30).
    assert max(s["on_sale"]["p95"] for s in samples) <= 60
    assert max(s["rest"]["p95"] for s in samples) <= 120


def test_run_stops_at_its_deadline(sim, settings, monkeypatch):
    sim.items = {str(a): element(a) for a in range(1, 101)}
    settings.SUPPLIER_RUN_MAX_SECONDS = 60  # about 10 calls at 5.5 s
    monkeypatch.setattr(
        "catalog.services.sync.plan_run",
        lambda kind, clock: (CallBudget(None, seconds=60, clock=clock), None),
    )

    run = _sync(sim, "catalog")

    assert run.status == SyncRun.Status.OK
    assert 9 <= run.counts["calls"] <= 11
    assert sim.t <= 60 + 6
    listing = CatalogListing.objects.get()
    assert listing.phase == "pages"
    assert listing.next_offset == 2 * run.counts["pages"]


# --- The resumable full listing ------------------------------------------------------------


def test_listing_spans_runs_and_vanishes_only_after_the_last_page(sim, monkeypatch, settings):
    sim.items = {str(a): element(a) for a in range(1, 11)}  # 5 pages
    run_catalog_sync(client=sim.client(), clock=sim.clock, full=True)
    assert Product.objects.filter(listed=True).count() == 10
    del sim.items["9"]  # gone at the supplier: on the last page
    del sim.items["2"]  # gone: the first page of the next listing
    allowance = iter([4, 2, 10])
    monkeypatch.setattr(
        "catalog.services.sync.plan_run",
        lambda kind, clock: (CallBudget(next(allowance), clock=clock), None),
    )
    settings.CATALOG_VANISH_LIMIT = 0.5

    first = _sync(sim, "catalog")  # categories, brands, 2 pages

    listing = CatalogListing.objects.filter(finished_at__isnull=True).get()
    assert (first.status, first.counts["calls"], first.counts["vanished"]) == ("ok", 4, 0)
    assert (listing.pages, listing.next_offset, listing.phase) == (2, 4, "pages")
    assert Product.objects.get(article="9").listed is True  # not before the last page

    second = _sync(sim, "catalog")  # the last 2 pages, from offset 4; no call left
    offsets = [q["offset"] for _t, m, q in sim.calls[-2:]]
    assert offsets == ["4", "6"]
    assert second.counts["vanished"] == 0
    assert CatalogListing.objects.get(pk=listing.pk).phase == "confirm"
    assert Product.objects.get(article="2").listed is True

    third = _sync(sim, "catalog")  # quantity-price about the missing, then vanish

    assert [m for _t, m, _q in sim.calls[-1:]] == ["quantity-price"]
    assert sim.calls[-1][2]["article"] == "2,9"
    assert third.status == "ok"
    assert third.counts["vanished"] == 2
    assert set(Product.objects.filter(listed=False).values_list("article", flat=True)) == {
        "2",
        "9",
    }
    assert CatalogListing.objects.get(pk=listing.pk).phase == "done"
    assert sim.refused == 0


def test_product_skipped_by_a_shift_between_runs_is_confirmed_not_vanished(
    sim, monkeypatch, settings
):
    sim.items = {str(a): element(a) for a in range(1, 9)}  # 4 pages
    run_catalog_sync(client=sim.client(), clock=sim.clock, full=True)
    allowance = iter([3, 10])
    monkeypatch.setattr(
        "catalog.services.sync.plan_run",
        lambda kind, clock: (CallBudget(next(allowance), clock=clock), None),
    )
    settings.CATALOG_VANISH_LIMIT = 0.5
    _sync(sim, "catalog")  # categories, brands, page 1: articles 1 and 2
    # Between the runs article 1 leaves the catalog: everything slides one place back, so
    # "3" is now on page 1, already read, and the next run's pages miss it.
    del sim.items["1"]

    run = _sync(sim, "catalog")

    assert run.counts["confirmed_listed"] == 1  # "3": quantity-price still knows it
    assert Product.objects.get(article="3").listed is True
    assert run.counts["vanished"] == 0
    # "1" was read before it left; the next listing takes it off sale.
    assert Product.objects.get(article="1").listed is True
    run_catalog_sync(client=sim.client(), clock=sim.clock, full=True)
    assert Product.objects.get(article="1").listed is False
    assert Product.objects.get(article="3").listed is True


def test_failed_page_is_partial_and_the_next_run_resumes_there(sim, monkeypatch):
    sim.items = {str(a): element(a) for a in range(1, 7)}
    monkeypatch.setattr(
        "catalog.services.sync.plan_run",
        lambda kind, clock: (CallBudget(50, clock=clock), None),
    )
    sim.fail_offsets = {"2"}

    failed = _sync(sim, "catalog")

    assert failed.status == SyncRun.Status.PARTIAL
    assert failed.counts["vanished"] == 0
    listing = CatalogListing.objects.get()
    assert (listing.phase, listing.next_offset) == ("pages", 2)

    sim.fail_offsets = set()
    resumed = _sync(sim, "catalog")

    assert resumed.status == SyncRun.Status.OK
    assert [m for _t, m, _q in sim.calls].count("categories") == 1
    assert resumed.counts["fetched"] == 4
    assert CatalogListing.objects.get().phase == "done"


def test_unchanged_resumed_listing_writes_no_product_rows(sim, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sim.items = {str(a): element(a) for a in range(1, 7)}
    run_catalog_sync(client=sim.client(), clock=sim.clock, full=True)
    allowance = iter([3, 10])
    monkeypatch.setattr(
        "catalog.services.sync.plan_run",
        lambda kind, clock: (CallBudget(next(allowance), clock=clock), None),
    )
    with CaptureQueriesContext(connection) as queries:
        _sync(sim, "catalog")
        run = _sync(sim, "catalog")

    writes = [
        q["sql"]
        for q in queries
        if "catalog_product" in q["sql"]
        and q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))
    ]
    assert writes == []
    assert run.counts["unchanged"] == 4
    assert run.counts["vanished"] == 0
    assert CatalogListing.objects.filter(phase="done").count() == 2


def test_freshness_percentiles_by_part_of_the_catalog():
    now = datetime.now(UTC)
    for i in range(20):
        factories.product(article=f"s{i}")
        SupplierCheck.objects.create(article=f"s{i}", checked_at=now - timedelta(minutes=i + 1))
    for i in range(10):
        factories.product(article=f"r{i}", kaspi_enabled=False)
        if i < 9:
            SupplierCheck.objects.create(article=f"r{i}", checked_at=now - timedelta(hours=i + 1))
    factories.product(article="gone", listed=False)  # not listed: not counted

    figures = freshness(now=now)

    assert figures["on_sale"] == {"count": 20, "never": 0, "p50": 10.0, "p95": 19.0}
    # One of ten never checked: the p95 is "never" (None), the median 5 h.
    assert figures["rest"] == {"count": 10, "never": 1, "p50": 300.0, "p95": None}


def test_dashboard_shows_the_freshness_of_each_part(admin_client, settings):
    settings.ALSTYLE_MIN_INTERVAL, settings.ALSTYLE_SLOT_MARGIN = 5.0, 0.5
    factories.alstyle_row(min_interval=5.0)  # the row wins
    settings.LANGUAGE_CODE = "en"
    now = datetime.now(UTC)
    factories.product(article="1")
    SupplierCheck.objects.create(article="1", checked_at=now - timedelta(minutes=90))
    factories.product(article="2", kaspi_enabled=False)

    page = admin_client.get("/admin/dashboard/").content.decode()

    assert "Supplier data freshness" in page or "Свежесть данных поставщика" in page
    assert "p95 90 min" in page  # on sale: amber, over 60 min
    assert "never checked: 1" in page or "ни разу не проверены: 1" in page


# --- A mixed catalog: products supplied by price-file suppliers (issue 18) ----------------


@pytest.fixture
def mixed_catalog():
    """Two Al-Style products on sale, one VTT product on sale (also offered by Al-Style,
    whose check of that article is fresh), one VTT product off Kaspi, a disabled supplier
    with nothing, an enabled one never synced."""
    now = datetime.now(UTC)
    for article, minutes in [("1", 10), ("2", 30), ("3", 1)]:
        factories.product(article=article)
        SupplierCheck.objects.create(article=article, checked_at=now - timedelta(minutes=minutes))
    vtt = factories.supplier(code="vtt", name="VTT", full_sync_minutes=60)
    both = Product.objects.get(article="3")  # Al-Style's offer first, then VTT's chosen
    Product.objects.filter(pk=both.pk).update(
        offer=factories.offer_for(both, vtt, article="V-3", dealer_price=9000)
    )
    off_kaspi = factories.product(article="VT4", kaspi_enabled=False, with_offer=False)
    factories.offer_for(off_kaspi, vtt, article="V-4")
    factories.supplier(code="old", name="Old", enabled=False)
    factories.supplier(code="akcent", name="Akcent")
    for status, minutes, dry_run in [("ok", 45, False), ("failed", 5, False), ("ok", 2, True)]:
        at = now - timedelta(minutes=minutes)
        params = {"supplier": "vtt", "dry_run": dry_run}
        SyncRun.objects.create(
            kind=SyncRun.Kind.SUPPLIER, status=status, params=params, started_at=at, finished_at=at
        )
    SyncRun.objects.create(
        kind=SyncRun.Kind.SUPPLIER, status="ok", params={"supplier": "akcent"}, started_at=now
    )  # still running: no finish time
    return now


def test_freshness_counts_alstyle_only_where_its_offer_is_chosen(mixed_catalog):
    figures = freshness(now=mixed_catalog)

    # "3" is supplied by VTT: Al-Style's fresh check of its article does not count.
    assert figures["on_sale"] == {"count": 2, "never": 0, "p50": 10.0, "p95": 30.0}
    assert figures["rest"] == {"count": 0, "never": 0, "p50": None, "p95": None}
    assert figures["suppliers"] == [
        {
            "code": "akcent",
            "name": "Akcent",
            "on_sale": 0,
            "last_sync": None,
            "age": None,
            "late": True,
        },
        {
            "code": "vtt",
            "name": "VTT",
            "on_sale": 1,  # the product off Kaspi is not counted
            "last_sync": mixed_catalog - timedelta(minutes=45),  # not the failed, nor the dry run
            "age": 45.0,
            "late": False,
        },
    ]


def test_dashboard_card_names_alstyle_and_each_supplier_in_russian(
    admin_client, mixed_catalog, settings
):
    from django.utils import timezone

    settings.LANGUAGE_CODE = "ru"
    page = admin_client.get("/admin/dashboard/").content.decode()

    at = timezone.localtime(mixed_catalog - timedelta(minutes=45))
    assert "Свежесть данных поставщиков" in page
    assert "Остатки и цены Al-Style, его товары в продаже на Kaspi (2): возраст p50 10 мин" in page
    assert (
        f"VTT: его товаров в продаже 1, последняя успешная синхронизация {at:%d.%m %H:%M} "
        "(45 мин назад)" in page
    )
    assert "Akcent: его товаров в продаже 0, ни одной успешной синхронизации" in page
    assert "Old:" not in page


def test_card_without_alstyle_shows_the_suppliers_and_is_amber_when_one_is_late():
    from django.utils import translation

    from catalog.services.budget import freshness_lines

    now = datetime.now(UTC)
    vtt = factories.supplier(code="vtt", name="VTT", full_sync_minutes=60)
    product = factories.product(article="VT1", with_offer=False)
    factories.offer_for(product, vtt, article="V-1")
    SyncRun.objects.create(
        kind=SyncRun.Kind.SUPPLIER, status="partial", params={"supplier": "vtt"},
        started_at=now - timedelta(hours=3), finished_at=now - timedelta(minutes=150),
    )  # fmt: skip

    with translation.override("en"):
        lines, level = freshness_lines(now=now, alstyle=False)

    assert len(lines) == 1
    assert lines[0].startswith("VTT: 1 of its products on sale, last successful sync ")
    assert lines[0].endswith("(2.5 h ago)")
    assert level == "amber"  # 150 min since its last sync, scheduled every 60
    Supplier.objects.filter(pk=vtt.pk).update(full_sync_minutes=120)
    assert freshness_lines(now=now, alstyle=False)[1] == "green"


def test_no_freshness_card_without_alstyle_token_or_other_supplier(admin_client, settings):
    settings.ALSTYLE_TOKEN = ""
    settings.LANGUAGE_CODE = "en"
    factories.product(article="1")

    page = admin_client.get("/admin/dashboard/").content.decode()

    assert "Supplier data freshness" not in page
