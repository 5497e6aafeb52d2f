"""The string writer of the price list (catalog/feedxml.py) against lxml and the XSD.

docs/kaspi-price-list.md §5.5: one escaping function, proven equal to lxml's output
(property-style tests with hostile text, golden files), a structural check of every build;
the XSD pass stays here, over the fixtures and a 10k build.
"""

import hashlib
import io
import os
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from catalog.feedxml import (
    XML_ILLEGAL,
    ElementWriter,
    FeedWriteError,
    OutputCheck,
    OutputCheckError,
    escape,
    header,
)
from catalog.models import FeedBuild, Product, PublishedOffer
from catalog.services import feed as feed_module
from catalog.services.feed import (
    ROW_FIELDS,
    FeedValidationError,
    build_feed,
    feed_path,
    feed_rows,
    validate_feed_file,
    write_feed,
    xml_text,
)
from tests import factories

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feed"
NS = "kaspiShopping"
NOW = datetime(2026, 1, 15, 4, 0, tzinfo=UTC)

# Everything XML 1.0 can carry that an escaper can get wrong, and some it need not.
HOSTILE = list("&<>\"'\t\n\r ;#x]]>") + ["&amp;", "&#13;", "]]>", "<!--", "<![CDATA["]
HOSTILE += list("aZ09ЖжёҚқӘ«»—…€😀\u00a0\u2028\u200b\ufeff\U0010fffd")


def hostile_text(rng: random.Random) -> str:
    return "".join(rng.choice(HOSTILE) for _ in range(rng.randint(0, 30)))


def lxml_bytes(text: str, attribute: str) -> bytes:
    """What lxml's xmlfile writes for an element with that attribute and text."""
    out = io.BytesIO()
    with etree.xmlfile(out, encoding="utf-8") as xf:
        with xf.element(f"{{{NS}}}offer", {"sku": attribute}, nsmap={None: NS}):
            xf.write(text)
    return out.getvalue()


def ours_bytes(text: str, attribute: str) -> bytes:
    return (
        f'<offer xmlns="{NS}" sku="{escape(attribute, attribute=True)}">{escape(text)}</offer>'
    ).encode()


@pytest.mark.parametrize("seed", range(20))
def test_escape_writes_the_bytes_lxml_writes_for_hostile_text(seed):
    rng = random.Random(seed)
    for _ in range(250):
        text, attribute = hostile_text(rng), hostile_text(rng)
        assert ours_bytes(text, attribute) == lxml_bytes(text, attribute), (text, attribute)
        # ...and a parser reads back exactly what was given.
        parsed = etree.fromstring(ours_bytes(text, attribute))
        assert (parsed.text or "", parsed.get("sku")) == (text, attribute)


@pytest.mark.parametrize("bad", ["\x00", "\x01", "\x08", "\x0b", "\x0c", "\x1f", "\ufffe"])
def test_escape_refuses_what_xml_cannot_carry(bad):
    with pytest.raises(FeedWriteError):
        escape(f"a{bad}b")
    with pytest.raises(ValueError, match="XML compatible"):  # lxml refuses the same
        lxml_bytes(f"a{bad}b", "x")


def test_element_writer_matches_lxml_xmlfile():
    rng = random.Random(7)
    for _ in range(200):
        text, city = hostile_text(rng), hostile_text(rng)
        parts = []
        writer = ElementWriter(parts)
        with writer.element(f"{{{NS}}}cityprices"):
            with writer.element(f"{{{NS}}}cityprice", {"cityId": city}):
                writer.write(text)
        ours = f'<offer xmlns="{NS}" sku="s">{"".join(parts)}</offer>'.encode()
        out = io.BytesIO()
        with etree.xmlfile(out, encoding="utf-8") as xf:
            with xf.element(f"{{{NS}}}offer", {"sku": "s"}, nsmap={None: NS}):
                with xf.element(f"{{{NS}}}cityprices"):
                    with xf.element(f"{{{NS}}}cityprice", {"cityId": city}):
                        xf.write(text)
        assert ours == out.getvalue()


