import base64
import gzip
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from lxml import etree

from backoffice.models import SyncRun
from catalog.models import FeedBuild, FeedFetch, Product, PublishedOffer
from catalog.services.feed import (
    FeedValidationError,
    build_feed,
    feed_path,
    run_feed_build,
    validate_feed_file,
    xml_text,
)
from tests import factories

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feed"
NOW = datetime(2026, 1, 15, 4, 0, tzinfo=UTC)  # 09:00 in Almaty
NS = {"k": "kaspiShopping"}


@pytest.fixture
def shop(settings):
    settings.KASPI_COMPANY_NAME = "ТОО Демо Электроника"
    settings.KASPI_MERCHANT_ID = "DemoShop"
    settings.KASPI_STORE_IDS = ["PP1"]
    demo = factories.brand(name="Demo")
    factories.product(
        article="10001",
        sku="AS10001",
        name="Ноутбук Demo 15 8/512 серый",
        brand=demo,
        quantity=7,
        kaspi_price=189990,
    )
    factories.product(
        article="10002",
        sku="AS10002",
        name="Кабель USB-C & Lightning 1 м",
        quantity=0,
        available=False,
        preorder_days=45,
        kaspi_price=2490,
    )
    factories.product(
        article="10003",
        sku="AS10003",
        name='Монитор Demo 27" IPS',
        brand=demo,
        quantity=3,
        kaspi_price=99990,
    )
    # Never offered: price on request, disabled, unpriced, unlisted.
    factories.product(article="10004", price_on_request=True, kaspi_price=None, price1=1)
    factories.product(article="10005", kaspi_enabled=False, kaspi_price=5000)
    factories.product(article="10006", kaspi_price=None)
    factories.product(article="10007", listed=False, available=False, kaspi_price=5000)


def offers(path=None):
    tree = etree.parse(str(path or feed_path()))
    return {o.get("sku"): o for o in tree.getroot().iterfind("k:offers/k:offer", NS)}


def test_golden_file(shop):
    build = build_feed(now=NOW)

    assert build.status == FeedBuild.Status.PUBLISHED
    if os.environ.get("UPDATE_GOLDEN"):
        (FIXTURES / "golden.xml").write_bytes(feed_path().read_bytes())
    golden = (FIXTURES / "golden.xml").read_bytes()
    assert feed_path().read_bytes() == golden
    assert (build.offers_total, build.offers_available) == (3, 3)
    assert build.diff["added"] == 3


def test_structure_matches_reference(shop):
    build_feed(now=NOW)
    root = etree.parse(str(feed_path())).getroot()

    assert root.tag == "{kaspiShopping}kaspi_catalog"
    assert root.get("date") == "2026-01-15T09:00:00+05:00"
    assert root.get("{http://www.w3.org/2001/XMLSchema-instance}schemaLocation") == (
        "kaspiShopping http://kaspi.kz/kaspishopping.xsd"
    )
    assert root.findtext("k:company", namespaces=NS) == "ТОО Демо Электроника"
    cable = offers()["AS10002"]
    assert [child.tag.split("}")[1] for child in cable] == ["model", "availabilities", "price"]
    availability = cable.find("k:availabilities/k:availability", NS)
    assert dict(availability.attrib) == {
        "available": "yes",
        "storeId": "PP1",
        "stockCount": "0",
        "preOrder": "30",  # capped at Kaspi's limit
    }


def test_hostile_names_roundtrip_through_parser(settings):
    settings.FEED_MODEL_MAX_LENGTH = 120
    # NUL never reaches the database (the sync strips it: PostgreSQL cannot store it).
    hostile = "A & B <tag> \"q\" 's' 😀\x01\x08\x0b\x0c\x1f\ufffe end" + "ж" * 500
    factories.product(article="1", sku="AS1", name=hostile, kaspi_price=5000)

    build_feed()

    model = offers()["AS1"].findtext("k:model", namespaces=NS)
    assert model.startswith("A & B <tag> \"q\" 's' 😀 end")
    assert len(model) == 120
    for bad in "\x01\x08\x0b\x0c\x1f\ufffe":
        assert bad not in model
    assert xml_text("a\x00b\uffffc") == "abc"


def test_multiple_stores(settings):
    settings.KASPI_STORE_IDS = ["PP1", "PP2"]
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed()
    stores = [a.get("storeId") for a in offers()["AS1"].iterfind(".//k:availability", NS)]
    assert stores == ["PP1", "PP2"]


