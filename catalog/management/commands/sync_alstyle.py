from django.core.management.base import BaseCommand

from backoffice.core.commands import finish_run
from catalog.services.sync import run_catalog_sync, run_stock_sync


class Command(BaseCommand):
    help = (
        "Sync the Al-Style catalog (or only stock and prices). Exit 0 ok or skipped, 1 failed, "
        "2 partial, 3 held for staff."
    )

    def add_arguments(self, parser):
        parser.add_argument("--stock-only", action="store_true", help="quantity-price refresh")
        parser.add_argument(
            "--dry-run", action="store_true", help="fetch and compare, write nothing"
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="the whole listing (or every product's stock) now, ignoring the supplier "
            "budget planner; still one call per ALSTYLE_MIN_INTERVAL",
        )

    def handle(self, *args, stock_only, dry_run, full, **options):
        runner = run_stock_sync if stock_only else run_catalog_sync
        run = runner(triggered_by="command", dry_run=dry_run, full=full)
        self.stdout.write(run.summary() + (" [dry run]" if dry_run else ""))
        left_at = run.params.get("listing_left_at")
        if left_at is not None:
            # The planner spent this run's share of the supplier budget mid-listing.
            self.stdout.write(
                f"listing not finished: the next run continues at offset {left_at} "
                f"({run.params.get('budget', 'supplier budget')})"
            )
        finish_run(self, run)