def _check(*chunks: bytes) -> int:
    check = OutputCheck()
    for chunk in chunks:
        check.feed(chunk)
    return check.close()


def test_output_check_counts_offers_across_chunk_boundaries():
    doc = (FIXTURES / "golden.xml").read_bytes()
    assert _check(doc) == 3
    # Cut anywhere, even inside a tag or a character: the same answer.
    for cut in range(1, len(doc), 7):
        assert _check(doc[:cut], doc[cut:]) == 3


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b'<k xmlns="kaspiShopping"><offer sku="A"></offer><offer sku="A"></offer></k>', "dup"),
        (b'<k xmlns="kaspiShopping"><offer sku="A"><model>a & b</model></offer></k>', "well"),
        (b'<k xmlns="kaspiShopping"><offer sku="A"></offer>', "well"),
        (b'<k xmlns="kaspiShopping"><x:offer sku="A"></x:offer></k>', "well"),  # unbound
        (b'<k xmlns="kaspiShopping"><offer id="1" sku="A"></offer></k>', "without"),
    ],
)
def test_output_check_refuses_broken_files(doc, message):
    with pytest.raises(OutputCheckError, match=message):
        _check(doc)


@pytest.mark.parametrize(
    "name", ["golden.xml", "golden_cityprices.xml", "golden_price_one_city.xml"]
)
def test_golden_files_are_valid_against_the_xsd(settings, name):
    settings.KASPI_STORE_IDS = ["PP1"]
    assert validate_feed_file(FIXTURES / name)["offers"] == 3


def test_a_10k_build_with_hostile_names_is_valid_against_the_xsd(settings):
    settings.KASPI_STORE_IDS = ["PP1", "PP2"]
    settings.KASPI_STORE_SHARES = {"PP1": 70, "PP2": 30}
    rng = random.Random(10)
    brands = [factories.brand(name=f"Brand & <{b}>") for b in range(5)]
    for i in range(10_000):
        factories.product(
            article=str(i),
            sku=f"AS{i}",
            name=f"{i} " + hostile_text(rng).replace("\r", " ") + "x",
            brand=brands[i % 5],
            quantity=i % 7,
            available=i % 7 > 0,
            preorder_days=i % 3,
            kaspi_price=1000 + i,
        )
    build = build_feed()

    assert build.status == FeedBuild.Status.PUBLISHED
    assert validate_feed_file(feed_path())["offers"] == build.offers_total > 9_000


def test_a_bad_row_is_skipped_and_reported_never_written(settings):
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    factories.product(article="2", sku="AS2", kaspi_price=6000)
    factories.product(article="3", sku="AS 3\tX", kaspi_price=7000)  # a tab is kept
    factories.product(article="4", sku="AS4\nX", kaspi_price=7000)  # a line break is not
    factories.product(article="5", sku="AS5", name="\x01\x02 ", kaspi_price=7000)  # no name
    rows = list(feed_rows())
    # A price the XSD refuses (here: 1, "price on request") never reaches the file, whatever
    # the query let through.
    price = ROW_FIELDS.index("price")
    rows = [row[:price] + (1,) + row[price + 1 :] if row[1] == "AS2" else row for row in rows]
    out = io.BytesIO()

    stats = write_feed(out, rows, now=NOW)

    assert sorted(stats.skipped) == ["AS2", "AS4\nX", "AS5"]
    assert stats.offers == 2
    tree = etree.fromstring(out.getvalue())
    assert sorted(o.get("sku") for o in tree.iter(f"{{{NS}}}offer")) == ["AS 3\tX", "AS1"]


def test_a_build_with_a_skipped_row_reports_it(settings):
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    factories.product(article="2", sku="AS2\rX", kaspi_price=5000)

    build = build_feed()

    assert build.status == FeedBuild.Status.PUBLISHED
    assert build.offers_total == 1
    assert build.diff["skipped_bad_sku"] == 1
    assert "AS2\rX" in build.errors[0]


