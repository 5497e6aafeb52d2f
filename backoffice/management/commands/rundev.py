"""Development run: the web server and the django-q2 worker together; Ctrl-C stops both.

Once the server answers, the last thing printed is one block with the admin and dashboard
addresses and the owner's login (its password only when it was just made up)."""

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from backoffice.ops.first_run import banner, ensure_admin_user


def _base_url(addrport: str) -> str:
    host, _, port = addrport.rpartition(":")
    return f"http://{host or '127.0.0.1'}:{port}"


def _wait_until_up(url: str, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - our own local server
            return True
        except urllib.error.HTTPError:
            return True  # it answered (503 = not healthy yet, still up)
        except OSError:
            time.sleep(0.5)
    return False


class Command(BaseCommand):
    help = "Start runserver and qcluster together (development). Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--username", default=os.environ.get("ADMIN_USERNAME", "admin"))

    def handle(self, *args, addrport, username, **options):
        worker = None
        # runserver's autoreloader re-executes this command in a child with RUN_MAIN set:
        # only the outer process starts the worker and prints the block, so there is one.
        if os.environ.get("RUN_MAIN") != "true":
            from_env = os.environ.get("ADMIN_PASSWORD", "")
            admin = ensure_admin_user(username=username, password=from_env)
            # The worker's chatter goes to a file, so the block below stays the last thing
            # on screen (its log lines are in LOG_FILE too).
            worker_log = Path(settings.BASE_DIR) / "logs" / "worker.log"
            worker_log.parent.mkdir(exist_ok=True)
            with open(worker_log, "ab") as out:
                worker = subprocess.Popen(  # noqa: S603
                    [sys.executable, "manage.py", "run_worker"], stdout=out, stderr=out
                )
            self.stdout.write(f"Task worker started (pid {worker.pid}), output in {worker_log}.")
            base_url = _base_url(addrport)
            block = banner(base_url=base_url, admin=admin, password_from_env=bool(from_env))

            def announce():
                if _wait_until_up(f"{base_url}/health"):
                    self.stdout.write(block)
                    self.stdout.flush()

            threading.Thread(target=announce, daemon=True).start()
        try:
            call_command("runserver", addrport)
        finally:
            if worker and worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    worker.kill()
