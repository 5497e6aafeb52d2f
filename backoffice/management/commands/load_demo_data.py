from django.core.management.base import BaseCommand

from catalog.services.demo import load_demo_catalog
from orders.services.demo import load_demo_orders


class Command(BaseCommand):
    help = "Load made-up demo data: catalog, a price rule and Kaspi orders (idempotent)."

    def handle(self, *args, **options):
        catalog = load_demo_catalog()
        orders = load_demo_orders()
        self.stdout.write(
            "demo data: "
            + ", ".join(f"{name}={value}" for name, value in {**catalog, **orders}.items())
        )