def test_empty_company_is_refused(settings):
    settings.KASPI_COMPANY_NAME = " \x01 "
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    with pytest.raises(FeedValidationError, match="KASPI_COMPANY_NAME"):
        build_feed()
    assert not feed_path().exists()


def _date(path: Path) -> str:
    return etree.parse(str(path)).getroot().get("date")


def test_an_unchanged_rebuild_publishes_nothing(client):
    product = factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed(now=NOW)
    first = feed_path().read_bytes()
    stat = os.stat(feed_path())
    gz_stat = os.stat(f"{feed_path()}.gz")
    response = client.get("/feed.xml")
    gz_response = client.get("/feed.xml", HTTP_ACCEPT_ENCODING="gzip")

    later = build_feed(now=NOW + timedelta(hours=1))

    assert later.status == FeedBuild.Status.PUBLISHED
    assert later.diff["unchanged"] is True
    assert feed_path().read_bytes() == first
    assert _date(feed_path()) == "2026-01-15T09:00:00+05:00"  # when the offers last changed
    assert os.stat(feed_path()).st_mtime_ns == stat.st_mtime_ns
    assert os.stat(f"{feed_path()}.gz").st_mtime_ns == gz_stat.st_mtime_ns
    assert later.sha256 == FeedBuild.objects.order_by("started_at").first().sha256
    again = client.get("/feed.xml")
    assert (again["ETag"], again["Last-Modified"]) == (response["ETag"], response["Last-Modified"])
    assert client.get("/feed.xml", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304

    # The gzip copy has its own ETag; each answers 304 only to its own.
    assert gz_response["ETag"] != response["ETag"]
    assert gz_response["Content-Encoding"] == "gzip"
    gz_again = client.get(
        "/feed.xml", HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=gz_response["ETag"]
    )
    assert gz_again.status_code == 304
    assert client.get("/feed.xml", HTTP_IF_NONE_MATCH=gz_response["ETag"]).status_code == 200
    weak = f"W/{response['ETag']}"
    assert client.get("/feed.xml", HTTP_IF_NONE_MATCH=weak).status_code == 304

    # A change is published with the time of the change.
    Product.objects.filter(pk=product.pk).update(kaspi_price=5100)
    changed = build_feed(now=NOW + timedelta(hours=2))
    assert changed.diff["unchanged"] is False
    assert _date(feed_path()) == "2026-01-15T11:00:00+05:00"
    assert b"<price>5100</price>" in feed_path().read_bytes()
    assert client.get("/feed.xml", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 200


def test_a_published_file_changed_on_disk_is_replaced(settings):
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed(now=NOW)
    good = feed_path().read_bytes()
    feed_path().write_bytes(good.replace(b"5000", b"5001"))

    build = build_feed(now=NOW + timedelta(hours=1))

    assert build.diff["unchanged"] is False
    assert b"<price>5000</price>" in feed_path().read_bytes()


def test_the_digests_of_the_published_file_are_trusted_only_while_it_is_untouched():
    """An unchanged rebuild compares with the digests noted at publishing instead of
    reading the published file again; a file replaced or rewritten since is read."""
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build = build_feed(now=NOW)
    known = feed_module._known_digests(feed_path(), os.stat(feed_path()))
    body = feed_path().read_bytes().split(b">", 2)[2]  # after the declaration and root tag
    assert known == (hashlib.sha256(body).hexdigest(), build.sha256)

    os.utime(feed_path(), ns=(1, 1))
    assert feed_module._known_digests(feed_path(), os.stat(feed_path())) is None
    rebuilt = build_feed(now=NOW + timedelta(hours=1))  # read in full: still the same offers
    assert rebuilt.diff["unchanged"] is True
    assert rebuilt.sha256 == build.sha256
    # Noted again after that full read, so the next rebuild need not read it.
    assert feed_module._known_digests(feed_path(), os.stat(feed_path())) == known


def test_printable_text_holds_no_character_xml_cannot_carry():
    # escape(), xml_text() and sku_errors() skip the XML_ILLEGAL regex for printable text.
    illegal = [chr(c) for c in range(0x110000) if XML_ILLEGAL.match(chr(c))]
    assert len(illegal) == 29 + 2 + 2048
    assert not any(ch.isprintable() for ch in illegal)
    assert xml_text("a\u00a0 b\u2028c\x01 ") == "a b c"  # white space a printable text lacks
    assert xml_text(" Ж  & b ") == "Ж & b"


@pytest.mark.parametrize("check", ["writer", "expat"])
def test_the_structural_check_refuses_a_broken_file_and_the_old_file_stays(
    check, monkeypatch, settings
):
    settings.FEED_OUTPUT_CHECK = check
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed(now=NOW)
    before = feed_path().read_bytes()
    factories.product(article="2", sku="AS2", kaspi_price=6000)
    real = feed_module.write_feed

    def broken(stream, rows, **kwargs):
        stats = real(stream, rows, **kwargs)
        stream.write(b"<offer sku='AS1'>")  # bytes the writer never makes
        return stats

    monkeypatch.setattr(feed_module, "write_feed", broken)
    with pytest.raises(FeedValidationError, match="not a valid price list"):
        build_feed(now=NOW + timedelta(hours=1))
    assert feed_path().read_bytes() == before
    assert not [p for p in feed_path().parent.iterdir() if p.name.endswith(".tmp")]


def test_the_expat_check_also_refuses_bytes_that_are_not_well_formed(monkeypatch, settings):
    """What only re-parsing sees (the writer makes no such bytes: its escaping is proven
    above): FEED_OUTPUT_CHECK=expat refuses it, the published file stays."""
    settings.FEED_OUTPUT_CHECK = "expat"
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed(now=NOW)
    before = feed_path().read_bytes()
    real = feed_module.write_feed

    def broken(stream, rows, **kwargs):
        stream.write(b"<note>a & b</note>")
        return real(stream, rows, **kwargs)

    monkeypatch.setattr(feed_module, "write_feed", broken)
    with pytest.raises(FeedValidationError, match="not well-formed"):
        build_feed(now=NOW + timedelta(hours=1))
    assert feed_path().read_bytes() == before


def test_offer_tags_are_counted_once_however_the_writes_cut_them():
    doc = (
        header("2026-12-01T12:00:00+05:00").encode()
        + b"<offers>"
        + b"".join(b'<offer sku="S%d"><model>m</model></offer>' % i for i in range(40))
        + b"</offers></kaspi_catalog>"
    )
    for step in (1, 3, 6, 7, 8, 50, len(doc)):
        sink = feed_module.CheckedSink(io.BytesIO(), check="writer")
        for start in range(0, len(doc), step):
            sink.write(doc[start : start + step])
        assert sink.close() == 40, step


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda b: b[: b.rindex(b"</offers>")], "does not end with"),  # the footer lost
        (lambda b: b[b.index(b"<offers>") :], "does not start with"),  # the header lost
    ],
)
def test_the_writer_check_refuses_a_file_without_its_two_ends(cut, message):
    doc = (
        header("2026-12-01T12:00:00+05:00").encode()
        + b'<offers><offer sku="S1"><model>m</model></offer></offers></kaspi_catalog>'
    )
    sink = feed_module.CheckedSink(io.BytesIO(), check="writer")
    sink.write(cut(doc))
    with pytest.raises(OutputCheckError, match=message):
        sink.close()


