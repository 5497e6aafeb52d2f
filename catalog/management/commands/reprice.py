from django.core.management.base import BaseCommand

from catalog.services.pricing import reprice_products


class Command(BaseCommand):
    help = "Recompute stored Kaspi prices from the price rules (frozen prices stay frozen)."

    def handle(self, *args, **options):
        counts = reprice_products()
        self.stdout.write(f"checked={counts['checked']} changed={counts['changed']}")
