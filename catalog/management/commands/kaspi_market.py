import sys

from django.core.management.base import BaseCommand

from backoffice.core.runs import exit_code
from catalog.services.market import freshness, run_market_read


class Command(BaseCommand):
    help = (
        "Read the Kaspi offers of linked cards in each city we sell in (paced, due pairs "
        "first); exit 0 ok, 1 failed, 2 partial (market unknown for some, or 403 stop)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sku", help="only this product (every city)")
        parser.add_argument("--city", help="only this Kaspi city id")
        parser.add_argument("--limit", type=int, help="reads in this run (KASPI_MARKET_BATCH)")
        parser.add_argument("--dry-run", action="store_true", help="read, store nothing")

    def handle(self, *args, sku, city, limit, dry_run, **options):
        run = run_market_read(sku=sku, city=city, limit=limit, dry_run=dry_run)
        self.stdout.write(run.summary() + (" [dry run]" if dry_run else ""))
        fresh = freshness()
        self.stdout.write(
            "freshness, minutes: home p50={home[p50]} p95={home[p95]}; "
            "all p50={all[p50]} p95={all[p95]} ({all[count]} pairs)".format(**fresh)
        )
        if run.error:
            self.stderr.write(run.error)
        code = exit_code(run)
        if code:
            sys.exit(code)
