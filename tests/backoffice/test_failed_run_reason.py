"""A failed run's reason is on the dashboard card and in the run list (issue 17.11); the
failed card counts failed runs, not only django-q's crashed tasks."""

from django.urls import reverse
from django.utils import timezone

from backoffice.models import SyncRun

REASON = "Al-Style: нет API-токена: задайте ALSTYLE_TOKEN"


def _failed_run():
    return SyncRun.objects.create(
        kind=SyncRun.Kind.CATALOG,
        status=SyncRun.Status.FAILED,
        finished_at=timezone.now(),
        error=REASON + "\nTraceback…",
        counts={"fetched": 0, "errors": 1},
    )


def test_dashboard_shows_the_reason_and_counts_failed_runs(staff_client, settings):
    settings.LANGUAGE_CODE = "ru"
    settings.ALSTYLE_TOKEN = "token-123456789"
    run = _failed_run()

    html = staff_client.get(reverse("dashboard")).content.decode()

    assert "запусков с ошибкой: 1" in html
    assert f"#{run.pk}: {REASON}" in html
    # Counters in words (PostgreSQL's jsonb keeps its own key order).
    assert "получено: 0" in html
    assert "ошибок: 1" in html
    assert "Traceback" not in html.split("<table>")[0]  # the first line only on the cards


def test_run_list_shows_the_reason(staff_client, settings):
    settings.LANGUAGE_CODE = "ru"
    _failed_run()

    html = staff_client.get(reverse("admin:backoffice_syncrun_changelist")).content.decode()

    assert REASON in html