def test_product_going_off_sale_stays_with_available_no_for_grace(settings):
    product = factories.product(article="1", sku="AS1", kaspi_price=5000)
    factories.product(article="2", sku="AS2", kaspi_price=5000)
    build_feed(now=NOW)
    Product.objects.filter(pk=product.pk).update(quantity=0, available=False)

    build = build_feed(now=NOW + timedelta(hours=1))

    availability = offers()["AS1"].find(".//k:availability", NS)
    assert (availability.get("available"), availability.get("stockCount")) == ("no", "0")
    assert offers()["AS1"].findtext("k:price", namespaces=NS) == "5000"
    assert build.diff["availability_changed"] == 1

    settings.FEED_UNAVAILABLE_GRACE_DAYS = 30
    build = build_feed(now=NOW + timedelta(days=31))
    assert "AS1" not in offers()
    assert build.diff["removed"] == 1


def test_xsd_rejects_bad_structure(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text(
        '<?xml version="1.0" encoding="utf-8"?>'
        '<kaspi_catalog xmlns="kaspiShopping" date="x"><company>C</company>'
        '<merchantid>M</merchantid><offers><offer sku="A1"><model>m</model>'
        "<price>10</price></offer></offers></kaspi_catalog>"
    )
    with pytest.raises(FeedValidationError, match="availabilities"):
        validate_feed_file(bad)


def _file_with_offers(tmp_path, *offers_xml):
    path = tmp_path / "f.xml"
    body = "".join(offers_xml)
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<kaspi_catalog xmlns="kaspiShopping" date="x"><company>C</company>'
        f"<merchantid>M</merchantid><offers>{body}</offers></kaspi_catalog>",
        encoding="utf-8",
    )
    return path


def _offer(sku, price="100", store="PP1"):
    return (
        f'<offer sku="{sku}"><model>m</model><availabilities>'
        f'<availability available="yes" storeId="{store}" stockCount="1"/>'
        f"</availabilities><price>{price}</price></offer>"
    )


@pytest.mark.parametrize(
    ("offers_xml", "message"),
    [
        ((_offer("A1"), _offer("A1")), "duplicate SKU 'A1'"),
        ((_offer("A" * 65),), "length|not accepted by the pattern"),
        ((_offer(" A1"),), "not accepted by the pattern"),
        ((_offer("A1", store="PP9"),), "'PP9' is not an element of the set"),
        ((_offer("A1", price="1"),), "not a valid|above 1"),
        ((), "not a valid|no offers"),
    ],
    ids=["duplicate-sku", "sku-over-64", "sku-outer-space", "unknown-store", "price-1", "empty"],
)
def test_validation_refusals(tmp_path, settings, offers_xml, message):
    settings.KASPI_STORE_IDS = ["PP1"]
    with pytest.raises(FeedValidationError, match=message):
        validate_feed_file(_file_with_offers(tmp_path, *offers_xml))


@pytest.mark.parametrize(
    "sku",
    ["ST/UPC-ST/UPC MM OM1 62.5/125 Simplex 3.0мм 1 м", "130342357_673822557", "A" * 64, "x"],
    ids=["part-number", "kaspi-made", "64-chars", "one-char"],
)
def test_schema_accepts_skus_kaspi_already_accepts(tmp_path, settings, sku):
    settings.KASPI_STORE_IDS = ["PP1"]
    assert validate_feed_file(_file_with_offers(tmp_path, _offer(sku)))["offers"] == 1


def test_kept_skus_are_published_byte_for_byte(settings):
    settings.KASPI_STORE_IDS = ["PP1"]
    kept = "ST/UPC-ST/UPC MM OM1 62.5/125 Simplex 3.0мм 1 м"
    factories.product(article="1", sku=kept, kaspi_price=5000)
    factories.product(article="2", sku="AS2", kaspi_price=5000)

    build = build_feed()

    skus = [o.get("sku") for o in etree.parse(str(feed_path())).iter("{kaspiShopping}offer")]
    assert sorted(skus) == sorted([kept, "AS2"])
    assert build.diff["skipped_bad_sku"] == 0


def test_empty_build_is_refused_and_nothing_published():
    factories.product(article="1", kaspi_price=None)
    with pytest.raises(FeedValidationError):
        build_feed()
    assert not feed_path().exists()
    assert FeedBuild.objects.get().status == FeedBuild.Status.FAILED


