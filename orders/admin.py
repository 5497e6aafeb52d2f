from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from backoffice.admin import KeepRecordsMixin, ReadOnlyInline, pretty_json
from backoffice.exceptions import BackofficeError
from catalog.admin import report_enqueue

from .models import Fulfilment, FulfilmentEvent, Order, OrderAction, OrderEntry, SupplierPurchase
from .services.fulfilment import (
    check_stock,
    mark_assembled,
    purchase_from_alstyle,
    set_fulfilment,
)
from .services.imports import request_order_import
from .services.status import (
    accept_order,
    cancel_order,
    complete_order,
    send_completion_code,
)


class OrderEntryInline(ReadOnlyInline):
    model = OrderEntry
    fields = [
        "entry_number",
        "offer_code",
        "name",
        "quantity",
        "base_price",
        "total_price",
        "product",
    ]


class OrderActionInline(ReadOnlyInline):
    model = OrderAction
    fields = ["created_at", "action", "user", "ok", "detail", "response"]


class FulfilmentEventInline(ReadOnlyInline):
    model = FulfilmentEvent
    fields = ["created_at", "from_status", "to_status", "user", "note"]


class SupplierPurchaseInline(ReadOnlyInline):
    model = SupplierPurchase
    template = "admin/edit_inline/stacked.html"
    fields = [
        "status",
        "supplier_order_id",
        "supplier_status",
        "lines",
        "error",
        "created_by",
        "created_at",
    ]


class StepForm(forms.Form):
    step = forms.ChoiceField(
        label=_("New step"),
        choices=[
            (Fulfilment.ASSEMBLED, Fulfilment.ASSEMBLED.label),
            (Fulfilment.HANDED_OVER, Fulfilment.HANDED_OVER.label),
            (Fulfilment.COMPLETED, Fulfilment.COMPLETED.label),
            (Fulfilment.RETURNED, Fulfilment.RETURNED.label),
        ],
    )
    parcels = forms.IntegerField(
        label=_("Parcels (Kaspi Delivery)"),
        required=False,
        min_value=1,
        help_text=_(
            "For the step «assembled» of a Kaspi Delivery order: the number of parcels. "
            "Kaspi is told the order is packed (ASSEMBLE), then issues the waybill and "
            "sends a courier. Other orders only move the step."
        ),
    )
    note = forms.CharField(label=_("Comment"), required=False, max_length=500)


class CancelForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Cancellation reason"),
        choices=[
            ("BUYER_CANCELLATION_BY_MERCHANT", _("Buyer asked to cancel")),
            ("BUYER_NOT_REACHABLE", _("Buyer not reachable")),
            ("MERCHANT_OUT_OF_STOCK", _("Out of stock")),
        ],
    )
    comment = forms.CharField(label=_("Comment"), required=False, max_length=1000)


class CompleteForm(forms.Form):
    security_code = forms.CharField(
        label=_("Code from the buyer"),
        required=False,
        max_length=12,
        help_text=_("Leave empty and press the button to have Kaspi send the code to the buyer."),
    )


