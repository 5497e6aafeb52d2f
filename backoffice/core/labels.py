"""Machine words staff meet, with their meaning: Kaspi's codes (order states and statuses,
delivery and payment modes, cancellation reasons), run counters and audit actions.

Shown through `code_html` (the meaning, the raw code in the tooltip) or `label` (plain
text); a code we do not know is shown as is, never hidden. `CodeFilter` makes an admin
list filter of one such field that lists the meanings.
"""

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop, pgettext_lazy

# docs/kaspi-shop-api.md §4.1
ORDER_STATE = {
    "NEW": _("New"),
    "SIGN_REQUIRED": _("Signature required"),
    "PICKUP": _("Pickup"),
    "DELIVERY": _("Delivery"),
    "KASPI_DELIVERY": _("Kaspi Delivery"),
    "ARCHIVE": _("Archive"),
}
# §4.2
ORDER_STATUS = {
    "APPROVED_BY_BANK": _("Approved by bank"),
    "ACCEPTED_BY_MERCHANT": _("Accepted by merchant"),
    "COMPLETED": pgettext_lazy("kaspi status", "Completed"),
    "CANCELLED": pgettext_lazy("kaspi status", "Cancelled"),
    "CANCELLING": _("Cancelling"),
    "KASPI_DELIVERY_RETURN_REQUESTED": _("Return requested"),
    "RETURN_ACCEPTED_BY_MERCHANT": _("Return accepted"),
    "RETURNED": pgettext_lazy("kaspi status", "Returned"),
}
# §4.3 (DELIVERY_PICKUP is a Postomat with Kaspi Delivery, the shop's point without)
DELIVERY_MODE = {
    "DELIVERY_LOCAL": _("Delivery in the city"),
    "DELIVERY_PICKUP": _("Pickup"),
    "DELIVERY_REGIONAL_TODOOR": _("Delivery to the door, other region"),
    "DELIVERY_REGIONAL_PICKUP": _("Pickup in another region"),
}
# §4.4
PAYMENT_MODE = {
    "PREPAID": _("Prepaid (card)"),
    "PAY_WITH_CREDIT": _("Credit for purchases"),
}
CANCELLATION_REASON = {
    "BUYER_CANCELLATION_BY_MERCHANT": _("Buyer asked to cancel"),
    "BUYER_NOT_REACHABLE": _("Buyer not reachable"),
    "MERCHANT_OUT_OF_STOCK": _("Out of stock"),
}

# Where a payment event came from (PaymentEvent.source).
PAYMENT_EVENT_SOURCE = {
    "demo": _("demo payment page"),
    "kaspi_qr": _("Kaspi QR"),
    "webhook": _("Kaspi notification"),
    "poll": _("status check in Kaspi"),
    "import": _("payment import"),
    "staff": _("staff"),
}

# Kaspi's attribute types (docs/kaspi-product-import.md)
ATTRIBUTE_TYPE = {
    "string": _("text"),
    "number": _("number"),
    "boolean": _("yes/no"),
    "enum": _("one of a list"),
}

# The counters runs keep (SyncRun.counts), by the services that write them.
RUN_COUNTERS = {
    "fetched": pgettext_lazy("run counter", "fetched"),
    "created": pgettext_lazy("run counter", "created"),
    "updated": pgettext_lazy("run counter", "updated"),
    "unchanged": pgettext_lazy("run counter", "unchanged"),
    "vanished": pgettext_lazy("run counter", "taken off sale"),
    "would_vanish": pgettext_lazy("run counter", "would be taken off sale"),
    "categories_linked": pgettext_lazy("run counter", "linked to their category"),
    "missing": pgettext_lazy("run counter", "missing at supplier"),
    "errors": pgettext_lazy("run counter", "errors"),
    "windows": pgettext_lazy("run counter", "time windows"),
    "new": pgettext_lazy("run counter", "new"),
    "entries": pgettext_lazy("run counter", "order lines"),
    "offers": pgettext_lazy("run counter", "offers"),
    "available": pgettext_lazy("run counter", "available"),
    "bytes": pgettext_lazy("run counter", "bytes"),
    "added": pgettext_lazy("run counter", "added"),
    "removed": pgettext_lazy("run counter", "removed"),
    "price_changed": pgettext_lazy("run counter", "price changed"),
    "availability_changed": pgettext_lazy("run counter", "availability changed"),
    "skipped_bad_sku": pgettext_lazy("run counter", "skipped: bad SKU or no name"),
    "checked": pgettext_lazy("run counter", "checked"),
    "accepted": pgettext_lazy("run counter", "accepted"),
    "attention": pgettext_lazy("run counter", "need attention"),
    "reminded": pgettext_lazy("run counter", "reminded"),
    "changed": pgettext_lazy("run counter", "changed"),
    "applied": pgettext_lazy("run counter", "applied"),
    "proposed": pgettext_lazy("run counter", "proposed"),
    "pending": pgettext_lazy("run counter", "awaiting approval"),
    "read": pgettext_lazy("run counter", "read"),
    "empty": pgettext_lazy("run counter", "empty"),
    "unknown": pgettext_lazy("run counter", "unknown"),
    "format_changed": pgettext_lazy("run counter", "page format changed"),
    "calls": pgettext_lazy("run counter", "requests"),
    "flagged": pgettext_lazy("run counter", "flagged"),
    "new_links": pgettext_lazy("run counter", "new links"),
    "unchanged_links": pgettext_lazy("run counter", "links unchanged"),
    "new_candidates": pgettext_lazy("run counter", "new candidates"),
    "verify_reads": pgettext_lazy("run counter", "checks read"),
    "verify_unknown": pgettext_lazy("run counter", "checks unknown"),
    "in_stock": pgettext_lazy("run counter", "all in stock"),
    "short": pgettext_lazy("run counter", "short of stock"),
    "purchased": pgettext_lazy("run counter", "ordered from the supplier"),
    "listed": pgettext_lazy("run counter", "purchase lists made"),
    "legacy_offers": pgettext_lazy("run counter", "old offers kept"),
    "match_queue": pgettext_lazy("run counter", "waiting in the match queue"),
    "sent": pgettext_lazy("run counter", "cards sent"),
    "would_send": pgettext_lazy("run counter", "cards that would be sent"),
    "failed": pgettext_lazy("run counter", "cards not sent (Kaspi error)"),
    "invalid": pgettext_lazy("run counter", "cards with problems"),
    "control_characters_replaced": pgettext_lazy(
        "run counter", "control characters replaced by a space"
    ),
}

