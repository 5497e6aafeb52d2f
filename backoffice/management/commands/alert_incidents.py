from django.core.management.base import BaseCommand

from backoffice.ops.incidents import alert_incidents


class Command(BaseCommand):
    help = (
        "Alert staff about failing jobs, a stale price list, stuck payments and orders "
        "waiting for acceptance (the incidents schedule). Exit 0 ok, 1 failed."
    )

    def handle(self, *args, **options):
        self.stdout.write(f"incident alerts sent: {alert_incidents()}")
