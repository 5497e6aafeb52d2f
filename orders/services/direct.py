"""Direct sales (the shop's own site, phone, walk-in): orders made from a paid payment."""

from django.utils.translation import gettext

from backoffice.core.audit import audit
from backoffice.core.i18n import in_shop_language
from catalog.models import Product

from ..models import Order, OrderEntry
from .errors import OrderActionRefused


def create_direct_order_for_payment(payment) -> Order:
    """The "auto order creation" of a checkout paid before any order existed.

    The order takes the payment's reference as its number, its amount, and one line per
    basket item (linked to our product by SKU when one matches). Runs inside the payment's
    transaction, so both are saved or neither.
    """
    order = Order.objects.create(
        channel=Order.Channel.DIRECT,
        code=payment.reference,
        total_price=payment.amount,
        paid_at=payment.paid_at,
        creation_date=payment.created_at,
        customer_name=(payment.description or "")[:255],
    )
    lines = [line for line in payment.basket or [] if isinstance(line, dict)]
    skus = {str(line.get("sku") or "") for line in lines}
    products = dict(Product.objects.filter(sku__in=skus).values_list("sku", "pk"))
    OrderEntry.objects.bulk_create(
        OrderEntry(
            order=order,
            entry_number=number,
            offer_code=str(line.get("sku") or "")[:64],
            name=str(line.get("name") or ""),
            quantity=max(int(line.get("quantity") or 1), 1),
            base_price=max(int(line.get("price") or 0), 0),
            total_price=max(int(line.get("price") or 0), 0)
            * max(int(line.get("quantity") or 1), 1),
            product_id=products.get(str(line.get("sku") or "")),
        )
        for number, line in enumerate(lines)
    )
    type(payment).objects.filter(pk=payment.pk).update(order=order)
    payment.order = order
    return order


@in_shop_language
def cancel_direct_order(*, order: Order, reason: str = "", comment: str = "", user=None) -> Order:
    """A direct sale is cancelled, never deleted: it stays in the books with its lines.

    A paid sale keeps its money until the payment is refunded, so it is refused until then.
    """
    if order.channel != Order.Channel.DIRECT:
        raise OrderActionRefused(
            gettext("order %(code)s is not a direct sale") % {"code": order.code}
        )
    if order.status == "CANCELLED":
        return order
    if order.paid_at and not order.payments.filter(status="refunded").exists():
        raise OrderActionRefused(
            gettext("order %(code)s is paid: refund its payment first") % {"code": order.code}
        )
    before = order.status
    order.status = "CANCELLED"
    order.save(update_fields=["status", "updated_at"])
    audit(
        user=user,
        action="order.cancel",
        obj=order,
        before={"status": before},
        after={"status": "CANCELLED"},
        note=" ".join(part for part in (reason, comment) if part),
    )
    return order
