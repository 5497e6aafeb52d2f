import csv
import sys

from django.core.management.base import BaseCommand, CommandError

from catalog.services.cutover import cutover_report


class Command(BaseCommand):
    help = (
        "Compare the imported old Kaspi price list with the price list we publish: kept, "
        "price changed, now unavailable, dropped (each listed). Exit 3 when SKUs are dropped."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--csv", dest="csv_path", metavar="FILE", help="write every line to this CSV file"
        )

    def handle(self, *args, csv_path=None, **options):
        report = cutover_report()
        if report.error:
            raise CommandError(report.error)
        for key, value in report.counts.items():
            self.stdout.write(f"{key}: {value}")
        for group in ("dropped", "now_unavailable", "price_changed"):
            for line in getattr(report, group):
                self.stdout.write(
                    f"  {group}: {line.sku!r} {line.model[:60]} {line.old_price} → {line.new_price}"
                )
        if csv_path:
            self._write_csv(csv_path, report)
        if report.dropped:
            sys.exit(3)

    def _write_csv(self, name, report):
        with open(name, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle, delimiter=";")
            writer.writerow(
                [
                    "group",
                    "SKU",
                    "model",
                    "old price",
                    "new price",
                    "old available",
                    "new available",
                    "from the old price list",
                ]
            )
            for group in ("kept", "price_changed", "now_unavailable", "dropped"):
                for line in getattr(report, group):
                    writer.writerow(
                        [
                            group,
                            line.sku,
                            line.model,
                            line.old_price,
                            line.new_price,
                            line.old_available,
                            line.new_available,
                            line.from_old_list,
                        ]
                    )
