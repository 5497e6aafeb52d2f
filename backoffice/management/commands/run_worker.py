"""The task worker's entry point (systemd unit, `make serve`, `make run`): django-q2's
`qcluster` in a session of its own, stopped by exactly one SIGTERM to its main process.

A stop signal to every process of the worker at once (systemd's default stop, Ctrl-C, a
`kill` of the process group) would reach qcluster's sentinel, workers, pusher and monitor
too: the sentinel dies on the spot (django-q2 leaves SIGTERM at its default there), the task
in flight dies with its worker, and the main process hangs until it is killed. Here only
this small process is in the signalled group; it turns the first SIGTERM, SIGINT or SIGHUP
into one SIGTERM to the cluster's main process, which stops the pusher, lets each worker
finish the task it is running (tasks already handed to the cluster run first; the rest stay
in the broker for the next start) and exits. Later signals are ignored: the unit's
`TimeoutStopSec` is the hard limit. If this process dies, the kernel sends the cluster a
SIGTERM (Linux PR_SET_PDEATHSIG), so no orphan cluster keeps running.
"""

import ctypes
import logging
import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PR_SET_PDEATHSIG = 1


def _cluster_setup() -> None:
    """In the cluster's process before exec: default signal dispositions (a shell may have
    set SIGINT to ignored for background jobs), and a SIGTERM when this parent dies."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the cluster only outlives a SIGKILLed parent


class Command(BaseCommand):
    help = (
        "Run the task worker (django-q2 qcluster) so that any stop signal, to this process "
        "or its whole group, stops it cleanly within seconds. Extra arguments go to qcluster."
    )

    def add_arguments(self, parser):
        parser.add_argument("qcluster_args", nargs="*")

    def handle(self, *args, qcluster_args, **options):
        cluster = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "django", "qcluster", *qcluster_args],
            cwd=settings.BASE_DIR,
            start_new_session=True,
            preexec_fn=_cluster_setup,  # noqa: PLW1509 (no threads yet in this process)
        )
        stopping = False

        def stop(signum, _frame):
            nonlocal stopping
            if stopping or cluster.poll() is not None:
                return
            stopping = True
            logger.info("worker: %s received, stopping the cluster", signal.Signals(signum).name)
            os.kill(cluster.pid, signal.SIGTERM)

        for signum in STOP_SIGNALS:
            signal.signal(signum, stop)
        code = cluster.wait()
        if code < 0:  # killed by a signal
            code = 128 - code
        if code:
            raise CommandError(f"the task cluster exited with {code}", returncode=code)
