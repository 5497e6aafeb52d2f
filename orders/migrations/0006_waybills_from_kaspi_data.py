"""Fill the packing and waybill fields of orders imported before they existed, from the
Kaspi data each order keeps (`assembled`, `kaspiDelivery`), so an order already packed in
the cabinet is not packed again."""

import json
from datetime import UTC, datetime

from django.db import migrations


def fill(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    for order in Order.objects.filter(is_kaspi_delivery=True, raw__contains="waybill").iterator():
        try:
            attrs = json.loads(order.raw).get("attributes") or {}
        except (ValueError, AttributeError):
            continue
        delivery = attrs.get("kaspiDelivery") if isinstance(attrs, dict) else None
        if not isinstance(delivery, dict):
            continue
        number = str(delivery.get("waybillNumber") or "")[:64]
        url = str(delivery.get("waybill") or "").strip()
        planned = delivery.get("courierTransmissionPlanningDate")
        try:
            courier = datetime.fromtimestamp(int(planned) / 1000, tz=UTC) if planned else None
        except (TypeError, ValueError, OverflowError):
            courier = None
        Order.objects.filter(pk=order.pk).update(
            kaspi_assembled=bool(attrs.get("assembled") or number),
            waybill_number=number,
            waybill_url=url[:1000] if url.startswith(("https://", "http://")) else "",
            courier_planned_at=courier,
        )


class Migration(migrations.Migration):
    dependencies = [("orders", "0005_order_staff_note")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
