"""Supplier offers (issue 18 items 1, 2, 8): the one upsert, the choice rule, the snapshot."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backoffice.core.audit import AuditEntry
from backoffice.models import SyncRun
from catalog.clients.records import OfferRecord, parse_element
from catalog.models import Product, Supplier, SupplierOffer
from catalog.services import offers
from catalog.suppliers import get_adapter
from catalog.suppliers.alstyle import AlStyleAdapter, min_interval
from catalog.suppliers.base import SupplierAdapter
from tests import factories
from tests.factories import element


def record(article, **kw) -> OfferRecord:
    values = {
        "article": article,
        "part_number": f"PN-{article}",
        "name": f"Offer {article}",
        "full_name": "",
        "category_id": None,
        "brand": "Demo",
        "dealer_price": 10000,
        "retail_price": 12000,
        "quantity": 5,
        "quantity_raw": "5",
        "is_new": False,
    }
    values.update(kw)
    return OfferRecord(**values)


def run():
    return SyncRun.objects.create(kind=SyncRun.Kind.CATALOG)


def test_alstyle_hash_is_what_the_product_hash_was():
    # The migrated hashes stay valid: an Al-Style record hashes as before offers existed.
    assert parse_element(element(5, quantity=">50")).data_hash() == (
        "42c91b6cd6fabc70cf493ba5f98c11f7"
    )
    # Extra fields join the hash only when given.
    plain = record("1")
    assert record("1", barcode="4601234567890").data_hash() != plain.data_hash()
    assert record("1", warehouse_stock={"Алматы": 3}).data_hash() != plain.data_hash()


def test_registry_gives_the_alstyle_adapter():
    adapter = get_adapter(Supplier.alstyle())
    assert isinstance(adapter, AlStyleAdapter)
    assert isinstance(adapter, SupplierAdapter)
    assert adapter.supports_cart is True


def test_rate_budget_comes_from_the_row(settings):
    settings.ALSTYLE_MIN_INTERVAL = 5.0
    Supplier.objects.filter(code="alstyle").update(min_interval=7.5)
    assert min_interval() == 7.5
    adapter = get_adapter("alstyle")
    assert adapter.client.limiter.interval == 7.5
    Supplier.objects.filter(code="alstyle").delete()
    assert min_interval() == 5.0  # no row: the setting stands in


def test_upsert_creates_updates_and_skips_unchanged_with_no_writes():
    alstyle = Supplier.alstyle()
    first = run()
    offers.upsert_offers(alstyle, [(record("1"), {"a": 1}), (record("2"), {"a": 2})], run=first)
    assert (first.counts["created"], first.counts["unchanged"]) == (2, 0)
    product = Product.objects.get(article="1")
    assert product.sku == "AS1"
    assert product.offer.article == "1"
    assert product.offers.get().product_id == product.pk
    assert (product.price1, product.quantity, product.available) == (10000, 5, True)

    again = run()
    with CaptureQueriesContext(connection) as queries:
        offers.upsert_offers(alstyle, [(record("1"), {"a": 1}), (record("2"), {"a": 2})], run=again)
    writes = [q for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    assert again.counts["unchanged"] == 2

    changed = run()
    offers.upsert_offers(alstyle, [(record("1", dealer_price=9000), {"a": 1})], run=changed)
    assert changed.counts["updated"] == 1
    assert Product.objects.get(article="1").price1 == 9000
    assert SupplierOffer.objects.get(supplier=alstyle, article="1").dealer_price == 9000


def test_other_suppliers_new_offers_wait_in_the_match_queue():
    # A supplier whose unmatched offers wait for staff (matching.py; the default makes
    # new products of them).
    other = factories.supplier(code="akcent", create_unmatched=False)
    result = run()
    offers.upsert_offers(other, [(record("X-1"), {})], run=result)
    offer = SupplierOffer.objects.get(supplier=other)
    assert offer.product is None  # the match queue
    assert not Product.objects.exists()
    assert result.counts["created"] == 1


@pytest.fixture
def two_offers():
    product = factories.product(article="100", price1=10000, quantity=0)
    other = factories.supplier(code="vtt", priority=50)
    cheaper = factories.offer_for(product, other, article="V-100", dealer_price=9000, quantity=0)
    return product, product.offer, cheaper


def test_choice_rule_in_stock_then_price_then_priority_then_oldest(two_offers):
    product, alstyle_offer, vtt_offer = two_offers
    # Both out of stock: the lower dealer price wins.
    assert offers.choose_offer(product) == vtt_offer
    assert product.price1 == 9000
    # In stock beats a lower price.
    SupplierOffer.objects.filter(pk=alstyle_offer.pk).update(quantity=3)
    assert offers.choose_offer(product) == alstyle_offer
    assert (product.quantity, product.available) == (3, True)
    # Same stock state and price: the supplier's priority (lower first) decides.
    SupplierOffer.objects.filter(pk=vtt_offer.pk).update(quantity=3, dealer_price=10000)
    assert offers.choose_offer(product) == vtt_offer
    # Same priority: the oldest offer.
    Supplier.objects.filter(code="vtt").update(priority=100)
    SupplierOffer.objects.filter(pk=vtt_offer.pk).update(
        first_seen=timezone.now() + timedelta(days=1)
    )
    assert offers.choose_offer(product) == alstyle_offer
    # A price on request counts as the highest price.
    SupplierOffer.objects.filter(pk=alstyle_offer.pk).update(dealer_price=1, price_on_request=True)
    assert offers.choose_offer(product) == vtt_offer


def test_sku_stays_when_the_chosen_offer_switches_supplier(two_offers):
    product, _alstyle_offer, vtt_offer = two_offers
    sku = product.sku
    assert offers.choose_offer(product) == vtt_offer
    assert Product.objects.get(pk=product.pk).sku == sku


def test_pin_wins_while_listed_and_is_audited(two_offers, django_user_model):
    product, alstyle_offer, _vtt_offer = two_offers
    user = django_user_model.objects.create_user("staff")
    offers.pin_offer(product, alstyle_offer, user=user)
    product.refresh_from_db()
    assert product.offer == alstyle_offer
    assert product.price1 == 10000
    entry = AuditEntry.objects.get(action="product.pin_offer")
    assert entry.after["pinned_offer"] == alstyle_offer.pk
    # A pinned offer the supplier no longer lists does not hold the product.
    offers.mark_offers_vanished(Supplier.alstyle(), articles=["100"])
    product.refresh_from_db()
    assert product.offer.supplier.code == "vtt"
    assert product.listed is True


def test_vanished_offer_takes_the_product_off_sale_only_without_another_offer(two_offers):
    product, _alstyle_offer, _vtt_offer = two_offers
    lonely = factories.product(article="200", quantity=4)
    gone = offers.mark_offers_vanished(Supplier.alstyle(), seen=set())
    assert gone == 2
    lonely.refresh_from_db()
    assert (lonely.listed, lonely.available, lonely.quantity) == (False, False, 0)
    product.refresh_from_db()
    assert product.listed is True
    assert product.offer.supplier.code == "vtt"


def test_product_article_for_other_suppliers_fits():
    other = factories.supplier(code="comportal")
    assert offers.product_article(Supplier.alstyle(), "12345") == "12345"
    assert offers.product_article(other, "A-1") == "comportal:A-1"
    long = offers.product_article(other, "X" * 80)
    assert len(long) <= 32
    assert long != offers.product_article(other, "X" * 79)


def test_schedules_and_budget_follow_the_row(settings):
    from django_q.models import Schedule

    from backoffice.core.schedules import setup_schedules
    from catalog.services import budget

    settings.ALSTYLE_MIN_INTERVAL, settings.ALSTYLE_SLOT_MARGIN = 0, 0.5
    factories.alstyle_row(min_interval=5.0, full_sync_minutes=45, stock_sync_minutes=0)
    setup_schedules()
    assert Schedule.objects.get(name="catalog-sync").minutes == 45
    assert not Schedule.objects.filter(name="stock-sync").exists()  # 0 = not scheduled
    assert budget.capacity_per_hour() == 654  # 3600 // (5 + 0.5), from the row
    assert budget.catalog_minutes() == 45


def test_alstyle_offer_whose_product_was_deleted_gets_it_back():
    alstyle = Supplier.alstyle()
    offers.upsert_offers(alstyle, [(record("7"), {})], run=run())
    Product.objects.all().delete()  # offers stay (SET_NULL)
    again = run()
    offers.upsert_offers(alstyle, [(record("7"), {})], run=again)
    product = Product.objects.get(article="7")
    assert product.offer == SupplierOffer.objects.get(supplier=alstyle, article="7")
    assert product.offer.product_id == product.pk
    assert again.counts["updated"] == 1
