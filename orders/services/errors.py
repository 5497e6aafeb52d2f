"""Errors of the order services, below every one of them (so no two import each other)."""

from backoffice.core.exceptions import BackofficeError


class OrderActionRefused(BackofficeError):
    """A status change staff asked for that is not possible (no request was sent)."""
