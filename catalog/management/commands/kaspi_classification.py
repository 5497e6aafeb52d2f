from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backoffice.core.exceptions import BackofficeError
from catalog.models import KaspiCategory
from catalog.services.cards import refresh_classification


class Command(BaseCommand):
    help = (
        "Refresh the Kaspi classification: categories, the attributes (and enum values) of "
        "mapped categories or of --category CODE, and the live import schema."
    )

    def add_arguments(self, parser):
        parser.add_argument("--refresh", action="store_true", help="fetch from Kaspi")
        parser.add_argument("--category", help="a Kaspi category code to load attributes for")

    def handle(self, *args, refresh, category, **options):
        self.stdout.write(
            f"Kaspi Shop API: {settings.KASPI_SHOP_API_URL}; "
            f"content API: {settings.KASPI_CONTENT_API_URL}"
        )
        if not refresh:
            self.stdout.write(
                f"{KaspiCategory.objects.count()} Kaspi categories cached; use --refresh"
            )
            return
        try:
            result = refresh_classification(extra_codes=[category] if category else [])
        except BackofficeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"categories: {result['categories']}")
        for code, count in result["attributes"].items():
            self.stdout.write(f"{code}: {count} attributes")
        self.stdout.write("import schema: refreshed")
