from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backoffice.core.commands import EXIT_PARTIAL, exit_with, fail
from backoffice.core.exceptions import BackofficeError
from catalog.models import CardState, Product
from catalog.services.cards import cards_import


class Command(BaseCommand):
    help = (
        "Validate and upload Kaspi product cards for mapped products. Exit 0 ok, 1 failed, "
        "2 partial (some batches not sent)."
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
        products = Product.objects.filter(
            listed=True, kaspi_enabled=True, category__card_mapping__isnull=False
        ).select_related("brand", "category")
        if category is not None:
            products = products.filter(category__supplier_id=category)
        if only_missing:
            products = products.exclude(card_state=CardState.ACCEPTED)
        try:
            summary = cards_import(list(products), dry_run=dry_run)
        except BackofficeError as exc:
            raise CommandError(f"failed: {exc}") from None
        for preview in summary.previews:
            if preview.problems:
                self.stderr.write(f"{preview.product.sku}: " + "; ".join(preview.problems))
        codes = ", ".join(batch.code or batch.status for batch in summary.batches)
        self.stdout.write(
            f"{'would send' if dry_run else 'sent'}={summary.sent} failed={summary.failed} "
            f"unchanged={summary.unchanged} invalid={summary.invalid}"
            + (f" imports: {codes}" if codes else "")
        )
        failed = [batch for batch in summary.batches if batch.status == "FAILED"]
        if failed:
            reason = (
                f"{len(failed)} of {len(summary.batches)} batches could not be sent; "
                "see the card imports"
            )
            if len(failed) == len(summary.batches):
                fail(reason)  # nothing was sent: 1
            exit_with(self, EXIT_PARTIAL, reason)  # some batches went through: 2
