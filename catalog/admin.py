import json
import tempfile
from pathlib import Path

from django import forms
from django.conf import settings as django_settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join, mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from backoffice.core import labels
from backoffice.core.admin_helpers import (
    MoneyColumnsMixin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    pretty_json,
    refuse_unconfigured,
    report_enqueue,
)
from backoffice.core.exceptions import BackofficeError
from backoffice.core.formats import money

from .clients.pricelist_url import download_pricelist
from .models import (
    AttributeSource,
    Brand,
    CardImport,
    CardMapping,
    CardState,
    Category,
    FeedBuild,
    FeedFetch,
    KaspiAttribute,
    KaspiCategory,
    LegacyOffer,
    PriceListImport,
    PriceRule,
    Product,
)
from .pricelists import PriceListError
from .services.cards import (
    card_preview,
    refresh_attributes,
    request_card_data,
    request_card_upload,
    request_classification_refresh,
)
from .services.cutover import cutover_report
from .services.feed import request_feed_build, store_plan
from .services.pricelist_export import build_excel
from .services.pricelist_import import (
    import_pricelist,
    release_offer,
    request_pricelist_import,
    resolve_offer,
)
from .services.pricing import (
    approve_prices,
    delete_price_rule,
    preview_prices,
    save_price_rule,
)
from .services.products import AUDITED_FIELDS, save_product, set_kaspi_enabled
from .services.sync import request_catalog_sync
from .skus import sku_warnings

NAME_CHARS = 60  # product names in lists: one line at 1366 px


def no_kaspi_token():
    """Said at once instead of queuing work that is certain to fail."""
    return format_html(
        _(
            "Kaspi is not connected: the API token {} is not set, so this would fail. Set it "
            "in the settings (.env) and restart."
        ),
        mark_safe("<code>KASPI_SHOP_TOKEN</code>"),
    )


def card_fix(request, problem) -> tuple[str, str]:
    """The link that fixes a card problem and its label ("", "" when there is none)."""
    fix, ids = getattr(problem, "fix", ""), getattr(problem, "ids", {})
    if fix == "map_category" and ids.get("category_id"):
        if not request.user.has_perm("catalog.add_cardmapping"):
            return "", ""
        url = reverse("admin:catalog_cardmapping_add") + f"?category={ids['category_id']}"
        return url, _("Map this category to a Kaspi category")
    if fix == "attribute" and ids.get("mapping_id"):
        if not request.user.has_perm("catalog.change_cardmapping"):
            return "", ""
        url = reverse("admin:catalog_cardmapping_change", args=[ids["mapping_id"]])
        if ids.get("has_source"):
            return url, _("Check this attribute's source in the mapping")
        return f"{url}?attribute={ids['attribute_id']}", _("Fill this attribute in the mapping")
    if fix == "brand" and ids.get("product_id"):
        url = reverse("admin:catalog_product_change", args=[ids["product_id"]])
        return url, _("Set the brand on the product page")
    return "", ""


class CardFilter(admin.SimpleListFilter):
    title = _("Kaspi card")
    parameter_name = "card"

    def lookups(self, request, model_admin):
        return [("missing", _("no accepted card")), *CardState.choices[1:]]

    def queryset(self, request, queryset):
        if self.value() == "missing":
            return queryset.exclude(card_state=CardState.ACCEPTED)
        if self.value():
            return queryset.filter(card_state=self.value())
        return queryset


