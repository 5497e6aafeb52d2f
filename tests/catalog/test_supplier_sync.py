"""sync_supplier / add_supplier for price-file suppliers: run record, hash-skip, bad rows,
broken files, the vanish guard and exit codes."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backoffice.core.audit import AuditEntry
from backoffice.models import SyncRun
from catalog.models import Product, Supplier, SupplierOffer
from catalog.services import supplier_sync
from catalog.services.supplier_sync import confirm_held_run, run_supplier_sync
from tests import factories

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pricefile"
URL = "https://b2b.acme.kz/price.xml"


@pytest.fixture(autouse=True)
def feed_builds(monkeypatch):
    from catalog.services import feed

    builds = []
    monkeypatch.setattr(feed, "request_feed_build", lambda **kw: builds.append(kw))
    return builds


@pytest.fixture
def acme(monkeypatch):
    monkeypatch.setenv("ACME_AUTH", "shop:acme-password")
    return factories.supplier(
        code="acme", name="Acme", format="yml", url=URL, auth_env="ACME_AUTH", sku_prefix="AC"
    )


def serve(mocked_http, body: bytes, times: int = 1):
    for _ in range(times):
        mocked_http.get(URL, body=body)


def offers_xml(items: list[tuple[str, int]]) -> bytes:
    offers = "".join(
        f'<offer id="{article}" available="true"><name>Item {article}</name>'
        f"<price>{price}</price><vendor>Acme</vendor><vendorCode>PN-{article}</vendorCode>"
        f"<count>3</count></offer>"
        for article, price in items
    )
    return f"<yml_catalog><shop><offers>{offers}</offers></shop></yml_catalog>".encode()


def test_first_sync_writes_offers_and_new_products_with_the_supplier_prefix(mocked_http, acme):
    serve(mocked_http, (FIXTURES / "small.yml").read_bytes())

    run = run_supplier_sync(acme)

    assert run.kind == SyncRun.Kind.SUPPLIER
    assert run.params["supplier"] == "acme"
    # 6 offers read, 2 bad (KB-300 price "abc", NONAME-1 no name): partial, listed by number.
    assert run.status == SyncRun.Status.PARTIAL
    assert (run.counts["fetched"], run.counts["created"], run.counts["errors"]) == (6, 4, 2)
    assert "offer 3 (line 32) [KB-300]" in run.error
    assert "offer 4 (line 39) [NONAME-1]" in run.error
    offer = SupplierOffer.objects.get(supplier=acme, article="NB-100")
    assert (offer.dealer_price, offer.quantity, offer.category) == (250000, 7, "Ноутбуки")
    assert offer.product.sku == "ACNB100"
    assert offer.product.article == "acme:NB-100"
    assert offer.product.offer_id == offer.pk
    assert Product.objects.filter(offers__supplier=acme).count() == 4


def test_a_sync_is_followed_by_a_price_list_build(mocked_http, acme, feed_builds):
    serve(mocked_http, (FIXTURES / "small.yml").read_bytes())

    run_supplier_sync(acme)

    assert feed_builds == [{"triggered_by": "chain"}]


def test_second_sync_of_the_same_file_writes_nothing(
    mocked_http, acme, django_assert_max_num_queries
):
    serve(mocked_http, (FIXTURES / "small.yml").read_bytes(), times=2)
    run_supplier_sync(acme)
    before = list(SupplierOffer.objects.values_list("pk", "last_seen", "data_hash"))

    run = run_supplier_sync(acme)

    assert (run.counts["created"], run.counts["updated"], run.counts["unchanged"]) == (0, 0, 4)
    assert run.counts["vanished"] == 0
    assert list(SupplierOffer.objects.values_list("pk", "last_seen", "data_hash")) == before


def test_a_changed_price_updates_the_offer_and_the_product(mocked_http, acme):
    serve(mocked_http, offers_xml([("A1", 1000), ("A2", 2000)]))
    serve(mocked_http, offers_xml([("A1", 1500), ("A2", 2000)]))
    run_supplier_sync(acme)

    run = run_supplier_sync(acme)

    assert (run.counts["updated"], run.counts["unchanged"]) == (1, 1)
    assert Product.objects.get(article="acme:A1").price1 == 1500


def test_a_broken_file_fails_the_run_and_takes_nothing_off_sale(mocked_http, acme):
    serve(mocked_http, (FIXTURES / "small.yml").read_bytes())
    serve(mocked_http, (FIXTURES / "broken.yml").read_bytes())
    run_supplier_sync(acme)

    run = run_supplier_sync(acme)

    assert run.status == SyncRun.Status.FAILED
    assert "line 40" in run.error
    assert run.counts["vanished"] == 0
    assert SupplierOffer.objects.filter(supplier=acme, listed=True).count() == 4


def test_control_characters_in_names_do_not_fail_the_file(mocked_http, acme, settings):
    settings.LANGUAGE_CODE = "ru"  # the note staff read, in Russian
    body = offers_xml([("A1", 1000), ("A2", 2000), ("A3", 3000)])
    body = body.replace(b"Item A1", b"Item\x0bA1").replace(b"Item A2", b"Item \x01 A2")
    serve(mocked_http, body)

    run = run_supplier_sync(acme)

    assert run.status == SyncRun.Status.OK
    assert (run.counts["fetched"], run.counts["created"], run.counts["errors"]) == (3, 3, 0)
    assert run.counts["control_characters_replaced"] == 2
    assert "управляющие символы" in run.error
    names = dict(SupplierOffer.objects.filter(supplier=acme).values_list("article", "name"))
    assert names == {"A1": "Item A1", "A2": "Item A2", "A3": "Item A3"}


def test_a_file_cut_off_keeps_the_offers_read_and_takes_nothing_off_sale(
    mocked_http, acme, monkeypatch
):
    from catalog.suppliers.pricefile import adapter

    monkeypatch.setattr(adapter, "PAGE_SIZE", 4)  # one full page and a part page before the cut
    items = [(f"A{i}", 1000 + i) for i in range(10)]
    serve(mocked_http, offers_xml(items))
    cut = offers_xml([(article, price + 500) for article, price in items])
    cut = cut[: cut.index(b'<offer id="A6"') + 30]  # 6 whole offers, then the file ends
    serve(mocked_http, cut)
    run_supplier_sync(acme)

    with pytest.raises(CommandError) as caught:
        call_command("sync_supplier", "acme", stdout=StringIO(), stderr=StringIO())

    assert caught.value.returncode == 1
    run = SyncRun.objects.filter(kind=SyncRun.Kind.SUPPLIER).latest("created_at")
    assert run.status == SyncRun.Status.FAILED
    assert (run.counts["fetched"], run.counts["updated"], run.counts["vanished"]) == (6, 6, 0)
    assert "after 6 offers" in run.error
    assert "The 6 offers read before the break were saved" in run.error
    prices = dict(
        SupplierOffer.objects.filter(supplier=acme, listed=True).values_list(
            "article", "dealer_price"
        )
    )
    assert prices == {f"A{i}": 1500 + i if i < 6 else 1000 + i for i in range(10)}


def test_a_csv_file_with_control_characters_in_names_syncs(mocked_http, acme):
    acme.format = "csv"
    acme.save()
    rows = [
        "Артикул;Наименование;Цена",
        "C-1;Мышь\x0bбеспроводная;5000",
        "C-2;Кабель\x01\x00 HDMI;700",
    ]
    serve(mocked_http, "\n".join(rows).encode("cp1251"))

    run = run_supplier_sync(acme)

    assert run.status == SyncRun.Status.OK
    assert (run.counts["fetched"], run.counts["created"]) == (2, 2)
    names = dict(SupplierOffer.objects.filter(supplier=acme).values_list("article", "name"))
    assert names == {"C-1": "Мышь беспроводная", "C-2": "Кабель HDMI"}


def test_a_download_error_fails_the_run_with_the_variable_to_check(mocked_http, acme):
    mocked_http.get(URL, status=401)

    run = run_supplier_sync(acme)

    assert run.status == SyncRun.Status.FAILED
    assert "ACME_AUTH" in run.error
    assert "acme-password" not in run.error


def test_offers_missing_from_a_complete_file_are_unlisted_within_the_limit(mocked_http, acme):
    items = [(f"A{i}", 1000 + i) for i in range(10)]
    serve(mocked_http, offers_xml(items))
    serve(mocked_http, offers_xml(items[:9]))
    run_supplier_sync(acme)

    run = run_supplier_sync(acme)

    assert run.counts["vanished"] == 1
    gone = SupplierOffer.objects.get(supplier=acme, article="A9")
    assert (gone.listed, gone.product.listed, gone.product.available) == (False, False, False)


def test_a_file_missing_most_offers_is_held_and_confirmed_by_staff(mocked_http, acme, admin_user):
    items = [(f"A{i}", 1000 + i) for i in range(10)]
    serve(mocked_http, offers_xml(items))
    serve(mocked_http, offers_xml(items[:2]))
    run_supplier_sync(acme)

    held = run_supplier_sync(acme)

    assert held.status == SyncRun.Status.HELD
    assert (held.counts["vanished"], held.counts["would_vanish"]) == (0, 8)
    assert SupplierOffer.objects.filter(supplier=acme, listed=True).count() == 10

    gone = confirm_held_run(run=held, user=admin_user)  # the run-history action

    assert gone == 8
    assert SupplierOffer.objects.filter(supplier=acme, listed=True).count() == 2
    assert AuditEntry.objects.filter(action="syncrun.confirm_vanish").count() == 1


def test_dry_run_counts_and_writes_nothing(mocked_http, acme):
    serve(mocked_http, (FIXTURES / "small.yml").read_bytes())

    run = run_supplier_sync(acme, dry_run=True)

    assert run.counts["created"] == 4
    assert SupplierOffer.objects.filter(supplier=acme).count() == 0


def test_a_switched_off_supplier_is_skipped(mocked_http, acme):
    Supplier.objects.filter(pk=acme.pk).update(enabled=False)
    acme.refresh_from_db()

    run = run_supplier_sync(acme)

    assert run.status == SyncRun.Status.SKIPPED
    assert len(mocked_http.calls) == 0


def test_two_suppliers_sync_side_by_side_one_sync_per_supplier(mocked_http, acme):
    from backoffice.core.runs import acquire_lock

    other = factories.supplier(code="beta", format="yml", url="https://beta.kz/p.xml")
    mocked_http.get("https://beta.kz/p.xml", body=offers_xml([("B1", 100)]))
    assert acquire_lock(supplier_sync.supplier_lock(acme), holder="elsewhere")

    mine = run_supplier_sync(acme)
    theirs = run_supplier_sync(other)

    assert mine.status == SyncRun.Status.SKIPPED  # acme's sync is running elsewhere
    assert theirs.status == SyncRun.Status.OK  # beta is not held up by it


def test_uploaded_file_is_used_without_a_url(acme, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    acme.url = ""
    acme.format = "csv"
    acme.upload = SimpleUploadedFile("price.csv", (FIXTURES / "bom.csv").read_bytes())
    acme.save()

    run = run_supplier_sync(acme)

    assert run.status == SyncRun.Status.OK
    assert set(SupplierOffer.objects.filter(supplier=acme).values_list("article", flat=True)) == {
        "B-1",
        "B-2",
    }


# --- Commands ------------------------------------------------------------------------------


def test_sync_supplier_exit_codes(mocked_http, acme):
    serve(mocked_http, (FIXTURES / "small.yml").read_bytes())
    out = StringIO()

    with pytest.raises(SystemExit) as caught:
        call_command("sync_supplier", "acme", stdout=out, stderr=StringIO())

    assert caught.value.code == 2  # partial: two bad rows
    assert "supplier run" in out.getvalue()
    with pytest.raises(CommandError, match="no supplier 'nope'"):
        call_command("sync_supplier", "nope")


def test_sync_supplier_alstyle_runs_the_al_style_sync(monkeypatch):
    calls = []

    def fake(**kwargs):
        calls.append(kwargs)
        return SyncRun.objects.create(kind=SyncRun.Kind.CATALOG, status=SyncRun.Status.OK)

    monkeypatch.setattr(supplier_sync, "run_catalog_sync", fake)
    Supplier.alstyle()

    call_command("sync_supplier", "alstyle", "--dry-run", stdout=StringIO())

    assert calls == [{"triggered_by": "command", "user": None, "dry_run": True, "run_id": None}]


def test_add_supplier_is_idempotent_and_audited():
    out = StringIO()
    call_command(
        "add_supplier", "beta", "--url", URL, "--format", "xlsx", "--auth-env", "BETA_AUTH",
        "--map", "article=Код", "price=Цена", "--sku-prefix", "BT", stdout=out,
    )  # fmt: skip
    call_command("add_supplier", "beta", "--url", URL + "?key={token}", stdout=out)

    supplier = Supplier.objects.get(code="beta")
    assert Supplier.objects.filter(code="beta").count() == 1
    assert (supplier.kind, supplier.format, supplier.auth_env, supplier.sku_prefix) == (
        "pricefile",
        "xlsx",
        "BETA_AUTH",
        "BT",
    )
    assert supplier.mapping == {"article": "Код", "dealer_price": "Цена"}
    assert supplier.url.endswith("?key={token}")
    assert list(AuditEntry.objects.values_list("action", flat=True).order_by("pk")) == [
        "supplier.add",
        "supplier.change",
    ]
    assert "supplier beta added" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "https://u:p@x.kz/p.xml", "--format", "yml"], "user name or password"),
        (["--url", "https://x.kz/p.xml?token=abc", "--format", "yml"], "token={token}"),
        (["--url", "https://x.kz/p.xml"], "--format"),
        (["--format", "yml", "--map", "colour=Цвет"], "colour"),
        (["--format", "yml", "--auth-env", "user:password"], "NAME of an environment"),
    ],
    ids=["userinfo", "token", "no-format", "bad-map", "secret-as-env"],
)
def test_add_supplier_refuses_with_a_reason(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("add_supplier", "gamma", *args)

    assert not Supplier.objects.filter(code="gamma").exists()


def test_due_suppliers_run_at_their_own_interval(mocked_http, acme):
    from datetime import timedelta

    from django.utils import timezone

    Supplier.objects.filter(pk=acme.pk).update(full_sync_minutes=60)
    factories.supplier(code="never", format="yml", url="https://never.kz/p.xml")  # no interval
    serve(mocked_http, offers_xml([("A1", 100)]))

    call_command("sync_supplier", "--due", stdout=StringIO())
    call_command("sync_supplier", "--due", stdout=StringIO())  # not due again yet

    runs = SyncRun.objects.filter(kind=SyncRun.Kind.SUPPLIER)
    assert [r.params["supplier"] for r in runs] == ["acme"]
    runs.update(created_at=timezone.now() - timedelta(minutes=61))
    assert [s.code for s in supplier_sync.due_suppliers()] == ["acme"]
