from django.core.management.base import BaseCommand

from backoffice.core.commands import fail
from backoffice.core.exceptions import BackofficeError
from catalog.services.cards import poll_card_imports


class Command(BaseCommand):
    help = (
        "Check the Kaspi card imports still being processed and record finished results "
        "(the kaspi-card-imports schedule). Exit 0 ok, 1 failed."
    )

    def handle(self, *args, **options):
        try:
            finished = poll_card_imports()
        except BackofficeError as exc:
            fail(str(exc))
        self.stdout.write(f"card imports finished: {finished}")
