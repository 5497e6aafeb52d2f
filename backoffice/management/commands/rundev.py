"""Development run: the web server and the django-q2 worker together; Ctrl-C stops both."""

import os
import subprocess
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Start runserver and qcluster together (development). Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport, **options):
        worker = None
        # runserver's autoreloader re-executes this command in a child with RUN_MAIN set:
        # only the outer process starts the worker, so there is exactly one.
        if os.environ.get("RUN_MAIN") != "true":
            worker = subprocess.Popen([sys.executable, "manage.py", "qcluster"])  # noqa: S603
            self.stdout.write(f"Task worker started (pid {worker.pid}).")
        try:
            call_command("runserver", addrport)
        finally:
            if worker and worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    worker.kill()