class _Writes:
    """Counts the INSERT/UPDATE/DELETE statements sent to the given tables."""

    def __init__(self, *tables):
        self.tables = tables
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        head = sql.lstrip()[:6].upper()
        if head in {"INSERT", "UPDATE", "DELETE"} and any(t in sql for t in self.tables):
            self.count += 1
        return execute(sql, params, many, context)


def test_the_published_state_is_written_only_where_it_changed():
    from django.db import connection

    for i in range(5):
        factories.product(article=str(i), sku=f"AS{i}", kaspi_price=5000 + i)
    build_feed(now=NOW)
    assert sorted(PublishedOffer.objects.values_list("product__sku", "available", "price")) == [
        (f"AS{i}", True, 5000 + i) for i in range(5)
    ]

    writes = _Writes("catalog_publishedoffer", "catalog_product")
    with connection.execute_wrapper(writes):
        unchanged = build_feed(now=NOW + timedelta(hours=1))
    assert writes.count == 0
    assert unchanged.diff["unchanged"] is True

    # One price changed, one product off sale, one with a name that can no longer be written.
    Product.objects.filter(sku="AS0").update(kaspi_price=4000)
    Product.objects.filter(sku="AS1").update(kaspi_enabled=False)
    Product.objects.filter(sku="AS2").update(name="\x01")
    later = NOW + timedelta(hours=2)
    build = build_feed(now=later)
    assert build.diff | {"unchanged": None} == {
        "added": 0,
        "removed": 1,
        "price_changed": 1,
        "availability_changed": 1,
        "skipped_bad_sku": 1,
        "legacy_offers": 0,
        "unchanged": None,
    }
    state = {o.product.sku: o for o in PublishedOffer.objects.select_related("product")}
    assert sorted(state) == ["AS0", "AS1", "AS3", "AS4"]  # AS2 left the file
    assert (state["AS0"].available, state["AS0"].price) == (True, 4000)
    assert (state["AS1"].available, state["AS1"].off_since) == (False, later)
    # The readers of the product keep their names.
    product = Product.objects.get(sku="AS1")
    assert (product.feed_available, product.feed_price, product.offer_off_since) == (
        False,
        5001,
        later,
    )
    assert Product.objects.get(sku="AS2").feed_available is None

    # Still off sale an hour later: its off_since stays, nothing is written.
    with connection.execute_wrapper(writes):
        build_feed(now=later + timedelta(hours=1))
    assert writes.count == 0
    assert PublishedOffer.objects.get(product__sku="AS1").off_since == later


