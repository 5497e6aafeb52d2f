"""Importing a shop's old Kaspi price list (issue 16): formats, matching, cut-over."""

import dataclasses
import json
import zipfile
from pathlib import Path

import openpyxl
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from catalog.models import LegacyOffer, PriceListImport, Product
from catalog.pricelists import PriceListError, PriceListReader, read_all
from catalog.services.pricelist_import import (
    import_from_source,
    import_pricelist,
    norm_code,
    norm_name,
    resolve_offer,
)
from tests import factories

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pricelist"


def _xml(*offers: str, root="kaspi_catalog", ns=' xmlns="kaspiShopping"') -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><{root}{ns} date="x"><company>C</company>'
        f"<merchantid>M</merchantid><offers>{''.join(offers)}</offers></{root}>"
    )


def _offer(sku, model="Товар", price="1000", store="PP1", available="yes", brand="Demo"):
    return (
        f'<offer sku="{sku}"><model>{model}</model><brand>{brand}</brand><availabilities>'
        f'<availability available="{available}" storeId="{store}" stockCount="1"/>'
        f"</availabilities><price>{price}</price></offer>"
    )


def _file(tmp_path, text: str | bytes, name="old.xml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- Golden files: the three formats ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("old_kaspi.xml", "old_kaspi.expected.json"),
        ("old_bare.xml", "old_bare.expected.json"),
        ("old.xlsx", "old_xlsx.expected.json"),
        ("old_cp1251.csv", "old_cp1251.expected.json"),
    ],
    ids=["xml-namespaced-bom-cityprices", "xml-bare-long-store-ids", "xlsx", "csv-cp1251"],
)
def test_golden_files_read_as_expected(name, expected):
    reader, offers = read_all(FIXTURES / name)
    got = {
        "format": reader.format,
        "company": reader.company,
        "merchant_id": reader.merchant_id,
        "store_ids": reader.store_ids,
        "offers": [dataclasses.asdict(offer) for offer in offers],
    }
    assert got == json.loads((FIXTURES / expected).read_text(encoding="utf-8"))


def test_utf8_csv_with_bom_and_commas(tmp_path):
    path = _file(tmp_path, "\ufeffSKU,model,brand,price,PP1\nA 1,Имя,,2500,yes\n", "old.csv")
    reader, offers = read_all(path)
    assert (offers[0].sku, offers[0].model, offers[0].price) == ("A 1", "Имя", 2500)
    assert reader.store_ids == ["PP1"]


# --- Bad input: a clear message naming the place, nothing written -------------------------


def _xlsx(tmp_path, header, *rows) -> Path:
    workbook = openpyxl.Workbook()
    workbook.active.append(header)
    for row in rows:
        workbook.active.append(row)
    path = tmp_path / "other.xlsx"
    workbook.save(path)
    return path


