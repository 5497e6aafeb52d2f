from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from payments.services.intake import import_payments


class Command(BaseCommand):
    help = (
        "Import payments from a JSON file [{orderId, amount, status, transactionId}, ...]: "
        "all rows or none; re-importing the same file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dry-run", action="store_true", help="validate and preview only")

    def handle(self, *args, file, dry_run, **options):
        try:
            data = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc}") from None
        report = import_payments(data, apply=not dry_run, name=Path(file).name)
        for line in report.preview:
            self.stdout.write(line)
        if report.errors:
            for error in report.errors:
                self.stderr.write(error)
            raise CommandError(f"nothing applied: {len(report.errors)} error(s)")
        self.stdout.write(
            f"rows={report.rows} applied={report.applied} duplicates={report.duplicates}"
            + (" [dry run]" if dry_run else "")
        )
