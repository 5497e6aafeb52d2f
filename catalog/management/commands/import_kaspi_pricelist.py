from django.core.management.base import BaseCommand, CommandError

from backoffice.core.exceptions import BackofficeError
from catalog.services.pricelist_import import import_from_source, unresolved_csv


class Command(BaseCommand):
    help = (
        "Import the shop's current Kaspi price list (XML, .xlsx or CSV; a file or a URL), "
        "match its offers to our products and keep their SKUs. Exit 0 all matched, "
        "3 some offers need staff (see --unresolved), 1 the file was refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", help="file path or http(s) URL of the old price list")
        parser.add_argument(
            "--dry-run", action="store_true", help="match and report, write nothing"
        )
        parser.add_argument(
            "--unresolved",
            metavar="CSV",
            help="write the ambiguous, unmatched and conflicting rows to this CSV file",
        )

    def handle(self, *args, source, dry_run, unresolved, **options):
        try:
            result = import_from_source(source=source, dry_run=dry_run)
        except BackofficeError as exc:
            raise CommandError(f"{exc} (nothing was written)") from None
        write = self.stdout.write
        write(
            f"{'dry run: ' if dry_run else ''}{result.offers} offers in {result.file_format} "
            f"price list {result.source}"
            + (f" (merchant {result.merchant_id})" if result.merchant_id else "")
        )
        for key, value in result.counts.items():
            write(f"  {key}: {value}")
        write(f"  pickup points in the file: {', '.join(result.store_ids) or '-'}")
        if result.store_warning:
            self.stderr.write(f"warning: {result.store_warning}")
        if dry_run:
            write("nothing written (dry run)")
        elif result.unchanged:
            write("nothing changed: this file was imported before")
        else:
            write(f"SKUs given to products: {result.changed_skus}")
        if unresolved:
            with open(unresolved, "w", encoding="utf-8", newline="") as handle:
                handle.write(unresolved_csv(result.unresolved))
            write(f"unresolved rows: {len(result.unresolved)} → {unresolved}")
        if result.unresolved:
            self._exit(3)

    def _exit(self, code: int) -> None:
        raise SystemExit(code)
