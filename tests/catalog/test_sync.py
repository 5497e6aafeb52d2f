import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backoffice.core.runs import acquire_lock
from backoffice.models import JobLock, SyncRun
from catalog.models import Brand, Category, Product, SupplierOffer
from catalog.services.sync import run_catalog_sync, run_stock_sync
from tests import factories
from tests.factories import element

API = "https://api.al-style.kz/api/"

CATEGORIES = [
    {"id": 3000, "name": "Компьютеры", "level": 1, "left": 1, "right": 6, "elements": 3},
    {"id": 3500, "name": "Ноутбуки", "level": 2, "left": 2, "right": 3, "elements": 2},
    {"id": 3600, "name": "Мониторы", "level": 2, "left": 4, "right": 5, "elements": 1},
]


def fake_supplier(rsps, pages, *, fail_at=None, status=503):
    """Register categories, brands and product pages; page `fail_at` answers `status`."""
    rsps.get(API + "categories", json=CATEGORIES)
    rsps.get(API + "brands", json={"data": [{"id": "guid-1", "name": "Demo"}]})
    total = sum(len(p) for p in pages)
    for number, items in enumerate(pages, start=1):
        if fail_at == number:
            for _ in range(4):  # the first try and three retries
                rsps.get(API + "elements-pagination", status=status)
            return
        rsps.get(
            API + "elements-pagination",
            json={
                "elements": items,
                "pagination": {
                    "totalCount": total,
                    "totalPages": len(pages),
                    "currentPage": number,
                },
            },
        )


@pytest.fixture(autouse=True)
def _no_feed_chain(monkeypatch, settings):
    settings.ALSTYLE_PAGE_SIZE = 2
    monkeypatch.setattr("catalog.services.feed.request_feed_build", lambda **kw: (None, False))


def test_full_sync_creates_everything(mocked_http):
    fake_supplier(
        mocked_http,
        [[element(1, quantity=">50"), element(2, price1=1)], [element(3, category=3600)]],
    )

    run = run_catalog_sync()

    assert run.status == SyncRun.Status.OK, run.error
    assert run.counts == {
        "fetched": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "vanished": 0,
        "errors": 0,
        "pages": 2,
        "calls": 4,  # categories, brands, 2 pages: what the supplier budget counts
    }
    laptops = Category.objects.get(supplier_id=3500)
    assert laptops.parent.supplier_id == 3000
    p1 = Product.objects.get(article="1")
    assert (p1.quantity, p1.quantity_raw, p1.available) == (50, ">50", True)
    assert p1.sku == "AS1"
    assert p1.category == laptops
    assert p1.brand == Brand.objects.get(name="Demo")
    assert Product.objects.get(article="2").price_on_request is True


def test_second_run_without_changes_writes_nothing(mocked_http):
    pages = [[element(1), element(2)], [element(3)]]
    fake_supplier(mocked_http, pages)
    run_catalog_sync()
    fake_supplier(mocked_http, pages)

    with CaptureQueriesContext(connection) as queries:
        run = run_catalog_sync()

    product_writes = [
        q["sql"]
        for q in queries
        if "catalog_product" in q["sql"]
        and q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT"))
    ]
    assert product_writes == []
    assert run.counts["unchanged"] == 3
    assert run.counts["created"] == run.counts["updated"] == 0


def test_changed_product_is_updated(mocked_http):
    fake_supplier(mocked_http, [[element(1), element(2)]])
    run_catalog_sync()
    fake_supplier(mocked_http, [[element(1, quantity=0), element(2)]])

    run = run_catalog_sync()

    assert run.counts["updated"] == 1
    assert run.counts["unchanged"] == 1
    assert Product.objects.get(article="1").available is False


def test_vanished_product_on_complete_run_becomes_unavailable(mocked_http, settings):
    settings.CATALOG_VANISH_LIMIT = 0.5  # one of two products may go
    fake_supplier(mocked_http, [[element(1), element(2)]])
    run_catalog_sync()
    fake_supplier(mocked_http, [[element(1)]])

    run = run_catalog_sync()

    assert run.counts["vanished"] == 1
    gone = Product.objects.get(article="2")
    assert (gone.listed, gone.available, gone.quantity) == (False, False, 0)


