"""Reserved stock: what open Kaspi orders hold of each product (read by the price list)."""

from django.db import transaction
from django.db.models import Sum

from catalog.models import Product

from ..models import Order, OrderEntry


def refresh_reservations(product_ids: set[int] | None = None) -> int:
    """Recompute `Product.reserved_quantity` from open Kaspi orders (all products, or some)."""
    open_entries = OrderEntry.objects.filter(
        order__channel=Order.Channel.KASPI,
        order__status__in=Order.RESERVING_STATUSES,
        product__isnull=False,
    )
    if product_ids is not None:
        if not product_ids:
            return 0
        open_entries = open_entries.filter(product_id__in=product_ids)
    totals = dict(
        open_entries.values("product_id")
        .annotate(total=Sum("quantity"))
        .values_list("product_id", "total")
    )
    scope = Product.objects.all()
    if product_ids is not None:
        scope = scope.filter(pk__in=product_ids)
    changed = 0
    with transaction.atomic():
        changed += (
            scope.exclude(pk__in=list(totals))
            .exclude(reserved_quantity=0)
            .update(reserved_quantity=0)
        )
        for product_id, total in totals.items():
            changed += (
                Product.objects.filter(pk=product_id)
                .exclude(reserved_quantity=total)
                .update(reserved_quantity=total)
            )
    return changed
