from django.core.management.base import BaseCommand, CommandError

from backoffice.core.exceptions import ExternalServiceError
from orders.tasks import poll_supplier_purchases_task


class Command(BaseCommand):
    help = (
        "Read the Al-Style status of open purchases from the supplier's order list and look "
        "up unknown ones again (never submits anything). Exit 1 when Al-Style fails."
    )

    def handle(self, *args, **options):
        try:
            self.stdout.write(poll_supplier_purchases_task())
        except ExternalServiceError as exc:
            raise CommandError(str(exc)) from None