BOMB = (
    '<?xml version="1.0"?><!DOCTYPE kaspi_catalog [<!ENTITY a "aaaaaaaaaa">'
    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
    '<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">]>'
    '<kaspi_catalog><offers><offer sku="A"><model>&e;&e;&e;&e;&e;&e;&e;</model>'
    "</offer></offers></kaspi_catalog>"
)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _file(p, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600), "save it|Save as"),
        (lambda p: _file(p, BOMB), r"declares a DTD"),
        (
            lambda p: _file(p, _xml(_offer("A1"), _offer("A2"))[:-60]),
            r"broken or cut off at line 1, column \d+ \(after offer 1, SKU 'A1'\)",
        ),
        (lambda p: _file(p, "<rss><channel/></rss>"), r"root element is <rss>"),
        (lambda p: _file(p, _xml()), "no offers"),
        (
            lambda p: _file(p, _xml(_offer("A1"), _offer("A2", price="12x"))),
            r"offer 2 \(SKU 'A2', line 1\): price '12x' is not a number",
        ),
        (
            lambda p: _file(p, _xml("<offer><model>m</model></offer>")),
            r"offer 1 \(line 1\): <offer> has no sku attribute",
        ),
        (
            lambda p: _file(p, _xml(_offer("A1", available="maybe"))),
            r"available='maybe' at PP1",
        ),
        (
            lambda p: _xlsx(p, ["Артикул поставщика", "Остаток"], ["1", 2]),
            r"sheet 'Sheet', row 1: not the Kaspi price-list layout: no sku, model, price",
        ),
        (
            lambda p: _xlsx(p, ["SKU", "model", "price"], ["A", "m", "дорого"]),
            r"sheet 'Sheet', row 2 \(SKU 'A'\): price 'дорого' is not a number",
        ),
        (lambda p: _file(p, bytes(range(256)) * 40000, "garbage.bin"), "binary data"),
        (lambda p: _file(p, "hello;world\n1;2\n" * 1000, "x.csv"), r"line 1: not the Kaspi"),
        (lambda p: _file(p, b"PK\x03\x04garbage" * 100, "x.xlsx"), "not a readable Excel"),
        (lambda p: _file(p, b"   \n"), "empty"),
    ],
    ids=[
        "old-xls",
        "xml-bomb",
        "truncated-xml",
        "other-xml",
        "no-offers",
        "bad-price",
        "no-sku",
        "bad-available",
        "other-excel-layout",
        "bad-excel-price",
        "10mb-garbage",
        "other-csv",
        "broken-zip",
        "empty",
    ],
)
def test_bad_input_is_refused_clearly_and_writes_nothing(tmp_path, make, message):
    product = factories.product(article="1", sku="AS1", article_pn="A1")
    path = make(tmp_path)
    with pytest.raises(PriceListError, match=message):
        import_pricelist(path=path)
    assert LegacyOffer.objects.count() == PriceListImport.objects.count() == 0
    assert Product.objects.get(pk=product.pk).sku == "AS1"


def test_bomb_is_refused_fast_without_expanding(tmp_path):
    # 10^4 * 7 expansions would be 700 KB; the refusal comes before any expansion.
    reader = PriceListReader(_file(tmp_path, BOMB))
    with pytest.raises(PriceListError):
        list(reader)


def test_xlsx_zip_bomb_sized_file_is_refused_by_size(tmp_path, settings):
    settings.PRICELIST_IMPORT_MAX_MB = 1
    path = _file(tmp_path, b"<" + b" " * (2 * 1024 * 1024))
    with pytest.raises(PriceListError, match="larger than 1 MB"):
        import_from_source(source=str(path))


# --- Matching rules ---------------------------------------------------------------------


def test_normalisation_folds_case_spaces_dashes_slashes_and_lookalikes():
    assert norm_code("ST/UPC-ST/UPC MM 3.0мм") == norm_code("st upc st upc mm 3.0mm")
    assert norm_code("САВ-10") == norm_code("cab10")  # Cyrillic С, А, В
    assert norm_name("Кабель  USB-C, 1 м!") == norm_name("кабель usb c 1 м")
    assert norm_name("Мышь чёрная") == norm_name("мышь черная")


@pytest.fixture
def products():
    demo = factories.brand(name="Demo")
    other = factories.brand(name="Other")
    return {
        "pn": factories.product(article="101", article_pn="ST/UPC-ST/UPC MM 1 м"),
        "pn2": factories.product(article="102", article_pn="KB-101/W"),
        "cyr": factories.product(article="103", article_pn="CAB-10"),
        "article": factories.product(article="104", article_pn="zzz"),
        "name": factories.product(article="105", name="Мышь беспроводная Demo M100 чёрная"),
        "twin_a": factories.product(article="106", article_pn="TWIN-1", brand=demo, name="A"),
        "twin_b": factories.product(article="107", article_pn="TWIN-1", brand=other, name="B"),
        "same_a": factories.product(article="108", article_pn="SAME", name="Same"),
        "same_b": factories.product(article="109", article_pn="SAME", name="Same"),
        "ours": factories.product(article="110", sku="AS110"),
    }


