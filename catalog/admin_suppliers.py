"""Suppliers in the admin (issue 18): the Supplier list and form (column mapping, preview of
the first rows, upload, «Синхронизировать»), a product's offers with a pin, and the match
queue.

The product page shows every offer that supplies the product (supplier, article, dealer
price, stock, which one is chosen) as a read-only table and lets staff pin one
(`pinned_offer`); the pin goes through catalog/services/offers.py `pin_offer`, which
audits it.
"""

import time

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from backoffice.core.admin_helpers import MoneyColumnsMixin
from backoffice.core.audit import audit, snapshot
from backoffice.core.exceptions import BackofficeError
from backoffice.core.formats import money

from .models import MatchQueueOffer, Product, Supplier, SupplierOffer
from .services import matching
from .services.supplier_sync import request_supplier_sync
from .services.suppliers import (
    SupplierSettingsError,
    check_pricefile_settings,
    preview_supplier,
    save_pricefile_supplier,
)
from .suppliers.pricefile.mapping import FIELDS, OPTIONS, MappingError, validate
from .suppliers.pricefile.parsers import BadRow

INDEX_SECONDS = 30
_indexes: dict[int, tuple[float, matching.Index]] = {}


def match_index(supplier) -> "matching.Index":
    """The matching index for the queue pages, rebuilt at most every INDEX_SECONDS (one
    pass over the linked offers, not one per row shown)."""
    now = time.monotonic()
    cached = _indexes.get(supplier.pk)
    if cached is None or now - cached[0] > INDEX_SECONDS:
        cached = (now, matching.build_index(supplier))
        _indexes[supplier.pk] = cached
    return cached[1]


OPTION_LABELS = {
    "header_row": _("Header row number"),
    "sheet": _("Sheet (XLSX)"),
    "delimiter": _("Delimiter (CSV)"),
    "encoding": _("Encoding (CSV)"),
}
MAP_HELP = _(
    "XLSX/CSV: the column header as in the file, or a column letter (A, B …). YML: an "
    "element of the offer (price, vendorCode), an attribute (@id) or param:Name. Several "
    "sources: a|b (the first non-empty wins). Empty: the default (YML) or a guess from the "
    "usual headers."
)


