"""Orders: Kaspi marketplace orders (imported) and, later, the shop's direct orders."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Fulfilment(models.TextChoices):
    # A context of their own: "new"/"accepted" already name a product flag and a card state.
    NEW = "new", pgettext_lazy("fulfilment", "new")
    ACCEPTED = "accepted", pgettext_lazy("fulfilment", "accepted")
    PURCHASED = "purchased", pgettext_lazy("fulfilment", "bought from supplier")
    ASSEMBLED = "assembled", pgettext_lazy("fulfilment", "assembled")
    HANDED_OVER = "handed_over", pgettext_lazy("fulfilment", "handed over to delivery")
    COMPLETED = "completed", pgettext_lazy("fulfilment", "completed")
    CANCELLED = "cancelled", pgettext_lazy("fulfilment", "cancelled")
    RETURNED = "returned", pgettext_lazy("fulfilment", "returned")


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
    # Kaspi Delivery: packed with ASSEMBLE (numberOfSpace parcels), then Kaspi issues the
    # waybill and plans the courier (attributes `assembled` and `kaspiDelivery`).
    kaspi_assembled = models.BooleanField(_("packed in Kaspi"), default=False)
    parcels = models.PositiveSmallIntegerField(_("parcels"), null=True, blank=True)
    waybill_number = models.CharField(_("waybill number"), max_length=64, blank=True)
    waybill_url = models.URLField(_("waybill"), max_length=1000, blank=True)
    courier_planned_at = models.DateTimeField(_("courier planned"), null=True, blank=True)
    planned_delivery_date = models.DateTimeField(_("planned delivery"), null=True, blank=True)
    delivery_cost = models.PositiveBigIntegerField(_("delivery cost"), default=0)
    customer_name = models.CharField(_("customer"), max_length=255, blank=True)
    customer_phone = models.CharField(_("phone"), max_length=32, blank=True)
    delivery_address = models.TextField(_("delivery address"), blank=True)
    creation_date = models.DateTimeField(_("created in Kaspi"), null=True, blank=True)
    paid_at = models.DateTimeField(
        _("paid at"), null=True, blank=True, help_text=_("Direct sales: when a payment succeeded.")
    )
    fulfilment = models.CharField(
        _("fulfilment"),
        max_length=12,
        choices=Fulfilment.choices,
        default=Fulfilment.NEW,
        db_index=True,
    )
    needs_attention = models.BooleanField(_("needs attention"), default=False, db_index=True)
    attention_reason = models.TextField(_("why"), blank=True)
    # The shop's own words about the order (Kaspi never sees it; imports never touch it).
    staff_note = models.TextField(_("staff note"), blank=True)
    alerted_at = models.DateTimeField(_("staff alerted"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminder sent"), null=True, blank=True)
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
    supplier_quantity = models.IntegerField(_("supplier stock"), null=True, blank=True)
    in_stock = models.BooleanField(_("in stock at supplier"), null=True, blank=True)
    stock_checked_at = models.DateTimeField(_("stock checked"), null=True, blank=True)

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
        ASSEMBLE = "assemble", _("pack for Kaspi Delivery")

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
        return f"{self.order}: {self.get_action_display()}"


class FulfilmentEvent(models.Model):
    """Who moved an order through fulfilment, when, from what to what."""

    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.CASCADE, related_name="fulfilment_events"
    )
    from_status = models.CharField(_("from"), max_length=12, choices=Fulfilment.choices)
    to_status = models.CharField(_("to"), max_length=12, choices=Fulfilment.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    note = models.CharField(_("note"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("fulfilment step")
        verbose_name_plural = _("fulfilment steps")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.order}: {self.get_from_status_display()} → {self.get_to_status_display()}"


def alstyle_supplier_id() -> int:
    """The default supplier of a purchase (every purchase before issue 18 was Al-Style's)."""
    from catalog.models import Supplier

    return Supplier.alstyle().pk


class SupplierPurchase(models.Model):
    """One attempt to order a Kaspi order's goods from one supplier.

    A supplier with a cart API (Al-Style) gets the order submitted; one without gets a
    *purchase list* (status `listed`): what staff order by hand, printable and as XLSX, and
    mark `ordered` once they have. An order with lines from two suppliers has one purchase
    per supplier. At most one attempt per order and supplier may be live (submitted, listed,
    ordered, or unknown until staff or the order lookup settle it): the goods are never
    bought twice. Failed and refused attempts stay as history, and a new attempt may follow
    them.
    """

    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("submitted")
        LISTED = "listed", _("purchase list: order by hand")
        ORDERED = "ordered", _("ordered from the supplier by hand")
        FAILED = "failed", _("failed before submit")
        REFUSED = "refused", _("refused by Al-Style")
        UNKNOWN = "unknown", _("unknown: check Al-Style")

    LIVE = (Status.SUBMITTED, Status.UNKNOWN, Status.LISTED, Status.ORDERED)
    # The goods are bought: through the cart, or a purchase list staff ordered by hand.
    BOUGHT = (Status.SUBMITTED, Status.ORDERED)

    # Order status letters of Al-Style (docs/alstyle-api.md §2) and their meaning.
    SUPPLIER_STATUSES = {
        "N": _("awaiting payment"),
        "P": _("shipped, awaiting payment"),
        "SV": _("ready to ship"),
        "OS": _("pickup"),
        "OK": _("shipping"),
        "F": _("shipped and paid"),
        "Un": _("merged"),
        "R": _("pre-reserve"),
        "DA": _("cancelled"),
    }
    # Statuses after which the supplier status is no longer polled.
    FINAL_SUPPLIER_STATUSES = ("F", "Un", "DA")

    order = models.ForeignKey(
        Order, verbose_name=_("order"), on_delete=models.PROTECT, related_name="purchases"
    )
    supplier = models.ForeignKey(
        "catalog.Supplier",
        verbose_name=_("supplier"),
        on_delete=models.PROTECT,
        related_name="purchases",
        default=alstyle_supplier_id,
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    reference = models.CharField(_("our reference"), max_length=64, blank=True)
    supplier_order_id = models.CharField(_("Al-Style order"), max_length=64, blank=True)
    supplier_status = models.CharField(_("Al-Style status"), max_length=32, blank=True)
    supplier_checked_at = models.DateTimeField(_("Al-Style status read"), null=True, blank=True)
    lines = models.JSONField(_("lines"), default=list)
    # Our products this purchase buys (ids), recorded when it is planned: what the order
    # is bought by, whatever the lines' chosen offers become later. Order lines are
    # re-created on each Kaspi import, products stay.
    products = models.JSONField(_("products"), default=list, blank=True)
    sent = models.JSONField(_("sent to Al-Style"), default=dict, blank=True)
    response = models.TextField(_("Al-Style answer"), blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("time"), default=timezone.now)

    class Meta:
        verbose_name = _("supplier purchase")
        verbose_name_plural = _("supplier purchases")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "supplier"],
                condition=models.Q(status__in=["submitted", "unknown", "listed", "ordered"]),
                name="one_live_purchase_per_order_supplier",
            )
        ]

    def __str__(self) -> str:
        return f"{self.order} → {self.supplier_order_id or self.get_status_display()}"

    @property
    def supplier_status_text(self) -> str:
        """The Al-Style status letter with its meaning, e.g. "SV — готов к отгрузке"."""
        if not self.supplier_status:
            return ""
        meaning = self.SUPPLIER_STATUSES.get(self.supplier_status)
        return f"{self.supplier_status} — {meaning}" if meaning else self.supplier_status
