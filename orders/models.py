"""Orders: Kaspi marketplace orders (imported) and, later, the shop's direct orders."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Order(models.Model):
    class Channel(models.TextChoices):
        KASPI = "kaspi", "Kaspi"
        DIRECT = "direct", _("direct sale")

    class State(models.TextChoices):
        NEW = "NEW", _("New")
        SIGN_REQUIRED = "SIGN_REQUIRED", _("Signature required")
        PICKUP = "PICKUP", _("Pickup")
        DELIVERY = "DELIVERY", _("Delivery")
        KASPI_DELIVERY = "KASPI_DELIVERY", _("Kaspi Delivery")
        ARCHIVE = "ARCHIVE", _("Archive")

    class Status(models.TextChoices):
        APPROVED_BY_BANK = "APPROVED_BY_BANK", _("Approved by bank")
        ACCEPTED_BY_MERCHANT = "ACCEPTED_BY_MERCHANT", _("Accepted by merchant")
        COMPLETED = "COMPLETED", _("Completed")
        CANCELLED = "CANCELLED", _("Cancelled")
        CANCELLING = "CANCELLING", _("Cancelling")
        KASPI_DELIVERY_RETURN_REQUESTED = (
            "KASPI_DELIVERY_RETURN_REQUESTED",
            _("Return requested"),
        )
        RETURN_ACCEPTED_BY_MERCHANT = "RETURN_ACCEPTED_BY_MERCHANT", _("Return accepted")
        RETURNED = "RETURNED", _("Returned")

    FINAL_STATUSES = ("COMPLETED", "CANCELLED", "RETURNED")
    # Orders whose goods are promised to a buyer but not yet handed over.
    RESERVING_STATUSES = ("APPROVED_BY_BANK", "ACCEPTED_BY_MERCHANT")

    channel = models.CharField(
        _("channel"), max_length=10, choices=Channel.choices, default=Channel.KASPI
    )
    kaspi_id = models.CharField(_("Kaspi id"), max_length=64, null=True, blank=True)
    code = models.CharField(_("order number"), max_length=64)
    state = models.CharField(_("state"), max_length=32, blank=True, db_index=True)
    status = models.CharField(_("status"), max_length=40, blank=True, db_index=True)
    total_price = models.PositiveBigIntegerField(_("total, tenge"), default=0)
    payment_mode = models.CharField(_("payment mode"), max_length=32, blank=True)
    delivery_mode = models.CharField(_("delivery mode"), max_length=40, blank=True)
    is_kaspi_delivery = models.BooleanField(_("Kaspi Delivery"), default=False)
    pre_order = models.BooleanField(_("pre-order"), default=False)
    planned_delivery_date = models.DateTimeField(_("planned delivery"), null=True, blank=True)
    delivery_cost = models.PositiveBigIntegerField(_("delivery cost"), default=0)
    customer_name = models.CharField(_("customer"), max_length=255, blank=True)
    customer_phone = models.CharField(_("phone"), max_length=32, blank=True)
    delivery_address = models.TextField(_("delivery address"), blank=True)
    creation_date = models.DateTimeField(_("created in Kaspi"), null=True, blank=True)
    paid_at = models.DateTimeField(
        _("paid at"), null=True, blank=True, help_text=_("Direct sales: when a payment succeeded.")
    )
    raw = models.TextField(_("Kaspi data"), blank=True)
    data_hash = models.CharField(max_length=32, blank=True, editable=False)
    synced_at = models.DateTimeField(_("synced"), null=True, blank=True)
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-creation_date", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kaspi_id"], condition=Q(kaspi_id__isnull=False), name="order_kaspi_id"
            ),
            models.UniqueConstraint(fields=["channel", "code"], name="order_channel_code"),
        ]
        indexes = [models.Index(fields=["channel", "status", "creation_date"], name="order_open")]

    def __str__(self) -> str:
        return f"{self.code}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES


class OrderEntry(models.Model):
    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="entries"
    )
    kaspi_id = models.CharField(_("Kaspi id"), max_length=64, blank=True)
    entry_number = models.PositiveIntegerField(_("line"), default=0)
    offer_code = models.CharField(_("offer code (SKU)"), max_length=64, blank=True)
    name = models.TextField(_("name"), blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    base_price = models.PositiveBigIntegerField(_("unit price"), default=0)
    total_price = models.PositiveBigIntegerField(_("total"), default=0)
    product = models.ForeignKey(
        "catalog.Product",
        verbose_name=_("product"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="order_entries",
    )

    class Meta:
        verbose_name = _("order entry")
        verbose_name_plural = _("order entries")
        ordering = ["order", "entry_number"]

    def __str__(self) -> str:
        return f"{self.offer_code} × {self.quantity}"


class OrderAction(models.Model):
    """A status change staff asked Kaspi for: who, when, what, and Kaspi's answer."""

    class Action(models.TextChoices):
        ACCEPT = "accept", _("accept")
        CANCEL = "cancel", _("cancel")
        SEND_CODE = "send_code", _("send completion code")
        COMPLETE = "complete", _("complete")

    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="actions"
    )
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)
    ok = models.BooleanField(_("succeeded"), default=False)
    detail = models.CharField(_("details"), max_length=1000, blank=True)
    response = models.TextField(_("Kaspi answer"), blank=True)

    class Meta:
        verbose_name = _("order action")
        verbose_name_plural = _("order actions")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.order} {self.action}"
