"""Health checks of the catalog: last sync age and status, price-list age and status."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from backoffice.models import SyncRun

from .models import FeedBuild
from .services.feed import feed_path


def check_catalog_sync():
    if not settings.ALSTYLE_TOKEN:
        return True, {"configured": False, "note": "ALSTYLE_TOKEN is not set: sync is off"}
    last_ok = (
        SyncRun.objects.filter(
            kind=SyncRun.Kind.CATALOG, status__in=[SyncRun.Status.OK, SyncRun.Status.PARTIAL]
        )
        .order_by("-finished_at")
        .first()
    )
    last = SyncRun.objects.filter(kind=SyncRun.Kind.CATALOG).exclude(status="skipped").first()
    if last_ok is None or last_ok.finished_at is None:
        return False, {"error": "no successful catalog sync yet"}
    age = timezone.now() - last_ok.finished_at
    ok = age <= timedelta(minutes=settings.CATALOG_SYNC_MAX_AGE_MINUTES)
    return ok, {
        "last_ok_age_min": round(age.total_seconds() / 60),
        "last_status": last.status if last else None,
    }


def check_feed():
    path = feed_path()
    if not path.exists():
        return False, {"error": "the price list has never been published"}
    age = timezone.now().timestamp() - path.stat().st_mtime
    last = FeedBuild.objects.first()
    ok = age <= settings.FEED_MAX_AGE_MINUTES * 60 and (
        last is None or last.status == FeedBuild.Status.PUBLISHED
    )
    return ok, {"age_min": round(age / 60), "last_build": last.status if last else None}
