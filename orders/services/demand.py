"""The orders' answers to the catalog's questions about sales (catalog/demand.py).

Registered in OrdersConfig.ready(), so the catalog gets them without importing orders.
"""

from datetime import timedelta

from django.db.models import Sum
from django.utils import timezone

from ..models import Order, OrderEntry


def open_order_products():
    """Per entry: a product also sold in a completed order is still in the open one."""
    return (
        OrderEntry.objects.filter(product__isnull=False)
        .exclude(order__status__in=Order.FINAL_STATUSES)
        .values("product_id")
    )


def best_sellers(limit: int = 50, days: int = 30) -> set[int]:
    """Product ids of the most sold units on Kaspi over the last `days`."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        OrderEntry.objects.filter(product__isnull=False, order__creation_date__gte=since)
        .values("product_id")
        .annotate(units=Sum("quantity"))
        .order_by("-units")[:limit]
    )
    return {row["product_id"] for row in rows}


def sold_unlinked():
    """The latest Kaspi entry of each sold product that has no card link yet."""
    entries = (
        OrderEntry.objects.filter(product__isnull=False, product__kaspi_link__isnull=True)
        .exclude(kaspi_id="")
        .select_related("product")
        .order_by("product_id", "-id")
    )
    seen = set()
    for entry in entries:
        if entry.product_id not in seen:
            seen.add(entry.product_id)
            yield entry.product, entry.kaspi_id


def register() -> None:
    from catalog.demand import register as register_demand

    register_demand(
        open_order_products=open_order_products,
        best_sellers=best_sellers,
        sold_unlinked=sold_unlinked,
    )
