"""Suppliers in the admin: the Supplier list and form, and a product's offers (issue 18).

The product page shows every offer that supplies the product (supplier, article, dealer
price, stock, which one is chosen) as a read-only table and lets staff pin one
(`pinned_offer`); the pin goes through catalog/services/offers.py `pin_offer`, which
audits it.
"""

from django.contrib import admin
from django.db.models import Count, Q
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from backoffice.core.audit import audit, snapshot

from .models import Supplier, SupplierOffer


@admin.register(Supplier)
class SupplierAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "kind",
        "enabled",
        "sku_prefix",
        "priority",
        "min_interval",
        "full_sync_minutes",
        "stock_sync_minutes",
        "offers_listed",
        "offers_waiting",
    ]
    list_display_links = ["code", "name"]
    list_filter = ["kind", "enabled"]
    search_fields = ["code", "name"]
    fieldsets = [
        (None, {"fields": ["code", "name", "kind", "enabled", "sku_prefix", "priority"]}),
        (
            _("Rate budget and schedule"),
            {"fields": ["min_interval", "full_sync_minutes", "stock_sync_minutes"]},
        ),
        (
            _("Price file"),
            {"fields": ["url", "format", "auth_env", "mapping", "upload"]},
        ),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                listed_count=Count("offers", filter=Q(offers__listed=True)),
                waiting_count=Count(
                    "offers", filter=Q(offers__listed=True, offers__product__isnull=True)
                ),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        # The code names the supplier in commands, SKUs and articles: fixed once made.
        return ["code"] if obj and obj.pk else []

    @admin.display(description=_("offers"), ordering="listed_count")
    def offers_listed(self, obj):
        return obj.listed_count

    @admin.display(description=_("waiting for a match"), ordering="waiting_count")
    def offers_waiting(self, obj):
        return obj.waiting_count

    def has_delete_permission(self, request, obj=None):
        return False  # offers and purchases refer to it; switch it off instead

    def save_model(self, request, obj, form, change):
        before = {name: form.initial.get(name) for name in form.changed_data}
        super().save_model(request, obj, form, change)
        if form.changed_data:
            audit(
                user=request.user,
                action="supplier.change" if change else "supplier.add",
                obj=obj,
                before=before,
                after=snapshot(obj, form.changed_data),
            )


def _price(offer) -> str:
    if offer.price_on_request or offer.dealer_price is None:
        return str(_("price on request"))
    return f"{offer.dealer_price:,} ₸".replace(",", "\u00a0")


def _stock(offer) -> str:
    raw = (offer.quantity_raw or "").strip()
    if raw.startswith(">"):
        return str(_("more than %(n)s") % {"n": raw[1:].strip()})
    return str(offer.quantity)


@admin.display(description=_("Offers of the suppliers"))
def offers_table(self, obj):
    """Every offer that supplies the product, the chosen one ticked (read-only: a table,
    not an inline formset, so the product form's POST stays as it was)."""
    if obj is None or not obj.pk:
        return "—"
    offers = list(
        SupplierOffer.objects.filter(product=obj)
        .select_related("supplier")
        .order_by("supplier__priority", "article")
    )
    if not offers:
        return "—"
    head = format_html(
        "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        _("supplier"),
        _("supplier article"),
        _("dealer price"),
        _("stock"),
        _("in supplier catalog"),
        _("chosen"),
    )
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                offer.supplier.name,
                offer.article,
                _price(offer),
                _stock(offer),
                "✓" if offer.listed else "—",
                (
                    "✓" + (str(_(" (pinned)")) if obj.pinned_offer_id == offer.pk else "")
                    if obj.offer_id == offer.pk
                    else ""
                ),
            )
            for offer in offers
        ),
    )
    return format_html("<table>{}{}</table>", head, rows)


def add_offer_fields(product_admin) -> None:
    """The offers block on the product page: the inline and the pin field."""
    product_admin.offers_table = offers_table
    product_admin.readonly_fields = [*product_admin.readonly_fields, "offers_table"]
    product_admin.fieldsets = [
        *product_admin.fieldsets,
        (
            _("Supplier offers"),
            {
                "fields": ["offers_table", "pinned_offer"],
                "description": _(
                    "The product shows the price and stock of one offer: the pinned one while "
                    "its supplier lists it; otherwise offers in stock first, then the lowest "
                    "dealer price, then the supplier's priority, then the oldest offer."
                ),
            },
        ),
    ]
    original_get_form = product_admin.get_form
    original_save_model = product_admin.save_model

    def get_form(self, request, obj=None, **kwargs):
        form = original_get_form(self, request, obj, **kwargs)
        field = form.base_fields.get("pinned_offer")
        if field is not None:
            field.queryset = SupplierOffer.objects.filter(product=obj).select_related("supplier")
            field.label_from_instance = lambda o: f"{o.supplier.name}: {o.article}"
        return form

    def save_model(self, request, obj, form, change):
        from .services.offers import pin_offer

        pinned = "pinned_offer" in form.changed_data
        new_pin = obj.pinned_offer
        if pinned:
            obj.pinned_offer_id = form.initial.get("pinned_offer")
        original_save_model(self, request, obj, form, change)
        if pinned:
            pin_offer(obj, new_pin, user=request.user)

    product_admin.get_form = get_form
    product_admin.save_model = save_model