def test_5xx_mid_run_is_partial_and_marks_nothing_vanished(mocked_http):
    fake_supplier(mocked_http, [[element(1), element(2)], [element(3)]])
    run_catalog_sync()
    fake_supplier(mocked_http, [[element(1), element(2, quantity=9)], [element(3)]], fail_at=2)

    run = run_catalog_sync()

    assert run.status == SyncRun.Status.PARTIAL
    assert "HTTP 503" in run.error
    assert Product.objects.get(article="3").listed is True
    assert Product.objects.get(article="2").quantity == 9  # the good page was kept
    assert run.counts["vanished"] == 0


def test_failure_on_first_page_is_failed(mocked_http):
    fake_supplier(mocked_http, [[element(1)]], fail_at=1)
    run = run_catalog_sync()
    assert run.status == SyncRun.Status.FAILED


def test_bad_records_are_counted_and_good_ones_kept(mocked_http):
    fake_supplier(
        mocked_http,
        [
            [element(1), element(2, price1="??")],
            [{"name": "no article"}, element(4, name="", full_name="")],
        ],
    )

    run = run_catalog_sync()

    assert run.status == SyncRun.Status.PARTIAL
    assert run.counts["errors"] == 3
    assert run.counts["created"] == 1
    assert "article 2" in run.error
    assert list(Product.objects.values_list("article", flat=True)) == ["1"]


def test_hostile_names_stored_exactly(mocked_http):
    hostile = 'Кабель & <b>"HDMI"</b> 😀 \x01\x1fUSB ' + "я" * 600
    fake_supplier(mocked_http, [[element(1, name=hostile, full_name=hostile)]])

    run_catalog_sync()

    product = Product.objects.get(article="1")
    # Markup and emoji exactly as sent; control characters become one space.
    assert product.name == 'Кабель & <b>"HDMI"</b> 😀 USB ' + "я" * 600
    assert product.full_name == product.name


def test_concurrent_start_is_refused(mocked_http):
    assert acquire_lock("catalog", "someone-else")

    run = run_catalog_sync()

    assert run.status == SyncRun.Status.SKIPPED
    assert JobLock.objects.get(kind="catalog").rerun_requested is True
    assert len(mocked_http.calls) == 0


def test_dry_run_writes_no_products(mocked_http):
    fake_supplier(mocked_http, [[element(1), element(2)]])
    run = run_catalog_sync(dry_run=True)
    assert run.counts["created"] == 2
    assert Product.objects.count() == 0


def test_staff_fields_survive_sync(mocked_http):
    fake_supplier(mocked_http, [[element(1)]])
    run_catalog_sync()
    Product.objects.filter(article="1").update(sku="CUSTOM1", kaspi_enabled=False)
    fake_supplier(mocked_http, [[element(1, price1=10500)]])

    run_catalog_sync()

    product = Product.objects.get(article="1")
    assert (product.sku, product.kaspi_enabled, product.price1) == ("CUSTOM1", False, 10500)


def test_price_jump_freezes_kaspi_price(mocked_http):
    factories.rule(markup_percent=10)
    fake_supplier(mocked_http, [[element(1, price1=10000)]])
    run_catalog_sync()
    assert Product.objects.get(article="1").kaspi_price == 11000
    fake_supplier(mocked_http, [[element(1, price1=30000)]])

    run_catalog_sync()

    product = Product.objects.get(article="1")
    assert product.price_review is True
    assert product.kaspi_price == 11000
    assert "10000 → 30000" in product.price_review_note


def test_stock_sync_updates_changed_rows_only(mocked_http):
    factories.product(article="1", quantity=5, price1=100, price2=150)
    factories.product(article="2", quantity=5, price1=100, price2=150)
    mocked_http.get(
        API + "quantity-price",
        json={
            "data": {
                "1": {"quantity": ">50", "price1": 100, "price2": 150},
                "2": {"quantity": 5, "price1": 100, "price2": 150},
            }
        },
    )
    # factories leave quantity_raw empty; the second offer matches once raw text is equal
    SupplierOffer.objects.filter(article="2").update(quantity_raw="5")

    run = run_stock_sync()

    assert run.status == SyncRun.Status.OK
    assert run.counts["updated"] == 1
    assert run.counts["unchanged"] == 1
    assert Product.objects.get(article="1").quantity == 50


