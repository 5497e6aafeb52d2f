"""The public payment page, its live status, the demo buttons, and the webhook."""

import json

from django.conf import settings
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from .models import Payment, WebhookDelivery
from .services.events import PaymentRejected, apply_payment_event
from .services.intake import process_delivery
from .services.qr import qr_svg

SAFE_HEADERS = ("CONTENT_TYPE", "HTTP_USER_AGENT", "HTTP_X_SIGNATURE", "HTTP_X_FORWARDED_FOR")


@never_cache
@require_GET
def pay_page(request, payment_id):
    payment = get_object_or_404(Payment, pk=payment_id)
    return TemplateResponse(
        request,
        "payments/pay.html",
        {
            "payment": payment,
            "merchant": settings.KASPI_COMPANY_NAME,
            "qr_svg": qr_svg(payment.qr_token or payment.public_url),
            "demo": payment.provider == "demo",
        },
    )


@never_cache
@require_GET
def pay_status(request, payment_id):
    payment = get_object_or_404(Payment, pk=payment_id)
    return JsonResponse({"status": payment.status, "label": payment.get_status_display()})


@require_POST
def demo_result(request, payment_id):
    payment = get_object_or_404(Payment, pk=payment_id)
    if payment.provider != "demo":
        raise Http404
    outcome = request.POST.get("result")
    if outcome in ("paid", "failed"):
        try:
            apply_payment_event(
                payment_id=payment.pk,
                source="demo",
                key=f"{payment.pk}:{outcome}",
                status=outcome,
                note=gettext("demo page button"),
            )
        except PaymentRejected:
            pass  # e.g. paid already: the page shows the current status
    return redirect("payments:pay", payment_id=payment.pk)


# Past this many bytes an oversized body is not read further (the connection is closed).
DRAIN_LIMIT_BYTES = 32 * 1024 * 1024


def _read_body(request, cap: int) -> tuple[bytes, int | None]:
    """The first `cap` bytes of the body, and its size (None when it could not be told).

    Read from the stream, not `request.body`: that raises RequestDataTooBig (Django's
    HTML 400) past DATA_UPLOAD_MAX_MEMORY_SIZE before we could record anything. The rest
    of an oversized body is drained, so the sender gets our JSON answer, not a reset."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    kept = request.read(cap + 1)
    size = len(kept)
    if size > cap:
        while size < DRAIN_LIMIT_BYTES:
            chunk = request.read(min(64 * 1024, DRAIN_LIMIT_BYTES - size))
            if not chunk:
                break
            size += len(chunk)
        size = max(size, declared)
    return kept[:cap], size


@csrf_exempt
@require_POST
def kaspi_webhook(request):
    """Store the request first (every attempt gets a row, an oversized body cut to the cap
    with its size kept), then verify and apply it (docs/architecture.md). Answers JSON."""
    cap = settings.PAYMENTS_WEBHOOK_MAX_BYTES
    body, size = _read_body(request, cap)
    headers = {key: request.META.get(key, "") for key in SAFE_HEADERS if key in request.META}
    delivery = WebhookDelivery.objects.create(
        ip=request.META.get("REMOTE_ADDR", "")[:64],
        headers=json.dumps(headers, ensure_ascii=False),
        body=body.decode("utf-8", errors="replace"),
        body_bytes=size,
    )
    if size > cap:
        error = gettext("body too large: %(size)s bytes; the limit is %(cap)s") % {
            "size": size,
            "cap": cap,
        }
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            result=WebhookDelivery.Result.REJECTED, http_status=413, error=error
        )
        return JsonResponse({"ok": False, "error": error}, status=413)
    status, answer = process_delivery(delivery, signature=request.headers.get("X-Signature", ""))
    return JsonResponse(answer, status=status)
