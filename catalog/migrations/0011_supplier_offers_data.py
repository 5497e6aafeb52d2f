"""Existing data moves into the supplier models (issue 18 item 6).

Al-Style's Supplier row is seeded from the ALSTYLE_* settings (only when it does not exist
yet: after that the row wins), and every existing product, all of them Al-Style's, gets
one SupplierOffer copied from its supplier columns, linked both ways (offer.product and
product.offer). Product columns, SKUs and everything the price list reads stay as they
were. Reversible: going back deletes the offers and the seeded row.
"""

from django.conf import settings
from django.db import migrations

BATCH = 2000


def alstyle_defaults() -> dict:
    return {
        "name": "Al-Style",
        "kind": "api",
        "enabled": True,
        "sku_prefix": getattr(settings, "SKU_PREFIX", "AS")[:8],
        "min_interval": getattr(settings, "ALSTYLE_MIN_INTERVAL", 5.0),
        "full_sync_minutes": getattr(settings, "CATALOG_SYNC_INTERVAL_MINUTES", 30),
        "stock_sync_minutes": getattr(settings, "STOCK_SYNC_INTERVAL_MINUTES", 10),
        "priority": 100,
    }


def forwards(apps, schema_editor):
    Supplier = apps.get_model("catalog", "Supplier")
    SupplierOffer = apps.get_model("catalog", "SupplierOffer")
    Product = apps.get_model("catalog", "Product")
    db = schema_editor.connection.alias
    supplier, _created = Supplier.objects.using(db).get_or_create(
        code="alstyle", defaults=alstyle_defaults()
    )
    have = set(
        SupplierOffer.objects.using(db).filter(supplier=supplier).values_list("article", flat=True)
    )
    products = (
        Product.objects.using(db)
        .select_related("brand", "category")
        .order_by("pk")
        .iterator(chunk_size=BATCH)
    )
    batch = []
    for product in products:
        if product.article in have:
            continue
        batch.append(
            SupplierOffer(
                supplier=supplier,
                article=product.article,
                part_number=product.article_pn,
                name=product.name,
                full_name=product.full_name,
                brand=product.brand.name if product.brand_id else "",
                category=product.category.name[:255] if product.category_id else "",
                supplier_category_id=(
                    str(product.category.supplier_id) if product.category_id else ""
                ),
                dealer_price=product.price1,
                retail_price=product.price2,
                quantity=product.quantity,
                quantity_raw=product.quantity_raw,
                is_new=product.is_new,
                price_on_request=product.price_on_request,
                raw=product.raw,
                data_hash=product.data_hash,
                first_seen=product.first_seen,
                last_seen=product.last_seen,
                listed=product.listed,
                product_id=product.pk,
            )
        )
        if len(batch) >= BATCH:
            _save(Product, SupplierOffer, db, batch)
            batch = []
    if batch:
        _save(Product, SupplierOffer, db, batch)


def _save(Product, SupplierOffer, db, offers) -> None:
    """Insert a batch of offers and make each its product's chosen offer."""
    SupplierOffer.objects.using(db).bulk_create(offers)
    pairs = dict(
        SupplierOffer.objects.using(db)
        .filter(product_id__in=[offer.product_id for offer in offers])
        .values_list("product_id", "pk")
    )
    Product.objects.using(db).bulk_update(
        [Product(pk=product_id, offer_id=offer_id) for product_id, offer_id in pairs.items()],
        ["offer"],
    )


def backwards(apps, schema_editor):
    Supplier = apps.get_model("catalog", "Supplier")
    SupplierOffer = apps.get_model("catalog", "SupplierOffer")
    Product = apps.get_model("catalog", "Product")
    db = schema_editor.connection.alias
    Product.objects.using(db).update(offer=None, pinned_offer=None)
    SupplierOffer.objects.using(db).all().delete()
    Supplier.objects.using(db).all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0010_suppliers"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
