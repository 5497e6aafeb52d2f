"""Matching a second supplier's offers to our products; the match queue; two suppliers
side by side end to end."""

import pytest

from backoffice.core.audit import AuditEntry
from backoffice.models import SyncRun
from catalog.clients.records import OfferRecord
from catalog.models import Product, Supplier, SupplierOffer
from catalog.services import matching, offers
from catalog.services.matching import normalise_barcode, normalise_part_number
from tests import factories


def record(article, **kw) -> OfferRecord:
    values = {
        "article": article,
        "part_number": "",
        "name": f"Item {article}",
        "full_name": "",
        "category_id": None,
        "brand": "",
        "dealer_price": 1000,
        "retail_price": None,
        "quantity": 3,
        "quantity_raw": "3",
        "is_new": False,
        **kw,
    }
    return OfferRecord(**values)


def upsert(supplier, *records):
    run = SyncRun(kind=SyncRun.Kind.SUPPLIER)
    offers.upsert_offers(supplier, [(r, {}) for r in records], run=run)
    return run


@pytest.fixture
def acme():
    return factories.supplier(code="acme", name="Acme", format="yml", sku_prefix="AC")


@pytest.fixture
def laptop():
    lenovo = factories.brand(name="Lenovo")
    return factories.product(article="100", article_pn="82H8-00FR", brand=lenovo, price1=250000)


def offer_of(supplier, article) -> SupplierOffer:
    return SupplierOffer.objects.get(supplier=supplier, article=article)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("82H8-00FR", "82H800FR"), (" 82h8 00fr ", "82H800FR"), ("SA400S37/480G", "SA400S37480G")],
)
def test_part_numbers_are_normalised(raw, expected):
    assert normalise_part_number(raw) == expected


def test_barcodes_are_normalised_upc_equals_ean():
    assert normalise_barcode("0886111222333") == normalise_barcode("886111222333")
    assert normalise_barcode("123") == ""


def test_same_part_number_and_brand_links_the_offer(acme, laptop):
    upsert(acme, record("X1", part_number="82h8 00fr", brand="LENOVO", dealer_price=240000))

    offer = offer_of(acme, "X1")
    assert offer.product_id == laptop.pk
    laptop.refresh_from_db()
    # The cheaper offer in stock is chosen; the SKU stays the product's.
    assert (laptop.offer_id, laptop.price1, laptop.sku) == (offer.pk, 240000, "AS100")
    assert Product.objects.count() == 1


def test_same_part_number_other_brand_is_not_a_match(acme, laptop):
    upsert(acme, record("X1", part_number="82H8-00FR", brand="Asus"))

    offer = offer_of(acme, "X1")
    assert offer.product_id != laptop.pk
    assert offer.product.sku == "ACX1"  # a new product of its own


def test_barcode_links_when_there_is_no_part_number(acme, laptop):
    factories.offer_for(
        laptop, factories.supplier(code="other"), article="O-1", barcode="4650001112223"
    )

    upsert(acme, record("X1", barcode="4650001112223"))

    assert offer_of(acme, "X1").product_id == laptop.pk


def test_two_products_with_the_part_number_wait_in_the_queue(acme, laptop):
    twin = factories.product(article="200", article_pn="82H800FR", brand=laptop.brand)

    upsert(acme, record("X1", part_number="82H8-00FR", brand="Lenovo"))

    offer = offer_of(acme, "X1")
    assert offer.product_id is None  # never merged silently
    assert list(matching.queue()) == [offer]
    found, how = matching.candidates(offer, matching.build_index(acme))
    assert (found, how) == ({laptop.pk, twin.pk}, "part")


def test_part_number_and_barcode_pointing_apart_wait_in_the_queue(acme, laptop):
    other = factories.product(article="300", article_pn="ZZZ-1")
    factories.offer_for(
        other, factories.supplier(code="other"), article="O", barcode="4600000000017"
    )

    upsert(acme, record("X1", part_number="82H8-00FR", brand="Lenovo", barcode="4600000000017"))

    offer = offer_of(acme, "X1")
    assert offer.product_id is None
    assert matching.candidates(offer, matching.build_index(acme)) == (
        {laptop.pk, other.pk},
        "conflict",
    )


