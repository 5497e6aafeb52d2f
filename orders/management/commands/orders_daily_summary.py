from django.core.management.base import BaseCommand

from orders.services.fulfilment import send_daily_summary


class Command(BaseCommand):
    help = "Send (and print) the owner's daily summary: orders by step, money waiting, problems."

    def handle(self, *args, **options):
        self.stdout.write(send_daily_summary())
