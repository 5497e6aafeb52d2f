import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from backoffice.core import labels
from backoffice.core.admin_helpers import (
    KeepRecordsMixin,
    ReadOnlyInline,
    pretty_json,
    refuse_unconfigured,
    report_enqueue,
)
from backoffice.core.exceptions import BackofficeError
from backoffice.core.formats import local_time, money

from .models import Fulfilment, FulfilmentEvent, Order, OrderAction, OrderEntry, SupplierPurchase
from .services.batches import request_purchase, request_stock_check
from .services.fulfilment import (
    TRANSITIONS,
    mark_assembled,
    mark_list_ordered,
    resolve_unknown_purchase,
    set_fulfilment,
)
from .services.imports import request_order_import
from .services.purchase_lists import headers as list_headers
from .services.purchase_lists import list_rows, list_xlsx
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
    """What staff asked Kaspi and Kaspi's answer, newest first."""

    model = OrderAction
    fields = ["created_at", "action", "user", "ok", "detail_display", "response"]
    verbose_name_plural = _("Requests to Kaspi and Kaspi's answers")

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    @admin.display(description=_("details"))
    def detail_display(self, obj):
        # A cancellation keeps its reason code: shown in words.
        return labels.label(labels.CANCELLATION_REASON, obj.detail) if obj.detail else ""


class FulfilmentEventInline(ReadOnlyInline):
    model = FulfilmentEvent
    fields = ["created_at", "from_status", "to_status", "user", "note"]


def purchase_list_links(purchase: SupplierPurchase):
    """Links to the purchase list page and its XLSX (a `listed` or `ordered` purchase),
    else "—"."""
    if purchase.status not in (SupplierPurchase.Status.LISTED, SupplierPurchase.Status.ORDERED):
        return "—"
    url = reverse("admin:orders_supplierpurchase_list", args=[purchase.pk])
    return format_html(
        '<a href="{}">{}</a> · <a href="{}?format=xlsx">XLSX</a>', url, _("print"), url
    )


class SupplierPurchaseInline(ReadOnlyInline):
    model = SupplierPurchase
    template = "admin/edit_inline/stacked.html"
    fields = [
        "supplier",
        "status",
        "purchase_list_display",
        "reference",
        "supplier_order_id",
        "supplier_status_text",
        "supplier_checked_at",
        "lines",
        "sent_pretty",
        "error",
        "created_by",
        "created_at",
    ]

    @admin.display(description=_("Al-Style status"))
    def supplier_status_text(self, obj):
        return obj.supplier_status_text

    @admin.display(description=_("purchase list"))
    def purchase_list_display(self, obj):
        return purchase_list_links(obj)

    @admin.display(description=_("sent to Al-Style"))
    def sent_pretty(self, obj):
        return pretty_json(json.dumps(obj.sent or {}, ensure_ascii=False))


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
        choices=list(labels.CANCELLATION_REASON.items()),
    )
    comment = forms.CharField(label=_("Comment"), required=False, max_length=1000)


class PurchaseForm(forms.Form):
    attorney = forms.CharField(
        label=_("Attorney (number)"),
        required=False,
        max_length=100,
        help_text=_(
            "Empty: the one the dealer profile marks «Основной» (or ALSTYLE_ATTORNEY_NUMBER)."
        ),
    )
    carrier = forms.CharField(
        label=_("Carrier (shipping method or carrier name)"),
        required=False,
        max_length=200,
        help_text=_("Empty: the one the dealer profile marks «Основной» (or ALSTYLE_CARRIER)."),
    )


class CompleteForm(forms.Form):
    security_code = forms.CharField(
        label=_("Code from the buyer"),
        required=False,
        max_length=12,
        help_text=_("Leave empty and press the button to have Kaspi send the code to the buyer."),
    )


class NoteForm(forms.Form):
    note = forms.CharField(label=_("Comment"), required=False, max_length=500)


class AssembleForm(forms.Form):
    parcels = forms.IntegerField(
        label=_("Parcels"),
        min_value=1,
        initial=1,
        help_text=_(
            "Kaspi is told the order is packed (ASSEMBLE), then issues the waybill and sends "
            "a courier."
        ),
    )
    note = forms.CharField(label=_("Comment"), required=False, max_length=500)


