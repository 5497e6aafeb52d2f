"""Health checks of the catalog: last sync age and status, price-list age and status."""

from django.conf import settings
from django.utils import timezone

from backoffice.core.health import check_last_good_run
from backoffice.models import SyncRun

from .models import FeedBuild
from .services.feed import feed_path


def check_catalog_sync():
    return check_last_good_run(
        kind=SyncRun.Kind.CATALOG,
        configured=bool(settings.ALSTYLE_TOKEN),
        setting="ALSTYLE_TOKEN",
        max_age_minutes=settings.CATALOG_SYNC_MAX_AGE_MINUTES,
    )


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
