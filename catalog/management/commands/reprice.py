from django.core.management.base import BaseCommand

from catalog.services.feed import reprice_and_publish


class Command(BaseCommand):
    help = (
        "Recompute stored Kaspi prices from the price rules (frozen prices stay frozen); when "
        "a price changed, queue a price-list rebuild, as the task does."
    )

    def handle(self, *args, **options):
        counts = reprice_and_publish(triggered_by="command")
        self.stdout.write(
            f"checked={counts['checked']} changed={counts['changed']}"
            + (" price list rebuild queued" if counts["feed_queued"] else "")
        )
