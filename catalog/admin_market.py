"""Admin of the repricer (issue 19): card links, market, rules, commissions, price changes."""

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from backoffice.core.admin_helpers import (
    MoneyColumnsMixin,
    ReadOnlyAdmin,
    pretty_json,
    report_enqueue,
)
from backoffice.core.exceptions import BackofficeError

from .clients.kaspi_offers import card_id_from_url, card_url
from .models import (
    KaspiCardLink,
    KaspiCommission,
    MarketObservation,
    MarketState,
    PriceChange,
    RepricingRule,
)
from .services.card_links import confirm_candidate
from .services.market import freshness, request_market_read_of
from .services.repricer import apply_changes, reject_changes, request_reprice

CHART_W, CHART_H = 480, 120
# One staff read is every city of each ticked card, paced: keep a selection short.
MARKET_READ_MAX = 20
CHART_COLOURS = ("#264b9b", "#c0392b", "#27ae60", "#8e44ad", "#d35400")


def price_history_svg(changes) -> str:
    """A small SVG line per city of applied prices over time (the product page's chart)."""
    series: dict[str, list] = {}
    for change in changes:
        series.setdefault(change.city, []).append((change.applied_at, change.new_price))
    points = [p for rows in series.values() for p in rows]
    if len(points) < 1:
        return ""
    times = [t.timestamp() for t, _p in points]
    prices = [p for _t, p in points]
    t0, t1 = min(times), max(times) or 1
    p0, p1 = min(prices), max(prices)
    span_t, span_p = (t1 - t0) or 1, (p1 - p0) or 1
    lines = []
    for i, (city, rows) in enumerate(sorted(series.items())):
        coords = " ".join(
            f"{10 + (t.timestamp() - t0) / span_t * (CHART_W - 20):.1f},"
            f"{CHART_H - 15 - (p - p0) / span_p * (CHART_H - 30):.1f}"
            for t, p in sorted(rows)
        )
        colour = CHART_COLOURS[i % len(CHART_COLOURS)]
        lines.append((coords, colour, city, 12 + 12 * i))
    body = format_html_join(
        "",
        '<polyline fill="none" stroke="{1}" stroke-width="2" points="{0}"/>'
        '<text x="4" y="{3}" font-size="10" fill="{1}">{2}</text>',
        lines,
    )
    return format_html(
        '<svg width="{}" height="{}" role="img" style="border:1px solid #ddd">{}'
        '<text x="{}" y="{}" font-size="10">{}–{} ₸</text></svg>',
        CHART_W,
        CHART_H,
        body,
        CHART_W - 120,
        CHART_H - 3,
        p0,
        p1,
    )


def add_repricer_fields(product_admin) -> None:
    """A "Kaspi card and repricer" block on the product page (read-only fields)."""

    @admin.display(description=_("Kaspi card"))
    def kaspi_card(self, obj):
        link = KaspiCardLink.objects.filter(product=obj).first() if obj and obj.pk else None
        if link is None:
            add = reverse("admin:catalog_kaspicardlink_add") + f"?product={obj.pk}" if obj else ""
            return (
                format_html('<a href="{}">{}</a>', add, _("Link to a Kaspi card")) if add else "—"
            )
        edit = reverse("admin:catalog_kaspicardlink_change", args=[link.pk])
        card = (
            format_html('<a href="{0}" rel="noreferrer">{0}</a>', card_url(link.card_id))
            if link.card_id
            else "—"
        )
        return format_html(
            '{} — <a href="{}">{}</a><br>{}: {} {}<br>{}: {} / {}',
            card,
            edit,
            link.get_status_display(),
            _("note"),
            link.note or "—",
            link.master_category,
            _("manual floor / ceiling"),
            link.floor_price or "—",
            link.ceiling_price or "—",
        )

    @admin.display(description=_("repricer history"))
    def repricer_history(self, obj):
        if not obj or not obj.pk:
            return "—"
        applied = obj.price_changes.filter(status=PriceChange.Status.APPLIED).order_by("applied_at")
        recent = obj.price_changes.order_by("-created_at")[:10]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{} → {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    timezone.localtime(c.created_at).strftime("%Y-%m-%d %H:%M"),
                    c.city,
                    c.old_price,
                    c.new_price,
                    c.reason,
                    c.flag,
                    c.get_status_display(),
                )
                for c in recent
            ),
        )
        chart = price_history_svg(list(applied))
        if not chart and not rows:
            return "—"
        return format_html("{}<table>{}</table>", chart, rows)

    product_admin.kaspi_card = kaspi_card
    product_admin.repricer_history = repricer_history
    product_admin.readonly_fields = [
        *product_admin.readonly_fields,
        "kaspi_card",
        "repricer_history",
    ]
    product_admin.fieldsets = [
        *product_admin.fieldsets,
        (_("Kaspi card and repricer"), {"fields": ["kaspi_card", "repricer_history"]}),
    ]


class LinkStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "link"

    def lookups(self, request, model_admin):
        return KaspiCardLink.Status.choices

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


class KaspiCardLinkForm(forms.ModelForm):
    card_id = forms.CharField(
        label=_("Kaspi card URL or id"),
        max_length=1000,
        required=False,
        help_text=_("Paste the card's address from kaspi.kz, e.g. …/shop/p/name-123456789/."),
    )

    class Meta:
        model = KaspiCardLink
        fields = ["product", "card_id", "source", "floor_price", "ceiling_price"]

    def clean_card_id(self):
        text = self.cleaned_data["card_id"].strip()
        if not text:
            return ""
        card_id = card_id_from_url(text)
        if card_id is None:
            raise forms.ValidationError(_("Not a Kaspi card URL or id."))
        return card_id


@admin.register(KaspiCardLink)
class KaspiCardLinkAdmin(admin.ModelAdmin):
    form = KaspiCardLinkForm
    list_display = [
        "product",
        "card_id",
        "source",
        "status",
        "note",
        "master_category",
        "verified_at",
    ]
    list_filter = [LinkStatusFilter, "source"]
    search_fields = ["product__sku", "product__name", "card_id"]
    raw_id_fields = ["product"]
    readonly_fields = ["status", "verified_at", "note", "candidates_view", "master_category"]
    exclude = ["candidates"]
    actions = ["confirm_first_candidate", "read_market_now"]

    def get_changeform_initial_data(self, request):
        return {"source": KaspiCardLink.Source.URL, **super().get_changeform_initial_data(request)}

    def save_model(self, request, obj, form, change):
        if "card_id" in form.changed_data:  # a new card must be verified again
            obj.status, obj.verified_at, obj.note = KaspiCardLink.Status.UNVERIFIED, None, ""
        super().save_model(request, obj, form, change)

    @admin.display(description=_("search candidates"))
    def candidates_view(self, obj):
        if not obj.candidates:
            return "—"
        return format_html_join(
            "",
            '<div>{}. <a href="{}">{}</a> {} — {} ₸</div>',
            (
                (i, c.get("url"), c.get("id"), c.get("title"), c.get("unit_price") or "?")
                for i, c in enumerate(obj.candidates, start=1)
            ),
        )

    @admin.action(description=_("Link to the first search candidate"))
    def confirm_first_candidate(self, request, queryset):
        done = sum(confirm_candidate(link) for link in queryset)
        self.message_user(
            request, ngettext("%d link confirmed.", "%d links confirmed.", done) % done
        )

    @admin.action(description=_("Read the market of these cards now"))
    def read_market_now(self, request, queryset):
        skus = list(queryset.values_list("product__sku", flat=True)[:MARKET_READ_MAX])
        run = request_market_read_of(user=request.user, skus=skus)
        report_enqueue(self, request, run, True, what=_("Market read"))


