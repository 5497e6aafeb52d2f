from datetime import date, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from backoffice.core.commands import finish_run
from orders.services.imports import NEW_ORDER_COUNTS, run_order_import


def _date(value: str, *, end: bool = False) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date like 2026-01-31") from None
    moment = datetime.combine(day, time.max if end else time.min)
    return timezone.make_aware(moment)


class Command(BaseCommand):
    help = (
        "Import Kaspi orders: incremental by default, or a past period with --days or "
        "--since/--until (split into 14-day windows); then the new-order flow (stock check, "
        "staff alerts, auto-accept, reminders), as the schedule does. Exit 0 ok or skipped, "
        "1 failed, 2 partial, 3 held for staff."
    )

    def add_arguments(self, parser):
        period = parser.add_mutually_exclusive_group()
        period.add_argument("--days", type=int, help="the last N days (backfill)")
        period.add_argument("--since", help="YYYY-MM-DD, start of the period")
        parser.add_argument("--until", help="YYYY-MM-DD, end of the period (default: now)")
        parser.add_argument("--status", help="only orders in this Kaspi status")

    def handle(self, *args, days, since, until, status, **options):
        end = _date(until, end=True) if until else timezone.now()
        start = None
        if days is not None:
            if days < 1:
                raise CommandError("--days must be at least 1")
            start = end - timedelta(days=days)
        elif since:
            start = _date(since)
        elif until:
            raise CommandError("--until needs --since")
        if start and start > end:
            raise CommandError("--since is after --until")
        run = run_order_import(since=start, until=end if start else None, status=status)
        self.stdout.write(run.summary())
        if any(key in run.counts for key in NEW_ORDER_COUNTS.values()):
            self.stdout.write(
                "new orders: "
                + ", ".join(
                    f"{key.removeprefix('new_')}={run.counts[key]}"
                    for key in NEW_ORDER_COUNTS.values()
                )
            )
        finish_run(self, run)
