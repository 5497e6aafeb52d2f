from django.core.management.base import BaseCommand, CommandError

from orders.models import Order, SupplierPurchase
from orders.services.fulfilment import (
    FulfilmentRefused,
    describe_plan,
    purchase_from_alstyle,
    purchase_order,
)


class Command(BaseCommand):
    help = (
        "Order the goods of accepted Kaspi orders (the admin action's service): the Al-Style "
        "lines through its cart, a purchase list for each supplier without a cart API. "
        "--dry-run shows what would be sent and the base URLs. Exit 0 all bought, 1 a purchase "
        "failed or was refused, 3 the result of a submit is unknown (held for staff)."
    )

    def add_arguments(self, parser):
        parser.add_argument("codes", nargs="+", help="Kaspi order codes")
        parser.add_argument("--dry-run", action="store_true")
        parser.add_argument("--attorney", default="", help="attorney number to send")
        parser.add_argument("--carrier", default="", help="shipping method or carrier to send")

    def handle(self, *args, codes, dry_run, attorney, carrier, **options):
        worst = 0
        for code in codes:
            order = Order.objects.filter(code=code).first()
            if order is None:
                raise CommandError(f"no order {code}")
            if dry_run:
                try:
                    plan = purchase_from_alstyle(
                        order=order, dry_run=True, attorney=attorney, carrier=carrier
                    )
                except FulfilmentRefused as exc:
                    self.stderr.write(f"{code}: {exc}")
                    worst = max(worst, 1)
                    continue
                self.stdout.write(f"{code}: {describe_plan(plan)}")
                worst = max(worst, 1 if plan["problems"] else 0)
                continue
            try:
                results = purchase_order(order=order, attorney=attorney, carrier=carrier)
            except FulfilmentRefused as exc:
                self.stderr.write(f"{code}: {exc}")
                worst = max(worst, 1)
                continue
            for supplier, result in results:
                if isinstance(result, FulfilmentRefused):
                    self.stderr.write(f"{code}: {supplier.name}: {result}")
                    unknown = SupplierPurchase.objects.filter(
                        order=order, supplier=supplier, status=SupplierPurchase.Status.UNKNOWN
                    ).exists()
                    worst = max(worst, 3 if unknown else 1)
                elif result.status == SupplierPurchase.Status.LISTED:
                    self.stdout.write(f"{code}: {supplier.name}: purchase list #{result.pk}")
                else:
                    self.stdout.write(
                        f"{code}: Al-Style order {result.supplier_order_id} "
                        f"({result.get_status_display()})"
                    )
        if worst:
            raise SystemExit(worst)
