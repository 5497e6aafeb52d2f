from django.core.management.base import BaseCommand

from backoffice.ops.retention import cleanup


class Command(BaseCommand):
    help = (
        "Apply the retention settings: drop old raw webhook payloads, run history, alerts and "
        "task results; blank customers' personal data on long-finished Kaspi orders."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="count only")

    def handle(self, *args, dry_run, **options):
        counts = cleanup(dry_run=dry_run)
        self.stdout.write(
            ", ".join(f"{k}={v}" for k, v in counts.items()) + (" [dry run]" if dry_run else "")
        )
