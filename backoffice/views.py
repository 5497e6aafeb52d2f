"""Health endpoint for monitoring (no login: it shows no secrets and no business data)."""

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import collect_health


@never_cache
@require_GET
def health(request):
    report = collect_health()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
