"""What staff do to a payment from the admin: check its status now, retry a failed one,
record a refund (and move the sale it paid for). The admin and any command call these."""

from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext, gettext_lazy

from backoffice.core.audit import audit
from backoffice.core.exceptions import BackofficeError

from ..models import Payment
from .create import create_payment
from .events import PaymentRejected, record_manual_refund
from .polling import poll_payment_once

# Kaspi QR's status words (partner API), said the way staff read them; the code follows.
KASPI_STATUS_WORDS = {
    "QrTokenCreated": gettext_lazy("QR shown, not scanned yet"),
    "Wait": gettext_lazy("scanned, waiting for the buyer to confirm"),
    "Processed": gettext_lazy("paid"),
    "Error": gettext_lazy("refused or timed out"),
}


def remote_words(remote: str) -> str:
    words = KASPI_STATUS_WORDS.get(remote)
    return f"{words} ({remote})" if words else (remote or "—")


@dataclass(frozen=True)
class StatusCheck:
    payment: Payment
    before: str
    remote: str = ""
    error: str = ""
    asked: bool = True  # False: the payment was final already, nothing was asked

    @property
    def changed(self) -> bool:
        return self.payment.status != self.before

    def message(self) -> str:
        """What the check found, in words staff read."""
        status = self.payment.get_status_display()
        values = {"ref": self.payment.reference, "status": status}
        if not self.asked:
            return gettext("%(ref)s: the payment is «%(status)s» already; nothing to check.") % (
                values
            )
        if self.error:
            return gettext(
                "%(ref)s: could not ask the provider (%(error)s); the status stays «%(status)s»."
            ) % {**values, "error": self.error}
        if self.changed:
            return gettext(
                "%(ref)s: the provider answered «%(remote)s»; the status changed from "
                "«%(before)s» to «%(status)s»."
            ) % {
                **values,
                "remote": remote_words(self.remote),
                "before": Payment.Status(self.before).label,
            }
        if self.payment.provider == "demo":
            return (
                gettext(
                    "%(ref)s: a demo payment has no bank to ask; it stays «%(status)s» until the "
                    "customer presses a button on the payment page or its time runs out."
                )
                % values
            )
        return gettext(
            "%(ref)s: the provider answered «%(remote)s»; the status stays «%(status)s»."
        ) % {**values, "remote": remote_words(self.remote)}


def check_payment(*, payment_id) -> StatusCheck:
    """Ask the provider once now (the poller's own check) and say what it found."""
    payment = Payment.objects.get(pk=payment_id)
    before = payment.status
    if before not in Payment.OPEN_STATUSES:
        return StatusCheck(payment, before, asked=False)
    found, error = poll_payment_once(payment)
    payment.refresh_from_db()
    return StatusCheck(payment, before, remote=found.remote if found else "", error=error)


def create_staff_payment(*, amount=None, order=None, description: str = "", user=None) -> Payment:
    """«New payment» from the admin: created through the provider, audited."""
    payment = create_payment(amount=amount, order=order, description=description, user=user)
    audit(
        user=user,
        action="payment.create",
        obj=payment,
        after={"amount": payment.amount, "status": payment.status},
    )
    return payment


def retry_payment(*, payment_id, user=None) -> Payment:
    """A new payment for what a failed or expired one was for (amount, order, basket)."""
    old = Payment.objects.select_related("order").get(pk=payment_id)
    if old.status not in (Payment.Status.FAILED, Payment.Status.EXPIRED):
        raise PaymentRejected(
            gettext("%(ref)s is «%(status)s»: only a failed or expired payment is retried")
            % {"ref": old.reference, "status": old.get_status_display()}
        )
    new = create_payment(
        amount=old.amount,
        order=old.order,
        basket=old.basket,
        description=old.description,
        user=user,
    )
    audit(
        user=user,
        action="payment.retry",
        obj=new,
        before={"payment": old.reference, "status": old.status},
        after={"payment": new.reference, "status": new.status},
    )
    return new


@dataclass(frozen=True)
class Refund:
    payment: Payment
    order_moved_to: str = ""  # the sale's new state in words, "" when there is no sale
    order_problem: str = ""


def refund_payment(*, payment_id, user=None) -> Refund:
    """Record a manual refund (Kaspi's API-key scheme has no refund call: the money goes
    back in the Kaspi Pay app) and move the direct sale it paid for: a sale already handed
    over is returned, one not yet handed over is cancelled."""
    from orders.models import Fulfilment

    with transaction.atomic():
        payment = Payment.objects.select_related("order").get(pk=payment_id)
        if not payment.can_move_to(Payment.Status.REFUNDED):
            raise PaymentRejected(
                gettext("%(ref)s is «%(status)s»: only a paid payment can be refunded")
                % {"ref": payment.reference, "status": payment.get_status_display()}
            )
        record_manual_refund(payment=payment, user=user)  # the event and its audit entry
        payment.refresh_from_db()
        order = payment.order
        if order is None or order.channel != "direct":
            return Refund(payment)
        try:
            moved = _move_sale(order, user=user, note=f"refund {payment.reference}")
        except BackofficeError as exc:
            return Refund(payment, order_problem=str(exc))
        return Refund(payment, order_moved_to=Fulfilment(moved).label if moved else "")


def _move_sale(order, *, user, note: str) -> str:
    """Return or cancel a refunded direct sale; the fulfilment step it ends in ("" if it
    was final already)."""
    from orders.models import Fulfilment, Order
    from orders.services.direct import cancel_direct_order
    from orders.services.fulfilment import TRANSITIONS, set_fulfilment

    order = Order.objects.get(pk=order.pk)
    allowed = TRANSITIONS.get(order.fulfilment, set())
    if Fulfilment.RETURNED in allowed:
        set_fulfilment(order=order, to=Fulfilment.RETURNED, user=user, note=note)
        Order.objects.filter(pk=order.pk).update(status="RETURNED")
        return Fulfilment.RETURNED
    if Fulfilment.CANCELLED in allowed:
        set_fulfilment(order=order, to=Fulfilment.CANCELLED, user=user, note=note)
        cancel_direct_order(order=order, comment=note, user=user)
        return Fulfilment.CANCELLED
    return ""