# (old SKU, old model, old brand) → (status, rule, confidence, product key)
RULES = [
    (("ST/UPC-ST/UPC MM 1 м", "x", ""), ("matched", "part_number", 100, "pn")),
    (("kb 101 w", "x", ""), ("matched", "part_number", 95, "pn2")),
    (("САВ 10", "x", ""), ("matched", "part_number", 95, "cyr")),
    (("104", "x", ""), ("matched", "article", 90, "article")),
    (("AS 104", "x", ""), ("matched", "article", 90, "article")),
    (
        ("130342357_673822557", "Мышь беспроводная DEMO M100 черная", ""),
        ("matched", "model", 80, "name"),
    ),
    (("TWIN-1", "x", "Demo"), ("matched", "part_number", 85, "twin_a")),
    (("SAME", "x", ""), ("ambiguous", "part_number", 47, None)),
    (("AS110", "x", ""), ("matched", "sku", 100, "ours")),
    (("NOPE-1", "Нет такого", ""), ("unmatched", "", 0, None)),
]


@pytest.mark.parametrize(
    ("old", "expected"),
    RULES,
    ids=[
        "pn-exact",
        "pn-normalised",
        "pn-cyrillic-lookalikes",
        "article",
        "article-with-prefix",
        "model-name-kaspi-made-sku",
        "pn-twins-narrowed-by-brand",
        "pn-twins-ambiguous",
        "our-own-sku",
        "unmatched",
    ],
)
def test_matching_rules(tmp_path, settings, products, old, expected):
    settings.SKU_PREFIX = "AS"
    sku, model, brand = old
    path = _file(tmp_path, _xml(_offer(sku, model=model, brand=brand)))
    result = import_pricelist(path=path, dry_run=True)
    row = result.rows[0]
    status, rule, confidence, key = expected
    assert (row["status"], row["rule"], row["confidence"]) == (status, rule, confidence)
    assert row["product_id"] == (products[key].pk if key else None)
    if status == "ambiguous":
        assert row["candidates"] == sorted([products["same_a"].pk, products["same_b"].pk])


# --- Writing: dry run, real run, idempotent re-import, conflicts --------------------------


def _state():
    return (
        list(Product.objects.order_by("pk").values_list("pk", "sku", "updated_at")),
        list(LegacyOffer.objects.order_by("pk").values()),
        list(PriceListImport.objects.values()),
    )


def test_dry_run_writes_nothing_and_real_run_keeps_the_skus(tmp_path, products):
    path = _file(
        tmp_path,
        _xml(
            _offer("ST/UPC-ST/UPC MM 1 м"),
            _offer("130342357_673822557", model="Мышь беспроводная Demo M100 чёрная"),
            _offer("NOPE-1", model="Нет такого", price="777"),
        ),
    )
    before = _state()

    dry = import_pricelist(path=path, dry_run=True)

    assert _state() == before
    assert dry.counts == {
        "matched": 2,
        "matched_model": 1,
        "matched_part_number": 1,
        "offers": 3,
        "unmatched": 1,
    }

    real = import_pricelist(path=path)

    assert real.counts == dry.counts
    assert Product.objects.get(pk=products["pn"].pk).sku == "ST/UPC-ST/UPC MM 1 м"
    assert Product.objects.get(pk=products["name"].pk).sku == "130342357_673822557"
    assert Product.objects.get(pk=products["pn2"].pk).sku == "AS102"  # no old SKU: derived
    legacy = LegacyOffer.objects.get(sku="NOPE-1")
    assert (legacy.status, legacy.price, legacy.availabilities) == (
        "unmatched",
        777,
        [{"storeId": "PP1", "available": True, "stockCount": 1}],
    )
    assert legacy.keep_until is not None


