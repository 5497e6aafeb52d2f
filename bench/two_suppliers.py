"""Benchmark + end-to-end check of issue 18's "Done when": two suppliers side by side.

Al-Style (5,000 elements, faked at the HTTP layer with `responses`, rate limit 0) and a YML
price-file supplier "acme" (added as `add_supplier` does, its file served by a local
http.server through the real download) with 5,000 offers: 1,000 carry the
part numbers and brands of Al-Style elements, spelled differently (case, spaces, dashes,
dots), some cheaper, some dearer, some at the same price, some out of stock; 4,000 are new.
Both are synced through the real services (`run_catalog_sync(full=True)`, `sync_supplier
acme`), each twice. Then: a 15 % price rule, `reprice`, the price list (`build_feed`),
and an order with one line of each supplier bought (`purchase_order`, Al-Style's cart
faked), twice.

Checked, each figure next to its expectation: 9,000 products, 1,000 with two offers, match
queue 0, the 1,000 keep the SKUs they had after the Al-Style sync, each product's chosen
offer obeys the documented rule (in stock first, then the lowest dealer price, then the
supplier's priority; acme's priority is set to 50, so it wins a tie) computed from the
generated data, not from the stored offers; the second sync of each supplier writes 0
statements to catalog_product / catalog_supplieroffer; the price list holds every
offerable product once, each two-offer product at the price the project's Pricer gives
from its chosen offer's dealer price, and validates against catalog/schemas/
kaspi_catalog.xsd; the order makes one Al-Style cart purchase and one acme purchase list,
and the second run makes nothing new and calls Al-Style no more.

    .venv/bin/python bench/two_suppliers.py   (DATABASE_URL: default .../bench;
                                               BENCH_HTTP_PORT: default any free port)
"""

import json
import os
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402
from sync_catalog import element  # noqa: E402  (the same fake Al-Style element)

ROOT = Path(__file__).resolve().parents[1]
N_ALSTYLE = 5_000
N_SHARED = 1_000  # acme offers for Al-Style elements 0, 5, 10, … 4995
N_NEW = 4_000
PORT = int(os.environ.get("BENCH_HTTP_PORT", "0"))  # 0: any free port on 127.0.0.1
ACME_PRIORITY = 50  # staff prefer acme at an equal price (Al-Style: 100)
API = "https://api.al-style.kz/api/"


def shared_index(k: int) -> int:
    """The Al-Style element acme's k-th shared offer is for."""
    return 5 * k


def alstyle_dealer_price(i: int) -> int:
    return element(i)["price1"]


def alstyle_in_stock(i: int) -> bool:
    return element(i)["quantity"] != 0  # 0, 3, 12, ">50", ">100", "<10" (≥ 1)


def acme_shared(k: int) -> dict:
    """Acme's offer for Al-Style element shared_index(k): its part number and brand
    spelled another way; price cheaper / dearer / equal / a tenge cheaper; every 5th out
    of stock."""
    i = shared_index(k)
    part = [f"pn {i:06d} x", f"PN{i:06d}-X", f"Pn-{i:06d}.x"][k % 3]
    brand = [f"BRAND {i % 150}", f"brand-{i % 150}"][k % 2]
    base = alstyle_dealer_price(i)
    price = [base - 50, base + 50, base, base - 1][k % 4]
    return {
        "id": f"AC{k:05d}",
        "name": f"Acme товар {i}",
        "price": price,
        "vendor": brand,
        "vendorCode": part,
        "count": 0 if k % 5 == 0 else 7,
        "barcode": "",
    }


def acme_new(j: int) -> dict:
    return {
        "id": f"AN{j:05d}",
        "name": f"Acme новинка {j} & <demo>",
        "price": 2000 + (j * 53) % 300000,
        "vendor": f"Acme Brand {j % 20}",
        "vendorCode": f"ACN-{j:06d}",
        "count": j % 9,
        "barcode": str(4870000000000 + j),
    }


