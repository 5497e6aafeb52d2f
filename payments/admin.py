import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, mark_safe
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
from .services.events import record_manual_refund
from .services.intake import import_payments, process_delivery
from .services.polling import poll_payment
from .services.qr import qr_svg
from .services.reconcile import reconcile, reconciliation_csv


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


@admin.register(Payment)
class PaymentAdmin(KeepRecordsMixin, admin.ModelAdmin):
    change_list_template = "admin/payments/payment/change_list.html"
    list_display = [
        "reference",
        "amount_display",
        "status",
        "provider",
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
    readonly_fields = [
        "reference",
        "provider",
        "amount_display",
        "currency",
        "status",
        "description",
        "order",
        "basket_pretty",
        "external_id",
        "transaction_id",
        "payment_link",
        "expires_at",
        "paid_at",
        "created_by",
        "created_at",
        "updated_at",
        "qr",
    ]
    exclude = ["basket", "qr_token", "amount"]

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount)

    def has_add_permission(self, request):
        return False  # created with create_payment (command) or a checkout

    @admin.display(description=_("page"))
    def public_link(self, obj):
        return format_html('<a href="{}" target="_blank">/pay/…</a>', obj.public_url)

    @admin.display(description=_("basket"))
    def basket_pretty(self, obj):
        return pretty_json(json.dumps(obj.basket))

    @admin.display(description=_("QR code"))
    def qr(self, obj):
        if obj.status not in Payment.OPEN_STATUSES:
            return "—"
        return mark_safe(qr_svg(obj.qr_token or obj.public_url))  # noqa: S308 - our own SVG

    @admin.action(description=_("Refresh status"), permissions=["change"])
    def refresh_status(self, request, queryset):
        """Ask the provider now, through the one polling service the poller uses."""
        changed = checked = 0
        for payment in queryset.filter(status__in=Payment.OPEN_STATUSES):
            poll_payment(payment_id=payment.pk)
            checked += 1
            after = Payment.objects.filter(pk=payment.pk).values_list("status", flat=True).first()
            changed += after != payment.status
        self.message_user(
            request,
            _("Checked: %(checked)d, status changed: %(n)d.") % {"checked": checked, "n": changed},
        )

    @admin.action(description=_("Refund (record a manual refund)"), permissions=["change"])
    def refund(self, request, queryset):
        for payment in queryset:
            try:
                record_manual_refund(payment=payment, user=request.user)
            except BackofficeError as exc:
                self.message_user(request, f"{payment.reference}: {exc}", messages.ERROR)
                continue
            self.message_user(
                request,
                _("%(ref)s recorded as refunded. Make the refund itself in the Kaspi Pay app.")
                % {"ref": payment.reference},
                messages.WARNING,
            )

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