def test_reimport_changes_nothing(tmp_path, products):
    path = _file(tmp_path, _xml(_offer("kb 101 w"), _offer("SAME"), _offer("NOPE")))
    import_pricelist(path=path)
    after_first = _state()

    again = import_pricelist(path=path)

    assert again.unchanged is True
    assert again.changed_skus == 0
    assert _state() == after_first


def test_staff_pick_survives_a_reimport(tmp_path, products, staff_client):
    path = _file(tmp_path, _xml(_offer("SAME")))
    import_pricelist(path=path)
    offer = LegacyOffer.objects.get(sku="SAME")
    assert offer.status == "ambiguous"

    resolve_offer(offer=offer, product=products["same_b"], user=staff_client.user)
    result = import_pricelist(path=path)

    assert Product.objects.get(pk=products["same_b"].pk).sku == "SAME"
    assert result.rows[0]["status"] == "confirmed"
    assert result.unchanged is True


def test_sku_twice_in_the_file_goes_to_the_best_match(tmp_path, products):
    # Real files have this: one SKU on two rows for two different products.
    keyboard = factories.product(article="120", name="Клавиатура Demo KB101 белая")
    path = _file(
        tmp_path,
        _xml(
            _offer("DUP-1", model="Клавиатура Demo KB101 белая"),  # model name: 80
            _offer("DUP-1", model="Мышь беспроводная Demo M100 чёрная"),  # model name: 80
            _offer("104", model="x"),
            _offer("104", model="Клавиатура Demo KB101 белая"),
        ),
    )
    result = import_pricelist(path=path)

    first, second, by_article, by_name = result.rows
    # Equal confidence: the first row wins; the other row is listed with its candidate.
    assert (first["status"], first["product_id"]) == ("matched", keyboard.pk)
    assert "rows 1, 2" in first["note"]
    assert (second["status"], second["product_id"]) == ("duplicate", None)
    assert second["candidates"] == [products["name"].pk]
    # Article (90) beats model name (80), whatever the order.
    assert (by_article["status"], by_article["product_id"]) == ("matched", products["article"].pk)
    assert by_name["status"] == "duplicate"
    assert Product.objects.get(pk=keyboard.pk).sku == "DUP-1"
    assert Product.objects.get(pk=products["name"].pk).sku == "AS105"
    assert Product.objects.get(pk=products["article"].pk).sku == "104"
    assert result.counts["duplicate"] == 2


def test_two_offers_for_one_product_and_a_sku_already_used(tmp_path, products):
    factories.product(article="999", sku="TAKEN-1")
    products["pn2"].article_pn = "TAKEN-1"
    products["pn2"].save()
    path = _file(
        tmp_path,
        _xml(
            _offer("ST/UPC-ST/UPC MM 1 м"),  # exact part number: 100
            _offer("st upc st upc mm 1 м"),  # same product, normalised: 95
            _offer("TAKEN-1"),  # our product 999 already has it
        ),
    )
    result = import_pricelist(path=path)

    exact, weaker, taken = result.rows
    assert exact["status"] == "matched"
    assert (weaker["status"], weaker["candidates"]) == ("conflict", [products["pn"].pk])
    assert "matched better" in weaker["note"]
    assert taken["status"] == "matched"  # rule "sku": product 999 already sells it
    assert result.counts["conflict"] == 1


def test_a_matched_product_off_sale_stays_in_the_first_build(tmp_path, settings):
    from lxml import etree

    from catalog.services.feed import build_feed, feed_path

    settings.KASPI_STORE_IDS = ["PP1"]
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    gone = factories.product(article="2", article_pn="OLD-2", quantity=0, kaspi_price=5000)
    import_pricelist(path=_file(tmp_path, _xml(_offer("OLD-2", price="4500"))))

    build_feed()

    offers = {o.get("sku"): o for o in etree.parse(str(feed_path())).iter("{kaspiShopping}offer")}
    assert set(offers) == {"AS1", "OLD-2"}
    point = offers["OLD-2"].find("{kaspiShopping}availabilities/{kaspiShopping}availability")
    assert point.get("available") == "no"
    assert Product.objects.get(pk=gone.pk).sku == "OLD-2"


