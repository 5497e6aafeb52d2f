"""Payment notifications from outside: the webhook and JSON files.

Both take `{orderId, amount, status, transactionId}` rows. `orderId` is the reference the
payment was created with (its own reference, or the number of its direct order). Both end
in apply_payment_event with the key `transactionId:status`, so a notification seen before,
by either path, changes nothing.
"""

import hashlib
import hmac
import ipaddress
import json
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext

from backoffice.core.audit import audit
from backoffice.core.formats import money

from ..models import Payment, WebhookDelivery
from .events import PaymentRejected, apply_payment_event

logger = logging.getLogger(__name__)

STATUS_WORDS = {
    "paid": "paid",
    "completed": "paid",
    "success": "paid",
    "succeeded": "paid",
    "processed": "paid",
    "failed": "failed",
    "error": "failed",
    "declined": "failed",
    "expired": "expired",
    "refunded": "refunded",
}


class NotificationError(PaymentRejected):
    def __init__(self, message: str, http_status: int = 400):
        self.http_status = http_status
        super().__init__(message)


@dataclass
class Notification:
    reference: str
    amount: int
    status: str
    transaction_id: str
    raw: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.transaction_id}:{self.status}"


def parse_notification(row) -> Notification:
    if not isinstance(row, dict):
        raise NotificationError("expected an object {orderId, amount, status, transactionId}")
    missing = [name for name in ("orderId", "amount", "status", "transactionId") if name not in row]
    if missing:
        raise NotificationError(f"missing field(s): {', '.join(missing)}")
    reference = str(row["orderId"]).strip()
    transaction_id = str(row["transactionId"]).strip()
    if not reference or not transaction_id or len(transaction_id) > 128:
        raise NotificationError("orderId and transactionId must be non-empty (≤ 128 chars)")
    amount = row["amount"]
    if isinstance(amount, bool) or not isinstance(amount, int | float | str):
        raise NotificationError(f"amount {amount!r} is not a number")
    try:
        value = float(str(amount).replace(" ", ""))
    except ValueError:
        raise NotificationError(f"amount {amount!r} is not a number") from None
    if value <= 0 or value != int(value):
        raise NotificationError(f"amount {amount!r} must be a positive whole number of tenge")
    status = STATUS_WORDS.get(str(row["status"]).strip().lower())
    if status is None:
        raise NotificationError(f"unknown status {row['status']!r}")
    return Notification(reference, int(value), status, transaction_id, row)


def find_payment(reference: str) -> Payment:
    """The payment a reference names: its own reference, or its direct order's number."""
    payment = Payment.objects.filter(reference=reference).first()
    if payment is None:
        payment = (
            Payment.objects.filter(order__code=reference, order__channel="direct")
            .exclude(status__in=["failed", "expired"])
            .first()
        )
    if payment is None:
        raise NotificationError(f"unknown order reference {reference!r}", http_status=404)
    return payment


def apply_notification(note: Notification, *, source: str):
    payment = find_payment(note.reference)
    return apply_payment_event(
        payment_id=payment.pk,
        source=source,
        key=note.key,
        status=note.status,
        amount=note.amount,
        raw=note.raw,
        transaction_id=note.transaction_id,
        record_noop=False,
    )


# --- Webhook --------------------------------------------------------------------------------


def signature_for(body: bytes) -> str:
    return hmac.new(settings.PAYMENTS_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


def ip_allowed(ip: str) -> bool:
    allowed = settings.PAYMENTS_WEBHOOK_ALLOWED_IPS
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in allowed)