AUDIT_ACTIONS = {
    "order.fulfilment": _("order: fulfilment step"),
    "order.cancel": _("order: cancelled"),
    "order.accept": _("order: accepted in Kaspi"),
    "order.send_code": _("order: completion code sent"),
    "order.complete": _("order: completed in Kaspi"),
    "order.assemble": _("order: packed for Kaspi Delivery"),
    "payment.refund": _("payment: refund"),
    "payment.import": _("payment: import"),
    "payment.create": _("payment: created"),
    "payment.retry": _("payment: tried again"),
    "kaspi.classification_refresh": _("Kaspi categories: refresh queued"),
    "price_rule.add": _("price rule: added"),
    "price_rule.change": _("price rule: changed"),
    "price_rule.delete": _("price rule: deleted"),
    "product.change": _("product: changed"),
    "product.enable_on_kaspi": _("products: put on Kaspi"),
    "product.disable_on_kaspi": _("products: taken off Kaspi"),
    "product.approve_prices": _("products: prices approved"),
    "syncrun.confirm_vanish": _("run: taking products off sale confirmed"),
}


def label(mapping: dict, code) -> str:
    """The meaning of `code`, or the code itself when we do not know it ("—" when empty)."""
    if code in (None, ""):
        return "—"
    return str(mapping.get(code, code))


def code_html(mapping: dict, code):
    """The meaning, with the raw code in the tooltip."""
    if code in (None, ""):
        return "—"
    return format_html('<span title="{}">{}</span>', code, label(mapping, code))


def counts_text(counts: dict) -> str:
    """A run's counters in words: "получено: 10, ошибок: 0"."""
    return ", ".join(
        f"{label(RUN_COUNTERS, key)}: {_yes_no(value)}" for key, value in counts.items()
    )


def _yes_no(value):
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    return value


def CodeFilter(field: str, title, mapping: dict):  # noqa: N802 (a class factory)
    """A list filter of `field` listing the meanings of the codes present."""

    class _Filter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            present = (
                model_admin.get_queryset(request)
                .exclude(**{field: ""})
                .order_by()
                .values_list(field, flat=True)
                .distinct()
            )
            return sorted(((code, label(mapping, code)) for code in present), key=lambda c: c[1])

        def queryset(self, request, queryset):
            if self.value():
                return queryset.filter(**{field: self.value()})
            return queryset

    _Filter.title = title
    _Filter.__name__ = f"{field.title().replace('_', '')}Filter"
    return _Filter


# Django admin's titles put the model's name into a Russian sentence ("Выберите %s для
# изменения", "Добавить %s"), where it would have to change its case («категорию»); our
# Russian catalogue gives them a form that reads right with the name as it is («Выберите
# для изменения: категория»). Marked here so makemessages keeps them in our django.po.
DJANGO_ADMIN_TITLES = [
    gettext_noop("Select %s to change"),
    gettext_noop("Select %s to view"),
    gettext_noop("Add %s"),
    gettext_noop("Add %(name)s"),
    gettext_noop("Change %s"),
    gettext_noop("View %s"),
]