# --- Command and URL ------------------------------------------------------------------------


def test_command_reports_counts_and_writes_the_unresolved_csv(tmp_path, products, capsys):
    path = _file(tmp_path, _xml(_offer("kb 101 w"), _offer("SAME"), _offer("NOPE")))
    csv_path = tmp_path / "unresolved.csv"

    with pytest.raises(SystemExit) as exit_info:
        call_command("import_kaspi_pricelist", str(path), "--dry-run", "--unresolved", csv_path)

    assert exit_info.value.code == 3
    out = capsys.readouterr().out
    for line in ("matched_part_number: 1", "ambiguous: 1", "unmatched: 1"):
        assert line in out
    assert "nothing written (dry run)" in out
    lines = csv_path.read_text(encoding="utf-8-sig").splitlines()
    assert [line.split(";")[1] for line in lines] == ["SKU", "SAME", "NOPE"]
    assert LegacyOffer.objects.count() == 0


def test_command_refuses_a_bad_file_with_exit_1(tmp_path):
    path = _file(tmp_path, "<rss/>")
    with pytest.raises(CommandError, match=r"root element is <rss>.*nothing was written"):
        call_command("import_kaspi_pricelist", str(path))


def test_import_from_a_url(mocked_http, products, tmp_path):
    mocked_http.get("http://shop.example/kaspi.xml", body=_xml(_offer("kb 101 w")).encode())
    result = import_from_source(source="http://shop.example/kaspi.xml")
    assert result.counts["matched"] == 1
    assert Product.objects.get(pk=products["pn2"].pk).sku == "kb 101 w"
    assert PriceListImport.objects.get().source == "http://shop.example/kaspi.xml"


def test_store_ids_are_proposed_with_a_warning(tmp_path, settings, products):
    settings.KASPI_STORE_IDS = ["PP1"]
    result = import_pricelist(path=FIXTURES / "old_bare.xml", dry_run=True)
    assert result.store_ids == ["30001234_PP1", "30001234_PP2", "30001234_PP3"]
    assert "KASPI_STORE_ID=30001234_PP1,30001234_PP2,30001234_PP3" in result.store_warning


def test_fixture_xlsx_is_a_real_zip():
    assert zipfile.is_zipfile(FIXTURES / "old.xlsx")


# --- Cut-over: unmatched old offers stay; the report --------------------------------------


def _published():
    from lxml import etree

    from catalog.services.feed import feed_path

    return {o.get("sku"): o for o in etree.parse(str(feed_path())).iter("{kaspiShopping}offer")}


def test_unmatched_old_offers_stay_in_our_price_list_as_they_were(tmp_path, settings):
    from lxml import etree

    from catalog.services.feed import build_feed, feed_path, validate_feed_file

    settings.KASPI_STORE_IDS = ["PP1"]
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    import_pricelist(path=FIXTURES / "old_kaspi.xml")  # nothing in it matches

    build = build_feed()

    offers = _published()
    assert set(offers) == {
        "AS1",
        "ST/UPC-ST/UPC MM OM1 62.5/125 Simplex 3.0мм 1 м",
        "130342357_673822557",
        "AS10003",
    }
    assert build.diff["legacy_offers"] == 3
    patch = offers["ST/UPC-ST/UPC MM OM1 62.5/125 Simplex 3.0мм 1 м"]
    points = [
        (p.get("storeId"), p.get("available"), p.get("stockCount"))
        for p in patch.iter("{kaspiShopping}availability")
    ]
    assert points == [("PP1", "yes", "2"), ("PP2", "no", "0")]  # 2.0 written as 2
    assert patch.findtext("{kaspiShopping}price") == "2490"
    mouse = offers["130342357_673822557"]
    assert mouse.find("{kaspiShopping}brand") is None  # empty brand not written
    assert [(c.get("cityId"), c.text) for c in mouse.iter("{kaspiShopping}cityprice")] == [
        ("710000000", "6190"),
        ("750000000", "5990"),
    ]
    assert mouse.find("{kaspiShopping}availabilities/*").get("preOrder") == "5"
    assert validate_feed_file(feed_path())["offers"] == 4
    etree.parse(str(feed_path()))  # well-formed