def write_yml(path: Path) -> None:
    from xml.sax.saxutils import escape

    offers = [acme_shared(k) for k in range(N_SHARED)] + [acme_new(j) for j in range(N_NEW)]
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n<yml_catalog date="2026-12-02">')
        out.write("<shop><name>Acme</name><categories>")
        for c in range(20):
            out.write(f'<category id="{c}">Категория {c}</category>')
        out.write("</categories><offers>")
        for n, offer in enumerate(offers):
            barcode = f"<barcode>{offer['barcode']}</barcode>" if offer["barcode"] else ""
            out.write(
                f'<offer id="{offer["id"]}" available="true">'
                f"<name>{escape(offer['name'])}</name><price>{offer['price']}</price>"
                f"<currencyId>KZT</currencyId><categoryId>{n % 20}</categoryId>"
                f"<vendor>{escape(offer['vendor'])}</vendor>"
                f"<vendorCode>{escape(offer['vendorCode'])}</vendorCode>{barcode}"
                f"<count>{offer['count']}</count></offer>\n"
            )
        out.write("</offers></shop></yml_catalog>\n")


def expected_choice(k: int) -> tuple[str, str]:
    """The documented choice rule, from the generated data: in stock first, then the
    lowest dealer price, then the lower supplier priority (acme 50 < Al-Style 100).
    Returns (the winning supplier's code, the step that decided)."""
    i = shared_index(k)
    acme = acme_shared(k)
    al_stock, ac_stock = alstyle_in_stock(i), acme["count"] > 0
    if al_stock != ac_stock:
        return ("alstyle" if al_stock else "acme"), "stock"
    al_price, ac_price = alstyle_dealer_price(i), acme["price"]
    if al_price != ac_price:
        return ("alstyle" if al_price < ac_price else "acme"), "price"
    return "acme", "priority"


def expected_winner(k: int) -> str:
    return expected_choice(k)[0]


def alstyle_mock():
    """Al-Style's API for the catalog sync: categories, brands, 5,000 elements."""
    import responses

    categories = [
        {"id": 1, "name": "Root", "level": 1, "left": 1, "right": 602},
        *[
            {"id": 10 + k, "name": f"Cat {k}", "level": 2, "left": 2 + 2 * k, "right": 3 + 2 * k}
            for k in range(300)
        ],
    ]

    def elements_page(request):
        query = parse_qs(urlparse(request.url).query)
        offset, limit = int(query["offset"][0]), int(query["limit"][0])
        items = [element(i) for i in range(offset, min(offset + limit, N_ALSTYLE))]
        body = {
            "elements": items,
            "pagination": {
                "totalCount": N_ALSTYLE,
                "totalPages": (N_ALSTYLE + limit - 1) // limit,
                "currentPage": offset // limit + 1,
                "limit": limit,
                "offset": offset,
            },
        }
        return 200, {}, json.dumps(body, ensure_ascii=False)

    rsps = responses.RequestsMock(assert_all_requests_are_fired=False)
    rsps.get(API + "categories", json=categories)
    rsps.get(API + "brands", json={"data": [{"name": f"Brand {b}"} for b in range(150)]})
    # application/json: requests reads the body as UTF-8 (text/plain, the default of
    # add_callback, would be read as Latin-1 and store the Russian names garbled).
    rsps.add_callback(
        responses.GET,
        API + "elements-pagination",
        callback=elements_page,
        content_type="application/json",
    )
    return rsps


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Checks:
    def __init__(self):
        self.failed = []

    def __call__(self, label: str, got, expected) -> None:
        ok = got == expected
        print(f"  {'ok ' if ok else 'BAD'} {label}: {got} (expected {expected})")
        if not ok:
            self.failed.append(label)


