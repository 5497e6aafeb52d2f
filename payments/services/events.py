"""The one path every payment status change takes (webhook, poller, import, demo, staff).

`apply_payment_event` locks the payment row, ignores a (source, key) it has seen, checks
the state machine and the amount, writes a PaymentEvent, and, when the payment becomes
paid, marks its order paid (or creates the order from the basket). Concurrent deliveries
of one notification serialise on the row lock; the unique (source, key) makes the second
one a no-op.
"""

import json
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from backoffice.core.audit import audit
from backoffice.core.exceptions import BackofficeError

from ..models import Payment, PaymentEvent

logger = logging.getLogger(__name__)


class PaymentRejected(BackofficeError):
    """The event cannot apply (unknown payment, illegal move, amount mismatch…)."""


@dataclass(frozen=True)
class EventResult:
    payment: Payment
    event: PaymentEvent | None
    duplicate: bool = False
    changed: bool = False


def apply_payment_event(
    *,
    payment_id,
    source: str,
    key: str,
    status: str | None,
    amount: int | None = None,
    raw=None,
    note: str = "",
    transaction_id: str = "",
    record_noop: bool = True,
) -> EventResult:
    """Apply one event to a payment; idempotent per (source, key).

    With `record_noop=False` (notifications from webhooks and files) an event that changes
    nothing (the payment is already in that status, e.g. a file re-importing what the
    webhook applied) writes no event row and is reported as a duplicate."""
    if not key:
        raise PaymentRejected("an event needs a unique key (e.g. the transaction id)")
    with transaction.atomic():
        try:
            payment = Payment.objects.select_for_update().get(pk=payment_id)
        except Payment.DoesNotExist:
            raise PaymentRejected(f"unknown payment {payment_id}") from None
        existing = PaymentEvent.objects.filter(source=source, key=key).first()
        if existing is not None:
            return EventResult(payment, existing, duplicate=True)
        if amount is not None and int(amount) != payment.amount:
            raise PaymentRejected(
                f"amount {amount} does not match payment {payment.reference} ({payment.amount})"
            )
        before = payment.status
        changed = False
        if status and status != before:
            if not payment.can_move_to(status):
                raise PaymentRejected(
                    f"payment {payment.reference} cannot go from {before} to {status}"
                )
            payment.status = status
            if status == Payment.Status.PAID:
                payment.paid_at = timezone.now()
            if transaction_id:
                payment.transaction_id = transaction_id[:128]
            payment.save()
            changed = True
        if not changed and not record_noop:
            return EventResult(payment, None, duplicate=True)
        try:
            with transaction.atomic():
                event = PaymentEvent.objects.create(
                    payment=payment,
                    source=source,
                    key=key[:200],
                    status_before=before,
                    status_after=payment.status,
                    amount=amount,
                    note=note[:500],
                    raw=raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False),
                )
        except IntegrityError:
            # Another transaction recorded the same (source, key) first: undo our change.
            transaction.set_rollback(True)
            return EventResult(payment, None, duplicate=True)
        if changed and payment.status == Payment.Status.PAID:
            problem = mark_order_paid(payment)
            if problem:
                event.note = f"{event.note} {problem}".strip()[:500]
                PaymentEvent.objects.filter(pk=event.pk).update(note=event.note)
    if changed:
        logger.info("payment %s: %s → %s (%s)", payment.reference, before, payment.status, source)
    return EventResult(payment, event, changed=changed)


def record_manual_refund(*, payment: Payment, user=None) -> EventResult:
    """Staff refunded `payment` outside the system (the Kaspi Pay app): the event, and its
    audit entry, whoever records it (admin, command, API)."""
    before = payment.status
    result = apply_payment_event(
        payment_id=payment.pk,
        source="staff",
        key=f"{payment.pk}:refunded",
        status="refunded",
        note=gettext("manual refund by %(user)s")
        % {"user": getattr(user, "username", "") or "system"},
    )
    audit(
        user=user,
        action="payment.refund",
        obj=payment,
        before={"status": before},
        after={"status": "refunded"},
    )
    return result


def mark_order_paid(payment: Payment) -> str:
    """Mark the linked order paid, or create a direct order from the payment's basket.

    A paid amount that differs from the order's total never marks the order paid: the order
    is flagged for staff (needs attention + an alert) and the problem is returned."""
    from orders.services.direct import create_direct_order_for_payment

    if payment.order_id is None:
        create_direct_order_for_payment(payment)
        return ""
    from orders.models import Order

    order = Order.objects.select_for_update().get(pk=payment.order_id)
    if payment.amount != order.total_price:
        problem = gettext(
            "paid %(paid)s ₸ but order %(code)s totals %(total)s ₸: the order is not marked "
            "paid; check it and refund or collect the difference"
        ) % {"paid": payment.amount, "code": order.code, "total": order.total_price}
        reason = f"{order.attention_reason}\n{problem}".strip()
        Order.objects.filter(pk=order.pk).update(needs_attention=True, attention_reason=reason)
        logger.warning("payment %s: %s", payment.reference, problem)
        key, text = f"payment-amount:{payment.reference}", f"{payment.reference}: {problem}"
        transaction.on_commit(lambda: _alert(key, text))
        return problem
    Order.objects.filter(pk=order.pk, paid_at__isnull=True).update(paid_at=payment.paid_at)
    return ""


def _alert(key: str, text: str) -> None:
    from backoffice.core.alerts import send_alert

    send_alert(key=key, text=text)
