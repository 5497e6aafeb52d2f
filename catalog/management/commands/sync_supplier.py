from django.core.management.base import BaseCommand, CommandError

from backoffice.core.commands import finish_run
from backoffice.core.runs import exit_code
from catalog.models import Supplier
from catalog.services.supplier_sync import run_due_supplier_syncs, run_supplier_sync


class Command(BaseCommand):
    help = (
        "Sync one supplier's catalog: a price file (YML, XLSX, CSV) or, for alstyle, the "
        "Al-Style sync (as sync_alstyle). Exit 0 ok or skipped, 1 failed, 2 partial, 3 held "
        "for staff."
    )

    def add_arguments(self, parser):
        parser.add_argument("code", nargs="?", help="the supplier's code (see add_supplier)")
        parser.add_argument(
            "--due",
            action="store_true",
            help="every price-file supplier whose interval (full sync every, minutes) passed",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="fetch and compare, write nothing"
        )

    def handle(self, *args, code, dry_run, due, **options):
        if due:
            runs = run_due_supplier_syncs(triggered_by="command")
            for run in runs:
                self.stdout.write(run.summary())
            if not runs:
                self.stdout.write("no supplier due")
                return
            # The worst run decides the exit code (failed 1 > held 3 > partial 2 > ok 0).
            order = {1: 3, 3: 2, 2: 1, 0: 0}
            finish_run(self, max(runs, key=lambda run: order.get(exit_code(run), 3)))
            return
        if not code:
            raise CommandError("failed: give a supplier code or --due", returncode=1)
        supplier = Supplier.objects.filter(code=code).first()
        if supplier is None:
            known = ", ".join(Supplier.objects.values_list("code", flat=True)) or "—"
            raise CommandError(f"failed: no supplier {code!r} (known: {known})", returncode=1)
        run = run_supplier_sync(supplier, triggered_by="command", dry_run=dry_run)
        self.stdout.write(run.summary() + (" [dry run]" if dry_run else ""))
        finish_run(self, run)
