"""Secret masking for logs, errors and admin pages.

Tokens travel in URLs (Al-Style's `access-token`) and headers (Kaspi's `X-Auth-Token`), so
they must be cut out of every line we write. `mask()` shows only the ends (`abcd…wxyz`).
"""

import logging
import re

from django.conf import settings

_QUERY_SECRET = re.compile(
    r"(?P<key>(?:access[-_]token|token|api[-_]?key|secret|password|signature)=)(?P<value>[^&\s\"']+)",
    re.IGNORECASE,
)
_HEADER_SECRET = re.compile(
    r"(?P<key>(?:X-Auth-Token|Authorization|Api-Key|X-Api-Key|X-Signature)['\"]?\s*[:=]\s*['\"]?"
    r"(?:Bearer\s+|Basic\s+)?)(?P<value>[^\s'\",}]+)",
    re.IGNORECASE,
)


def mask(value: str) -> str:
    """Show a secret's first and last four characters, or nothing of a short one."""
    value = str(value or "")
    if not value:
        return ""
    if len(value) < 12:
        return "…" * 3
    return f"{value[:4]}…{value[-4:]}"


# Secrets read at run time from a variable no setting names (a price-file supplier's
# credentials, catalog/suppliers/pricefile/download.py): masked like the settings' ones.
_RUNTIME_SECRETS: set[str] = set()


def register_secret(value: str) -> None:
    """Mask `value` in every later log line and error text (6 characters or more)."""
    if value and len(str(value)) >= 6:
        _RUNTIME_SECRETS.add(str(value))


def known_secrets() -> list[str]:
    """The configured secret values (from settings.SECRET_SETTINGS and register_secret),
    longest first."""
    values = list(_RUNTIME_SECRETS)
    for name in getattr(settings, "SECRET_SETTINGS", []):
        value = getattr(settings, name, "")
        if value and len(str(value)) >= 6:
            values.append(str(value))
    return sorted(set(values), key=len, reverse=True)


def mask_text(text: str) -> str:
    """Replace every known secret and every `token=…`-like value in `text` by its mask."""
    if not text:
        return text
    for secret in known_secrets():
        if secret in text:
            text = text.replace(secret, mask(secret))
    text = _QUERY_SECRET.sub(lambda m: m.group("key") + _mask_once(m.group("value")), text)
    return _HEADER_SECRET.sub(lambda m: m.group("key") + _mask_once(m.group("value")), text)


def _mask_once(value: str) -> str:
    # A value already masked by the first pass keeps its form.
    return value if "…" in value else mask(value)


class SecretMaskingFilter(logging.Filter):
    """Logging filter: formats the record's message and traceback, then masks secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the log line
            message = str(record.msg)
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True
