from django.core.management.base import BaseCommand, CommandError

from orders.models import Order, SupplierPurchase
from orders.services.fulfilment import FulfilmentRefused, describe_plan, purchase_from_alstyle


class Command(BaseCommand):
    help = (
        "Order the goods of accepted Kaspi orders from Al-Style (the admin action's service). "
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
            try:
                result = purchase_from_alstyle(
                    order=order, dry_run=dry_run, attorney=attorney, carrier=carrier
                )
            except FulfilmentRefused as exc:
                self.stderr.write(f"{code}: {exc}")
                unknown = SupplierPurchase.objects.filter(
                    order=order, status=SupplierPurchase.Status.UNKNOWN
                ).exists()
                worst = max(worst, 3 if unknown else 1)
                continue
            if dry_run:
                self.stdout.write(f"{code}: {describe_plan(result)}")
                worst = max(worst, 1 if result["problems"] else 0)
            else:
                self.stdout.write(
                    f"{code}: Al-Style order {result.supplier_order_id} "
                    f"({result.get_status_display()})"
                )
        if worst:
            raise SystemExit(worst)
