"""orders 0010 fills in the products of live purchases made before purchases recorded them:
from their lines' supplier articles (the supplier's offers of the order's products, or our
article for Al-Style), never from the lines' chosen offers of today."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from catalog.models import Product, Supplier
from tests import factories

BEFORE = [("orders", "0009_purchase_list_ordered")]
AFTER = [("orders", "0010_purchase_products")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_live_purchases_get_the_products_their_lines_name():
    apps = migrate(BEFORE)  # orders only: catalog's tables stay as they are now
    Order = apps.get_model("orders", "Order")
    OrderEntry = apps.get_model("orders", "OrderEntry")
    SupplierPurchase = apps.get_model("orders", "SupplierPurchase")
    alstyle = Supplier.alstyle()
    vtt = factories.supplier(code="vtt", name="VTT")
    cable = factories.product(article="101", sku="AS101", with_offer=False)  # no offer row
    mouse = factories.product(article="V77", sku="VT77", with_offer=False)
    # The mouse's chosen offer is Al-Style's now, but its purchase list is VTT's.
    factories.offer_for(mouse, vtt, article="VTT-77")
    chosen = factories.offer_for(mouse, alstyle, article="A77")
    Product.objects.filter(pk=mouse.pk).update(offer=chosen)
    order = Order.objects.create(kaspi_id="MTAy", code="102", fulfilment="accepted")
    for n, product in enumerate([cable, mouse], 1):
        OrderEntry.objects.create(order=order, entry_number=n, product_id=product.pk)
    cart = SupplierPurchase.objects.create(
        order=order, supplier_id=alstyle.pk, status="submitted", lines=[{"article": "101"}]
    )
    listed = SupplierPurchase.objects.create(
        order=order, supplier_id=vtt.pk, status="listed", lines=[{"article": "VTT-77"}]
    )
    failed = SupplierPurchase.objects.create(
        order=order, supplier_id=vtt.pk, status="failed", lines=[{"article": "VTT-77"}]
    )

    apps = migrate(AFTER)

    SupplierPurchase = apps.get_model("orders", "SupplierPurchase")
    got = dict(SupplierPurchase.objects.values_list("pk", "products"))
    assert got == {cart.pk: [cable.pk], listed.pk: [mouse.pk], failed.pk: []}
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