def test_command_prints_summary_and_fails_nonzero(mocked_http, capsys):
    fake_supplier(mocked_http, [[element(1)]], fail_at=1)
    with pytest.raises(CommandError):
        call_command("sync_alstyle")

    # The listing resumes where it stopped: categories and brands were read when it began.
    mocked_http.get(
        API + "elements-pagination",
        json={"elements": [element(1)], "pagination": {"totalPages": 1, "currentPage": 1}},
    )
    call_command("sync_alstyle")
    assert "catalog run" in capsys.readouterr().out


def test_listing_whose_categories_call_failed_starts_again_with_categories(mocked_http):
    """Al-Style failed the listing's first call (categories): the next run must read
    categories and brands again, not go on with pages; otherwise every product it creates
    stays without a category (unchanged records are never rewritten later)."""
    for _ in range(4):  # the first try and three retries
        mocked_http.get(API + "categories", status=503)
    assert run_catalog_sync().status == SyncRun.Status.FAILED
    mocked_http.reset()
    fake_supplier(mocked_http, [[element(1, category=3600)]])

    run = run_catalog_sync()

    assert run.status == SyncRun.Status.OK, run.error
    assert run.counts["calls"] == 3  # categories, brands, 1 page
    assert Product.objects.get(article="1").category == Category.objects.get(supplier_id=3600)
    assert Product.objects.get(article="1").brand == Brand.objects.get(name="Demo")


def test_products_written_without_their_category_get_it_at_the_next_listing(mocked_http):
    """Products saved while their category was unknown (an older database, or a listing
    that ran without categories): the next listing links them, though their records are
    unchanged and never rewritten."""
    fake_supplier(mocked_http, [[element(1, category=3600), element(2, category=999999)]])
    run_catalog_sync()
    Product.objects.update(category=None)
    mocked_http.reset()
    fake_supplier(mocked_http, [[element(1, category=3600), element(2, category=999999)]])

    run = run_catalog_sync()

    assert run.counts["unchanged"] == 2
    assert run.counts["categories_linked"] == 1
    assert Product.objects.get(article="1").category == Category.objects.get(supplier_id=3600)
    assert Product.objects.get(article="2").category is None  # Al-Style has no such one


def test_scheduled_sync_without_token_is_skipped_quietly(settings):
    from catalog.tasks import sync_catalog_task, sync_stock_task
    from orders.tasks import import_orders_task

    settings.ALSTYLE_TOKEN = ""
    settings.KASPI_SHOP_TOKEN = ""
    assert sync_catalog_task() == "skipped: ALSTYLE_TOKEN is not set"
    assert sync_stock_task() == "skipped: ALSTYLE_TOKEN is not set"
    assert import_orders_task() == "skipped: KASPI_SHOP_TOKEN is not set"
    assert not SyncRun.objects.exists()


# --- Vanish guard (issue 14.2) and exit codes (14.5) ----------------------------------------


def _catalog(n):
    return [[element(i) for i in range(1, n + 1)]]


def test_mass_drop_is_held_and_marks_nothing_vanished(mocked_http, settings):
    """300 of 1,080 listed: the run said "ok" and 72 % went off sale."""
    settings.CATALOG_VANISH_LIMIT = 0.2
    settings.ALSTYLE_PAGE_SIZE = 250
    settings.LANGUAGE_CODE = "ru"
    fake_supplier(mocked_http, _catalog(10))
    run_catalog_sync()
    fake_supplier(mocked_http, [[element(i) for i in range(1, 8)]])  # 3 of 10 missing

    run = run_catalog_sync()

    assert run.status == SyncRun.Status.HELD
    assert run.counts["vanished"] == 0
    assert run.counts["would_vanish"] == 3
    assert run.params["held_vanish"] == ["10", "8", "9"]
    assert Product.objects.filter(listed=True).count() == 10
    assert "Al-Style вернул только 7 из 10" in run.error
    from backoffice.models import Alert

    alert = Alert.objects.get(key=f"catalog-vanish-held:{run.pk}")
    assert "7 из 10" in alert.text
    assert f"/admin/backoffice/syncrun/{run.pk}/" in alert.text


