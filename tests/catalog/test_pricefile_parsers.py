"""Price-file readers: YML, XLSX and CSV golden files, hostile text, bad rows, broken files."""

import io
from pathlib import Path

import pytest
from django.utils import translation

from catalog.suppliers.pricefile import mapping
from catalog.suppliers.pricefile.parsers import (
    BadRow,
    ParsedOffer,
    PriceFileError,
    Reader,
    XmlSafeStream,
    iter_offers,
    preview,
    sniff_encoding,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pricefile"


@pytest.fixture(autouse=True)
def _staff_language():
    # Reasons are written in the staff language, as the sync service does.
    with translation.override("ru"):
        yield


def read(name, file_format, mapping_=None):
    items = list(iter_offers(Reader(FIXTURES / name, file_format, mapping_ or {})))
    offers = {i.values["article"]: i.values for i in items if isinstance(i, ParsedOffer)}
    bad = [i for i in items if isinstance(i, BadRow)]
    return offers, bad


# --- YML -----------------------------------------------------------------------------------


def test_yml_offers_are_read_with_the_default_fields():
    offers, _bad = read("small.yml", "yml")

    assert sorted(offers) == ["HD-400", "MS-200", "NB-100", "PR-500"]
    assert offers["NB-100"] == {
        "article": "NB-100",
        "part_number": "82H8-00FR",
        "name": 'Ноутбук Lenovo IdeaPad 3 15"',
        "full_name": "",
        "category_id": "2",
        "brand": "Lenovo",
        "dealer_price": 250000,
        "retail_price": None,
        "quantity": 7,
        "quantity_raw": "7",
        "is_new": False,
        "barcode": "4650001112223",
        "category": "Ноутбуки",
    }


def test_yml_stock_comes_from_count_quantity_or_stock_quantity_and_available():
    offers, _bad = read("small.yml", "yml")

    assert (offers["HD-400"]["quantity"], offers["HD-400"]["quantity_raw"]) == (50, ">50")
    # available="false" wins over <quantity>12</quantity>: nothing to sell.
    assert (offers["MS-200"]["quantity"], offers["MS-200"]["quantity_raw"]) == (0, "12")
    # available="true" without a count: some units, count unknown → 1.
    assert (offers["PR-500"]["quantity"], offers["PR-500"]["quantity_raw"]) == (1, "true")


def test_yml_hostile_text_is_cleaned():
    offers, _bad = read("small.yml", "yml")

    # A tab, runs of spaces and a zero-width space: gone; markup stays text.
    assert offers["MS-200"]["name"] == "Мышь Logitech M185 <b>новинка</b>"
    assert offers["MS-200"]["dealer_price"] == 4990  # "4 990"


def test_yml_bad_offers_are_listed_by_number_and_line_with_a_russian_reason():
    _offers, bad = read("small.yml", "yml")

    described = [b.describe() for b in bad]
    assert described == [
        "предложение 3 (строка 32) [KB-300]: цена «abc» — не число",
        "предложение 4 (строка 39) [NONAME-1]: нет наименования",
    ]


def test_yml_unknown_category_id_keeps_the_id_without_a_name():
    offers, _bad = read("small.yml", "yml")

    assert (offers["PR-500"]["category_id"], offers["PR-500"]["category"]) == ("99", "")


def test_yml_mapping_can_point_at_a_param():
    offers, _bad = read("small.yml", "yml", {"part_number": "param:Цвет|vendorCode"})

    assert offers["HD-400"]["part_number"] == "красный"
    assert offers["NB-100"]["part_number"] == "82H8-00FR"


def test_a_broken_yml_file_raises_after_the_offers_it_read(tmp_path):
    reader = Reader(FIXTURES / "broken.yml", "yml", {})
    read_before_the_break = []

    with pytest.raises(PriceFileError, match="в строке 40") as caught:
        read_before_the_break.extend(iter_offers(reader))

    assert "ничего не снято с продажи" in str(caught.value)
    assert [getattr(i, "values", {}).get("article") for i in read_before_the_break] == [
        "NB-100",
        "MS-200",
        None,
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "windows-1251"])
def test_yml_control_characters_xml_forbids_are_read_as_spaces(tmp_path, encoding):
    path = tmp_path / "dirty.yml"
    path.write_bytes(
        f'<?xml version="1.0" encoding="{encoding}"?><yml_catalog><shop><offers>'
        '<offer id="A1"><name>Мышь\x0bбеспроводная</name><price>5</price></offer>'
        '<offer id="A2"><name>Клавиатура\x01\x1f\x00 USB</name><price>6</price></offer>'
        '<offer id="A3"><name>Кабель&#11;HDMI&#x1F;2 м&#9;&#1099;</name><price>7</price></offer>'
        "</offers></shop></yml_catalog>".encode(encoding)
    )
    reader = Reader(path, "yml", {})

    items = list(iter_offers(reader))

    assert [i.values["name"] for i in items] == [
        "Мышь беспроводная",
        "Клавиатура USB",
        "Кабель HDMI 2 м ы",  # &#9; (a tab) is allowed in XML; the name cleaning takes it
    ]
    assert reader.control_characters == 6


