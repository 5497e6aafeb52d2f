import sys

from django.core.management.base import BaseCommand, CommandError

from backoffice.core.runs import exit_code
from catalog.services.card_links import LinkFileError, run_link_cards


class Command(BaseCommand):
    help = (
        "Link products to Kaspi cards: Kaspi-made SKUs always, plus a CSV/XLSX of sku,url, "
        "sold items, a search (candidates for staff), and --verify against the home city."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", help="CSV or XLSX with columns sku,url")
        parser.add_argument("--from-orders", action="store_true", help="items already sold")
        parser.add_argument("--search", action="store_true", help="candidates by product name")
        parser.add_argument("--verify", action="store_true", help="read unverified links")

    def handle(self, *args, file, from_orders, search, verify, **options):
        try:
            run = run_link_cards(file=file, from_orders=from_orders, search=search, verify=verify)
        except (LinkFileError, OSError) as exc:
            raise CommandError(f"{file}: {exc}") from None
        self.stdout.write(run.summary())
        if run.error:
            self.stderr.write(run.error)
        code = exit_code(run)
        if code:
            sys.exit(code)
