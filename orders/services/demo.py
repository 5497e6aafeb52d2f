"""Made-up demo Kaspi orders (invented names and numbers), through the real import path."""

import base64
from datetime import timedelta

from django.utils import timezone

from backoffice.models import SyncRun
from catalog.clients.kaspi_shop import Window, to_ms
from catalog.models import Product

from ..models import Order
from .imports import ProductIndex, import_page, refresh_reservations

STATUSES = [
    "APPROVED_BY_BANK",
    "APPROVED_BY_BANK",
    "ACCEPTED_BY_MERCHANT",
    "COMPLETED",
    "CANCELLED",
]
NAMES = ["Айгерим С.", "Данияр К.", "Мария П.", "Ерлан Т.", "Алия Н."]


class _DemoClient:
    def __init__(self, entries):
        self.entries = entries

    def order_entries(self, order_id):
        return self.entries[order_id]


def demo_page(now) -> tuple[dict, dict]:
    products = list(Product.objects.filter(kaspi_price__isnull=False).order_by("sku")[:10])
    data, entries = [], {}
    for n in range(10):
        code = str(900000001 + n)
        order_id = base64.b64encode(code.encode()).decode()
        product = products[n % len(products)] if products else None
        price = product.kaspi_price if product else 10000
        quantity = 1 + n % 2
        data.append(
            {
                "type": "orders",
                "id": order_id,
                "attributes": {
                    "code": code,
                    "totalPrice": float(price * quantity),
                    "paymentMode": "PREPAID",
                    "creationDate": to_ms(now - timedelta(hours=5 * n + 1)),
                    "state": "KASPI_DELIVERY" if n % 2 else "PICKUP",
                    "status": STATUSES[n % len(STATUSES)],
                    "deliveryMode": "DELIVERY_LOCAL" if n % 2 else "DELIVERY_PICKUP",
                    "isKaspiDelivery": bool(n % 2),
                    "deliveryCost": 0.0,
                    "preOrder": False,
                    "customer": {"name": NAMES[n % len(NAMES)], "cellPhone": f"70000000{n:02d}"},
                    "deliveryAddress": {"formattedAddress": f"Алматы, улица Демо, {n + 1}"},
                },
            }
        )
        entries[order_id] = [
            {
                "type": "orderentries",
                "id": f"E{code}",
                "attributes": {
                    "quantity": quantity,
                    "basePrice": float(price),
                    "totalPrice": float(price * quantity),
                    "entryNumber": 0,
                    "offer": {
                        "code": product.sku if product else "UNKNOWN1",
                        "name": product.name if product else "Неизвестный товар",
                    },
                },
            }
        ]
    return {"data": data, "meta": {"pageCount": 1, "totalCount": len(data)}}, entries


def load_demo_orders() -> dict:
    if Order.objects.filter(code__startswith="9000000").exists():
        return {"orders": Order.objects.count()}
    now = timezone.now()
    page, entries = demo_page(now)
    run = SyncRun(kind=SyncRun.Kind.ORDERS)
    products = ProductIndex()
    import_page(
        page,
        run=run,
        client=_DemoClient(entries),
        window=Window(to_ms(now - timedelta(days=14)), to_ms(now)),
        products=products,
    )
    refresh_reservations(products.touched)
    return {"orders": Order.objects.count()}
