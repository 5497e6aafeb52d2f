"""The exit of every job command, for cron (README "Exit codes").

0: ok, or skipped because the same job is already running (the reason is printed);
1: failed (CommandError, the reason on stderr); 2: partial and 3: held for staff (the reason
on stderr, then SystemExit with the code). A command prints the run's summary, then calls
`finish_run`.
"""

import sys

from django.core.management.base import CommandError

from backoffice.core.runs import exit_code
from backoffice.models import SyncRun

EXIT_OK, EXIT_FAILED, EXIT_PARTIAL, EXIT_HELD = 0, 1, 2, 3

_LABELS = {EXIT_FAILED: "failed", EXIT_PARTIAL: "partial", EXIT_HELD: "held for staff"}


def finish_run(command, run: SyncRun, *, failed_hint: str = "") -> None:
    """End the command with the exit code of `run`'s status."""
    code = exit_code(run)
    if code == EXIT_OK:
        if run.status == SyncRun.Status.SKIPPED:
            command.stdout.write(f"skipped: {run.error}")
        return
    reason = run.error or _LABELS[code]
    if code == EXIT_FAILED:
        fail(f"{reason} ({failed_hint})" if failed_hint else reason)
    exit_with(command, code, reason)


def exit_with(command, code: int, reason: str) -> None:
    """Exit with `code` (2 partial, 3 held for staff), the reason on stderr."""
    command.stderr.write(f"{_LABELS[code]}: {reason}")
    command.stderr.flush()
    sys.exit(code)


def fail(message: str) -> None:
    """Exit 1 with `message` on stderr (a job command whose run or service failed)."""
    raise CommandError(f"failed: {message}", returncode=EXIT_FAILED)