class TrickleStream:
    """A stream that hands out a few bytes per read (references cut by chunk boundaries)."""

    def __init__(self, data: bytes, size: int):
        self.data, self.size = data, size

    def read(self, _size=-1) -> bytes:
        chunk, self.data = self.data[: self.size], self.data[self.size :]
        return chunk


@pytest.mark.parametrize("size", [1, 3, 7, 4096])
def test_xml_safe_stream_replaces_references_cut_by_the_chunk_boundary(size):
    data = b"<n>a&#11;b&#x0B;c&amp;d&#x10FFFF;e\x0bf&#65533;</n>" * 50
    stream = XmlSafeStream(TrickleStream(data, size))

    out = b"".join(iter(lambda: stream.read(size), b""))

    assert out == b"<n>a b c&amp;d&#x10FFFF;e f&#65533;</n>" * 50
    assert stream.replaced == 150


@pytest.mark.parametrize("size", [-1, None])
def test_xml_safe_stream_read_without_a_size_returns_all_that_is_left(size):
    data = b"<n>" + b"a&#11;b\x0b" * 40_000 + b"</n>"  # 320 KB: five 64 KB chunks and more
    stream = XmlSafeStream(io.BytesIO(data))
    head = stream.read(10)

    rest = stream.read() if size is None else stream.read(size)

    assert head + rest == b"<n>" + b"a b " * 40_000 + b"</n>"
    assert stream.read(size) == b""
    assert stream.replaced == 80_000


def test_xml_safe_stream_passes_a_utf16_file_whole_to_read_all():
    data = "<n>Мышь</n>".encode("utf-16") * 30_000  # about 700 KB

    assert XmlSafeStream(io.BytesIO(data)).read() == data


def test_a_utf16_yml_is_passed_to_the_parser_untouched(tmp_path):
    path = tmp_path / "utf16.yml"
    path.write_bytes(
        '<?xml version="1.0" encoding="UTF-16"?><yml_catalog><shop><offers>'
        '<offer id="A1"><name>Мышь</name><price>5</price></offer>'
        "</offers></shop></yml_catalog>".encode("utf-16")
    )

    offers, bad = read(path, "yml")

    assert (offers["A1"]["name"], bad) == ("Мышь", [])


def test_a_file_that_is_not_yml_is_refused(tmp_path):
    path = tmp_path / "page.yml"
    path.write_text("<html><body>Login</body></html>", encoding="utf-8")

    with pytest.raises(PriceFileError, match="это не прайс-лист YML"):
        list(iter_offers(Reader(path, "yml", {})))


def test_yml_external_entities_are_not_resolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET", encoding="utf-8")
    path = tmp_path / "xxe.yml"
    path.write_text(
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret}">]>'
        "<yml_catalog><shop><offers><offer id='1'><name>A &e;</name><price>5</price>"
        "</offer></offers></shop></yml_catalog>",
        encoding="utf-8",
    )

    offers, _bad = read(path, "yml")

    assert "TOP-SECRET" not in offers["1"]["name"]


# --- XLSX ----------------------------------------------------------------------------------


def test_xlsx_header_below_a_title_is_found_and_columns_guessed():
    reader = Reader(FIXTURES / "small.xlsx", "xlsx", {})
    items = list(iter_offers(reader))

    assert reader.header_row == 3
    offers = {i.values["article"]: i.values for i in items if isinstance(i, ParsedOffer)}
    # Excel numbers: 10002.0 → "10002", the barcode without an exponent.
    assert sorted(offers) == ["10001", "10002"]
    assert offers["10001"]["barcode"] == "8806091234567"
    assert offers["10001"]["name"] == "Монитор LG 27MP400"  # zero-width space dropped
    assert (offers["10001"]["dealer_price"], offers["10001"]["retail_price"]) == (89000, 99990)
    assert offers["10002"]["dealer_price"] == 55000  # 55000.5 → whole tenge
    assert (offers["10002"]["quantity"], offers["10002"]["quantity_raw"]) == (20, ">20")
    assert offers["10001"]["category"] == "Мониторы"


