import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join, mark_safe
from django.utils.translation import gettext_lazy as _

from backoffice.core import labels
from backoffice.core.admin_helpers import (
    KeepRecordsMixin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    pretty_json,
)
from backoffice.core.exceptions import BackofficeError
from backoffice.core.formats import money
from backoffice.core.logging import mask

from .models import KaspiQrDevice, Payment, PaymentEvent, WebhookDelivery
from .services.intake import import_payments, process_delivery
from .services.qr import qr_svg
from .services.reconcile import reconcile, reconciliation_csv
from .services.staff import check_payment, create_staff_payment, refund_payment, retry_payment

PROVIDERS = {"demo": _("demo (no money moves)"), "kaspi_qr": _("Kaspi QR"), "none": _("off")}
OPTION_LABELS = {
    "poll": _("status check every, s"),
    "scan_timeout": _("time to scan, s"),
    "confirm_timeout": _("time to confirm, s"),
    "mode": _("mode"),
    "wait_since": _("scanned at"),
}


def _int(value) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


class PaymentEventInline(ReadOnlyInline):
    model = PaymentEvent
    fields = ["created_at", "source_label", "key", "before_label", "after_label", "note"]

    @admin.display(description=_("source"))
    def source_label(self, obj):
        return labels.code_html(labels.PAYMENT_EVENT_SOURCE, obj.source)

    @admin.display(description=_("status before"))
    def before_label(self, obj):
        return labels.code_html(dict(Payment.Status.choices), obj.status_before)

    @admin.display(description=_("status after"))
    def after_label(self, obj):
        return labels.code_html(dict(Payment.Status.choices), obj.status_after)


class ImportForm(forms.Form):
    file = forms.FileField(label=_("JSON file"))
    confirm = forms.BooleanField(
        label=_("Apply (otherwise only check and preview)"), required=False
    )