def reset() -> None:
    """Remove what an earlier run made (this bench's database only)."""
    from django.db import connection

    from backoffice.models import JobLock, SyncRun
    from catalog.models import (
        Brand,
        CatalogListing,
        Category,
        FeedBuild,
        PriceRule,
        Product,
        Supplier,
        SupplierCheck,
        SupplierOffer,
    )
    from orders.models import Order, SupplierPurchase

    SupplierPurchase.objects.all().delete()
    Order.objects.all().delete()
    CatalogListing.objects.all().delete()
    SupplierCheck.objects.all().delete()
    Product.objects.update(offer=None, pinned_offer=None)
    SupplierOffer.objects.all().delete()
    Product.objects.all().delete()
    FeedBuild.objects.all().delete()
    Supplier.objects.filter(code="acme").delete()
    Supplier.alstyle()
    Supplier.objects.filter(code=Supplier.ALSTYLE).update(min_interval=0, priority=100)
    Category.objects.all().delete()
    Brand.objects.all().delete()
    SyncRun.objects.all().delete()
    JobLock.objects.all().delete()
    PriceRule.objects.all().delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in ("catalog_supplieroffer", "catalog_product", "catalog_suppliercheck"):
                cursor.execute(f"VACUUM ANALYZE {table}")


def timed_sync(label, key, sync, figures):
    from django.db import connection

    counter = _setup.WriteCounter("catalog_product", "catalog_supplieroffer")
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        run = sync()
    elapsed = time.perf_counter() - started
    figures[key] = elapsed
    print(
        f"{label}: {elapsed:.2f} s, status={run.status}, counts={run.counts}, "
        f"write statements: {counter.by_table}"
    )
    return run, counter.writes