def test_a_repeated_sku_is_written_once_and_an_old_offer_never_repeats_a_product():
    from types import SimpleNamespace

    factories.product(article="1", sku="AS1", kaspi_price=5000)
    factories.product(article="2", sku="AS2", kaspi_price=6000)
    rows = list(feed_rows())
    rows.insert(1, rows[0])  # the same SKU twice, as sorted rows would bring it
    old = [
        SimpleNamespace(
            sku=sku,
            model="Old",
            brand="",
            price=7000,
            city_prices={},
            availabilities=[{"storeId": "PP1", "available": True, "stockCount": 1}],
        )
        for sku in ("AS2", "OLD1")
    ]
    out = io.BytesIO()

    stats = write_feed(out, rows, now=NOW, legacy=old)

    assert stats.skipped == ["AS1", "AS2"]
    assert (stats.offers, stats.legacy) == (2, 1)
    tree = etree.fromstring(out.getvalue())
    assert [o.get("sku") for o in tree.iter(f"{{{NS}}}offer")] == ["AS1", "AS2", "OLD1"]


@pytest.mark.parametrize("seed", range(3))
def test_every_model_is_written_as_the_cleaning_and_escaping_functions_make_it(settings, seed):
    """The writer's fast path for plain names (no cleaning, no escaping needed) writes the
    bytes xml_text + escape would: hostile, plain, spaced and over-long names alike."""
    settings.FEED_MODEL_MAX_LENGTH = 40
    rng = random.Random(seed)
    names = [hostile_text(rng) for _ in range(300)]
    names += ["Ноутбук Demo 15", "Кабель  USB", " Мышь", "Мышь ", "x" * 39 + " y", "a&b", "Ж" * 80]
    rows = [
        (i + 1, f"AS{i}", name, None, 5000, 5, 0, True, None, None, None)
        for i, name in enumerate(names)
    ]
    assert len(rows[0]) == len(ROW_FIELDS)
    out = io.BytesIO()
    write_feed(out, rows, now=NOW, brands={})
    written = dict(
        re.findall(r'<offer sku="([^"]+)"><model>(.*?)</model>', out.getvalue().decode())
    )
    for i, name in enumerate(names):
        expected = escape(xml_text(name, 40))
        assert written.get(f"AS{i}") == (expected or None), repr(name)