def test_drop_within_the_limit_is_applied(mocked_http, settings):
    settings.CATALOG_VANISH_LIMIT = 0.2
    settings.ALSTYLE_PAGE_SIZE = 250
    fake_supplier(mocked_http, _catalog(10))
    run_catalog_sync()
    fake_supplier(mocked_http, [[element(i) for i in range(1, 9)]])  # 2 of 10: exactly 20 %

    run = run_catalog_sync()

    assert run.status == SyncRun.Status.OK
    assert run.counts["vanished"] == 2


def test_staff_confirm_a_held_run_from_the_admin(mocked_http, settings, staff_client):
    settings.ALSTYLE_PAGE_SIZE = 250
    fake_supplier(mocked_http, _catalog(10))
    run_catalog_sync()
    fake_supplier(mocked_http, [[element(1), element(2)]])
    held = run_catalog_sync()
    assert held.status == SyncRun.Status.HELD

    response = staff_client.post(
        "/admin/backoffice/syncrun/",
        {"action": "confirm_vanish", "_selected_action": [held.pk]},
        follow=True,
    )

    assert response.status_code == 200
    held.refresh_from_db()
    assert held.status == SyncRun.Status.OK
    assert held.counts["vanished"] == 8
    assert Product.objects.filter(listed=True).count() == 2
    assert held.params["vanish_confirmed"]["by"] == "admin"


def test_a_newer_run_wins_over_an_old_held_one(mocked_http, settings):
    from catalog.services.sync import SupplierSyncError, confirm_held_vanish

    settings.ALSTYLE_PAGE_SIZE = 250
    fake_supplier(mocked_http, _catalog(10))
    run_catalog_sync()
    fake_supplier(mocked_http, [[element(1)]])
    held = run_catalog_sync()
    fake_supplier(mocked_http, _catalog(10))
    assert run_catalog_sync().status == SyncRun.Status.OK

    with pytest.raises(SupplierSyncError, match="newer catalog sync"):
        confirm_held_vanish(run=held)
    assert Product.objects.filter(listed=True).count() == 10


def test_command_exit_codes_held_and_partial(mocked_http, settings, capsys):
    settings.ALSTYLE_PAGE_SIZE = 250
    fake_supplier(mocked_http, _catalog(10))
    call_command("sync_alstyle")  # ok: no SystemExit
    fake_supplier(mocked_http, [[element(1)]])
    with pytest.raises(SystemExit) as held:
        call_command("sync_alstyle")
    assert held.value.code == 3
    assert "held for staff" in capsys.readouterr().err

    settings.ALSTYLE_PAGE_SIZE = 2
    fake_supplier(mocked_http, [[element(1), element(2)], [element(3)]], fail_at=2)
    with pytest.raises(SystemExit) as partial:
        call_command("sync_alstyle")
    assert partial.value.code == 2
    assert "partial" in capsys.readouterr().err


def test_changed_listing_keeps_the_warehouse_split_of_the_last_stock_refresh(mocked_http):
    # The full listing has no warehouse field: a changed record must not wipe the split
    # the stock refresh read, or the pickup points fall back to the shares until the next one.
    fake_supplier(mocked_http, [[element(1), element(2)]])
    run_catalog_sync()
    SupplierOffer.objects.filter(article="1").update(warehouse_stock={"panfilov": 3})
    fake_supplier(mocked_http, [[element(1, quantity=4), element(2)]])

    run = run_catalog_sync()

    assert run.counts["updated"] == 1
    offer = SupplierOffer.objects.get(article="1")
    assert offer.quantity == 4
    assert offer.warehouse_stock == {"panfilov": 3}


def test_the_command_says_when_the_listing_goes_on_next_run(monkeypatch):
    """A budgeted run that stopped mid-listing is ok, and the command says so plainly."""
    from io import StringIO

    from django.core.management import call_command

    run = SyncRun.objects.create(
        kind=SyncRun.Kind.CATALOG,
        status=SyncRun.Status.OK,
        params={"listing_left_at": 750, "budget": "12 calls left this hour"},
    )
    monkeypatch.setattr(
        "catalog.management.commands.sync_alstyle.run_catalog_sync", lambda **kw: run
    )
    out = StringIO()
    call_command("sync_alstyle", stdout=out)
    assert "the next run continues at offset 750 (12 calls left this hour)" in out.getvalue()
