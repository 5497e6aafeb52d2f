"""The admin preview of a price file by URL reads only what it shows (inside a web request):
YML and CSV streamed until the first rows are parsed, XLSX (read whole) only up to
PRICEFILE_PREVIEW_MAX_MB, one attempt within PRICEFILE_PREVIEW_SECONDS; nothing written."""

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backoffice.models import SyncRun
from catalog.models import Product, SupplierOffer
from catalog.services.suppliers import preview_supplier
from catalog.suppliers.pricefile.parsers import BadRow, ParsedOffer
from tests import factories

URL = "https://b2b.example.kz/price"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pricefile"


class CountingBody(io.RawIOBase):
    """A response body that counts the bytes the client pulled (and may be slow)."""

    def __init__(self, data: bytes, *, pause: float = 0.0):
        self.data = data
        self.served = 0
        self.pause = pause

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.pause:
            time.sleep(self.pause)
        chunk = self.data[self.served : self.served + len(buffer)]
        buffer[: len(chunk)] = chunk
        self.served += len(chunk)
        return len(chunk)


def serve(mocked_http, data: bytes, **kw) -> CountingBody:
    body = CountingBody(data, **kw)
    mocked_http.get(URL, body=io.BufferedReader(body, buffer_size=8192))
    return body


def yml(offers: int, *, categories: int = 1) -> bytes:
    head = '<?xml version="1.0" encoding="UTF-8"?>\n<yml_catalog><shop><categories>'
    cats = "".join(f'<category id="{i}">Категория {i}</category>\n' for i in range(categories))
    items = "".join(
        f'<offer id="A-{i}" available="true"><name>Ноутбук {i}</name><price>{1000 + i}</price>'
        f"<vendor>Lenovo</vendor><vendorCode>PN-{i}</vendorCode><categoryId>0</categoryId>"
        f"<count>{i % 7}</count></offer>\n"
        for i in range(offers)
    )
    return (
        head + cats + "</categories><offers>" + items + "</offers></shop></yml_catalog>"
    ).encode()


def csv_cp1251(rows: int) -> bytes:
    lines = ["Прайс ТОО «Тест»", "", "Артикул;Наименование;Цена;Остаток"]
    lines += [f"C-{i};Монитор {i};{5000 + i};{i % 9}" for i in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode("cp1251")


def no_writes(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]


@pytest.fixture
def by_url():
    def make(file_format: str, **kw):
        return factories.supplier(
            code=f"url{file_format}", name="Acme", format=file_format, url=URL, **kw
        )

    return make


def test_yml_preview_reads_only_the_start_of_a_large_file(mocked_http, by_url):
    data = yml(40_000)  # about 6 MB
    body = serve(mocked_http, data)
    supplier = by_url("yml")

    with CaptureQueriesContext(connection) as queries:
        result = preview_supplier(supplier, limit=10)

    assert result["error"] == ""
    assert [r.values["article"] for r in result["rows"]] == [f"A-{i}" for i in range(10)]
    assert result["rows"][3].values["dealer_price"] == 1003
    assert len(data) > 5_000_000
    assert body.served < 200 * 1024  # the first rows' bytes and one chunk more, not 6 MB
    assert no_writes(queries) == []
    assert SupplierOffer.objects.count() == 0
    assert not SyncRun.objects.exists()


def test_csv_preview_streams_and_sniffs_cp1251_from_the_head(mocked_http, by_url):
    data = csv_cp1251(200_000)  # about 6 MB
    body = serve(mocked_http, data)
    supplier = by_url("csv")

    with CaptureQueriesContext(connection) as queries:
        result = preview_supplier(supplier, limit=5)

    assert result["error"] == ""
    assert result["header_row"] == 3
    assert [(r.values["article"], r.values["name"]) for r in result["rows"]] == [
        (f"C-{i}", f"Монитор {i}") for i in range(5)
    ]
    assert body.served < 200 * 1024
    assert no_writes(queries) == []


def test_yml_whose_rows_lie_beyond_the_cap_stops_at_it_with_the_reason(
    mocked_http, by_url, settings
):
    settings.PRICEFILE_PREVIEW_MAX_MB = 0.25
    settings.LANGUAGE_CODE = "ru"
    body = serve(mocked_http, yml(5, categories=20_000))  # ~900 KB of categories first

    result = preview_supplier(by_url("yml"), limit=10)

    assert result["rows"] == []
    assert "первые 0.25 МБ" in result["error"]
    assert "Синхронизировать" in result["error"]
    assert body.served <= 0.25 * 1024 * 1024 + 64 * 1024


def xlsx_bytes(rows: int) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["Код", "Наименование товара", "Цена дилера", "Кол-во"])
    for i in range(rows):
        sheet.append([f"X-{i}", f"Клавиатура {i} " + "длинное описание " * 5, 2000 + i, i % 4])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_small_xlsx_by_url_is_read_whole_and_previewed(mocked_http, by_url):
    mocked_http.get(URL, body=(FIXTURES / "small.xlsx").read_bytes())

    result = preview_supplier(by_url("xlsx"))

    offers = [r.values["article"] for r in result["rows"] if isinstance(r, ParsedOffer)]
    assert offers == ["10001", "10002"]
    assert [r.number for r in result["rows"] if isinstance(r, BadRow)] == [7, 8]


