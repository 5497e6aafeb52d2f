import json

from django.core.management.base import BaseCommand, CommandError

from backoffice.core.health import collect_health


class Command(BaseCommand):
    help = "Print the health report as JSON; exit non-zero when unhealthy (for cron/monitoring)."

    def handle(self, *args, **options):
        report = collect_health()
        self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2, default=str))
        if report["status"] != "ok":
            failed = [name for name, check in report["checks"].items() if not check["ok"]]
            raise CommandError(f"unhealthy: {', '.join(failed)}")
