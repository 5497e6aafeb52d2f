from django.core.management.base import BaseCommand

from backoffice.core.commands import fail
from backoffice.core.exceptions import BackofficeError
from payments.services.polling import sweep_payments


class Command(BaseCommand):
    help = (
        "Check open payments whose poller died or never ran and expire stale ones (the "
        "payments-sweep schedule). Exit 0 ok, 1 failed."
    )

    def handle(self, *args, **options):
        try:
            checked = sweep_payments()
        except BackofficeError as exc:
            fail(str(exc))
        self.stdout.write(f"payments checked: {checked}")
