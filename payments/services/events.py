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

from backoffice.exceptions import BackofficeError

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
) -> EventResult:
    """Apply one event to a payment; idempotent per (source, key)."""
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
            mark_order_paid(payment)
    if changed:
        logger.info("payment %s: %s → %s (%s)", payment.reference, before, payment.status, source)
    return EventResult(payment, event, changed=changed)


def mark_order_paid(payment: Payment) -> None:
    """Mark the linked order paid, or create a direct order from the payment's basket."""
    from orders.services.direct import create_direct_order_for_payment

    if payment.order_id is None:
        create_direct_order_for_payment(payment)
        return
    from orders.models import Order

    Order.objects.filter(pk=payment.order_id, paid_at__isnull=True).update(paid_at=payment.paid_at)