class SupplierFormBase(forms.ModelForm):
    """The supplier with one field per mapping entry instead of raw JSON."""

    class Meta:
        model = Supplier
        fields = [
            "code",
            "name",
            "kind",
            "enabled",
            "priority",
            "sku_prefix",
            "create_unmatched",
            "min_interval",
            "full_sync_minutes",
            "stock_sync_minutes",
            "url",
            "format",
            "auth_env",
            "upload",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        mapping = (self.instance.mapping or {}) if self.instance else {}
        for name in list(FIELDS) + list(OPTIONS):
            self.initial.setdefault(f"map_{name}", mapping.get(name, ""))

    def mapping_entries(self) -> dict:
        entries = {}
        for name in list(FIELDS) + list(OPTIONS):
            value = self.cleaned_data.get(f"map_{name}")
            if value not in (None, ""):
                entries[name] = value
        return entries

    def clean(self):
        cleaned = super().clean()
        try:
            cleaned["mapping"] = validate(self.mapping_entries())
        except MappingError as exc:
            raise forms.ValidationError(str(exc)) from None
        if cleaned.get("kind") == Supplier.Kind.PRICEFILE:
            try:
                check_pricefile_settings(
                    code=cleaned.get("code") or self.instance.code,
                    url=cleaned.get("url") or "",
                    file_format=cleaned.get("format") or "",
                    auth_env=cleaned.get("auth_env") or "",
                )
            except SupplierSettingsError as exc:
                raise forms.ValidationError(str(exc)) from None
        return cleaned


# One declared field per mapping entry (declared, so the admin's fieldsets may name them).
SupplierForm = type(
    "SupplierForm",
    (SupplierFormBase,),
    {
        f"map_{name}": forms.CharField(
            label=label, required=False, help_text=MAP_HELP if name == "article" else ""
        )
        for name, label in list(FIELDS.items()) + list(OPTION_LABELS.items())
    },
)


@admin.register(Supplier)
class SupplierAdmin(admin.ModelAdmin):
    form = SupplierForm
    list_display = [
        "code",
        "name",
        "kind",
        "enabled",
        "format",
        "priority",
        "sku_prefix",
        "offers_listed",
        "queue_display",
    ]
    list_display_links = ["code", "name"]
    list_filter = ["kind", "enabled"]
    search_fields = ["code", "name"]
    actions = ["sync_now"]
    readonly_fields = ["preview_display", "updated_at"]

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
        fixed = ["code"] if obj and obj.pk else []
        return [*fixed, *self.readonly_fields]

    def has_delete_permission(self, request, obj=None):
        return False  # offers and purchases refer to it; switch it off instead

    # Django's titles put the name in the nominative («Выберите поставщик для изменения»,
    # «Изменить поставщик»); Russian wants the accusative there, so plain titles instead.
    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"title": _("Suppliers"), **(extra_context or {})})

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        title = capfirst(Supplier._meta.verbose_name) if object_id else _("New supplier")
        return super().changeform_view(
            request, object_id, form_url, {"title": title, **(extra_context or {})}
        )

    def get_fieldsets(self, request, obj=None):
        base = [
            "code",
            "name",
            "kind",
            "enabled",
            "priority",
            "sku_prefix",
            "create_unmatched",
            "min_interval",
            "full_sync_minutes",
            "stock_sync_minutes",
        ]
        pricefile = ["url", "format", "auth_env", "upload"]
        mapping = [f"map_{name}" for name in list(FIELDS) + list(OPTIONS)]
        sets = [
            (None, {"fields": base}),
            (_("Price file"), {"fields": pricefile}),
            (_("Column mapping"), {"fields": mapping}),
        ]
        if obj is not None and obj.kind == Supplier.Kind.PRICEFILE:
            sets.append((_("Preview of the first rows"), {"fields": ["preview_display"]}))
        return sets

    def save_model(self, request, obj, form, change):
        """Price-file suppliers are saved by the service (validated, audited)."""
        if form.cleaned_data.get("kind") != Supplier.Kind.PRICEFILE:
            before = {name: form.initial.get(name) for name in form.changed_data}
            obj.mapping = form.cleaned_data.get("mapping", obj.mapping)
            super().save_model(request, obj, form, change)
            if form.changed_data:
                audit(
                    user=request.user,
                    action="supplier.change" if change else "supplier.add",
                    obj=obj,
                    before=before,
                    after=snapshot(obj, form.changed_data),
                )
            return
        data = form.cleaned_data
        obj.code = obj.code or data.get("code")
        upload = data.get("upload") if "upload" in form.changed_data else None
        try:
            saved, _created = save_pricefile_supplier(
                code=obj.code,
                name=data.get("name"),
                url=data.get("url") or "",
                file_format=data.get("format"),
                auth_env=data.get("auth_env") or "",
                mapping=data.get("mapping"),
                sku_prefix=data.get("sku_prefix") or "",
                create_unmatched=data.get("create_unmatched"),
                enabled=data.get("enabled"),
                upload=upload if upload else None,
                user=request.user,
            )
        except SupplierSettingsError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        for name in ("priority", "min_interval", "full_sync_minutes", "stock_sync_minutes"):
            setattr(saved, name, data.get(name, getattr(saved, name)))
        saved.save(
            update_fields=["priority", "min_interval", "full_sync_minutes", "stock_sync_minutes"]
        )
        obj.pk = saved.pk

    @admin.display(description=_("offers"), ordering="listed_count")
    def offers_listed(self, obj):
        return obj.listed_count

    @admin.display(description=_("waiting in the match queue"))
    def queue_display(self, obj):
        if obj.code == Supplier.ALSTYLE:
            return "—"
        count = obj.waiting_count
        if not count:
            return 0
        url = reverse("admin:catalog_matchqueueoffer_changelist") + f"?supplier__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, count)

    @admin.display(description=_("Preview of the first rows"))
    def preview_display(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        url = reverse("admin:catalog_supplier_preview", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}">{}</a> <span class="help">{}</span>',
            url,
            _("Show the first rows"),
            _("Reads the start of the file with the saved mapping (save first)."),
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="catalog_supplier_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request, pk):
        supplier = get_object_or_404(Supplier, pk=pk)
        if not self.has_view_permission(request, supplier):
            return redirect("admin:index")
        result = preview_supplier(supplier)
        columns = list(FIELDS)
        rows = []
        for item in result["rows"]:
            if isinstance(item, BadRow):
                rows.append({"number": item.number, "error": item.reason})
            else:
                rows.append(
                    {"number": item.number, "values": [item.values.get(c) for c in columns]}
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Preview of the first rows: %(supplier)s") % {"supplier": supplier},
            "supplier": supplier,
            "result": result,
            "columns": [FIELDS[c] for c in columns],
            "rows": rows,
        }
        return TemplateResponse(request, "admin/catalog/supplier/preview.html", context)

    @admin.action(description=_("Sync the supplier"))
    def sync_now(self, request, queryset):
        """Queue each selected supplier's sync (a task; the run history shows progress)."""
        for supplier in queryset:
            run, started = request_supplier_sync(supplier=supplier, user=request.user)
            link = reverse("admin:backoffice_syncrun_change", args=[run.pk])
            if started:
                text = _("%(supplier)s: sync queued (run #%(run)s).")
            else:
                text = _("%(supplier)s: a sync is already queued or running (run #%(run)s).")
            self.message_user(
                request,
                format_html(
                    '<a href="{}">{}</a>', link, text % {"supplier": supplier, "run": run.pk}
                ),
                messages.SUCCESS if started else messages.WARNING,
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
                str(offer.supplier),
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
            field.label_from_instance = lambda o: f"{o.supplier}: {o.article}"
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


class MatchForm(forms.ModelForm):
    """Staff's decision for a queued offer: a product to link it to, or a new product."""

    create_new = forms.BooleanField(label=_("Create a new product from this offer"), required=False)

    class Meta:
        model = MatchQueueOffer
        fields = ["product"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("product") and cleaned.get("create_new"):
            raise forms.ValidationError(_("Choose a product or «create a new product», not both."))
        return cleaned


@admin.register(MatchQueueOffer)
class MatchQueueAdmin(MoneyColumnsMixin, admin.ModelAdmin):
    """Offers waiting for staff: link each to a product (or make a new one). Nothing is
    merged without a person deciding; every decision is audited (matching.py)."""

    form = MatchForm
    list_display = [
        "article",
        "name",
        "supplier",
        "brand",
        "part_number",
        "barcode",
        "dealer_price",
        "quantity",
        "candidates_display",
    ]
    money_fields = ("dealer_price",)
    list_filter = [("supplier", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["article", "name", "part_number", "barcode", "brand"]
    list_select_related = ["supplier"]
    autocomplete_fields = ["product"]
    actions = ["create_products"]
    readonly_fields = [
        "supplier",
        "article",
        "name",
        "brand",
        "part_number",
        "barcode",
        "category",
        "dealer_price_display",
        "retail_price_display",
        "quantity_raw",
        "candidates_display",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "supplier",
                    "article",
                    "name",
                    "brand",
                    "part_number",
                    "barcode",
                    "category",
                    "dealer_price_display",
                    "retail_price_display",
                    "quantity_raw",
                ]
            },
        ),
        (_("Decision"), {"fields": ["candidates_display", "product", "create_new"]}),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {"title": _("Match queue"), **(extra_context or {})}
        )

    @admin.display(description=_("dealer price"))
    def dealer_price_display(self, obj):
        return money(obj.dealer_price)

    @admin.display(description=_("retail price"))
    def retail_price_display(self, obj):
        return money(obj.retail_price)

    @admin.display(description=_("possible products"))
    def candidates_display(self, obj):
        found, how = matching.candidates(obj, match_index(obj.supplier))
        if not found:
            return _("none: no product with this part number + brand or barcode")
        products = Product.objects.filter(pk__in=sorted(found)[:10]).only("pk", "sku", "name")
        reason = {
            "part": _("same part number and brand"),
            "barcode": _("same barcode"),
            "conflict": _("part number and barcode point at different products"),
            "no_brand": _("same part number, the offer has no brand"),
        }.get(how, how)
        items = format_html_join(
            "",
            '<li><a href="{}">{}</a> — {}</li>',
            (
                (reverse("admin:catalog_product_change", args=[p.pk]), p.sku, p.name[:80])
                for p in products
            ),
        )
        return format_html("{}<ul>{}</ul>", reason, items)

    def save_model(self, request, obj, form, change):
        """The decision goes through the matching service (audited), never a bare save."""
        product = form.cleaned_data.get("product")
        try:
            if form.cleaned_data.get("create_new"):
                created = matching.create_product_from_offer(offer=obj, user=request.user)
                self.message_user(request, _("New product %(sku)s created.") % {"sku": created.sku})
            elif product is not None:
                matching.link_offer(offer=obj, product=product, user=request.user)
                self.message_user(request, _("Offer linked to %(sku)s.") % {"sku": product.sku})
        except (matching.MatchError, BackofficeError) as exc:
            self.message_user(request, str(exc), messages.ERROR)

    def response_change(self, request, obj):
        return redirect("admin:catalog_matchqueueoffer_changelist")

    @admin.action(description=_("Create new products from the selected offers"))
    def create_products(self, request, queryset):
        done = 0
        for offer in queryset.select_related("supplier"):
            try:
                matching.create_product_from_offer(offer=offer, user=request.user)
                done += 1
            except matching.MatchError as exc:
                self.message_user(request, f"{offer.article}: {exc}", messages.ERROR)
        self.message_user(request, _("New products created: %(n)d.") % {"n": done})