def test_xlsx_bad_rows_are_listed_by_sheet_row():
    _offers, bad = read("small.xlsx", "xlsx")

    assert [(b.number, b.article) for b in bad] == [(7, "10003"), (8, "")]


def test_xlsx_explicit_mapping_by_letters_and_header_row():
    offers, _bad = read(
        "small.xlsx", "xlsx", {"article": "A", "name": "B", "price": "E", "header_row": 3}
    )

    assert offers["10001"]["dealer_price"] == 89000
    assert offers["10001"]["brand"] == ""  # not mapped


def test_xlsx_unknown_sheet_is_a_clear_error():
    with pytest.raises(PriceFileError, match="Склад"):
        read("small.xlsx", "xlsx", {"sheet": "Склад"})


def test_a_broken_xlsx_file_raises():
    with pytest.raises(PriceFileError, match="не открывается"):
        read("broken.xlsx", "xlsx")


# --- CSV -----------------------------------------------------------------------------------


def test_cp1251_semicolon_csv_is_sniffed_and_read():
    assert sniff_encoding(FIXTURES / "cp1251.csv") == "cp1251"

    offers, _bad = read("cp1251.csv", "csv")

    assert offers["A-001"]["name"] == "Ноутбук ASUS X515 «Офис»"  # \x07 cleaned
    assert offers["A-001"]["dealer_price"] == 215000  # "215 000 тг"
    assert offers["A-002"]["dealer_price"] == 4990  # "4990,00"
    assert (offers["A-002"]["quantity"], offers["A-002"]["quantity_raw"]) == (1, "есть")
    assert (offers["A-005"]["quantity"], offers["A-005"]["dealer_price"]) == (0, None)


def test_csv_bad_rows_and_a_repeated_article_are_listed():
    offers, bad = read("cp1251.csv", "csv")

    assert offers["A-001"]["name"].startswith("Ноутбук")  # the first A-001 is kept
    assert [b.describe() for b in bad] == [
        "строка 7 [A-003]: нет наименования",
        "строка 8 [A-004]: цена «дорого» — не число",
        "строка 9 [A-001]: артикул повторяется (впервые — №5); оставлен первый",
    ]


def test_utf8_csv_with_a_bom_and_commas():
    assert sniff_encoding(FIXTURES / "bom.csv") == "utf-8-sig"

    offers, bad = read("bom.csv", "csv")

    assert bad == []
    assert offers["B-1"]["dealer_price"] == 7500
    assert offers["B-2"]["name"] == "Гарнитура, игровая"  # quoted comma


def test_csv_whose_mapped_column_is_missing_fails_with_the_columns_it_has(tmp_path):
    with pytest.raises(PriceFileError, match="нет строки заголовков"):
        read("bom.csv", "csv", {"article": "Артикул", "name": "Name"})


def test_csv_invalid_bytes_in_an_explicit_encoding_fail_the_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes("SKU;Name\nX-1;Имя\n".encode("cp1251"))

    with pytest.raises(PriceFileError, match="не читается"):
        read(path, "csv", {"encoding": "utf-8"})


# --- Mapping and preview -------------------------------------------------------------------


def test_map_options_resolve_aliases_and_refuse_unknown_fields():
    assert mapping.parse_map_options(["price=Цена", "stock=Остаток", "header_row=2"]) == {
        "dealer_price": "Цена",
        "quantity": "Остаток",
        "header_row": 2,
    }
    with pytest.raises(mapping.MappingError, match="colour"):
        mapping.parse_map_options(["colour=Цвет"])
    with pytest.raises(mapping.MappingError):
        mapping.parse_map_options(["price"])


def test_preview_shows_the_first_rows_with_the_current_mapping():
    result = preview(FIXTURES / "cp1251.csv", "csv", {}, limit=3)

    assert result["error"] == ""
    assert result["header_row"] == 3
    assert [getattr(r, "number", None) for r in result["rows"]] == [5, 6, 7]
    assert isinstance(result["rows"][2], BadRow)


def test_preview_of_a_broken_file_reports_instead_of_raising():
    result = preview(FIXTURES / "broken.xlsx", "xlsx", {})

    assert result["rows"] == []
    assert "не открывается" in result["error"]
