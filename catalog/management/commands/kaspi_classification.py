from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backoffice.core.exceptions import BackofficeError
from catalog.models import CardMapping, KaspiCategory
from catalog.services.cards import refresh_attributes, refresh_categories, refresh_schema


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
            count = refresh_categories()
            self.stdout.write(f"categories: {count}")
            codes = set(CardMapping.objects.values_list("kaspi_category__code", flat=True))
            if category:
                codes.add(category)
            for code in sorted(codes):
                kaspi_category = KaspiCategory.objects.filter(code=code).first()
                if kaspi_category is None:
                    raise CommandError(f"unknown Kaspi category {code!r}")
                self.stdout.write(f"{code}: {refresh_attributes(kaspi_category)} attributes")
            refresh_schema()
            self.stdout.write("import schema: refreshed")
        except BackofficeError as exc:
            raise CommandError(str(exc)) from None