class _MarketReadAdmin(ReadOnlyAdmin):
    """What the market state and observation pages share: the competitors' offers of one
    product and city (JSON, shown pretty), searched by SKU or card."""

    list_filter = ["status", "city"]
    search_fields = ["product__sku", "card_id"]
    list_select_related = ["product"]
    readonly_fields = ["offers_view"]
    exclude = ["offers"]

    @admin.display(description=_("offers"))
    def offers_view(self, obj):
        return pretty_json(obj.offers)


@admin.register(MarketState)
class MarketStateAdmin(MoneyColumnsMixin, _MarketReadAdmin):
    money_fields = ("best_price", "our_price")
    list_display = [
        "product",
        "city",
        "status",
        "read_at",
        "ok_at",
        "competitors",
        "best_price",
        "our_price",
        "our_position",
        "flag",
    ]

    def changelist_view(self, request, extra_context=None):
        fresh = freshness()
        extra_context = extra_context or {}
        extra_context["subtitle"] = _(
            "Age of the market, minutes: home city p50 %(hp50)s, p95 %(hp95)s; "
            "all pairs p50 %(p50)s, p95 %(p95)s (%(n)s pairs)."
        ) % {
            # No reads yet: a dash, not Python's None.
            "hp50": _or_dash(fresh["home"]["p50"]),
            "hp95": _or_dash(fresh["home"]["p95"]),
            "p50": _or_dash(fresh["all"]["p50"]),
            "p95": _or_dash(fresh["all"]["p95"]),
            "n": fresh["all"]["count"],
        }
        return super().changelist_view(request, extra_context)


@admin.register(MarketObservation)
class MarketObservationAdmin(_MarketReadAdmin):
    list_display = ["observed_at", "product", "city", "status", "total", "our_position", "error"]


@admin.register(KaspiCommission)
class KaspiCommissionAdmin(admin.ModelAdmin):
    list_display = ["master_category", "percent_without_vat", "percent_with_vat"]
    search_fields = ["master_category"]


@admin.register(RepricingRule)
class RepricingRuleAdmin(MoneyColumnsMixin, admin.ModelAdmin):
    money_fields = ("min_margin", "max_price")
    list_display = ["name", "active", "scope", "strategy", "priority", "min_margin", "max_price"]
    list_filter = ["active", "scope", "strategy"]
    raw_id_fields = ["product"]
    actions = ["reprice_now"]

    @admin.action(description=_("Compute repricer proposals now"))
    def reprice_now(self, request, queryset):
        request_reprice(user=request.user)
        self.message_user(request, _("Repricing queued."))


@admin.register(PriceChange)
class PriceChangeAdmin(MoneyColumnsMixin, ReadOnlyAdmin):
    money_fields = ("old_price", "new_price")
    list_display = [
        "created_at",
        "product",
        "city",
        "old_price",
        "new_price",
        "floor",
        "ceiling",
        "reason",
        "flag",
        "anomaly",
        "status",
    ]
    list_filter = ["status", "anomaly", "city"]
    search_fields = ["product__sku"]
    list_select_related = ["product"]
    readonly_fields = ["market_view"]
    exclude = ["market"]
    actions = ["approve", "reject"]

    @admin.display(description=_("market seen"))
    def market_view(self, obj):
        return pretty_json(obj.market)

    @admin.action(description=_("Approve and publish with the next price list"))
    def approve(self, request, queryset):
        try:
            done = apply_changes(
                list(queryset.filter(status=PriceChange.Status.PENDING)), user=request.user
            )
        except BackofficeError as exc:
            self.message_user(request, str(exc), level=messages.ERROR)
            return
        self.message_user(request, ngettext("%d price applied.", "%d prices applied.", done) % done)

    @admin.action(description=_("Reject"))
    def reject(self, request, queryset):
        done = reject_changes(list(queryset), user=request.user)
        self.message_user(
            request, ngettext("%d proposal rejected.", "%d proposals rejected.", done) % done
        )

    def has_change_permission(self, request, obj=None):
        return False


def _or_dash(value):
    return "—" if value is None else value