class StockFilter(admin.SimpleListFilter):
    title = _("stock")
    parameter_name = "stock"

    def lookups(self, request, model_admin):
        return [("in", _("in stock")), ("out", _("out of stock"))]

    def queryset(self, request, queryset):
        if self.value() == "in":
            return queryset.filter(quantity__gt=0)
        if self.value() == "out":
            return queryset.filter(quantity=0)
        return queryset


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    change_list_template = "admin/catalog/product/change_list.html"
    # Fits 1366 px: what staff scan a list for; the rest is on the product page.
    list_display = [
        "article",
        "name_short",
        "kaspi_price_display",
        "stock",
        "kaspi_enabled",
        "attention_display",
    ]
    list_display_links = ["article", "name_short"]
    list_filter = [
        "kaspi_enabled",
        "available",
        "listed",
        "price_on_request",
        "price_review",
        "below_cost",
        "is_new",
        StockFilter,
        CardFilter,
        ("brand", admin.RelatedOnlyFieldListFilter),
        ("category", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["=article", "sku", "article_pn", "name"]
    list_select_related = ["brand", "category"]
    list_per_page = 100
    show_full_result_count = False
    actions = [
        "sync_now",
        "enable_on_kaspi",
        "disable_on_kaspi",
        "preview_prices_action",
        "approve_prices",
        "rebuild_feed",
        "fetch_card_data",
        "upload_cards",
    ]
    readonly_fields = [
        "card_state",
        "card_message",
        "card_import",
        "card_preview_link",
        "chosen_offer_display",
        "article",
        "article_pn",
        "name",
        "full_name",
        "category",
        "brand",
        "dealer_price",
        "retail_price",
        "quantity",
        "quantity_raw",
        "is_new",
        "price_on_request",
        "listed",
        "available",
        "kaspi_price_value",
        "price_rule",
        "price_review",
        "price_review_note",
        "below_cost",
        "store_split",
        "feed_available",
        "feed_price",
        "offer_off_since",
        "first_seen",
        "last_seen",
        "updated_at",
        "raw_pretty",
    ]
    fieldsets = [
        (
            _("Kaspi"),
            {
                "fields": [
                    "kaspi_enabled",
                    "sku",
                    "manual_price",
                    "preorder_days",
                    "kaspi_price_value",
                    "price_rule",
                    "price_review",
                    "price_review_note",
                    "below_cost",
                    "store_split",
                    "feed_available",
                    "feed_price",
                    "offer_off_since",
                ]
            },
        ),
        (
            _("Supplier (chosen offer)"),
            {
                "fields": [
                    "chosen_offer_display",
                    "article",
                    "article_pn",
                    "name",
                    "full_name",
                    "category",
                    "brand",
                    "dealer_price",
                    "retail_price",
                    "quantity",
                    "quantity_raw",
                    "is_new",
                    "price_on_request",
                    "listed",
                    "available",
                    "first_seen",
                    "last_seen",
                    "updated_at",
                ]
            },
        ),
        (
            _("Kaspi card"),
            {"fields": ["card_state", "card_message", "card_import", "card_preview_link"]},
        ),
        (_("Raw supplier data"), {"classes": ["collapse"], "fields": ["raw_pretty"]}),
    ]

    def has_add_permission(self, request):
        return False  # products come from the supplier sync

    @admin.display(description=_("Stock per pickup point"))
    def store_split(self, obj):
        """How the price list shares this product's free units between the pickup points
        (KASPI_STORE_STOCK, or KASPI_STORE_WAREHOUSES with the offer's stock per warehouse),
        so no unit is promised twice."""
        plan = store_plan()
        free = max(obj.quantity - obj.reserved_quantity, 0) if obj.available else 0
        by_warehouse = obj.offer.warehouse_stock if plan.warehouses and obj.offer_id else None
        units = plan.from_warehouses(free, by_warehouse)
        if units is not None:
            return " · ".join(
                f"{store} ({'+'.join(codes) or '—'}): {n}"
                for store, codes, n in zip(plan.stores, plan.warehouses, units, strict=True)
            )
        return " · ".join(
            f"{store} ({share.normalize():f} %): {n}"
            for store, share, n in zip(plan.stores, plan.shares, plan.split(free), strict=True)
        )

    # What the published price list says (PublishedOffer), empty when not in it.
    @admin.display(description=_("in price list as available"), boolean=True)
    def feed_available(self, obj):
        return obj.feed_available

    @admin.display(description=_("price in price list"))
    def feed_price(self, obj):
        return self.get_empty_value_display() if obj.feed_price is None else money(obj.feed_price)

    @admin.display(description=Product._meta.get_field("price1").verbose_name)
    def dealer_price(self, obj):
        return money(obj.price1)

    @admin.display(description=Product._meta.get_field("price2").verbose_name)
    def retail_price(self, obj):
        return money(obj.price2)

    @admin.display(description=Product._meta.get_field("kaspi_price").verbose_name)
    def kaspi_price_value(self, obj):
        return money(obj.kaspi_price)

    @admin.display(description=_("off sale since"))
    def offer_off_since(self, obj):
        since = obj.offer_off_since
        if since is None:
            return self.get_empty_value_display()
        return date_format(timezone.localtime(since), "DATETIME_FORMAT")

    @admin.display(description=_("chosen offer"))
    def chosen_offer_display(self, obj):
        """Whose figures the block shows: the chosen offer's supplier by name and its code
        there (the product's own code above may be another supplier's)."""
        offer = obj.offer
        if offer is None:
            return self.get_empty_value_display()
        pinned = str(_(" (pinned)")) if obj.pinned_offer_id == offer.pk else ""
        return f"{offer.supplier}: {offer.article}{pinned}"

    @admin.display(description=_("supplier data"))
    def raw_pretty(self, obj):
        return pretty_json(obj.raw)

    @admin.display(description=_("name"), ordering="name")
    def name_short(self, obj):
        """Cut to one line; the full name (and the SKU) on hover."""
        short = obj.name if len(obj.name) <= NAME_CHARS else obj.name[: NAME_CHARS - 1] + "…"
        return format_html('<span title="{} · {}">{}</span>', obj.name, obj.sku, short)

    @admin.display(description=_("stock"), ordering="quantity")
    def stock(self, obj):
        return obj.stock_display

    @admin.display(description=_("Kaspi price"), ordering="kaspi_price")
    def kaspi_price_display(self, obj):
        if obj.price_on_request:
            return _("price on request")
        return money(obj.kaspi_price)

    @admin.display(description=_("needs attention"))
    def attention_display(self, obj):
        """Only where it applies, with the reason; nothing on a product that is fine."""
        reasons = []
        if obj.price_review:
            reasons.append(
                f"{_('price needs review')}: {obj.price_review_note}"
                if obj.price_review_note
                else str(_("price needs review"))
            )
        if obj.below_cost:
            reasons.append(str(_("frozen below break-even")))
        if obj.card_state == CardState.INVALID:
            first = (obj.card_message or "").splitlines()[0] if obj.card_message else ""
            reasons.append(f"{_('Kaspi card')}: {first}" if first else str(_("Kaspi card")))
        if not reasons:
            return ""
        return format_html(
            '<span style="color:#ba2121" title="{}">⚠ {}</span>',
            "\n".join(reasons),
            reasons[0][:60] + (" …" if len(reasons) > 1 or len(reasons[0]) > 60 else ""),
        )

    def save_model(self, request, obj, form, change):
        before = {
            name: form.initial.get(name) for name in AUDITED_FIELDS if name in form.changed_data
        }
        changed = save_product(product=obj, before=before, user=request.user)
        if "sku" in changed and sku_warnings(obj.sku):
            self.message_user(
                request,
                _(
                    "SKU %(sku)s kept, but it holds %(what)s. Kaspi accepts such SKUs for "
                    "offers that already exist; for new cards prefer Latin letters and digits."
                )
                % {"sku": obj.sku, "what": ", ".join(sku_warnings(obj.sku))},
                messages.WARNING,
            )

    def get_urls(self):
        return [
            path(
                "sync/",
                self.admin_site.admin_view(self.sync_view),
                name="catalog_product_sync",
            ),
            path(
                "<int:pk>/card/",
                self.admin_site.admin_view(self.card_view),
                name="catalog_product_card",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("card preview"))
    def card_preview_link(self, obj):
        url = reverse("admin:catalog_product_card", args=[obj.pk])
        return format_html(
            '<a href="{}" id="card-preview-link">{}</a>', url, _("Card problems and preview")
        )

    def card_view(self, request, pk):
        product = Product.objects.select_related("brand", "category").get(pk=pk)
        preview = card_preview(product)
        payload = (
            json.dumps(preview.payload, ensure_ascii=False, indent=2) if preview.payload else ""
        )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Kaspi card preview: %(sku)s") % {"sku": product.sku},
            "product": product,
            "preview": preview,
            "problems": [(problem, *card_fix(request, problem)) for problem in preview.problems],
            "payload": payload,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/catalog/product/card_preview.html", context)

    @admin.action(
        description=_("Fetch supplier card data (images, description)"), permissions=["change"]
    )
    def fetch_card_data(self, request, queryset):
        run = request_card_data(products=queryset, user=request.user)
        report_enqueue(self, request, run, True, what=_("Supplier card data fetch"))

    @admin.action(description=_("Upload cards to Kaspi"), permissions=["change"])
    def upload_cards(self, request, queryset):
        if not django_settings.KASPI_SHOP_TOKEN:
            self.message_user(request, no_kaspi_token(), messages.ERROR)
            return
        run, started = request_card_upload(products=queryset, user=request.user)
        report_enqueue(self, request, run, started, what=_("Kaspi card upload"))

    def changelist_view(self, request, extra_context=None):
        # Buttons a user has no right to use are not shown.
        extra = {"can_sync": self.has_change_permission(request)}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def sync_view(self, request):
        if request.method != "POST" or not self.has_change_permission(request):
            return redirect("admin:catalog_product_changelist")
        if not refuse_unconfigured(self, request, "catalog", what=_("Catalog sync")):
            run, started = request_catalog_sync(user=request.user)
            report_enqueue(self, request, run, started, what=_("Catalog sync"))
        return redirect("admin:catalog_product_changelist")

    @admin.action(description=_("Sync from Al-Style now"), permissions=["change"])
    def sync_now(self, request, queryset):
        if refuse_unconfigured(self, request, "catalog", what=_("Catalog sync")):
            return
        run, started = request_catalog_sync(user=request.user)
        report_enqueue(self, request, run, started, what=_("Catalog sync"))

    @admin.action(description=_("Enable on Kaspi"), permissions=["change"])
    def enable_on_kaspi(self, request, queryset):
        count = set_kaspi_enabled(products=queryset, enabled=True, user=request.user)
        self.message_user(
            request,
            ngettext("%(n)d product enabled on Kaspi.", "%(n)d products enabled on Kaspi.", count)
            % {"n": count},
        )

    @admin.action(description=_("Disable on Kaspi"), permissions=["change"])
    def disable_on_kaspi(self, request, queryset):
        count = set_kaspi_enabled(products=queryset, enabled=False, user=request.user)
        self.message_user(
            request,
            ngettext("%(n)d product disabled on Kaspi.", "%(n)d products disabled on Kaspi.", count)
            % {"n": count},
        )

    @admin.action(description=_("Preview prices"))
    def preview_prices_action(self, request, queryset):
        rows = preview_prices(queryset.select_related("brand", "category")[:500])
        context = {
            **self.admin_site.each_context(request),
            "title": _("Price preview"),
            "rows": rows,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/catalog/product/price_preview.html", context)

    @admin.action(description=_("Approve new supplier prices (unfreeze)"), permissions=["change"])
    def approve_prices(self, request, queryset):
        counts = approve_prices(products=queryset, user=request.user)
        self.message_user(
            request, _("Prices approved and recomputed: %(n)d.") % {"n": counts["changed"]}
        )

    @admin.action(description=_("Rebuild Kaspi price list"), permissions=["change"])
    def rebuild_feed(self, request, queryset):
        run, started = request_feed_build(user=request.user)
        report_enqueue(self, request, run, started, what=_("Price list build"))


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "supplier_id", "parent", "level", "product_count"]
    search_fields = ["name", "=supplier_id"]
    list_filter = ["level"]
    readonly_fields = ["supplier_id", "name", "parent", "level", "product_count"]

    def has_add_permission(self, request):
        return False


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ["name", "supplier_id"]
    search_fields = ["name"]


@admin.register(PriceRule)
class PriceRuleAdmin(MoneyColumnsMixin, admin.ModelAdmin):
    money_fields = ("band_min", "band_max", "min_margin")
    list_display = [
        "name",
        "active",
        "scope",
        "category",
        "brand",
        "band_min",
        "band_max",
        "base",
        "markup_percent",
        "markup_fixed",
        "min_margin",
        "rounding",
        "priority",
    ]
    list_editable = ["active", "priority"]
    list_filter = ["active", "scope", "base"]
    search_fields = ["name"]
    autocomplete_fields = ["category", "brand"]

    def _reprice_later(self, request):
        from django_q.tasks import async_task

        transaction.on_commit(lambda: async_task("catalog.tasks.reprice_task"))
        self.message_user(
            request, _("Kaspi prices are being recomputed; the price list is rebuilt after.")
        )

    def save_model(self, request, obj, form, change):
        save_price_rule(rule=obj, user=request.user)
        self._reprice_later(request)

    def delete_model(self, request, obj):
        delete_price_rule(rule=obj, user=request.user)
        self._reprice_later(request)

    def delete_queryset(self, request, queryset):
        for rule in queryset:
            delete_price_rule(rule=rule, user=request.user)
        self._reprice_later(request)


@admin.register(FeedBuild)
class FeedBuildAdmin(ReadOnlyAdmin):
    change_list_template = "admin/catalog/feedbuild/change_list.html"
    list_display = [
        "id",
        "status",
        "started_at",
        "duration",
        "offers_total",
        "offers_available",
        "size_bytes",
        "diff_summary",
        "download",
    ]
    list_filter = ["status", "forced"]
    readonly_fields = [f.name for f in FeedBuild._meta.fields] + ["download"]
    actions = ["rebuild_feed", "rebuild_feed_forced"]

    def get_urls(self):
        return [
            path(
                "rebuild/",
                self.admin_site.admin_view(self.rebuild_view),
                name="catalog_feedbuild_rebuild",
            ),
            path(
                "excel/",
                self.admin_site.admin_view(self.excel_view),
                name="catalog_feedbuild_excel",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {"can_rebuild": self.has_change_permission(request)}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def rebuild_view(self, request):
        """The page buttons: a rebuild needs no row selected (the actions do the same)."""
        if request.method == "POST" and self.has_change_permission(request):
            if request.POST.get("force"):
                self.rebuild_feed_forced(request, FeedBuild.objects.none())
            else:
                self.rebuild_feed(request, FeedBuild.objects.none())
        return redirect("admin:catalog_feedbuild_changelist")

    @admin.display(description=_("duration"))
    def duration(self, obj):
        if obj.finished_at:
            seconds = (obj.finished_at - obj.started_at).total_seconds()
            return _("%(seconds).1f s") % {"seconds": seconds}
        return "—"

    @admin.display(description=_("changes vs previous"))
    def diff_summary(self, obj):
        d = obj.diff or {}
        if not d:
            return "—"
        return _("+%(a)s / −%(r)s, price changed: %(p)s, availability changed: %(v)s") % {
            "a": d.get("added", 0),
            "r": d.get("removed", 0),
            "p": d.get("price_changed", 0),
            "v": d.get("availability_changed", 0),
        }

    @admin.display(description=_("file"))
    def download(self, obj):
        latest = FeedBuild.objects.filter(status=FeedBuild.Status.PUBLISHED).first()
        if latest and latest.pk == obj.pk:
            return format_html('<a href="{}">feed.xml</a>', reverse("feed"))
        return "—"

    def has_change_permission(self, request, obj=None):
        # Actions need change permission; the form itself stays read-only.
        return request.user.has_perm("catalog.change_feedbuild") and obj is None

    @admin.action(description=_("Rebuild Kaspi price list"))
    def rebuild_feed(self, request, queryset):
        run, started = request_feed_build(user=request.user)
        report_enqueue(self, request, run, started, what=_("Price list build"))

    def excel_view(self, request):
        """What the Excel export will hold (home-city prices, points) and its download."""
        export = error = None
        try:
            export = build_excel()
        except BackofficeError as exc:
            error = str(exc)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Kaspi Excel price list"),
            "export": export,
            "error": error,
        }
        return TemplateResponse(request, "admin/catalog/feedbuild/excel.html", context)

    @admin.action(description=_("Rebuild and publish even if the offer count fell"))
    def rebuild_feed_forced(self, request, queryset):
        run, started = request_feed_build(user=request.user, force=True)
        report_enqueue(self, request, run, started, what=_("Price list build"))


@admin.register(FeedFetch)
class FeedFetchAdmin(ReadOnlyAdmin):
    list_display = ["last_fetch_at", "last_status", "last_user_agent", "last_ip", "fetch_count"]


# --- Kaspi product cards --------------------------------------------------------------------


class KaspiAttributeInline(ReadOnlyInline):
    model = KaspiAttribute
    fields = ["code", "type", "mandatory", "multi_valued", "values"]


@admin.register(KaspiCategory)
class KaspiCategoryAdmin(admin.ModelAdmin):
    list_display = ["title", "code", "attributes_loaded_at"]
    search_fields = ["title", "code"]
    readonly_fields = ["code", "title", "attributes_loaded_at"]
    inlines = [KaspiAttributeInline]
    actions = ["load_attributes"]

    change_list_template = "admin/catalog/kaspicategory/change_list.html"

    def has_add_permission(self, request):
        return False  # the «Load categories from Kaspi» button, or manage.py kaspi_classification

    @admin.action(description=_("Load attributes from Kaspi"), permissions=["change"])
    def load_attributes(self, request, queryset):
        for category in queryset[:20]:
            try:
                count = refresh_attributes(category)
            except BackofficeError as exc:
                self.message_user(request, f"{category.code}: {exc}", messages.ERROR)
                return
            self.message_user(
                request,
                _("%(title)s: attributes loaded: %(n)d.") % {"title": category.title, "n": count},
            )

    def get_urls(self):
        return [
            path(
                "refresh/",
                self.admin_site.admin_view(self.refresh_view),
                name="catalog_kaspicategory_refresh",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra = {
            "title": _("Kaspi categories"),
            "can_refresh": self.has_change_permission(request),
            "categories_total": KaspiCategory.objects.count(),
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def refresh_view(self, request):
        """Queue the classification refresh (categories, mapped attributes, schema)."""
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied
        if not django_settings.KASPI_SHOP_TOKEN:
            self.message_user(request, no_kaspi_token(), messages.ERROR)
            return redirect("admin:catalog_kaspicategory_changelist")
        request_classification_refresh(user=request.user)
        self.message_user(
            request,
            _(
                "Loading Kaspi's categories is queued; it takes a minute or two. Reload this "
                "page to see them."
            ),
        )
        return redirect("admin:catalog_kaspicategory_changelist")


class AttributeSourceInline(admin.TabularInline):
    model = AttributeSource
    extra = 1
    autocomplete_fields = ["attribute"]


@admin.register(KaspiAttribute)
class KaspiAttributeAdmin(admin.ModelAdmin):
    list_display = ["code", "category", "type_display", "mandatory", "multi_valued"]
    list_filter = ["mandatory", labels.CodeFilter("type", _("type"), labels.ATTRIBUTE_TYPE)]
    search_fields = ["code", "category__code"]

    @admin.display(description=_("type"), ordering="type")
    def type_display(self, obj):
        return labels.code_html(labels.ATTRIBUTE_TYPE, obj.type)

    def has_add_permission(self, request):
        return False


@admin.register(CardMapping)
class CardMappingAdmin(admin.ModelAdmin):
    list_display = ["category", "kaspi_category", "mandatory_missing"]
    autocomplete_fields = ["category", "kaspi_category"]
    inlines = [AttributeSourceInline]

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        attribute = request.GET.get("attribute", "")
        # A card problem's «fill this attribute» link: the new source row names it.
        if isinstance(inline, AttributeSourceInline) and attribute.isdigit() and not request.POST:
            kwargs["initial"] = [{"attribute": int(attribute)}]
        return kwargs

    @admin.display(description=_("mandatory attributes without a source"))
    def mandatory_missing(self, obj):
        mapped = set(obj.sources.values_list("attribute_id", flat=True))
        missing = obj.kaspi_category.attributes.filter(mandatory=True).exclude(pk__in=mapped)
        return ", ".join(a.code for a in missing) or "—"


@admin.register(CardImport)
class CardImportAdmin(ReadOnlyAdmin):
    list_display = [
        "sent_at",
        "code",
        "status",
        "total",
        "errors",
        "warnings",
        "skipped",
        "created_by",
    ]
    list_filter = ["status", ("created_by", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["=code"]
    readonly_fields = [
        "code",
        "status",
        "sent_at",
        "checked_at",
        "total",
        "errors",
        "warnings",
        "skipped",
        "description",
        "per_sku",
        "result_pretty",
        "created_by",
    ]
    exclude = ["skus", "result", "payload_hash"]

    @admin.display(description=_("per SKU"))
    def per_sku(self, obj):
        rows = obj.products.order_by("sku").values_list("sku", "card_state", "card_message")
        return (
            format_html_join(
                "",
                "<div><strong>{}</strong>: {} {}</div>",
                ((s, st or "—", m) for s, st, m in rows),
            )
            or "—"
        )

    @admin.display(description=_("Kaspi result"))
    def result_pretty(self, obj):
        return pretty_json(obj.result)


# The repricer's admin (issue 19) lives in its own module; the product page shows the
# Kaspi card link (edited on its own page) and the repricer's history with a price chart,
# as read-only fields so the product form's POST stays as it was.
from .admin_market import add_repricer_fields  # noqa: E402

add_repricer_fields(ProductAdmin)

# Suppliers (issue 18): the Supplier admin, and the product's offers with the pin.
from .admin_suppliers import add_offer_fields  # noqa: E402

add_offer_fields(ProductAdmin)


# --- Cut-over from the shop's old price list ------------------------------------------------


class PriceListUploadForm(forms.Form):
    file = forms.FileField(
        label=_("Price list file"),
        required=False,
        help_text=_("Kaspi XML, Excel .xlsx (first sheet) or CSV."),
    )
    url = forms.URLField(
        label=_("or its URL"),
        required=False,
        assume_scheme="https",
        help_text=_("The address Kaspi downloads the current price list from."),
    )

    def clean(self):
        data = super().clean()
        if bool(data.get("file")) == bool(data.get("url")):
            raise forms.ValidationError(_("Give either a file or a URL."))
        return data


def _upload_dir() -> Path:
    directory = Path(django_settings.MEDIA_ROOT) / "pricelist-imports"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@admin.register(PriceListImport)
class PriceListImportAdmin(ReadOnlyAdmin):
    change_list_template = "admin/catalog/pricelistimport/change_list.html"
    list_display = ["id", "created_at", "source", "file_format", "merchant_id", "stores", "summary"]
    readonly_fields = [f.name for f in PriceListImport._meta.fields]

    @admin.display(description=_("pickup points in the file"))
    def stores(self, obj):
        return ", ".join(obj.store_ids)

    @admin.display(description=_("counts"))
    def summary(self, obj):
        return ", ".join(f"{key}: {value}" for key, value in obj.counts.items())

    def get_urls(self):
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="catalog_pricelistimport_upload",
            ),
            path(
                "cutover/",
                self.admin_site.admin_view(self.cutover_view),
                name="catalog_pricelistimport_cutover",
            ),
            *super().get_urls(),
        ]

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def upload_view(self, request):
        """Upload or URL → dry-run preview (nothing written) → Import (a queued task)."""
        if not request.user.has_perm("catalog.change_product"):
            raise PermissionDenied
        if request.method == "POST" and request.POST.get("token"):
            return self._apply(request, request.POST["token"], request.POST.get("source", ""))
        form = PriceListUploadForm(request.POST or None, request.FILES or None)
        result = error = None
        token = source = ""
        if request.method == "POST" and form.is_valid():
            try:
                token, source, saved = self._save_source(form)
                result = import_pricelist(path=saved, source=source, dry_run=True)
            except BackofficeError as exc:
                error = str(exc)
                if token:
                    (_upload_dir() / token).unlink(missing_ok=True)
                token = ""
        rows = []
        if result is not None:
            names = dict(
                Product.objects.filter(
                    pk__in={r["product_id"] for r in result.rows if r["product_id"]}
                    | {pk for r in result.rows for pk in r["candidates"]}
                ).values_list("pk", "article")
            )
            for row in sorted(result.rows, key=lambda r: r["status"] in LegacyOffer.RESOLVED)[:500]:
                rows.append(
                    {
                        **row,
                        "status_label": LegacyOffer.Status(row["status"]).label,
                        "rule_label": LegacyOffer.Rule(row["rule"]).label if row["rule"] else "",
                        "product": names.get(row["product_id"], ""),
                        "candidate_articles": ", ".join(
                            names.get(pk, str(pk)) for pk in row["candidates"]
                        ),
                    }
                )
        context = self._context(
            request,
            title=_("Import the old Kaspi price list"),
            form=form,
            result=result,
            rows=rows,
            error=error,
            token=token,
            source=source,
        )
        return TemplateResponse(request, "admin/catalog/pricelistimport/upload.html", context)

    def _save_source(self, form) -> tuple[str, str, Path]:
        directory = _upload_dir()
        if form.cleaned_data.get("url"):
            source = form.cleaned_data["url"]
            downloaded = download_pricelist(source, directory=directory)
            return downloaded.name, source, downloaded
        upload = form.cleaned_data["file"]
        if upload.size > django_settings.PRICELIST_IMPORT_MAX_MB * 1024 * 1024:
            raise PriceListError(
                _("The file is larger than %(n)d MB (PRICELIST_IMPORT_MAX_MB).")
                % {"n": django_settings.PRICELIST_IMPORT_MAX_MB}
            )
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".pricelist", dir=directory)
        with open(fd, "wb") as handle:
            for chunk in upload.chunks():
                handle.write(chunk)
        return Path(name).name, upload.name, Path(name)

    def _apply(self, request, token: str, source: str):
        saved = _upload_dir() / Path(token).name  # a bare name: no path from the form
        if not saved.is_file():
            self.message_user(
                request, _("The previewed file is gone; upload it again."), messages.ERROR
            )
            return redirect("admin:catalog_pricelistimport_upload")
        request_pricelist_import(path=saved, source=source, user=request.user)
        self.message_user(
            request,
            _(
                "Import queued: the matched products take their old SKUs; "
                "see the offers from the old price list."
            ),
        )
        return redirect("admin:catalog_legacyoffer_changelist")

    def cutover_view(self, request):
        report = cutover_report()
        context = self._context(request, title=_("Cut-over report"), report=report)
        return TemplateResponse(request, "admin/catalog/pricelistimport/cutover.html", context)


class LegacyStatusFilter(admin.SimpleListFilter):
    title = _("in our price list")
    parameter_name = "kept"

    def lookups(self, request, model_admin):
        return [("yes", _("from the old price list")), ("no", _("no"))]

    def queryset(self, request, queryset):
        kept = Q(keep_until__gte=timezone.now()) & ~Q(status__in=LegacyOffer.RESOLVED)
        if self.value() == "yes":
            return queryset.filter(kept)
        if self.value() == "no":
            return queryset.exclude(kept)
        return queryset


@admin.register(LegacyOffer)
class LegacyOfferAdmin(MoneyColumnsMixin, admin.ModelAdmin):
    money_fields = ("price",)
    change_list_template = "admin/catalog/legacyoffer/change_list.html"
    list_display = [
        "sku",
        "model_short",
        "price",
        "status",
        "rule",
        "confidence",
        "product",
        "candidate_links",
        "in_price_list",
    ]
    list_filter = ["status", "rule", LegacyStatusFilter]
    search_fields = ["sku", "model", "product__article", "product__name"]
    autocomplete_fields = ["product"]
    list_select_related = ["product"]
    actions = ["confirm_matches"]
    fields = [
        "product",
        "sku",
        "row",
        "model",
        "brand",
        "price",
        "city_prices",
        "availabilities",
        "status",
        "rule",
        "confidence",
        "candidate_links",
        "note",
        "keep_until",
        "pricelist",
    ]
    readonly_fields = [name for name in fields if name != "product"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("model"), ordering="model")
    def model_short(self, obj):
        return obj.model if len(obj.model) <= 80 else obj.model[:79] + "…"

    @admin.display(description=_("candidates"))
    def candidate_links(self, obj):
        products = Product.objects.filter(pk__in=obj.candidates).only("article", "name")
        return (
            format_html_join(
                ", ",
                '<a href="{}" title="{}">{}</a>',
                (
                    (reverse("admin:catalog_product_change", args=[p.pk]), p.name, p.article)
                    for p in products
                ),
            )
            or "—"
        )

    @admin.display(description=_("in our price list"))
    def in_price_list(self, obj):
        if obj.status in LegacyOffer.RESOLVED:
            return (
                _("as product %(article)s") % {"article": obj.product.article}
                if obj.product
                else "—"
            )
        if obj.keep_until and obj.keep_until >= timezone.now():
            return _("from the old price list, until %(date)s") % {
                "date": date_format(timezone.localtime(obj.keep_until), "SHORT_DATE_FORMAT")
            }
        return _("no")

    def save_model(self, request, obj, form, change):
        if "product" not in form.changed_data:
            return
        previous = LegacyOffer.objects.select_related("product").get(pk=obj.pk)
        try:
            with transaction.atomic():
                if previous.product is not None and previous.status in LegacyOffer.RESOLVED:
                    release_offer(offer=previous, user=request.user)
                if obj.product is not None:
                    resolve_offer(offer=previous, product=obj.product, user=request.user)
        except BackofficeError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        if obj.product is not None and sku_warnings(obj.sku):
            self.message_user(
                request,
                _("SKU %(sku)s kept as it is (it holds %(what)s; it is live on Kaspi).")
                % {"sku": obj.sku, "what": ", ".join(sku_warnings(obj.sku))},
                messages.WARNING,
            )

    @admin.action(description=_("Confirm the matched product"), permissions=["change"])
    def confirm_matches(self, request, queryset):
        done = 0
        for offer in queryset.filter(status=LegacyOffer.Status.MATCHED, product__isnull=False):
            try:
                resolve_offer(offer=offer, product=offer.product, user=request.user)
                done += 1
            except BackofficeError as exc:
                self.message_user(request, f"{offer.sku}: {exc}", messages.ERROR)
        self.message_user(request, _("Confirmed: %(n)d.") % {"n": done})


# Suppliers, their column mapping and preview, and the match queue (issue 18 items 3, 4).
from . import admin_suppliers  # noqa: E402, F401