def test_shrink_guard_holds_back_and_force_publishes():
    for n in range(10):
        factories.product(article=str(n), sku=f"AS{n}", kaspi_price=5000)
    build_feed()
    before = feed_path().read_bytes()
    Product.objects.exclude(article__in=["0", "1", "2"]).update(kaspi_enabled=False)
    # Still in the file with available="no" during the grace period: take them out of it.
    PublishedOffer.objects.exclude(product__article__in=["0", "1", "2"]).delete()

    with pytest.raises(FeedValidationError, match="offer count fell from 10 to 3"):
        build_feed()
    assert feed_path().read_bytes() == before
    assert FeedBuild.objects.first().status == FeedBuild.Status.HELD

    build = build_feed(force=True)
    assert build.status == FeedBuild.Status.PUBLISHED
    assert len(offers()) == 3


def test_a_held_build_tells_staff_why_in_russian(settings):
    settings.LANGUAGE_CODE = "ru"
    for n in range(10):
        factories.product(article=str(n), sku=f"AS{n}", kaspi_price=5000)
    build_feed()
    Product.objects.exclude(article__in=["0", "1", "2"]).update(kaspi_enabled=False)
    PublishedOffer.objects.exclude(product__article__in=["0", "1", "2"]).delete()

    with pytest.raises(FeedValidationError):
        build_feed()

    held = FeedBuild.objects.first()
    assert held.status == FeedBuild.Status.HELD
    assert held.errors[0].startswith("число предложений в продаже упало с 10 до 3")


def test_write_error_keeps_the_old_file(monkeypatch):
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed()
    before = feed_path().read_bytes()
    factories.product(article="2", sku="AS2", kaspi_price=6000)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("catalog.services.feed.os.fsync", disk_full)
    run = run_feed_build()

    assert run.status == SyncRun.Status.FAILED
    assert "No space left on device" in run.error
    assert feed_path().read_bytes() == before
    leftovers = [p for p in feed_path().parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_build_command(capsys):
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    call_command("build_feed")
    assert "published" in capsys.readouterr().out

    Product.objects.update(kaspi_price=None)
    PublishedOffer.objects.all().delete()
    with pytest.raises(CommandError, match="still served"):
        call_command("build_feed")


# --- /feed.xml ---------------------------------------------------------------------------


def test_feed_503_before_first_build(client):
    response = client.get("/feed.xml")
    assert response.status_code == 503
    assert response["Retry-After"] == "300"


def test_feed_served_with_headers_and_304(client):
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed()

    response = client.get("/feed.xml")
    body = b"".join(response.streaming_content)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=utf-8"
    assert body == feed_path().read_bytes()
    etag = response["ETag"]

    again = client.get("/feed.xml", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    since = client.get("/feed.xml", HTTP_IF_MODIFIED_SINCE=response["Last-Modified"])
    assert since.status_code == 304
    assert client.get("/feed.xml", HTTP_IF_NONE_MATCH='"other"').status_code == 200
    assert client.head("/feed.xml").status_code == 200


def test_feed_gzip_when_asked(client):
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed()
    response = client.get("/feed.xml", HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(b"".join(response.streaming_content)) == feed_path().read_bytes()


def test_feed_basic_auth(client, settings):
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed()
    settings.FEED_AUTH_USER = "kaspi"
    settings.FEED_AUTH_PASSWORD = "s3cret-pass"

    assert client.get("/feed.xml").status_code == 401
    wrong = base64.b64encode(b"kaspi:nope").decode()
    assert client.get("/feed.xml", HTTP_AUTHORIZATION=f"Basic {wrong}").status_code == 401
    good = base64.b64encode(b"kaspi:s3cret-pass").decode()
    assert client.get("/feed.xml", HTTP_AUTHORIZATION=f"Basic {good}").status_code == 200

    settings.FEED_AUTH_USER = settings.FEED_AUTH_PASSWORD = ""
    assert client.get("/feed.xml").status_code == 200


def test_feed_fetch_is_recorded(client):
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed()
    client.get("/feed.xml", HTTP_USER_AGENT="Kaspi-Downloader/1.0")
    record = FeedFetch.objects.get()
    assert record.last_user_agent == "Kaspi-Downloader/1.0"
    assert record.last_status == 200
    assert record.fetch_count == 1
