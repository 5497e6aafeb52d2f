"""Staff changes to our products (Kaspi listing switch, SKU, manual price, pre-order).

Each change is audited here, in the service, so the admin, a command, a task or the API
leave the same audit entry (issue 18.9); the admin only calls these functions.
"""

from django.db import transaction

from backoffice.core.audit import audit, snapshot

from ..models import Product
from .pricing import reprice_products

# The product fields whose change is audited (money or what Kaspi shows).
AUDITED_FIELDS = ["kaspi_enabled", "sku", "manual_price", "preorder_days"]


def set_kaspi_enabled(*, products, enabled: bool, user=None) -> int:
    """Put products on Kaspi (or take them off); one audit entry lists their SKUs."""
    with transaction.atomic():
        skus = list(products.values_list("sku", flat=True)[:1000])
        count = products.update(kaspi_enabled=enabled)
        audit(
            user=user,
            action="product.enable_on_kaspi" if enabled else "product.disable_on_kaspi",
            after={"skus": skus},
            note=f"{count} products",
        )
    return count


def save_product(*, product: Product, before: dict, user=None) -> list[str]:
    """Save an edited product; audit the changed AUDITED_FIELDS (`before`: their values
    before the edit) and reprice it when its manual price changed. Returns those fields."""
    changed = [name for name in AUDITED_FIELDS if name in before]
    product.save()
    if changed:
        audit(
            user=user,
            action="product.change",
            obj=product,
            before={name: before[name] for name in changed},
            after=snapshot(product, changed),
        )
    if "manual_price" in changed:
        reprice_products(queryset=Product.objects.filter(pk=product.pk))
    return changed
