"""Issue 18 item 6: existing data moves into Supplier/SupplierOffer by a data migration.

The database is taken back to the state before the supplier models (catalog 0009: products
without offers), 1,000 products with orders and purchases are there, and it is migrated
forward again: nothing lost, SKUs unchanged, one offer per product copied from it and
chosen, and the price list byte-identical before and after.
"""

import io
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from catalog.models import Brand, Category, Product, Supplier, SupplierOffer
from catalog.services.feed import CheckedSink, WriteStats, feed_rows, write_feed
from catalog.services.legacy_offers import legacy_feed_offers
from orders.models import Order, OrderEntry, SupplierPurchase

BEFORE = [("catalog", "0009_published_offer")]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def price_list() -> bytes:
    buffer = io.BytesIO()
    write_feed(
        CheckedSink(buffer),
        feed_rows(NOW),
        now=NOW,
        stats=WriteStats(),
        legacy=legacy_feed_offers(NOW),
    )
    return buffer.getvalue()


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def make_shop(n=1000):
    categories = [
        Category.objects.create(supplier_id=3000 + k, name=f"Категория {k}") for k in range(5)
    ]
    brands = [Brand.objects.create(name=f"Brand {k}") for k in range(7)]
    products = [
        Product(
            article=str(100000 + i),
            article_pn=f"PN-{i}/X" if i % 9 else "",
            name=f"Товар {i} «{i % 13}» & <x>",
            full_name=f"Товар {i} полное",
            category=categories[i % 5] if i % 11 else None,
            brand=brands[i % 7] if i % 4 else None,
            price1=None if i % 97 == 0 else 1000 + i * 37,
            price2=1200 + i * 41,
            quantity=[0, 3, 12, 50][i % 4],
            quantity_raw=["0", "3", "12", ">50"][i % 4],
            is_new=i % 50 == 0,
            price_on_request=i % 97 == 0,
            listed=i % 23 != 0,
            available=[0, 3, 12, 50][i % 4] > 0 and i % 23 != 0,
            data_hash=f"{i:032x}",
            raw=f'{{"article": {100000 + i}}}',
            sku=f"AS{100000 + i}" if i % 10 else f"OLD sku/{i}",
            kaspi_price=None if i % 97 == 0 else 1500 + i * 50,
            preorder_days=3 if i % 31 == 0 else 0,
            kaspi_enabled=i % 17 != 0,
        )
        for i in range(n)
    ]
    Product.objects.bulk_create(products)
    by_article = {p.article: p for p in Product.objects.all()}
    for k in range(40):
        order = Order.objects.create(code=f"K{k}", kaspi_id=f"k{k}", status="ACCEPTED_BY_MERCHANT")
        product = by_article[str(100000 + k * 7)]
        OrderEntry.objects.create(
            order=order, offer_code=product.sku, name=product.name, quantity=1, product=product
        )
        if k % 2:
            SupplierPurchase.objects.create(
                order=order,
                status=SupplierPurchase.Status.SUBMITTED,
                reference=f"ref-{k}",
                lines=[{"article": product.article, "quantity": 1}],
            )


def snapshot():
    return {
        "products": sorted(
            Product.objects.values_list(
                "pk",
                "article",
                "sku",
                "name",
                "price1",
                "price2",
                "quantity",
                "quantity_raw",
                "listed",
                "available",
                "kaspi_price",
                "category_id",
                "brand_id",
            )
        ),
        "entries": sorted(OrderEntry.objects.values_list("pk", "order_id", "product_id")),
        "purchases": sorted(SupplierPurchase.objects.values_list("pk", "order_id", "lines")),
        "orders": Order.objects.count(),
    }


@pytest.mark.django_db(transaction=True)
def test_migration_keeps_everything_and_copies_one_offer_per_product():
    leaves = latest()
    make_shop()
    # The shop as it is before the move: no offers.
    before_feed = price_list()
    before = snapshot()
    skus = dict(Product.objects.values_list("article", "sku"))
    migrate(BEFORE)
    assert "catalog_supplieroffer" not in connection.introspection.table_names()
    migrate(leaves)

    assert snapshot() == before  # nothing lost, nothing changed
    assert dict(Product.objects.values_list("article", "sku")) == skus
    assert price_list() == before_feed
    alstyle = Supplier.objects.get(code="alstyle")
    assert alstyle.kind == "api"
    assert alstyle.sku_prefix == "AS"
    assert SupplierOffer.objects.count() == 1000
    for product in Product.objects.select_related("offer", "brand", "category"):
        offer = product.offer
        assert offer is not None
        assert offer.product_id == product.pk
        assert (offer.supplier_id, offer.article) == (alstyle.pk, product.article)
        assert (offer.dealer_price, offer.retail_price) == (product.price1, product.price2)
        assert (offer.quantity, offer.quantity_raw) == (product.quantity, product.quantity_raw)
        assert (offer.listed, offer.data_hash, offer.raw) == (
            product.listed,
            product.data_hash,
            product.raw,
        )
        assert offer.part_number == product.article_pn
        assert offer.brand == (product.brand.name if product.brand else "")
        assert offer.supplier_category_id == (
            str(product.category.supplier_id) if product.category else ""
        )
