"""The fulfilment steps of an order and the one way to move between them.

A Kaspi order moves new → accepted → purchased → assembled → handed over → completed (or
cancelled / returned). Every move is checked against the table below and recorded with who
and when; Kaspi's own status moves it forward too (never back). This is the floor under the
Kaspi status actions (status.py) and the fulfilment work (fulfilment.py): it calls neither.
"""

from django.db import transaction
from django.utils.translation import gettext

from backoffice.core.audit import audit
from backoffice.core.exceptions import BackofficeError

from ..models import Fulfilment, FulfilmentEvent, Order

TRANSITIONS = {
    Fulfilment.NEW: {Fulfilment.ACCEPTED, Fulfilment.CANCELLED},
    Fulfilment.ACCEPTED: {Fulfilment.PURCHASED, Fulfilment.ASSEMBLED, Fulfilment.CANCELLED},
    Fulfilment.PURCHASED: {Fulfilment.ASSEMBLED, Fulfilment.CANCELLED},
    Fulfilment.ASSEMBLED: {Fulfilment.HANDED_OVER, Fulfilment.CANCELLED},
    Fulfilment.HANDED_OVER: {Fulfilment.COMPLETED, Fulfilment.RETURNED},
    Fulfilment.COMPLETED: {Fulfilment.RETURNED},
    Fulfilment.CANCELLED: set(),
    Fulfilment.RETURNED: set(),
}
ORDER = [
    Fulfilment.NEW,
    Fulfilment.ACCEPTED,
    Fulfilment.PURCHASED,
    Fulfilment.ASSEMBLED,
    Fulfilment.HANDED_OVER,
    Fulfilment.COMPLETED,
]
# Kaspi status → the fulfilment step it proves at least.
FROM_KASPI = {
    "ACCEPTED_BY_MERCHANT": Fulfilment.ACCEPTED,
    "COMPLETED": Fulfilment.COMPLETED,
    "CANCELLED": Fulfilment.CANCELLED,
    "CANCELLING": Fulfilment.CANCELLED,
    "RETURNED": Fulfilment.RETURNED,
    "RETURN_ACCEPTED_BY_MERCHANT": Fulfilment.RETURNED,
}


class FulfilmentRefused(BackofficeError):
    pass


def set_fulfilment(*, order: Order, to: str, user=None, note: str = "") -> Order:
    """Move `order` to `to` if the table allows it; record who and when."""
    with transaction.atomic():
        current = Order.objects.select_for_update().get(pk=order.pk)
        if to not in TRANSITIONS.get(current.fulfilment, set()):
            raise FulfilmentRefused(_step_refused(current, to))
        if to == Fulfilment.ASSEMBLED and _packed_in_kaspi_first(current):
            raise FulfilmentRefused(
                gettext(
                    "order %(code)s is a Kaspi Delivery order: give the number of parcels, "
                    "so it is packed in Kaspi and the courier comes"
                )
                % {"code": current.code}
            )
        FulfilmentEvent.objects.create(
            order=current,
            from_status=current.fulfilment,
            to_status=to,
            user=user if getattr(user, "pk", None) else None,
            note=note[:500],
        )
        Order.objects.filter(pk=current.pk).update(fulfilment=to)
        if getattr(user, "pk", None):
            audit(
                user=user,
                action="order.fulfilment",
                obj=current,
                before={"fulfilment": current.fulfilment},
                after={"fulfilment": to},
                note=note,
            )
    order.fulfilment = to
    return order


def _step_refused(order: Order, to: str) -> str:
    return gettext("order %(code)s: cannot go from «%(from)s» to «%(to)s»") % {
        "code": order.code,
        "from": order.get_fulfilment_display(),
        "to": Fulfilment(to).label,
    }


def _packed_in_kaspi_first(order: Order) -> bool:
    """A Kaspi Delivery order becomes "assembled" only through ASSEMBLE in Kaspi."""
    return (
        order.channel == Order.Channel.KASPI
        and order.is_kaspi_delivery
        and not (order.kaspi_assembled)
    )


def follow_kaspi_status(order: Order) -> None:
    """Move fulfilment forward to what Kaspi's status proves (never backwards)."""
    target = FROM_KASPI.get(order.status)
    if target is None or target == order.fulfilment:
        return
    current = order.fulfilment
    if target in (Fulfilment.CANCELLED, Fulfilment.RETURNED):
        if current in (Fulfilment.CANCELLED, Fulfilment.RETURNED):
            return
        steps = [target]
    else:
        if current not in ORDER or ORDER.index(target) <= ORDER.index(current):
            return
        steps = ORDER[ORDER.index(current) + 1 : ORDER.index(target) + 1]
    with transaction.atomic():
        for step in steps:
            FulfilmentEvent.objects.create(
                order=order, from_status=current, to_status=step, note=f"Kaspi: {order.status}"
            )
            current = step
        Order.objects.filter(pk=order.pk).update(fulfilment=current)
    order.fulfilment = current