def process_delivery(delivery: WebhookDelivery, *, signature: str) -> tuple[int, dict]:
    """Verify and apply a stored delivery; keep the outcome on the row. (status, body)."""
    try:
        if not settings.PAYMENTS_WEBHOOK_SECRET:
            raise NotificationError("webhook is not configured (PAYMENTS_WEBHOOK_SECRET)", 503)
        if not ip_allowed(delivery.ip):
            raise NotificationError(f"address {delivery.ip} is not allowed", 403)
        expected = signature_for(delivery.body.encode())
        if not signature or not hmac.compare_digest(signature.strip().lower(), expected):
            raise NotificationError("missing or bad X-Signature", 401)
        try:
            row = json.loads(delivery.body)
        except ValueError:
            raise NotificationError("the body is not JSON") from None
        result = apply_notification(parse_notification(row), source="webhook")
    except PaymentRejected as exc:
        status = getattr(exc, "http_status", 400)
        _finish(delivery, WebhookDelivery.Result.REJECTED, status, str(exc))
        logger.warning("webhook delivery %s rejected: %s", delivery.pk, exc)
        return status, {"ok": False, "error": str(exc)}
    outcome = (
        WebhookDelivery.Result.DUPLICATE if result.duplicate else WebhookDelivery.Result.APPLIED
    )
    _finish(delivery, outcome, 200, "", payment=result.payment)
    return 200, {"ok": True, "duplicate": result.duplicate, "status": result.payment.status}


def _finish(delivery, result, status, error, payment=None) -> None:
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        result=result, http_status=status, error=error, payment=payment
    )


# --- JSON import ----------------------------------------------------------------------------


@dataclass
class ImportReport:
    rows: int = 0
    applied: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    preview: list[str] = field(default_factory=list)


def import_payments(data: bytes, *, apply: bool = True, user=None, name: str = "") -> ImportReport:
    """Validate every row, then apply all of them in one transaction, or none.

    `data` is the file's bytes (a UTF-8 BOM, as Excel writes, is accepted). Rows already
    applied (same transactionId and status) are counted as duplicates and skipped. An
    applied file is audited (`user`, the file `name`), whoever imports it.
    """
    report = ImportReport()
    if len(data) > settings.PAYMENTS_IMPORT_MAX_BYTES:
        report.errors.append(
            gettext("the file is %(size)d bytes; the limit is %(limit)d")
            % {"size": len(data), "limit": settings.PAYMENTS_IMPORT_MAX_BYTES}
        )
        return report
    try:
        rows = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        report.errors.append(gettext("not a JSON file: %(error)s") % {"error": exc})
        return report
    if not isinstance(rows, list):
        report.errors.append(gettext("expected a JSON list of payments"))
        return report
    report.rows = len(rows)
    notes, seen = [], set()
    for number, row in enumerate(rows, start=1):
        try:
            note = parse_notification(row)
            payment = find_payment(note.reference)
            if note.amount != payment.amount:
                raise NotificationError(
                    f"amount {note.amount} does not match payment {payment.reference} "
                    f"({payment.amount})"
                )
        except PaymentRejected as exc:
            report.errors.append(gettext("row %(n)d: %(error)s") % {"n": number, "error": exc})
            continue
        if note.key in seen:
            report.duplicates += 1
            continue
        seen.add(note.key)
        notes.append((number, note, payment))
        report.preview.append(
            gettext("row %(n)d: %(ref)s «%(before)s» → «%(after)s» (%(amount)s)")
            % {
                "n": number,
                "ref": payment.reference,
                "before": payment.get_status_display(),
                "after": Payment.Status(note.status).label
                if note.status in Payment.Status.values
                else note.status,
                "amount": money(note.amount),
            }
        )
    if report.errors or not apply:
        return report
    try:
        with transaction.atomic():
            for number, note, _payment in notes:
                try:
                    result = apply_notification(note, source="import")
                except PaymentRejected as exc:
                    raise NotificationError(
                        gettext("row %(n)d: %(error)s") % {"n": number, "error": exc}
                    ) from None
                report.duplicates += result.duplicate
                report.applied += result.changed
    except NotificationError as exc:
        report.errors.append(str(exc))
        report.applied = 0
        return report
    audit(
        user=user,
        action="payment.import",
        after={"applied": report.applied, "duplicates": report.duplicates, "rows": report.rows},
        note=name[:500],
    )
    return report
