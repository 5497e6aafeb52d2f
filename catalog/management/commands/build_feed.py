from django.core.management.base import BaseCommand

from backoffice.core.commands import finish_run
from backoffice.models import SyncRun
from catalog.services.feed import feed_path, run_feed_build


class Command(BaseCommand):
    help = (
        "Build, validate and publish the Kaspi price list. Exit 0 ok or skipped, 1 failed, "
        "2 partial, 3 held for staff."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="publish even if the offer count fell sharply"
        )

    def handle(self, *args, force, **options):
        run = run_feed_build(triggered_by="command", force=force)
        self.stdout.write(run.summary())
        if run.status == SyncRun.Status.OK:
            self.stdout.write(f"published: {feed_path()}")
        finish_run(self, run, failed_hint="the previous file, if any, is still served")