def test_a_part_number_without_a_brand_waits_for_staff(acme, laptop):
    upsert(acme, record("X1", part_number="82H8-00FR"))

    assert offer_of(acme, "X1").product_id is None


def test_a_product_with_an_offer_of_the_same_supplier_is_not_a_candidate(acme, laptop):
    upsert(acme, record("X1", part_number="82H8-00FR", brand="Lenovo"))
    upsert(acme, record("X2", part_number="82H8-00FR", brand="Lenovo"))

    assert offer_of(acme, "X1").product_id == laptop.pk
    assert offer_of(acme, "X2").product_id != laptop.pk  # its own new product


def test_unmatched_offers_wait_when_the_supplier_does_not_create_products(acme):
    Supplier.objects.filter(pk=acme.pk).update(create_unmatched=False)
    acme.refresh_from_db()

    upsert(acme, record("X1", part_number="NEW-1", brand="Acme"))

    assert offer_of(acme, "X1").product_id is None
    assert Product.objects.count() == 0


def test_staff_link_a_queued_offer_audited(acme, laptop, admin_user):
    upsert(acme, record("X1", part_number="82H8-00FR", dealer_price=200000))
    offer = offer_of(acme, "X1")

    matching.link_offer(offer=offer, product=laptop, user=admin_user)

    laptop.refresh_from_db()
    assert (laptop.offer_id, laptop.price1) == (offer.pk, 200000)
    entry = AuditEntry.objects.get(action="offer.link")
    assert (entry.user, entry.object_id, entry.after["article"]) == (
        admin_user,
        str(laptop.pk),
        "X1",
    )
    with pytest.raises(matching.MatchError):
        matching.link_offer(offer=offer, product=laptop, user=admin_user)


def test_staff_create_a_product_from_a_queued_offer_audited(acme, laptop, admin_user):
    upsert(acme, record("X1", part_number="82H8-00FR"))

    product = matching.create_product_from_offer(offer=offer_of(acme, "X1"), user=admin_user)

    assert (product.sku, product.article, product.offer.article) == ("ACX1", "acme:X1", "X1")
    assert AuditEntry.objects.filter(action="offer.create_product", user=admin_user).count() == 1
    assert list(matching.queue()) == []


def test_two_suppliers_side_by_side(acme):
    """Al-Style lists 30 products; Acme's file has 50 offers, 10 of them the same part
    numbers (other spelling): 10 products get a second offer, 40 are new, SKUs stay."""
    alstyle = Supplier.alstyle()
    upsert(
        alstyle,
        *(
            record(str(1000 + i), part_number=f"PN-{i:03d}", brand="Brand", dealer_price=5000)
            for i in range(30)
        ),
    )
    skus = dict(Product.objects.values_list("article", "sku"))
    cheaper = [
        record(f"A{i}", part_number=f"pn {i:03d}", brand="BRAND", dealer_price=4000 + i)
        for i in range(10)
    ]
    new = [record(f"N{i}", part_number=f"NEW-{i}", brand="Other") for i in range(40)]

    upsert(acme, *cheaper, *new)

    assert Product.objects.count() == 70
    assert SupplierOffer.objects.filter(supplier=acme, product=None).count() == 0
    two = Product.objects.filter(offers__supplier=acme).filter(offers__supplier=alstyle)
    assert two.count() == 10
    for product in two:
        assert product.sku == skus[product.article]  # the SKU belongs to the product
        assert product.offer.supplier_id == acme.pk  # cheaper and in stock wins
        assert product.price1 == product.offer.dealer_price
    assert Product.objects.filter(sku__startswith="AC").count() == 40