def test_old_offers_leave_after_the_grace_period_or_once_linked(tmp_path, settings):
    from datetime import timedelta

    from django.utils import timezone

    from catalog.services.feed import build_feed

    settings.KASPI_STORE_IDS = ["PP1"]
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    mouse = factories.product(article="2", name="x", kaspi_price=7000)
    import_pricelist(path=FIXTURES / "old_kaspi.xml")
    offer = LegacyOffer.objects.get(sku="130342357_673822557")
    resolve_offer(offer=offer, product=mouse)
    LegacyOffer.objects.filter(sku="AS10003").update(keep_until=timezone.now() - timedelta(days=1))

    build_feed()

    offers = _published()
    assert set(offers) == {
        "AS1",
        "130342357_673822557",
        "ST/UPC-ST/UPC MM OM1 62.5/125 Simplex 3.0мм 1 м",
    }
    assert offers["130342357_673822557"].findtext("{kaspiShopping}price") == "7000"  # ours now


def test_cutover_report_lists_kept_changed_unavailable_dropped(tmp_path, settings):
    from catalog.services.cutover import cutover_report
    from catalog.services.feed import build_feed

    settings.KASPI_STORE_IDS = ["PP1"]
    settings.KASPI_HOME_CITY_ID = "750000000"
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    same = factories.product(article="2", article_pn="SAME-1", kaspi_price=1000)
    dearer = factories.product(article="3", article_pn="DEAR-1", kaspi_price=1500)
    factories.product(article="4", article_pn="SOLD-1", kaspi_price=1000, quantity=0)
    path = _file(
        tmp_path,
        _xml(
            _offer("SAME-1", price="1000"),
            _offer("DEAR-1", price="1000"),
            _offer("SOLD-1", price="1000"),
            _offer("LOST-1", price="1", model="Цена по запросу"),  # cannot be kept: price 1
            _offer("KEPT-1", price="900", model="Только в старом файле"),
        ),
    )
    import_pricelist(path=path)
    build_feed()

    report = cutover_report()

    assert report.counts == {
        "old_offers": 5,
        "new_offers": 5,
        "kept": 2,
        "price_changed": 1,
        "now_unavailable": 1,
        "dropped": 1,
    }
    assert [line.sku for line in report.kept] == ["KEPT-1", "SAME-1"]
    assert [line.from_old_list for line in report.kept] == [True, False]
    assert [(x.sku, x.old_price, x.new_price) for x in report.price_changed] == [
        ("DEAR-1", 1000, 1500)
    ]
    assert [line.sku for line in report.now_unavailable] == ["SOLD-1"]
    assert [line.sku for line in report.dropped] == ["LOST-1"]
    assert Product.objects.get(pk=same.pk).sku == "SAME-1"
    assert Product.objects.get(pk=dearer.pk).sku == "DEAR-1"


def test_cutover_report_command(tmp_path, settings, capsys):
    from catalog.services.feed import build_feed

    settings.KASPI_STORE_IDS = ["PP1"]
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    import_pricelist(path=_file(tmp_path, _xml(_offer("LOST-1", price="1"))))
    build_feed()
    out_csv = tmp_path / "report.csv"

    with pytest.raises(SystemExit) as exit_info:
        call_command("kaspi_cutover_report", "--csv", str(out_csv))

    assert exit_info.value.code == 3
    assert "dropped: 1" in capsys.readouterr().out
    assert "dropped;LOST-1" in out_csv.read_text(encoding="utf-8-sig")
