"""Status changes staff ask Kaspi for (docs/kaspi-shop-api.md §5.2).

Each is a real business action (money, an SMS to the buyer): it runs only on an explicit
staff request, is never retried automatically, and is recorded as an OrderAction with
who, when and Kaspi's answer, whether it succeeded or not.
"""

import json
import logging

from django.utils.translation import gettext as _

from backoffice.core.audit import audit
from backoffice.core.exceptions import ExternalServiceError
from catalog.clients.kaspi_shop import KaspiShopClient

from ..models import Order, OrderAction
from .direct import cancel_direct_order
from .errors import OrderActionRefused
from .kaspi_records import kaspi_delivery
from .reservations import refresh_reservations
from .stages import follow_kaspi_status

logger = logging.getLogger(__name__)

CANCELLATION_REASONS = (
    "BUYER_CANCELLATION_BY_MERCHANT",
    "BUYER_NOT_REACHABLE",
    "MERCHANT_OUT_OF_STOCK",
)


def accept_order(*, order: Order, user=None, client: KaspiShopClient | None = None) -> Order:
    _require(order, {"APPROVED_BY_BANK"})
    _send(order, OrderAction.Action.ACCEPT, "ACCEPTED_BY_MERCHANT", user, client)
    return order


def cancel_order(*, order: Order, reason: str, comment: str = "", user=None, client=None) -> Order:
    if reason not in CANCELLATION_REASONS:
        raise OrderActionRefused(_("unknown cancellation reason %(reason)r") % {"reason": reason})
    if order.channel == Order.Channel.DIRECT:
        return cancel_direct_order(order=order, reason=reason, comment=comment, user=user)
    _require(order, {"APPROVED_BY_BANK", "ACCEPTED_BY_MERCHANT"})
    extra = {"cancellationReason": reason}
    if comment:
        extra["cancellationComment"] = comment[:1000]
    _send(order, OrderAction.Action.CANCEL, "CANCELLED", user, client, extra=extra, detail=reason)
    return order


def send_completion_code(*, order: Order, user=None, client=None) -> Order:
    """Step 1 of completion: Kaspi texts a code to the buyer's app."""
    _require(order, {"ACCEPTED_BY_MERCHANT"})
    headers = {"X-Security-Code": "", "X-Send-Code": "true"}
    _send(
        order,
        OrderAction.Action.SEND_CODE,
        "COMPLETED",
        user,
        client,
        headers=headers,
        apply_status=False,
    )
    return order


def complete_order(*, order: Order, security_code: str, user=None, client=None) -> Order:
    """Step 2 of completion: the code the buyer tells staff."""
    _require(order, {"ACCEPTED_BY_MERCHANT"})
    code = (security_code or "").strip()
    if not code.isdigit():
        raise OrderActionRefused(_("enter the code the buyer received from Kaspi (digits)"))
    headers = {"X-Security-Code": code, "X-Send-Code": "false"}
    _send(order, OrderAction.Action.COMPLETE, "COMPLETED", user, client, headers=headers)
    return order


def assemble_order(*, order: Order, parcels, user=None, client=None) -> Order:
    """Kaspi Delivery: tell Kaspi the order is packed in `parcels` parcels (`ASSEMBLE` with
    `numberOfSpace`); Kaspi then issues the waybill and plans the courier. The order keeps
    its status. The waybill comes in the answer, else from one read of the order, else
    with the next import."""
    if not order.is_kaspi_delivery:
        raise OrderActionRefused(
            _("order %(code)s is not a Kaspi Delivery order") % {"code": order.code}
        )
    _require(order, {"ACCEPTED_BY_MERCHANT"})
    if order.kaspi_assembled:
        raise OrderActionRefused(
            _("order %(code)s is already packed in Kaspi") % {"code": order.code}
        )
    try:
        parcels = int(parcels)
    except (TypeError, ValueError):
        parcels = 0
    if parcels < 1:
        raise OrderActionRefused(_("enter the number of parcels (1 or more)"))
    client = client or KaspiShopClient()
    answer = _send(
        order,
        OrderAction.Action.ASSEMBLE,
        "ASSEMBLE",
        user,
        client,
        extra={"numberOfSpace": parcels},
        detail=_("parcels: %(n)d") % {"n": parcels},
        apply_status=False,
    )
    data = answer.get("data") if isinstance(answer, dict) else None
    attrs = (data or {}).get("attributes") if isinstance(data, dict) else None
    delivery = kaspi_delivery(attrs if isinstance(attrs, dict) else {})
    if not delivery["waybill_number"]:
        try:  # a GET, safe to send: Kaspi may issue the waybill a moment later
            fresh = client.order(order.kaspi_id).get("attributes") or {}
            delivery = kaspi_delivery(fresh)
        except ExternalServiceError as exc:
            logger.info("order %s: waybill not read after ASSEMBLE: %s", order.code, exc)
    delivery["kaspi_assembled"] = True  # Kaspi accepted the packing
    delivery["parcels"] = parcels
    Order.objects.filter(pk=order.pk).update(**delivery)
    for name, value in delivery.items():
        setattr(order, name, value)
    return order


def _require(order: Order, allowed: set[str]) -> None:
    if order.channel != Order.Channel.KASPI or not order.kaspi_id:
        raise OrderActionRefused(_("order %(code)s is not a Kaspi order") % {"code": order.code})
    if order.status not in allowed:
        raise OrderActionRefused(
            _("order %(code)s: not possible in status %(status)s")
            % {"code": order.code, "status": _status_label(order.status)}
        )


def _status_label(status: str) -> str:
    return str(dict(Order.Status.choices).get(status, status or "—"))


def _send(
    order, action, status, user, client, *, extra=None, headers=None, detail="", apply_status=True
) -> dict:
    """POST the status change once, record it (ok or Kaspi's error), return Kaspi's answer."""
    record = OrderAction(
        order=order, action=action, user=user if user and user.pk else None, detail=detail
    )
    try:
        answer = (client or KaspiShopClient()).set_status(
            order_id=order.kaspi_id, code=order.code, status=status, extra=extra, headers=headers
        )
    except ExternalServiceError as exc:
        record.response = str(exc)
        record.save()
        logger.warning("order %s %s refused: %s", order.code, action, exc)
        raise
    record.ok = True
    record.response = json.dumps(answer, ensure_ascii=False)[:10000]
    record.save()
    if user is not None and getattr(user, "pk", None):
        audit(
            user=user,
            action=f"order.{action}",
            obj=order,
            before={"status": order.status},
            after={"status": status if apply_status else order.status},
            note=detail,
        )
    if apply_status:
        new_status = ((answer.get("data") or {}).get("attributes") or {}).get("status") or status
        Order.objects.filter(pk=order.pk).update(status=new_status)
        order.status = new_status
        follow_kaspi_status(order)
        refresh_reservations({e.product_id for e in order.entries.all() if e.product_id})
    logger.info("order %s: %s by %s", order.code, action, getattr(user, "username", "-"))
    return answer
