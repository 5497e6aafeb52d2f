from django.core.management.base import BaseCommand, CommandError

from orders.services.diagnostics import check_kaspi_connection


class Command(BaseCommand):
    help = "Check the Kaspi Shop API connection and say in plain words what is wrong."

    def handle(self, *args, **options):
        ok, message = check_kaspi_connection()
        if not ok:
            raise CommandError(message)
        self.stdout.write(self.style.SUCCESS(message))