class NewPaymentForm(forms.Form):
    amount = forms.IntegerField(
        label=_("Amount, tenge"),
        min_value=1,
        required=False,
        help_text=_("Whole tenge. For an order it is the amount due; leave it empty."),
    )
    order = forms.ModelChoiceField(
        label=_("Order (optional)"),
        queryset=None,
        required=False,
        help_text=_("A direct sale not paid yet. Kaspi marketplace orders are paid in Kaspi."),
    )
    description = forms.CharField(
        label=_("Description"),
        max_length=255,
        required=False,
        help_text=_("What the customer pays for; the customer sees it on the payment page."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from orders.models import Order

        self.fields["order"].queryset = (
            Order.objects.filter(channel=Order.Channel.DIRECT, paid_at__isnull=True)
            .exclude(status="CANCELLED")
            .order_by("-first_seen")
        )
        self.fields["order"].label_from_instance = lambda order: " — ".join(
            part for part in (order.code, order.customer_name, money(order.total_price)) if part
        )

    def clean(self):
        data = super().clean()
        if not data.get("amount") and not data.get("order"):
            raise forms.ValidationError(_("Give the amount, or choose an order to pay."))
        return data


PAYMENT_FIELDSETS = [
    (
        None,
        {
            "fields": [
                "reference",
                "status_display",
                "amount_display",
                "description",
                "order",
                "created_by",
                "created_at",
                "expires_at",
                "paid_at",
            ]
        },
    ),
    (_("For the customer"), {"fields": ["qr", "link_display"]}),
    (_("Basket"), {"fields": ["basket_table"]}),
    (
        _("Provider (filled in by the system)"),
        {
            "classes": ["collapse"],
            "fields": [
                "provider_display",
                "external_id",
                "transaction_id",
                "options_table",
                "last_polled_at",
                "next_poll_at",
                "updated_at",
            ],
        },
    ),
]


@admin.register(Payment)
class PaymentAdmin(KeepRecordsMixin, admin.ModelAdmin):
    change_list_template = "admin/payments/payment/change_list.html"
    change_form_template = "admin/payments/payment/change_form.html"
    list_display = [
        "reference",
        "amount_display",
        "status_display",
        "provider_display",
        "order",
        "created_at",
        "paid_at",
        "public_link",
    ]
    list_filter = ["status", "provider"]
    search_fields = ["=reference", "=transaction_id", "=external_id", "=order__code"]
    date_hierarchy = "created_at"
    inlines = [PaymentEventInline]
    actions = ["refresh_status", "refund"]
    fieldsets = PAYMENT_FIELDSETS
    # Everything on a payment is written by the system; staff act with the buttons.
    readonly_fields = [f for _name, opts in PAYMENT_FIELDSETS for f in opts["fields"]]

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount)

    @admin.display(description=_("status"), ordering="status")
    def status_display(self, obj):
        return labels.code_html(dict(Payment.Status.choices), obj.status)

    @admin.display(description=_("provider"), ordering="provider")
    def provider_display(self, obj):
        return labels.code_html(PROVIDERS, obj.provider)

    def has_add_permission(self, request):
        return request.user.has_perm("payments.add_payment")

    @admin.display(description=_("page"))
    def public_link(self, obj):
        return format_html('<a href="{}" target="_blank">{}</a>', obj.public_url, _("payment page"))

    @admin.display(description=_("link for the customer"))
    def link_display(self, obj):
        if obj.status not in Payment.OPEN_STATUSES:
            return "—"
        link = obj.payment_link or obj.public_url
        return format_html(
            '<a href="{}" target="_blank" id="payment-link">{}</a><br>'
            '<small>{}</small> <a href="{}" target="_blank">{}</a>',
            link,
            link,
            _("Send this link to the customer, or show the QR."),
            obj.public_url,
            _("Open the payment page"),
        )

    @admin.display(description=_("basket"))
    def basket_table(self, obj):
        lines = [line for line in obj.basket or [] if isinstance(line, dict)]
        if not lines:
            return _("no basket: the payment is for an amount or an order")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    line.get("sku") or "—",
                    line.get("name") or "—",
                    line.get("quantity") or 1,
                    money(line.get("price")),
                    money(_int(line.get("price")) * _int(line.get("quantity") or 1)),
                )
                for line in lines
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
            "</tr></thead><tbody>{}</tbody></table>",
            _("SKU"),
            _("name"),
            _("quantity"),
            _("price"),
            _("total"),
            rows,
        )

    @admin.display(description=_("provider options"))
    def options_table(self, obj):
        options = obj.options or {}
        if not options:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            "{}: {}",
            ((OPTION_LABELS.get(key, key), value) for key, value in options.items()),
        )

    @admin.display(description=_("QR code"))
    def qr(self, obj):
        if obj.status not in Payment.OPEN_STATUSES:
            return "—"
        return mark_safe(qr_svg(obj.qr_token or obj.public_url))  # noqa: S308 - our own SVG

    def get_fieldsets(self, request, obj=None):
        """The QR and link first while the customer can pay; no basket section if empty."""
        main, customer, basket, provider = PAYMENT_FIELDSETS
        if obj is not None and obj.status in Payment.OPEN_STATUSES:
            sets = [customer, main]
        else:
            sets = [main]
        if obj is not None and obj.basket:
            sets.append(basket)
        return [*sets, provider]

    def add_view(self, request, form_url="", extra_context=None):
        """«New payment»: amount, optional order, description; created through the
        provider, then its page shows the QR and the link for the customer."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = NewPaymentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                payment = create_staff_payment(
                    amount=form.cleaned_data["amount"],
                    order=form.cleaned_data["order"],
                    description=form.cleaned_data["description"],
                    user=request.user,
                )
            except BackofficeError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    _(
                        "Payment %(ref)s for %(amount)s created: show the customer the QR "
                        "or send the link."
                    )
                    % {"ref": payment.reference, "amount": money(payment.amount)},
                )
                return redirect("admin:payments_payment_change", payment.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("New payment"),
            "form": form,
            "opts": self.model._meta,
            "provider": labels.label(PROVIDERS, settings.PAYMENTS_PROVIDER),
            "demo": settings.PAYMENTS_PROVIDER == "demo",
        }
        return TemplateResponse(request, "admin/payments/payment/new.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        payment = self.get_object(request, object_id)
        extra = {
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }
        if payment is not None:
            extra["title"] = _("Payment %(ref)s") % {"ref": payment.reference}
        if payment is not None and self.has_change_permission(request, payment):
            extra["payment_buttons"] = {
                "refresh": payment.status in Payment.OPEN_STATUSES,
                "retry": payment.status in (Payment.Status.FAILED, Payment.Status.EXPIRED)
                and self.has_add_permission(request),
                "refund": payment.can_move_to(Payment.Status.REFUNDED),
            }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def _payment_or_403(self, request, object_id):
        payment = self.get_object(request, object_id)
        if payment is None or not self.has_change_permission(request, payment):
            raise PermissionDenied
        return payment

    def refresh_view(self, request, object_id):
        payment = self._payment_or_403(request, object_id)
        if request.method == "POST":
            check = check_payment(payment_id=payment.pk)
            self.message_user(
                request, check.message(), messages.ERROR if check.error else messages.INFO
            )
        return redirect("admin:payments_payment_change", payment.pk)

    def retry_view(self, request, object_id):
        payment = self._payment_or_403(request, object_id)
        if request.method != "POST" or not self.has_add_permission(request):
            raise PermissionDenied
        try:
            new = retry_payment(payment_id=payment.pk, user=request.user)
        except BackofficeError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return redirect("admin:payments_payment_change", payment.pk)
        self.message_user(
            request,
            _("New payment %(ref)s instead of %(old)s: show the customer the new QR or link.")
            % {"ref": new.reference, "old": payment.reference},
        )
        return redirect("admin:payments_payment_change", new.pk)

    def refund_view(self, request, object_id):
        """«Refund»: asks first, then records it and moves the sale it paid for."""
        payment = self._payment_or_403(request, object_id)
        if request.method == "POST" and request.POST.get("confirm"):
            self._refund(request, [payment])
            return redirect("admin:payments_payment_change", payment.pk)
        return self._refund_confirmation(request, [payment])

    def _refund_confirmation(self, request, payments, action=False):
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund: are you sure?"),
            "payments": payments,
            "total": money(sum(p.amount for p in payments)),
            "opts": self.model._meta,
            "action": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/payments/payment/refund_confirm.html", context)

    def _refund(self, request, payments):
        for payment in payments:
            try:
                result = refund_payment(payment_id=payment.pk, user=request.user)
            except BackofficeError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            text = _(
                "%(ref)s recorded as refunded. Make the refund itself in the Kaspi Pay app."
            ) % {"ref": payment.reference}
            if result.order_moved_to:
                text += " " + _("Sale %(code)s: «%(state)s».") % {
                    "code": result.payment.order.code,
                    "state": result.order_moved_to,
                }
            if result.order_problem:
                text += " " + _("The sale was not moved: %(problem)s") % {
                    "problem": result.order_problem
                }
            self.message_user(request, text, messages.WARNING)

    @admin.action(description=_("Refresh status"), permissions=["change"])
    def refresh_status(self, request, queryset):
        """Ask the provider now, through the one polling service the poller uses."""
        for payment in queryset:
            check = check_payment(payment_id=payment.pk)
            self.message_user(
                request, check.message(), messages.ERROR if check.error else messages.INFO
            )

    @admin.action(description=_("Refund (record a manual refund)…"), permissions=["change"])
    def refund(self, request, queryset):
        payments = list(queryset)
        if request.POST.get("confirm"):
            self._refund(request, payments)
            return None
        return self._refund_confirmation(request, payments, action=True)

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="payments_payment_import",
            ),
            path(
                "reconciliation/",
                self.admin_site.admin_view(self.reconciliation_view),
                name="payments_payment_reconciliation",
            ),
            path(
                "<path:object_id>/refresh/",
                self.admin_site.admin_view(self.refresh_view),
                name="payments_payment_refresh",
            ),
            path(
                "<path:object_id>/retry/",
                self.admin_site.admin_view(self.retry_view),
                name="payments_payment_retry",
            ),
            path(
                "<path:object_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="payments_payment_refund",
            ),
            *super().get_urls(),
        ]

    def reconciliation_view(self, request):
        rows = reconcile()
        if request.GET.get("format") == "csv":
            response = HttpResponse(
                reconciliation_csv(rows), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = 'attachment; filename="reconciliation.csv"'
            return response
        context = {
            **self.admin_site.each_context(request),
            "title": _("Payment reconciliation"),
            "rows": rows,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/payments/payment/reconciliation.html", context)

    def import_view(self, request):
        report = None
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid() and self.has_change_permission(request):
            report = import_payments(
                form.cleaned_data["file"].read(),
                apply=form.cleaned_data["confirm"],
                user=request.user,
                name=form.cleaned_data["file"].name,
            )
            if report.errors:
                self.message_user(
                    request, _("Nothing applied: the file has errors."), messages.ERROR
                )
            elif form.cleaned_data["confirm"]:
                self.message_user(
                    request,
                    _("Applied: %(a)d, duplicates skipped: %(d)d.")
                    % {"a": report.applied, "d": report.duplicates},
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import payments (JSON)"),
            "form": form,
            "report": report,
            "opts": self.model._meta,
            "back": reverse("admin:payments_payment_changelist"),
        }
        return TemplateResponse(request, "admin/payments/payment/import.html", context)


@admin.register(PaymentEvent)
class PaymentEventAdmin(KeepRecordsMixin, ReadOnlyAdmin):
    list_display = [
        "created_at",
        "payment",
        "source_display",
        "key",
        "status_before_display",
        "status_after_display",
        "amount_display",
    ]
    list_filter = [
        labels.CodeFilter("source", _("source"), labels.PAYMENT_EVENT_SOURCE),
        labels.CodeFilter("status_after", _("status after"), dict(Payment.Status.choices)),
    ]
    search_fields = ["=key", "=payment__reference"]
    fields = ["created_at", "payment", "source_display", "key", "status_before_display"]
    fields += ["status_after_display", "amount_display", "note", "raw_pretty"]
    readonly_fields = fields

    @admin.display(description=_("source"), ordering="source")
    def source_display(self, obj):
        return labels.code_html(labels.PAYMENT_EVENT_SOURCE, obj.source)

    @admin.display(description=_("status before"))
    def status_before_display(self, obj):
        return labels.code_html(dict(Payment.Status.choices), obj.status_before)

    @admin.display(description=_("status after"))
    def status_after_display(self, obj):
        return labels.code_html(dict(Payment.Status.choices), obj.status_after)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount)

    @admin.display(description=_("data"))
    def raw_pretty(self, obj):
        return pretty_json(obj.raw) if obj.raw else "—"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(KeepRecordsMixin, ReadOnlyAdmin):
    list_display = [
        "received_at",
        "ip",
        "result",
        "http_status",
        "body_bytes",
        "payment",
        "error",
    ]
    list_filter = ["result", "http_status"]
    readonly_fields = [
        "received_at",
        "ip",
        "headers",
        "body",
        "body_bytes",
        "result",
        "http_status",
        "error",
        "payment",
    ]
    actions = ["reprocess"]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("payments.change_webhookdelivery") and obj is None

    @admin.action(description=_("Reprocess"))
    def reprocess(self, request, queryset):
        for delivery in queryset:
            signature = json.loads(delivery.headers or "{}").get("HTTP_X_SIGNATURE", "")
            status, answer = process_delivery(delivery, signature=signature)
            self.message_user(
                request,
                f"#{delivery.pk}: {status} {answer}",
                messages.SUCCESS if status == 200 else messages.ERROR,
            )


@admin.register(KaspiQrDevice)
class KaspiQrDeviceAdmin(ReadOnlyAdmin):
    """Registered with manage.py kaspi_qr_register; the token is shown masked, never whole."""

    list_display = [
        "device_id",
        "trade_point_name",
        "trade_point_id",
        "token_masked",
        "active",
        "registered_at",
    ]
    fields = [
        "device_id",
        "trade_point_id",
        "trade_point_name",
        "token_masked",
        "active",
        "registered_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("device token"))
    def token_masked(self, obj):
        return mask(obj.token)
