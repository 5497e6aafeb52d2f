"""Payments for the shop's own sales (site, phone, walk-in): Kaspi QR, or demo."""

import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backoffice.core.formats import local_time, money


def new_reference() -> str:
    """A short reference staff can read out and a customer can type: P + 10 hex digits."""
    return "P" + secrets.token_hex(5).upper()


class Payment(models.Model):
    class Status(models.TextChoices):
        CREATED = "created", _("created")
        PENDING = "pending", _("awaiting payment")
        PAID = "paid", _("paid")
        FAILED = "failed", _("failed")
        EXPIRED = "expired", _("expired")
        REFUNDED = "refunded", _("refunded")

    # The state machine: every status change goes through apply_payment_event().
    TRANSITIONS = {
        "created": {"pending", "paid", "failed", "expired"},
        "pending": {"paid", "failed", "expired"},
        "paid": {"refunded"},
        "failed": set(),
        "expired": set(),
        "refunded": set(),
    }
    OPEN_STATUSES = ("created", "pending")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    reference = models.CharField(
        _("reference"), max_length=32, unique=True, default=new_reference, editable=False
    )
    provider = models.CharField(_("provider"), max_length=20)
    amount = models.PositiveBigIntegerField(_("amount, tenge"))
    currency = models.CharField(_("currency"), max_length=3, default="KZT", editable=False)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.CREATED, db_index=True
    )
    description = models.CharField(_("description"), max_length=255, blank=True)
    order = models.ForeignKey(
        "orders.Order",
        verbose_name=_("order"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
    )
    basket = models.JSONField(
        _("basket"),
        default=list,
        blank=True,
        help_text=_("Lines of a checkout with no order yet: sku, name, quantity, price."),
    )
    external_id = models.CharField(_("Kaspi QrPaymentId"), max_length=64, blank=True)
    transaction_id = models.CharField(_("transaction id"), max_length=128, blank=True)
    qr_token = models.TextField(_("QR content"), blank=True)
    payment_link = models.URLField(_("payment link"), max_length=500, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    options = models.JSONField(
        _("provider options"),
        default=dict,
        blank=True,
        help_text=_("Polling interval and timeouts the provider returned."),
    )
    next_poll_at = models.DateTimeField(_("next status check"), null=True, blank=True)
    last_polled_at = models.DateTimeField(_("last status check"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at"]
        constraints = [
            # At most one payment per order that is not failed or expired.
            models.UniqueConstraint(
                fields=["order"],
                condition=Q(order__isnull=False) & ~Q(status__in=["failed", "expired"]),
                name="payment_one_live_per_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference}, {money(self.amount)} ({self.get_status_display()})"

    def can_move_to(self, status: str) -> bool:
        return status in self.TRANSITIONS.get(self.status, set())

    @property
    def public_url(self) -> str:
        return f"{settings.SITE_URL}/pay/{self.id}/"


class KaspiQrDevice(models.Model):
    """Our "cash register" registered at a Kaspi Pay trade point; its token is a secret."""

    device_id = models.CharField(_("device id"), max_length=64, unique=True)
    trade_point_id = models.CharField(_("trade point id"), max_length=64)
    trade_point_name = models.CharField(_("trade point"), max_length=255, blank=True)
    token = models.CharField(_("device token"), max_length=255, editable=False)
    active = models.BooleanField(_("active"), default=True)
    registered_at = models.DateTimeField(_("registered"), default=timezone.now)

    class Meta:
        verbose_name = _("Kaspi QR device")
        verbose_name_plural = _("Kaspi QR devices")

    def __str__(self) -> str:
        return f"{self.device_id} @ {self.trade_point_name or self.trade_point_id}"


class PaymentEvent(models.Model):
    """Append-only log of everything that touched a payment; (source, key) is unique, so
    the same notification delivered twice is recorded once."""

    payment = models.ForeignKey(
        Payment, verbose_name=_("payment"), on_delete=models.CASCADE, related_name="events"
    )
    source = models.CharField(_("source"), max_length=20)
    key = models.CharField(_("key"), max_length=200)
    status_before = models.CharField(_("status before"), max_length=10, blank=True)
    status_after = models.CharField(_("status after"), max_length=10, blank=True)
    amount = models.PositiveBigIntegerField(_("amount"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)
    raw = models.TextField(_("data"), blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("payment event")
        verbose_name_plural = _("payment events")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "key"], name="paymentevent_source_key")
        ]

    def __str__(self) -> str:
        from backoffice.core.labels import PAYMENT_EVENT_SOURCE, label

        return f"{label(PAYMENT_EVENT_SOURCE, self.source)}: {self.key}"


class WebhookDelivery(models.Model):
    """A webhook request exactly as received, stored before anything else is done."""

    class Result(models.TextChoices):
        RECEIVED = "received", _("received")
        APPLIED = "applied", _("applied")
        DUPLICATE = "duplicate", _("duplicate")
        REJECTED = "rejected", _("rejected")

    received_at = models.DateTimeField(_("received"), default=timezone.now, db_index=True)
    ip = models.CharField(_("IP"), max_length=64, blank=True)
    headers = models.TextField(_("headers"), blank=True)
    body = models.TextField(
        _("body"), blank=True, help_text=_("Cut at PAYMENTS_WEBHOOK_MAX_BYTES; the size is kept.")
    )
    body_bytes = models.PositiveBigIntegerField(_("body size, bytes"), null=True, blank=True)
    result = models.CharField(
        _("result"), max_length=10, choices=Result.choices, default=Result.RECEIVED
    )
    http_status = models.PositiveSmallIntegerField(_("answer"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    payment = models.ForeignKey(
        Payment, verbose_name=_("payment"), null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{local_time(self.received_at, '%d.%m.%Y %H:%M:%S')} {self.result}"
