"""One purchase per order and supplier (issue 18.5): purchases gain their supplier, every
existing one Al-Style's; a supplier without a cart API gets a purchase list (`listed`)."""

import django.db.models.deletion
from django.db import migrations, models

import orders.models


def to_alstyle(apps, schema_editor):
    Supplier = apps.get_model("catalog", "Supplier")
    SupplierPurchase = apps.get_model("orders", "SupplierPurchase")
    if not SupplierPurchase.objects.exists():
        return
    alstyle, _created = Supplier.objects.get_or_create(
        code="alstyle", defaults={"name": "Al-Style", "kind": "api"}
    )
    SupplierPurchase.objects.filter(supplier__isnull=True).update(supplier=alstyle)


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0011_supplier_offers_data"),
        ("orders", "0007_supplier_purchase_attempts"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="supplierpurchase",
            name="one_live_supplier_purchase_per_order",
        ),
        migrations.AddField(
            model_name="supplierpurchase",
            name="supplier",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="purchases",
                to="catalog.supplier",
                verbose_name="supplier",
            ),
        ),
        migrations.RunPython(to_alstyle, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="supplierpurchase",
            name="supplier",
            field=models.ForeignKey(
                default=orders.models.alstyle_supplier_id,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="purchases",
                to="catalog.supplier",
                verbose_name="supplier",
            ),
        ),
        migrations.AlterField(
            model_name="supplierpurchase",
            name="status",
            field=models.CharField(
                choices=[
                    ("submitted", "submitted"),
                    ("listed", "purchase list: order by hand"),
                    ("failed", "failed before submit"),
                    ("refused", "refused by Al-Style"),
                    ("unknown", "unknown: check Al-Style"),
                ],
                max_length=10,
                verbose_name="status",
            ),
        ),
        migrations.AddConstraint(
            model_name="supplierpurchase",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["submitted", "unknown", "listed"])),
                fields=("order", "supplier"),
                name="one_live_purchase_per_order_supplier",
            ),
        ),
    ]