def test_oversized_xlsx_has_no_preview_and_says_so_in_russian(mocked_http, by_url, settings):
    settings.PRICEFILE_PREVIEW_MAX_MB = 0.05
    settings.LANGUAGE_CODE = "ru"
    data = xlsx_bytes(8000)
    assert len(data) > 2 * 0.05 * 1024 * 1024
    body = serve(mocked_http, data)  # streamed: no Content-Length
    supplier = by_url("xlsx")

    with CaptureQueriesContext(connection) as queries:
        result = preview_supplier(supplier)

    assert result["rows"] == []
    assert result["error"].startswith("Файл XLSX больше 0.05 МБ (PRICEFILE_PREVIEW_MAX_MB)")
    assert "предпросмотр для него недоступен" in result["error"]
    assert "«Синхронизировать»" in result["error"]
    assert body.served < len(data)  # stopped at the cap (and the chunk that crossed it)
    assert body.served <= 0.05 * 1024 * 1024 + 64 * 1024 + 8192
    assert no_writes(queries) == []


def test_oversized_xlsx_with_a_content_length_is_refused_before_the_body(
    mocked_http, by_url, settings
):
    settings.PRICEFILE_PREVIEW_MAX_MB = 0.05
    data = xlsx_bytes(8000)
    body = CountingBody(data)
    mocked_http.get(
        URL,
        body=io.BufferedReader(body),
        headers={"Content-Length": str(len(data))},
        auto_calculate_content_length=False,
    )

    result = preview_supplier(by_url("xlsx"))

    assert "PRICEFILE_PREVIEW_MAX_MB" in result["error"]
    assert body.served == 0


def test_a_trickling_server_is_given_up_on_after_the_preview_seconds(mocked_http, by_url, settings):
    settings.PRICEFILE_PREVIEW_SECONDS = 0.3
    # 8 KB per 40 ms, and the rows lie 900 KB in: about 4.5 s to reach them.
    serve(mocked_http, yml(5, categories=20_000), pause=0.04)

    started = time.monotonic()
    result = preview_supplier(by_url("yml"))

    assert time.monotonic() - started < 2.0
    assert result["rows"] == []
    assert "too slow" in result["error"]
    assert "PRICEFILE_PREVIEW_SECONDS" in result["error"]


def test_a_server_silent_before_its_headers_is_tried_once_for_the_preview_seconds(
    fake_server, settings
):
    settings.HTTP_CONNECT_TIMEOUT = 1.0
    settings.PRICEFILE_READ_TIMEOUT = 60.0  # the sync's limit plays no part in the preview
    settings.PRICEFILE_PREVIEW_SECONDS = 0.3
    settings.HTTP_BACKOFF_FACTOR = 0
    fake_server.handler = lambda *args: (200, b"<yml_catalog/>", 2.0)  # answers after 2 s
    supplier = factories.supplier(code="slow", format="yml", url=fake_server.url + "/price.xml")

    started = time.monotonic()
    result = preview_supplier(supplier)

    assert time.monotonic() - started < 1.5
    assert "too slow" in result["error"]
    assert len(fake_server.requests) == 1  # no retry with backoff inside a web request


class SlowFileServer:
    """A real file server on 127.0.0.1 that answers 200 with a large Content-Length and
    then, by `mode`: "trickle" (one byte every 0.1 s), "silent" (not a byte of the body)
    or "mute" (not even the headers), for up to 30 s or until the test ends."""

    def __init__(self):
        self.mode = "trickle"
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                try:
                    if server.mode == "mute":
                        server.stop.wait(30)
                        return
                    self.send_response(200)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(10 * 1024 * 1024))
                    self.end_headers()
                    self.wfile.write(b'<?xml version="1.0"?><yml_catalog><shop><offers>')
                    self.wfile.flush()
                    sent = 0  # a preview that never gives up fails the test in 30 s
                    while server.mode == "trickle" and sent < 300 and not server.stop.wait(0.1):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        sent += 1
                    server.stop.wait(30)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the preview gave up

        # Port 0: the system picks a free port, so parallel runs never collide.
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/price.xml"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def slow_file_server():
    server = SlowFileServer()
    yield server
    server.close()


@pytest.mark.parametrize("mode", ["trickle", "silent", "mute"])
def test_a_slow_file_server_gets_the_russian_reason_within_the_preview_seconds(
    slow_file_server, settings, mode
):
    settings.LANGUAGE_CODE = "ru"
    settings.HTTP_CONNECT_TIMEOUT = 1.0
    settings.PRICEFILE_READ_TIMEOUT = 120.0
    settings.PRICEFILE_PREVIEW_SECONDS = 1
    slow_file_server.mode = mode
    supplier = factories.supplier(code="slowyml", format="yml", url=slow_file_server.url)

    started = time.monotonic()
    result = preview_supplier(supplier)
    elapsed = time.monotonic() - started

    assert elapsed < 4.0
    assert result["rows"] == []
    assert result["error"] == (
        "Сервер отвечает слишком медленно: предпросмотр не получен за 1 с "
        "(PRICEFILE_PREVIEW_SECONDS). Запустите синхронизацию («Синхронизировать»): она "
        "читает файл в фоне."
    )


def test_a_server_error_is_reported_after_one_attempt(mocked_http, by_url):
    mocked_http.get(URL, status=503)

    result = preview_supplier(by_url("yml"))

    assert "HTTP 503" in result["error"]
    assert len(mocked_http.calls) == 1


def test_preview_page_by_url_shows_the_rows_and_writes_nothing(admin_client, mocked_http, by_url):
    serve(mocked_http, yml(1000))
    supplier = by_url("yml")
    products = Product.objects.count()

    page = admin_client.get(reverse("admin:catalog_supplier_preview", args=[supplier.pk]))

    assert page.status_code == 200
    assert "A-9" in page.text
    assert "A-10" not in page.text
    assert (Product.objects.count(), SupplierOffer.objects.count()) == (products, 0)
