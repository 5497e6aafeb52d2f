from django.core.management.base import BaseCommand, CommandError

from backoffice.core.exceptions import BackofficeError
from orders.models import Order
from payments.services.create import create_payment


class Command(BaseCommand):
    help = "Create a payment through the configured provider and print its id, link and page."

    def add_arguments(self, parser):
        parser.add_argument(
            "--amount", type=int, help="whole tenge (with --order: must equal the amount due)"
        )
        parser.add_argument("--order", help="number of a direct order to pay (its amount due)")
        parser.add_argument("--description", default="")

    def handle(self, *args, amount, order, description, **options):
        target = None
        if order:
            target = Order.objects.filter(code=order, channel=Order.Channel.DIRECT).first()
            if target is None:
                raise CommandError(f"no direct order {order!r}")
        elif amount is None:
            raise CommandError("give --amount, or --order to pay a direct order's amount due")
        try:
            payment = create_payment(amount=amount, order=target, description=description)
        except BackofficeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"id: {payment.id}")
        self.stdout.write(f"reference: {payment.reference}")
        self.stdout.write(f"status: {payment.status}")
        self.stdout.write(f"QR link: {payment.payment_link}")
        self.stdout.write(f"page: {payment.public_url}")
