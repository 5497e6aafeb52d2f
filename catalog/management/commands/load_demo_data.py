from django.core.management.base import BaseCommand

from catalog.services.demo import load_demo_catalog


class Command(BaseCommand):
    help = "Load made-up demo categories, brands, products and a price rule (idempotent)."

    def handle(self, *args, **options):
        counts = load_demo_catalog()
        self.stdout.write(
            "demo data: " + ", ".join(f"{name}={value}" for name, value in counts.items())
        )
