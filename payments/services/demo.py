"""Demo payments for a first run: one waiting for payment, one paid (made-up data)."""

from django.conf import settings

from catalog.models import Product

from ..models import Payment
from .create import create_payment
from .events import apply_payment_event


def load_demo_payments() -> dict:
    if settings.PAYMENTS_PROVIDER != "demo" or Payment.objects.exists():
        return {"payments": Payment.objects.count()}
    products = list(Product.objects.filter(kaspi_price__isnull=False).order_by("sku")[:2])
    basket = [
        {"sku": p.sku, "name": p.name, "quantity": 1, "price": p.kaspi_price} for p in products
    ]
    create_payment(
        amount=sum(line["price"] for line in basket) or 5000,
        basket=basket,
        description="Демо: заказ с сайта",
    )
    paid = create_payment(amount=12990, description="Демо: покупка в магазине")
    apply_payment_event(payment_id=paid.pk, source="demo", key=f"{paid.pk}:paid", status="paid")
    return {"payments": Payment.objects.count()}