def next_steps(order: Order) -> list[dict]:
    """The buttons of the order page: the steps allowed now, in the order staff take them.
    `form` names what the step asks first; `kaspi` says whether it goes to Kaspi."""
    kaspi = order.channel == Order.Channel.KASPI
    allowed = TRANSITIONS.get(order.fulfilment, set())
    packs_in_kaspi = kaspi and order.is_kaspi_delivery and not order.kaspi_assembled
    steps = []

    def add(step, label, form=None, to_kaspi=False):
        steps.append({"step": step, "label": label, "form": form, "kaspi": to_kaspi})

    if kaspi and order.status == "APPROVED_BY_BANK":
        add("accept", _("Accept"), to_kaspi=True)
    if order.fulfilment not in (Fulfilment.COMPLETED, Fulfilment.CANCELLED, Fulfilment.RETURNED):
        add("check_stock", _("Check supplier stock"))
    if Fulfilment.ASSEMBLED in allowed:
        if packs_in_kaspi:
            add("assembled", _("Assembled (pack for Kaspi Delivery)…"), AssembleForm, True)
        else:
            add("assembled", _("Assembled"))
    if Fulfilment.HANDED_OVER in allowed:
        add("handed_over", _("Handed over"))
    if kaspi and order.status == "ACCEPTED_BY_MERCHANT":
        add("complete", _("Complete…"), CompleteForm, True)
    elif not kaspi and Fulfilment.COMPLETED in allowed:
        add("completed", _("Completed"))
    if kaspi and order.status in ("APPROVED_BY_BANK", "ACCEPTED_BY_MERCHANT"):
        add("cancel", _("Cancel…"), CancelForm, True)
    elif not kaspi and Fulfilment.CANCELLED in allowed:
        add("cancel", _("Cancel…"), CancelForm)
    if Fulfilment.RETURNED in allowed:
        add("returned", _("Returned…"), NoteForm)
    return steps


def line_rows(order: Order) -> list[dict]:
    """The lines table of the order page: what the buyer pays against what we pay."""
    rows = []
    for entry in order.entries.select_related("product"):
        product = entry.product
        dealer = product.price1 if product is not None else None
        margin = entry.base_price - dealer if dealer else None
        rows.append(
            {
                "entry": entry,
                "product": product,
                "product_url": (
                    reverse("admin:catalog_product_change", args=[product.pk]) if product else ""
                ),
                "price": money(entry.base_price),
                "total": money(entry.total_price),
                "dealer": money(dealer),
                "margin": money(margin) if margin is not None else "—",
                "margin_percent": (
                    f"{margin * 100 / entry.base_price:.0f}%"
                    if margin is not None and entry.base_price
                    else ""
                ),
                "loss": margin is not None and margin < 0,
                "stock": (
                    entry.supplier_quantity
                    if entry.supplier_quantity is not None
                    else (product.stock_display if product else "—")
                ),
                "checked": local_time(entry.stock_checked_at),
                "covers": entry.in_stock,
            }
        )
    return rows


