from django.core.management.base import BaseCommand

from orders.tasks import daily_summary_task


class Command(BaseCommand):
    help = "Send (and print) the owner's daily summary: orders by step, money waiting, problems."

    def handle(self, *args, **options):
        self.stdout.write(daily_summary_task())