def test_al_style_later_listing_a_price_file_product_joins_it_not_a_second_product(acme):
    """A product first made from Acme's file; Al-Style then lists the same part number
    (other spelling) and the same brand: its offer joins that product (SKU kept), no
    second product. A part number two products share makes Al-Style's own product."""
    upsert(
        acme,
        record("A1", part_number="82H8-00FR", brand="Lenovo", dealer_price=260000),
        record("A2", part_number="X-1", brand="Lenovo"),
        record("A3", part_number="BAR", brand="", barcode="4006381333931"),
    )
    factories.product(article="other", article_pn="X1", brand=factories.brand(name="LENOVO"))
    Product.objects.filter(article="other").update(offer=None)
    SupplierOffer.objects.create(
        supplier=factories.supplier(code="third", name="Third"),
        article="T1",
        part_number="x 1",
        brand="Lenovo",
        product=Product.objects.get(article="other"),
    )
    made = Product.objects.get(offers__supplier=acme, offers__article="A1")
    sku, products = made.sku, Product.objects.count()
    alstyle = Supplier.alstyle()

    upsert(
        alstyle,
        record("5001", part_number="82h8 00fr", brand="LENOVO", dealer_price=250000),
        record("5002", part_number="X-1", brand="Lenovo"),  # two products: not certain
        record("5003", part_number="", brand="", barcode="04006381333931"),  # by barcode
    )

    assert Product.objects.count() == products + 1  # only 5002 made its own product
    made.refresh_from_db()
    assert made.sku == sku
    assert offer_of(alstyle, "5001").product_id == made.pk
    assert made.offer.supplier_id == alstyle.pk  # in stock, cheaper: the rule's choice
    assert made.price1 == 250000
    by_barcode = offer_of(acme, "A3").product_id
    assert offer_of(alstyle, "5003").product_id == by_barcode
    own = offer_of(alstyle, "5002").product
    assert own.article == "5002"
    assert own.offers.count() == 1

    upsert(alstyle, record("5001", part_number="82h8 00fr", brand="LENOVO", dealer_price=250000))
    assert Product.objects.count() == products + 1  # the second run changes nothing


def test_the_name_stays_when_the_chosen_offer_switches_supplier(acme):
    """Acme's cheaper offer becomes the chosen one (price, stock), but the product keeps
    the name and brand of the offer it was made from; when that supplier renames the item,
    the product follows."""
    alstyle = Supplier.alstyle()
    upsert(
        alstyle,
        record("7001", part_number="82H8-00FR", brand="Lenovo", name="Ноутбук Lenovo X"),
    )
    upsert(
        acme,
        record(
            "A7",
            part_number="82h800fr",
            brand="LENOVO",
            name="LENOVO X 82H8 (склад Acme)",
            dealer_price=900,
        ),
    )
    product = Product.objects.get(article="7001")
    assert product.offer.supplier_id == acme.pk
    assert product.price1 == 900
    assert product.name == "Ноутбук Lenovo X"
    assert product.brand.name == "Lenovo"

    upsert(
        alstyle,
        record("7001", part_number="82H8-00FR", brand="Lenovo", name="Ноутбук Lenovo X1"),
    )
    product.refresh_from_db()
    assert product.offer.supplier_id == acme.pk
    assert product.name == "Ноутбук Lenovo X1"


def test_an_offer_linked_from_the_queue_weeks_later_does_not_rename_the_product(acme):
    """The queued offer was first seen before the product existed; linking it by hand
    must not make it the product's "first" offer and rename the product."""
    from datetime import timedelta

    from django.utils import timezone

    alstyle = Supplier.alstyle()
    Supplier.objects.filter(pk=acme.pk).update(create_unmatched=False)
    acme.refresh_from_db()
    upsert(acme, record("Q1", part_number="CAB-1", brand="", name="CABLE acme name"))
    queued = offer_of(acme, "Q1")
    assert queued.product_id is None  # matches nothing: waits for staff
    SupplierOffer.objects.filter(pk=queued.pk).update(
        first_seen=timezone.now() - timedelta(days=30)
    )
    upsert(alstyle, record("8001", part_number="CAB-1", brand="Demo", name="Кабель Al-Style"))
    product = Product.objects.get(article="8001")

    matching.link_offer(offer=offer_of(acme, "Q1"), product=product)

    product.refresh_from_db()
    assert product.name == "Кабель Al-Style"