@admin.register(Order)
class OrderAdmin(KeepRecordsMixin, admin.ModelAdmin):
    change_list_template = "admin/orders/order/change_list.html"
    list_display = [
        "code",
        "channel",
        "fulfilment",
        "needs_attention",
        "status",
        "state",
        "creation_date",
        "customer_name",
        "customer_phone",
        "total_price",
        "delivery_mode",
        "is_kaspi_delivery",
    ]
    list_filter = [
        "channel",
        "status",
        "state",
        "delivery_mode",
        "is_kaspi_delivery",
        "payment_mode",
    ]
    search_fields = ["=code", "customer_name", "customer_phone", "entries__offer_code"]
    date_hierarchy = "creation_date"
    inlines = [OrderEntryInline, SupplierPurchaseInline, FulfilmentEventInline, OrderActionInline]
    actions = [
        "accept_selected",
        "check_stock_selected",
        "purchase_dry_run",
        "purchase_selected",
        "set_step_selected",
        "cancel_selected",
        "complete_selected",
        "pull_now",
    ]
    list_per_page = 100
    show_full_result_count = False
    kaspi_fields = [
        "channel",
        "kaspi_id",
        "code",
        "state",
        "status",
        "total_price",
        "payment_mode",
        "delivery_mode",
        "is_kaspi_delivery",
        "pre_order",
        "kaspi_assembled",
        "parcels",
        "waybill_link",
        "courier_planned_at",
        "planned_delivery_date",
        "delivery_cost",
        "customer_name",
        "customer_phone",
        "delivery_address",
        "creation_date",
        "synced_at",
        "first_seen",
        "updated_at",
    ]
    # Written by the system (Kaspi's copy, the sums, the dates): shown, never edited here.
    system_fields = [
        "channel",
        "kaspi_id",
        "code",
        "state",
        "status",
        "total_price",
        "paid_at",
        "kaspi_assembled",
        "parcels",
        "courier_planned_at",
        "creation_date",
        "synced_at",
        "first_seen",
        "updated_at",
    ]
    fieldsets = [
        (
            _("Yours to edit (staff)"),
            {
                "fields": ["staff_note", "needs_attention", "attention_reason"],
                "description": _(
                    "Only these fields are the shop's own; the rest comes from Kaspi or "
                    "from the system and changes only through the actions."
                ),
            },
        ),
        (_("Fulfilment"), {"fields": ["fulfilment"]}),
        (None, {"fields": [*kaspi_fields, "paid_at"]}),
        (_("Kaspi data"), {"classes": ["collapse"], "fields": ["raw_pretty"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # Fulfilment moves only through the checked actions, never by editing the field.
        fixed = ["fulfilment", "raw_pretty", "waybill_link"]
        if obj is not None and obj.channel == Order.Channel.KASPI:
            return [*self.kaspi_fields, "paid_at", *fixed]
        return [*fixed, *self.system_fields]

    @admin.display(description=_("waybill"))
    def waybill_link(self, obj):
        if obj.waybill_url:
            return format_html(
                '<a href="{}" target="_blank" rel="noopener noreferrer">{} — {}</a>',
                obj.waybill_url,
                obj.waybill_number or obj.waybill_url,
                _("print"),
            )
        if obj.kaspi_assembled:
            return obj.waybill_number or _("not issued yet: it comes with the next import")
        return "—"

    @admin.display(description=_("Kaspi data"))
    def raw_pretty(self, obj):
        return pretty_json(obj.raw)

    def get_urls(self):
        return [
            path("pull/", self.admin_site.admin_view(self.pull_view), name="orders_order_pull"),
            *super().get_urls(),
        ]

    def pull_view(self, request):
        if request.method == "POST" and self.has_view_permission(request):
            run, started = request_order_import(user=request.user)
            report_enqueue(self, request, run, started, what=_("Order import"))
        return redirect("admin:orders_order_changelist")

    @admin.action(description=_("Pull Kaspi orders now"))
    def pull_now(self, request, queryset):
        run, started = request_order_import(user=request.user)
        report_enqueue(self, request, run, started, what=_("Order import"))

    def _each(self, request, queryset, func, done_message, **kwargs):
        done = 0
        for order in queryset:
            try:
                func(order=order, user=request.user, **kwargs)
                done += 1
            except BackofficeError as exc:
                self.message_user(request, f"{order.code}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, done_message % {"n": done}, messages.SUCCESS)

    @admin.action(description=_("Accept in Kaspi"), permissions=["change"])
    def accept_selected(self, request, queryset):
        self._each(request, queryset, accept_order, _("Accepted in Kaspi: %(n)d."))

    @admin.action(description=_("Check supplier stock"), permissions=["change"])
    def check_stock_selected(self, request, queryset):
        for order in queryset[:50]:
            try:
                ok = check_stock(order)
            except BackofficeError as exc:
                self.message_user(request, f"{order.code}: {exc}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{order.code}: "
                + (str(_("all lines in stock")) if ok else order.attention_reason),
                messages.SUCCESS if ok else messages.WARNING,
            )

    @admin.action(description=_("Order from Al-Style: show what would be sent"))
    def purchase_dry_run(self, request, queryset):
        for order in queryset[:20]:
            try:
                plan = purchase_from_alstyle(order=order, dry_run=True)
            except BackofficeError as exc:
                self.message_user(request, f"{order.code}: {exc}", messages.ERROR)
                continue
            lines = ", ".join(f"{line['article']} × {line['quantity']}" for line in plan["lines"])
            self.message_user(request, f"{order.code}: {lines}; {plan['submit']}")

    @admin.action(description=_("Order from Al-Style"), permissions=["change"])
    def purchase_selected(self, request, queryset):
        self._each(request, queryset, purchase_from_alstyle, _("Ordered from Al-Style: %(n)d."))

    def _with_form(self, request, queryset, form_class, title, action, apply):
        """An action that first asks for input: show the form, or call `apply(form)` once
        it is submitted and valid."""
        form = form_class(request.POST) if "apply" in request.POST else form_class()
        if "apply" in request.POST and form.is_valid():
            apply(form.cleaned_data)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "orders": queryset,
            "form": form,
            "action": action,
            "opts": self.model._meta,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/orders/order/action_form.html", context)

    @admin.action(description=_("Next fulfilment step…"), permissions=["change"])
    def set_step_selected(self, request, queryset):
        def apply(data):
            if data["step"] == Fulfilment.ASSEMBLED:
                self._each(
                    request,
                    queryset,
                    mark_assembled,
                    _("Moved: %(n)d."),
                    parcels=data["parcels"],
                    note=data["note"],
                )
                self._report_waybills(request, queryset)
                return
            self._each(
                request,
                queryset,
                set_fulfilment,
                _("Moved: %(n)d."),
                to=data["step"],
                note=data["note"],
            )

        return self._with_form(
            request, queryset, StepForm, _("Fulfilment step"), "set_step_selected", apply
        )

    def _report_waybills(self, request, queryset):
        for order in queryset.model.objects.filter(
            pk__in=[o.pk for o in queryset], kaspi_assembled=True
        ).exclude(waybill_number=""):
            courier = (
                timezone.localtime(order.courier_planned_at).strftime("%d.%m.%Y %H:%M")
                if order.courier_planned_at
                else "—"
            )
            self.message_user(
                request,
                format_html(
                    '{}: {} <a href="{}" target="_blank" rel="noopener noreferrer">{}</a>; {} {}',
                    order.code,
                    _("waybill %(number)s") % {"number": order.waybill_number},
                    order.waybill_url or "#",
                    _("print"),
                    _("courier planned:"),
                    courier,
                ),
                messages.SUCCESS,
            )

    @admin.action(description=_("Cancel in Kaspi…"), permissions=["change"])
    def cancel_selected(self, request, queryset):
        def apply(data):
            self._each(
                request,
                queryset,
                cancel_order,
                _("Cancelled in Kaspi: %(n)d."),
                reason=data["reason"],
                comment=data["comment"],
            )

        return self._with_form(
            request, queryset, CancelForm, _("Cancel orders"), "cancel_selected", apply
        )

    @admin.action(description=_("Complete in Kaspi (buyer's code)…"), permissions=["change"])
    def complete_selected(self, request, queryset):
        def apply(data):
            if data["security_code"]:
                self._each(
                    request,
                    queryset,
                    complete_order,
                    _("Completed: %(n)d."),
                    security_code=data["security_code"],
                )
            else:
                self._each(
                    request,
                    queryset,
                    send_completion_code,
                    _("Kaspi sent the code to the buyer: %(n)d."),
                )

        return self._with_form(
            request, queryset, CompleteForm, _("Complete orders"), "complete_selected", apply
        )


@admin.register(SupplierPurchase)
class SupplierPurchaseAdmin(KeepRecordsMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "order",
        "status",
        "supplier_order_id",
        "supplier_status",
        "created_by",
    ]
    list_filter = ["status"]
    search_fields = ["=order__code", "=supplier_order_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OrderAction)
class OrderActionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "order", "action", "user", "ok", "detail"]
    list_filter = ["action", "ok"]
    search_fields = ["=order__code"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
