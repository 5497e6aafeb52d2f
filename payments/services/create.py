"""Creating a payment through the configured provider."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from backoffice.core.exceptions import BackofficeError

from ..models import Payment
from .events import PaymentRejected, apply_payment_event
from .polling import start_poller
from .providers import get_provider


def amount_due(order) -> int:
    """What a payment for this direct order must be: its total, nothing once it is paid."""
    return 0 if order.paid_at else int(order.total_price)


def create_payment(
    *,
    amount: int | None = None,
    order=None,
    basket=None,
    description: str = "",
    user=None,
    provider=None,
) -> Payment:
    """Create a payment for an amount, a basket or a direct order, and ask the provider for
    its QR/link. A payment for an order is for exactly the amount due (the default); any
    other amount is refused here. The payment goes created → pending through the one
    event path."""
    if order is not None:
        if order.channel != "direct":
            raise PaymentRejected(gettext("Kaspi marketplace orders are paid inside Kaspi"))
        due = amount_due(order)
        if due <= 0:
            raise PaymentRejected(
                gettext("order %(code)s is already paid or has nothing to pay")
                % {"code": order.code}
            )
        if amount is None:
            amount = due
        elif int(amount) != due:
            raise PaymentRejected(
                gettext("the amount %(amount)s ₸ differs from the %(due)s ₸ due for order %(code)s")
                % {"amount": amount, "due": due, "code": order.code}
            )
    if amount is None or int(amount) <= 0:
        raise PaymentRejected(gettext("the amount must be a positive number of tenge"))
    provider = provider or get_provider()
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                provider=provider.name,
                amount=int(amount),
                order=order,
                basket=basket or [],
                description=description[:255],
                created_by=user if getattr(user, "pk", None) else None,
            )
    except IntegrityError:
        raise PaymentRejected(
            gettext("order %(code)s already has a payment that is not failed or expired")
            % {"code": order.code}
        ) from None
    try:
        answer = provider.create(payment)
    except BackofficeError as exc:
        apply_payment_event(
            payment_id=payment.pk,
            source=provider.name,
            key=f"create-failed:{payment.pk}",
            status=Payment.Status.FAILED,
            note=str(exc)[:500],
        )
        raise
    Payment.objects.filter(pk=payment.pk).update(
        external_id=answer.external_id,
        qr_token=answer.qr_token,
        payment_link=answer.payment_link or payment.public_url,
        expires_at=answer.expires_at,
        options=answer.options,
        next_poll_at=timezone.now() + timedelta(seconds=answer.options.get("poll", 5)),
    )
    apply_payment_event(
        payment_id=payment.pk,
        source=provider.name,
        key=f"created:{payment.pk}",
        status=Payment.Status.PENDING,
        raw={"external_id": answer.external_id, "expires_at": str(answer.expires_at)},
        note=gettext("QR created"),
    )
    payment.refresh_from_db()
    if provider.name != "demo":
        transaction.on_commit(start_poller)
    return payment
