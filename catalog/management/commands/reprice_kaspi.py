import sys

from django.core.management.base import BaseCommand

from backoffice.core.runs import exit_code
from catalog.services.repricer import run_reprice


class Command(BaseCommand):
    help = (
        "Compute Kaspi prices from the stored market (REPRICER_MODE suggest/auto); "
        "--approve applies every pending proposal, --dry-run prints what would change."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print, store nothing")
        parser.add_argument("--approve", action="store_true", help="apply every pending one")

    def handle(self, *args, dry_run, approve, **options):
        run = run_reprice(dry_run=dry_run, approve=approve)
        for line in run.params.get("lines", []):
            self.stdout.write(line)
        self.stdout.write(run.summary() + (" [dry run]" if dry_run else ""))
        if run.error:
            self.stderr.write(run.error)
        code = exit_code(run)
        if code:
            sys.exit(code)
