from django.core.management.base import BaseCommand

from catalog.services.demo import load_demo_catalog
from orders.services.demo import load_demo_orders
from payments.services.demo import load_demo_payments


class Command(BaseCommand):
    help = "Load made-up demo data: catalog, a price rule, Kaspi orders, payments (idempotent)."

    def handle(self, *args, **options):
        catalog = load_demo_catalog()
        orders = load_demo_orders()
        payments = load_demo_payments()
        self.stdout.write(
            "demo data: "
            + ", ".join(
                f"{name}={value}" for name, value in {**catalog, **orders, **payments}.items()
            )
        )