def main():
    _setup.setup()
    import responses
    from django.core.management import call_command
    from django.db.models import Count
    from lxml import etree

    from catalog.feedxml import NS
    from catalog.models import OFFERABLE, PriceRule, Product, Supplier, SupplierOffer
    from catalog.services import feed
    from catalog.services.pricing import Pricer
    from catalog.services.supplier_sync import run_supplier_sync
    from catalog.services.sync import run_catalog_sync
    from orders.models import Order, OrderEntry, SupplierPurchase
    from orders.services.fulfilment import purchase_order
    from tests.orders.test_purchase import CART, cart_until_submit

    request_feed_build = feed.request_feed_build
    feed.request_feed_build = lambda **kw: (None, False)  # the syncs alone; built below
    reset()
    check = Checks()
    figures = {}

    directory = Path(tempfile.mkdtemp(prefix="bench-two-suppliers-"))
    path = directory / "acme.xml"
    write_yml(path)
    handler = partial(QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", PORT), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/acme.xml"
    print(f"acme YML: {N_SHARED + N_NEW} offers, {path.stat().st_size / 1e6:.1f} MB at {url}")

    def sync_alstyle():
        with alstyle_mock():
            return run_catalog_sync(full=True)

    try:
        # 1. Al-Style alone.
        run, _w = timed_sync("1. Al-Style sync (5,000 new)", "Al-Style 1st", sync_alstyle, figures)
        articles = [str(100000 + shared_index(k)) for k in range(N_SHARED)]
        skus_before = dict(
            Product.objects.filter(article__in=articles).values_list("article", "sku")
        )
        # 2. acme, added the way staff add a price-file supplier.
        call_command(
            "add_supplier",
            "acme",
            "--name",
            "Acme",
            "--url",
            url,
            "--format",
            "yml",
            "--sku-prefix",
            "AC",
            stdout=open("/dev/null", "w"),  # noqa: SIM115
        )
        acme = Supplier.objects.get(code="acme")
        Supplier.objects.filter(pk=acme.pk).update(priority=ACME_PRIORITY)  # as in the admin
        acme.refresh_from_db()
        run_acme, _w = timed_sync(
            "2. acme sync (1,000 shared + 4,000 new)",
            "acme 1st",
            lambda: run_supplier_sync(acme),
            figures,
        )
        _r, as_writes = timed_sync(
            "   Al-Style sync again (unchanged)", "Al-Style 2nd", sync_alstyle, figures
        )
        _r, ac_writes = timed_sync(
            "   acme sync again (unchanged)", "acme 2nd", lambda: run_supplier_sync(acme), figures
        )
    finally:
        server.shutdown()
        path.unlink()
        directory.rmdir()

    # 3. The catalogue.
    print("3. catalogue")
    check("products", Product.objects.count(), N_ALSTYLE + N_NEW)
    two = Product.objects.annotate(n=Count("offers")).filter(n=2)
    check("products with two offers", two.count(), N_SHARED)
    queue = SupplierOffer.objects.filter(supplier=acme, product=None, listed=True).count()
    check("match queue (acme offers without a product)", queue, 0)
    check("match_queue on the acme run", run_acme.counts.get("match_queue"), 0)
    skus_after = dict(Product.objects.filter(article__in=articles).values_list("article", "sku"))
    check("SKUs of the 1,000 unchanged since the Al-Style sync", skus_after == skus_before, True)
    products = {
        p.article: p
        for p in Product.objects.filter(article__in=articles).select_related("offer__supplier")
    }
    chosen = {"alstyle": 0, "acme": 0}
    wrong = []
    names_kept = 0
    for k in range(N_SHARED):
        article = str(100000 + shared_index(k))
        product = products.get(article)
        got = product.offer.supplier.code if product and product.offer_id else None
        if got in chosen:
            chosen[got] += 1
        if got != expected_winner(k):
            wrong.append(article)
        names_kept += product is not None and product.name == element(shared_index(k))["name"]
    expected_counts = {"alstyle": 0, "acme": 0}
    for k in range(N_SHARED):
        expected_counts[expected_winner(k)] += 1
    decided = {"stock": 0, "price": 0, "priority": 0}
    for k in range(N_SHARED):
        decided[expected_choice(k)[1]] += 1
    print(f"  (the rule's deciding step, from the data: {decided})")
    check("chosen offers (Al-Style / acme)", chosen, expected_counts)
    check("choices that break the rule", wrong[:5], [])
    check("two-offer products keep Al-Style's name", names_kept, N_SHARED)
    snapshot_ok = sum(
        p.price1 == p.offer.dealer_price and p.quantity == p.offer.quantity
        for p in products.values()
    )
    check("snapshot = chosen offer (dealer price, stock)", snapshot_ok, N_SHARED)
    check("second Al-Style sync: write statements", as_writes, 0)
    check("second acme sync: write statements", ac_writes, 0)

    # 4. Prices and the price list.
    print("4. prices and the price list")
    PriceRule.objects.create(name="15%", markup_percent=15, rounding=10)
    started = time.perf_counter()
    call_command("reprice", stdout=open("/dev/null", "w"))  # noqa: SIM115
    figures["reprice"] = time.perf_counter() - started
    started = time.perf_counter()
    build = feed.build_feed()
    figures["build_feed"] = time.perf_counter() - started
    print(f"  reprice {figures['reprice']:.2f} s, build_feed {figures['build_feed']:.2f} s")
    tree = etree.parse(str(feed.feed_path()))
    schema = etree.XMLSchema(etree.parse(str(ROOT / "catalog/schemas/kaspi_catalog.xsd")))
    check("price list validates against kaspi_catalog.xsd", schema.validate(tree), True)
    prices = {}
    repeated = 0
    for offer in tree.iter(f"{{{NS}}}offer"):
        sku = offer.get("sku")
        repeated += sku in prices
        prices[sku] = int(offer.findtext(f"{{{NS}}}price"))
    offerable = Product.objects.filter(OFFERABLE).count()
    check("offers in the price list (= offerable products)", len(prices), offerable)
    check("SKUs repeated in the price list", repeated, 0)
    check(
        "build status / offers recorded",
        (str(build.status), build.offers_total),
        ("published", offerable),
    )
    pricer = Pricer()
    in_file = right_price = 0
    offerable_two = set(two.filter(OFFERABLE).values_list("sku", flat=True))
    for k in range(N_SHARED):
        product = products[str(100000 + shared_index(k))]
        product.refresh_from_db(fields=["kaspi_price"])
        i = shared_index(k)
        dealer = (
            alstyle_dealer_price(i) if expected_winner(k) == "alstyle" else acme_shared(k)["price"]
        )
        expected = pricer.quote(product).price
        if product.sku in prices:
            in_file += 1
            right_price += (
                prices[product.sku] == expected == product.kaspi_price
                and product.offer.dealer_price == dealer
            )
    check("two-offer products in the price list (the offerable ones)", in_file, len(offerable_two))
    check("... at the Pricer's price of their chosen offer's dealer price", right_price, in_file)
    print(f"  (of the 1,000: {in_file} offerable, {N_SHARED - in_file} out of stock at both)")

    # 5. An order with a line of each supplier.
    print("5. an order with one line of each supplier")
    mine = [p for p in products.values() if p.offer.supplier.code == "alstyle" and p.available]
    theirs = [p for p in products.values() if p.offer.supplier.code == "acme" and p.available]
    cable, mouse = mine[0], theirs[0]
    order = Order.objects.create(
        kaspi_id="QkVOQ0gy", code="BENCH2", status="ACCEPTED_BY_MERCHANT", fulfilment="accepted"
    )
    for n, (product, quantity) in enumerate([(cable, 2), (mouse, 3)], 1):
        OrderEntry.objects.create(
            order=order,
            entry_number=n,
            offer_code=product.sku,
            name=product.name,
            quantity=quantity,
            base_price=product.kaspi_price,
            total_price=product.kaspi_price * quantity,
            product=product,
        )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        cart_until_submit(rsps)
        rsps.post(CART + "submit", json={"status": True, "data": {"status": "ok", "id": 777}})
        started = time.perf_counter()
        first = purchase_order(order=order)
        figures["purchase"] = time.perf_counter() - started
        calls_first = len(rsps.calls)
        adds = [c.request for c in rsps.calls if c.request.url.startswith(CART + "add")]
        submits = sum(c.request.url.startswith(CART + "submit") for c in rsps.calls)
        second = purchase_order(order=Order.objects.get(pk=order.pk))
        calls_second = len(rsps.calls) - calls_first
    check(
        "first run: results",
        sorted(type(r).__name__ for _s, r in first),
        ["SupplierPurchase", "SupplierPurchase"],
    )
    bought = SupplierPurchase.objects.filter(order=order, supplier__code="alstyle")
    listed = SupplierPurchase.objects.filter(order=order, supplier=acme)
    check("Al-Style purchases", bought.count(), 1)
    check("Al-Style cart submits", submits, 1)
    check("Al-Style cart lines (article)", [a.params.get("add") for a in adds], [cable.article])
    check(
        "Al-Style purchase (status, lines)",
        (bought.first().status, bought.first().lines),
        ("submitted", [{"article": cable.article, "quantity": 2}]),
    )
    check("acme purchase lists", listed.count(), 1)
    check(
        "acme list (status, article, quantity)",
        (listed.first().status, [(x["article"], x["quantity"]) for x in listed.first().lines]),
        ("listed", [(mouse.offer.article, 3)]),
    )
    check("second run: all refused", all(isinstance(r, Exception) for _s, r in second), True)
    check("second run: purchases in all", SupplierPurchase.objects.filter(order=order).count(), 2)
    check("second run: calls to Al-Style", calls_second, 0)
    feed.request_feed_build = request_feed_build

    times = ", ".join(f"{key} {seconds:.2f} s" for key, seconds in figures.items())
    print(f"times: {times}")
    print(f"peak RSS of the process: {_setup.rss_mb():.0f} MB")
    ok = not check.failed
    print(
        f"targets: 9,000 products, 1,000 with two offers chosen by the rule "
        f"({chosen['alstyle']} Al-Style / {chosen['acme']} acme), SKUs kept, queue {queue}, "
        f"second syncs {as_writes}+{ac_writes} writes, price list {len(prices)} offers valid and "
        f"priced from the chosen offer, 1 cart purchase + 1 list, rerun nothing new -> "
        f"{'PASS' if ok else 'FAIL: ' + '; '.join(check.failed)}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