@admin.register(Order)
class OrderAdmin(KeepRecordsMixin, admin.ModelAdmin):
    change_list_template = "admin/orders/order/change_list.html"
    change_form_template = "admin/orders/order/change_form.html"
    # Fits 1366 px: what staff pick an order by; phone, state and the rest on its page.
    list_display = [
        "code",
        "created_display",
        "customer_name",
        "total_display",
        "status_display",
        "fulfilment",
        "delivery_display",
        "attention_display",
    ]
    list_filter = [
        "channel",
        "fulfilment",
        "needs_attention",
        labels.CodeFilter("status", _("status"), labels.ORDER_STATUS),
        labels.CodeFilter("state", _("state"), labels.ORDER_STATE),
        labels.CodeFilter("delivery_mode", _("delivery mode"), labels.DELIVERY_MODE),
        "is_kaspi_delivery",
        labels.CodeFilter("payment_mode", _("payment mode"), labels.PAYMENT_MODE),
    ]
    search_fields = ["=code", "customer_name", "customer_phone", "entries__offer_code"]
    date_hierarchy = "creation_date"
    # The lines are the table on top of the page (templates/admin/orders/order/change_form.html).
    inlines = [SupplierPurchaseInline, FulfilmentEventInline, OrderActionInline]
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
        (None, {"fields": [*kaspi_fields, "paid_at"]}),
        (_("Fulfilment"), {"fields": ["fulfilment"]}),
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
        (_("Kaspi data"), {"classes": ["collapse"], "fields": ["raw_pretty"]}),
    ]

    # Read-only fields holding a code or a sum, shown in words (the raw code beside).
    shown_as = {
        "state": "state_detail",
        "status": "status_detail",
        "payment_mode": "payment_mode_detail",
        "delivery_mode": "delivery_mode_detail",
        "total_price": "total_display",
        "delivery_cost": "delivery_cost_display",
    }

    formfield_overrides = {
        models.TextField: {"widget": forms.Textarea(attrs={"rows": 2, "cols": 80})},
    }

    def get_readonly_fields(self, request, obj=None):
        # Fulfilment moves only through the checked actions, never by editing the field.
        fixed = ["fulfilment", "raw_pretty", "waybill_link", *self.shown_as.values()]
        if obj is not None and obj.channel == Order.Channel.KASPI:
            return [*self.kaspi_fields, "paid_at", *fixed]
        return [*fixed, *self.system_fields]

    def get_fieldsets(self, request, obj=None):
        readonly = set(self.get_readonly_fields(request, obj))
        swap = {f: d for f, d in self.shown_as.items() if f in readonly}
        return [
            (title, {**options, "fields": [swap.get(f, f) for f in options["fields"]]})
            for title, options in super().get_fieldsets(request, obj)
        ]

    @admin.display(description=_("created in Kaspi"), ordering="creation_date")
    def created_display(self, obj):
        return local_time(obj.creation_date or obj.first_seen)

    @admin.display(description=_("total"), ordering="total_price")
    def total_display(self, obj):
        return money(obj.total_price)

    @admin.display(description=_("delivery cost"))
    def delivery_cost_display(self, obj):
        return money(obj.delivery_cost)

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, obj):
        if obj.channel == Order.Channel.DIRECT and not obj.status:
            return obj.get_channel_display()
        return labels.code_html(labels.ORDER_STATUS, obj.status)

    @admin.display(description=_("delivery"), ordering="delivery_mode")
    def delivery_display(self, obj):
        mode = labels.code_html(labels.DELIVERY_MODE, obj.delivery_mode)
        if obj.is_kaspi_delivery:
            return format_html("{}<br><small>{}</small>", mode, _("Kaspi Delivery"))
        return mode

    @admin.display(description=_("needs attention"), ordering="needs_attention", empty_value="")
    def attention_display(self, obj):
        # Only the orders that need it are marked, with the reason (not a ✗ on every row).
        if not obj.needs_attention:
            return ""
        reason = (obj.attention_reason or "").strip()
        short = reason.splitlines()[0][:60] if reason else _("yes")
        return format_html('<span title="{}">⚠ {}</span>', reason, short)

    def _detail(self, mapping, code):
        if not code:
            return "—"
        return format_html("{} <code>{}</code>", labels.label(mapping, code), code)

    @admin.display(description=_("state"))
    def state_detail(self, obj):
        return self._detail(labels.ORDER_STATE, obj.state)

    @admin.display(description=_("status"))
    def status_detail(self, obj):
        return self._detail(labels.ORDER_STATUS, obj.status)

    @admin.display(description=_("payment mode"))
    def payment_mode_detail(self, obj):
        return self._detail(labels.PAYMENT_MODE, obj.payment_mode)

    @admin.display(description=_("delivery mode"))
    def delivery_mode_detail(self, obj):
        return self._detail(labels.DELIVERY_MODE, obj.delivery_mode)

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
            path(
                "<path:object_id>/step/<slug:step>/",
                self.admin_site.admin_view(self.step_view),
                name="orders_order_step",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        order = self.get_object(request, object_id)
        extra = {"show_save_and_add_another": False}
        if order is not None:
            extra["order_lines"] = line_rows(order)
            if self.has_change_permission(request, order):
                extra["next_steps"] = next_steps(order)
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def step_view(self, request, object_id, step):
        """One button of the order page: the same services as the list actions, for this
        order; a step that needs something (a reason, the buyer's code, parcels) asks first."""
        order = self.get_object(request, object_id)
        if order is None or not self.has_change_permission(request, order):
            raise PermissionDenied
        back = redirect("admin:orders_order_change", order.pk)
        found = {s["step"]: s for s in next_steps(order)}.get(step)
        if found is None:
            self.message_user(
                request,
                _("Order %(code)s: this step is not available now (status «%(status)s»).")
                % {"code": order.code, "status": order.get_fulfilment_display()},
                messages.ERROR,
            )
            return back
        form_class = found["form"]
        form = None
        if form_class is not None:
            form = form_class(request.POST) if request.method == "POST" else form_class()
        if request.method == "POST" and (form is None or form.is_valid()):
            self._apply_step(request, order, step, form.cleaned_data if form else {})
            return back
        context = {
            **self.admin_site.each_context(request),
            "title": f"{str(found['label']).rstrip('…')}: {order.code}",
            "order": order,
            "form": form,
            "step": found,
            "opts": self.model._meta,
            "original": order,
            "submit_label": _("Send to Kaspi") if found["kaspi"] else _("Apply"),
        }
        return TemplateResponse(request, "admin/orders/order/step_form.html", context)

    def _apply_step(self, request, order, step, data):
        one = Order.objects.filter(pk=order.pk)
        if step == "accept":
            self.accept_selected(request, one)
        elif step == "check_stock":
            self.check_stock_selected(request, one)
        elif step == "assembled":
            self._each(
                request,
                one,
                mark_assembled,
                _("Moved: %(n)d."),
                parcels=data.get("parcels"),
                note=data.get("note", ""),
            )
            self._report_waybills(request, one)
        elif step in ("handed_over", "completed", "returned"):
            self._each(
                request, one, set_fulfilment, _("Moved: %(n)d."), to=step, note=data.get("note", "")
            )
        elif step == "complete":
            if data["security_code"]:
                self._each(
                    request,
                    one,
                    complete_order,
                    _("Completed: %(n)d."),
                    security_code=data["security_code"],
                )
            else:
                self._each(
                    request,
                    one,
                    send_completion_code,
                    _("Kaspi sent the code to the buyer: %(n)d."),
                )
        elif step == "cancel":
            self._each(
                request,
                one,
                cancel_order,
                _("Cancelled: %(n)d."),
                reason=data["reason"],
                comment=data["comment"],
            )

    def changelist_view(self, request, extra_context=None):
        # Buttons a user has no right to use are not shown (the Accountant only reads).
        extra = {"can_pull": self.has_change_permission(request)}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def pull_view(self, request):
        if request.method == "POST" and self.has_change_permission(request):
            if not refuse_unconfigured(self, request, "orders", what=_("Order import")):
                run, started = request_order_import(user=request.user)
                report_enqueue(self, request, run, started, what=_("Order import"))
        return redirect("admin:orders_order_changelist")

    @admin.action(description=_("Pull Kaspi orders now"), permissions=["change"])
    def pull_now(self, request, queryset):
        if refuse_unconfigured(self, request, "orders", what=_("Order import")):
            return
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
        # Al-Style answers one call per 5 s: the worker does it, the run shows progress.
        run = request_stock_check(orders=queryset, user=request.user)
        report_enqueue(self, request, run, True, what=_("Stock check"))

    @admin.action(description=_("Order from Al-Style: show what would be sent"))
    def purchase_dry_run(self, request, queryset):
        run = request_purchase(orders=queryset, user=request.user, dry_run=True)
        report_enqueue(self, request, run, True, what=_("Purchase check (nothing is sent)"))

    @admin.action(description=_("Order from the suppliers…"), permissions=["change"])
    def purchase_selected(self, request, queryset):
        def apply(data):
            run = request_purchase(
                orders=queryset,
                user=request.user,
                attorney=data["attorney"],
                carrier=data["carrier"],
            )
            report_enqueue(self, request, run, True, what=_("Purchase from the suppliers"))

        return self._with_form(
            request,
            queryset,
            PurchaseForm,
            _("Order from the suppliers"),
            "purchase_selected",
            apply,
            submit_label=_("Order from the suppliers"),
        )

    def _with_form(self, request, queryset, form_class, title, action, apply, submit_label=None):
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
            "submit_label": submit_label,
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


class FoundAtSupplierForm(forms.Form):
    supplier_order_id = forms.CharField(label=_("Al-Style order"), max_length=64)


@admin.register(SupplierPurchase)
class SupplierPurchaseAdmin(KeepRecordsMixin, admin.ModelAdmin):
    actions = ["not_at_supplier", "found_at_supplier", "ordered_at_supplier"]

    def _resolve(self, request, queryset, **kwargs):
        done = 0
        for purchase in queryset:
            try:
                resolve_unknown_purchase(purchase=purchase, user=request.user, **kwargs)
                done += 1
            except BackofficeError as exc:
                self.message_user(request, str(exc), messages.ERROR)
        if done:
            self.message_user(request, _("Settled: %(n)d.") % {"n": done}, messages.SUCCESS)

    @admin.action(
        description=_("Unknown purchase: not in Al-Style's order list (allow a new one)"),
        permissions=["resolve"],
    )
    def not_at_supplier(self, request, queryset):
        self._resolve(request, queryset)

    @admin.action(
        description=_("Unknown purchase: found in Al-Style's order list…"),
        permissions=["resolve"],
    )
    def found_at_supplier(self, request, queryset):
        form = FoundAtSupplierForm(request.POST) if "apply" in request.POST else None
        if form is not None and form.is_valid():
            self._resolve(
                request, queryset, supplier_order_id=form.cleaned_data["supplier_order_id"]
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Found in Al-Style's order list"),
            "orders": [p.order for p in queryset],
            "form": form or FoundAtSupplierForm(),
            "action": "found_at_supplier",
            "submit_label": _("Save"),
            "opts": self.model._meta,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(request, "admin/orders/order/action_form.html", context)

    def has_resolve_permission(self, request):
        return request.user.has_perm("orders.change_order")

    def _mark_ordered(self, request, purchases) -> None:
        done = 0
        for purchase in purchases:
            try:
                mark_list_ordered(purchase=purchase, user=request.user)
                done += 1
            except BackofficeError as exc:
                self.message_user(request, str(exc), messages.ERROR)
        if done:
            self.message_user(
                request,
                _("Marked as ordered from the supplier: %(n)d.") % {"n": done},
                messages.SUCCESS,
            )

    @admin.action(description=_("Ordered from the supplier"), permissions=["resolve"])
    def ordered_at_supplier(self, request, queryset):
        self._mark_ordered(request, queryset)

    def purchase_ordered_view(self, request, pk):
        """The purchase list page's button: staff ordered the list's goods by hand."""
        if request.method != "POST":
            return redirect("admin:orders_supplierpurchase_list", pk)
        if not self.has_resolve_permission(request):
            raise PermissionDenied
        self._mark_ordered(request, [get_object_or_404(SupplierPurchase, pk=pk)])
        return redirect("admin:orders_supplierpurchase_list", pk)

    list_display = [
        "created_at",
        "order",
        "supplier",
        "status",
        "reference",
        "supplier_order_id",
        "supplier_status_text",
        "supplier_checked_at",
        "purchase_list_links",
        "created_by",
    ]

    @admin.display(description=_("Al-Style status"))
    def supplier_status_text(self, obj):
        return obj.supplier_status_text

    @admin.display(description=_("purchase list"))
    def purchase_list_links(self, obj):
        return purchase_list_links(obj)

    def get_urls(self):
        return [
            path(
                "<int:pk>/purchase-list/",
                self.admin_site.admin_view(self.purchase_list_view),
                name="orders_supplierpurchase_list",
            ),
            path(
                "<int:pk>/ordered/",
                self.admin_site.admin_view(self.purchase_ordered_view),
                name="orders_supplierpurchase_ordered",
            ),
            *super().get_urls(),
        ]

    def purchase_list_view(self, request, pk):
        """The purchase list of a supplier without a cart API: a printable page, or
        `?format=xlsx` the same as a spreadsheet."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        purchase = get_object_or_404(
            SupplierPurchase.objects.select_related("order", "supplier"),
            pk=pk,
            status__in=(SupplierPurchase.Status.LISTED, SupplierPurchase.Status.ORDERED),
        )
        if request.GET.get("format") == "xlsx":
            response = HttpResponse(
                list_xlsx(purchase),
                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
            name = f"purchase-{purchase.supplier.code}-{purchase.order.code}.xlsx"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            return response
        rows = list_rows(purchase)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Purchase list: %(supplier)s, order %(code)s")
            % {"supplier": purchase.supplier.name, "code": purchase.order.code},
            "purchase": purchase,
            "rows": rows,
            "headers": list_headers(),
            "total": sum(r["total"] or 0 for r in rows),
            "can_mark_ordered": purchase.status == SupplierPurchase.Status.LISTED
            and self.has_resolve_permission(request),
            "opts": self.model._meta,
        }
        template = "admin/orders/supplierpurchase/purchase_list.html"
        return TemplateResponse(request, template, context)

    list_filter = ["status", "supplier"]
    search_fields = ["=order__code", "=supplier_order_id", "=reference"]

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
