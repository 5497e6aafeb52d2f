"""JSON APIs for monitoring tools and scripts: /api/status, /api/sync, /api/runs/<id>.

Authenticated by a staff session or `Authorization: Bearer <token>` (ApiToken, stored
hashed); never open. /api/sync needs the permission to change what it starts.
"""

import hashlib
import json
import platform
import secrets
from functools import wraps

import django
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from backoffice.core.health import collect_health
from backoffice.models import ApiToken, SyncRun

VERSION = "0.1.0"


def new_token(*, name: str, user) -> tuple[ApiToken, str]:
    """Create a token; return the record and the full token (shown once, never stored)."""
    raw = "kb_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name, user=user, prefix=raw[:10], token_hash=hashlib.sha256(raw.encode()).hexdigest()
    )
    return token, raw


def _token_user(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Bearer "):
        return None
    digest = hashlib.sha256(header[7:].strip().encode()).hexdigest()
    token = ApiToken.objects.select_related("user").filter(token_hash=digest, active=True).first()
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


def api_auth(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user if request.user.is_authenticated and request.user.is_staff else None
        user = user or _token_user(request)
        if user is None:
            return JsonResponse(
                {"error": "authentication required: a staff session or a Bearer API token"},
                status=401,
            )
        request.api_user = user
        return view(request, *args, **kwargs)

    return csrf_exempt(wrapper)


def run_json(run: SyncRun) -> dict:
    return {
        "id": run.pk,
        "kind": run.kind,
        "status": run.status,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_s": run.duration.total_seconds() if run.duration else None,
        "progress": {"done": run.progress_done, "total": run.progress_total},
        "counts": run.counts,
        "error": run.error,
        "triggered_by": run.triggered_by,
    }


def status_facts() -> dict:
    """The facts the dashboard and /api/status show."""
    from backoffice.core.health import STATE_LABELS, job_state, schedule_states
    from catalog.models import OFFERABLE, FeedBuild, FeedFetch, Product
    from orders.models import Order
    from payments.models import Payment

    last_runs, jobs = {}, {}
    for kind in SyncRun.Kind.values:
        run = SyncRun.objects.filter(kind=kind).exclude(status=SyncRun.Status.SKIPPED).first()
        last_runs[kind] = run_json(run) if run else None
        state = job_state(kind)
        jobs[kind] = {"state": state, "label": str(STATE_LABELS[state])}
    build = FeedBuild.objects.first()
    fetch = FeedFetch.objects.filter(key="feed").first()

    return {
        "jobs": jobs,
        "schedules": schedule_states(),
        "versions": {
            "app": VERSION,
            "django": django.get_version(),
            "python": platform.python_version(),
        },
        "last_runs": last_runs,
        "feed": {
            "last_build": build.status if build else None,
            "last_build_at": build.started_at.isoformat() if build else None,
            "offers": build.offers_total if build else 0,
            "last_download_at": fetch.last_fetch_at.isoformat()
            if fetch and fetch.last_fetch_at
            else None,
        },
        "counts": {
            "products": Product.objects.count(),
            "offerable": Product.objects.filter(OFFERABLE).count(),
            "orders_waiting_acceptance": Order.objects.filter(status="APPROVED_BY_BANK").count(),
            "orders_needing_attention": Order.objects.filter(needs_attention=True)
            .exclude(fulfilment__in=["completed", "cancelled", "returned"])
            .count(),
            "payments_pending": Payment.objects.filter(status__in=Payment.OPEN_STATUSES).count(),
        },
    }


@require_GET
@api_auth
def api_status(request):
    return JsonResponse({**status_facts(), "health": collect_health()})


SYNC_TARGETS = {
    "catalog": ("catalog.change_product", "catalog"),
    "stock": ("catalog.change_product", "stock"),
    "feed": ("catalog.change_feedbuild", "feed"),
    "orders": ("orders.change_order", "orders"),
}


def start_run(what: str, user):
    """Queue the named job; (run, started). Shared by /api/sync and the dashboard buttons."""
    from catalog.services.feed import request_feed_build
    from catalog.services.sync import request_catalog_sync
    from orders.services.imports import request_order_import

    if what == "catalog":
        return request_catalog_sync(user=user, triggered_by="api")
    if what == "stock":
        return request_catalog_sync(user=user, triggered_by="api", stock_only=True)
    if what == "feed":
        return request_feed_build(user=user, triggered_by="api")
    return request_order_import(user=user, triggered_by="api")


@require_POST
@api_auth
def api_sync(request):
    try:
        what = json.loads(request.body or b"{}").get("what")
    except (ValueError, AttributeError):
        what = None
    if what not in SYNC_TARGETS:
        return JsonResponse({"error": f"'what' must be one of {sorted(SYNC_TARGETS)}"}, status=400)
    permission, _kind = SYNC_TARGETS[what]
    if not request.api_user.has_perm(permission):
        return JsonResponse({"error": f"permission {permission} is required"}, status=403)
    run, started = start_run(what, request.api_user)
    return JsonResponse(
        {"run_id": run.pk, "started": started, "status": run.status}, status=202 if started else 200
    )


@require_GET
@api_auth
def api_run(request, run_id: int):
    run = SyncRun.objects.filter(pk=run_id).first()
    if run is None:
        return JsonResponse({"error": "no such run"}, status=404)
    return JsonResponse(run_json(run))
