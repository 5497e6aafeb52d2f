from django.conf import settings
from django.core.management.base import BaseCommand

from backoffice.core.commands import finish_run
from catalog.services.cards import run_card_upload, start_card_upload


class Command(BaseCommand):
    help = (
        "Validate and upload Kaspi product cards for mapped products, as a card upload run "
        "(the admin action's service). Exit 0 ok, 1 failed, 2 partial (some batches not sent)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--category", type=int, help="supplier category id (Al-Style)")
        parser.add_argument(
            "--only-missing", action="store_true", help="only products with no accepted card"
        )
        parser.add_argument("--dry-run", action="store_true", help="validate; send nothing")

    def handle(self, *args, category, only_missing, dry_run, **options):
        self.stdout.write(
            f"Kaspi Shop API: {settings.KASPI_SHOP_API_URL}; "
            f"content API: {settings.KASPI_CONTENT_API_URL}"
        )
        params = {"category": category, "only_missing": only_missing, "dry_run": dry_run}
        run = run_card_upload(run_id=start_card_upload(params=params).pk)
        counts = run.counts
        if counts:
            self.stdout.write(
                f"{'would send' if dry_run else 'sent'}="
                f"{counts.get('would_send' if dry_run else 'sent', 0)} "
                f"failed={counts.get('failed', 0)} unchanged={counts.get('unchanged', 0)} "
                f"invalid={counts.get('invalid', 0)}"
            )
        if run.report:
            self.stderr.write(run.report)
        self.stdout.write(run.summary())
        finish_run(self, run)
