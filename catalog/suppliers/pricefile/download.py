"""Fetching a supplier's price file: by URL through the shared HTTP client, or the file
staff uploaded in the admin; and, for the admin preview inside a web request, the start of
the file at a URL as a stream the parser pulls from (`open_preview`).

Credentials never sit in the URL or the database: the supplier names an environment
variable (`auth_env`) holding `user:password` (sent as HTTP Basic auth) or a token
(put where the URL says `{token}`, else sent as `Authorization: Bearer …`). The values are
registered with the log masking before the first request, so no log line or error text
carries them; the URL is logged masked by the client.
"""

import io
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import requests
import urllib3
from django.conf import settings
from django.utils.translation import gettext as _
from urllib3.exceptions import ReadTimeoutError

from backoffice.core.exceptions import ExternalServiceError, ServiceTimeout
from backoffice.core.http import HttpClient
from backoffice.core.logging import register_secret

from .parsers import PriceFileError

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
TOKEN_PLACEHOLDER = "{token}"  # noqa: S105 - a placeholder, not a secret
_SECRET_QUERY_KEYS = {"token", "access_token", "access-token", "key", "api_key", "apikey"}
_SECRET_QUERY_KEYS |= {"password", "pass", "pwd", "secret", "auth"}


def url_credentials_problem(url: str) -> str:
    """Why a URL may not be stored (it carries credentials in clear), or ''."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return _("The price-file URL must start with http:// or https://.")
    if parts.username or parts.password:
        return _(
            "The URL holds a user name or password: remove it and put user:password into "
            "an environment variable named by --auth-env."
        )
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in _SECRET_QUERY_KEYS and value and value != TOKEN_PLACEHOLDER:
            return _(
                "The URL holds a secret (%(key)s=…): write %(key)s={token} instead and put "
                "the token into an environment variable named by --auth-env."
            ) % {"key": key}
    return ""


def credentials(auth_env: str) -> str:
    """The secret from the variable `auth_env` names ('' when the supplier names none)."""
    if not auth_env:
        return ""
    value = os.environ.get(auth_env, "").strip()
    if not value:
        raise PriceFileError(
            _(
                "The environment variable %(name)s (the supplier's credentials) is not set "
                "or empty; set it to user:password or the token."
            )
            % {"name": auth_env}
        )
    register_secret(value)
    if ":" in value:
        for part in value.split(":", 1):
            register_secret(part)
    return value


class PriceFileClient(HttpClient):
    """The shared client with plain words for a file server's refusals."""

    def __init__(self, *, supplier_name: str, auth_env: str = "", **kwargs):
        self.auth_env = auth_env
        timeout = (settings.HTTP_CONNECT_TIMEOUT, settings.PRICEFILE_READ_TIMEOUT)
        kwargs.setdefault("timeout", timeout)
        super().__init__(service=supplier_name, base_url="", **kwargs)

    def error_for(self, response: requests.Response) -> ExternalServiceError:
        status = response.status_code
        if status in (401, 403):
            message = _(
                "the file server refused access (HTTP %(status)s): check the credentials in "
                "the environment variable %(name)s"
            ) % {"status": status, "name": self.auth_env or "—"}
        elif status == 404:
            message = _("no file at this address (HTTP 404): check the supplier's URL")
        else:
            message = _("the file server answered HTTP %(status)s") % {"status": status}
        return ExternalServiceError(self.service, message, status=status)


def _get(
    url: str,
    *,
    auth_env: str,
    supplier_name: str,
    session: requests.Session | None,
    retries: int | None = None,
    timeout: tuple[float, float] | None = None,
) -> requests.Response:
    """The streamed GET of the file with the supplier's credentials (HTTP errors raised)."""
    secret = credentials(auth_env)
    kwargs: dict = {"stream": True}
    if secret and ":" in secret:
        user, password = secret.split(":", 1)
        kwargs["auth"] = (user, password)
    elif secret and TOKEN_PLACEHOLDER in url:
        url = url.replace(TOKEN_PLACEHOLDER, secret)
    elif secret:
        kwargs["headers"] = {"Authorization": f"Bearer {secret}"}
    if timeout is not None:
        kwargs["timeout"] = timeout
    client = PriceFileClient(
        supplier_name=supplier_name, auth_env=auth_env, session=session, retries=retries
    )
    return client.request("GET", url, **kwargs)


def download(
    url: str,
    *,
    auth_env: str = "",
    supplier_name: str = "price file",
    suffix: str = "",
    session: requests.Session | None = None,
) -> Path:
    """Stream the file at `url` into a temporary file and return its path (the caller
    deletes it). Raises ExternalServiceError (network, HTTP) or PriceFileError."""
    response = _get(url, auth_env=auth_env, supplier_name=supplier_name, session=session)
    limit = settings.PRICEFILE_MAX_MB * 1024 * 1024
    handle = tempfile.NamedTemporaryFile(prefix="pricefile-", suffix=suffix, delete=False)  # noqa: SIM115
    path = Path(handle.name)
    size = 0
    try:
        with handle, response:
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise PriceFileError(
                        _(
                            "The file is larger than %(mb)d MB (PRICEFILE_MAX_MB): it is "
                            "probably not the price list. Nothing was changed."
                        )
                        % {"mb": settings.PRICEFILE_MAX_MB}
                    )
                handle.write(chunk)
    except requests.RequestException as exc:
        path.unlink(missing_ok=True)
        raise ExternalServiceError(
            supplier_name,
            _("the download was cut off after %(kb)d KB (%(error)s); nothing was changed")
            % {"kb": size // 1024, "error": type(exc).__name__},
        ) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise PriceFileError(_("The file server sent an empty file. Nothing was changed."))
    logger.info("%s: price file downloaded, %d KB", supplier_name, size // 1024)
    return path


# --- The admin preview: only the start of the file, inside a web request --------------------

PREVIEW_CHUNK = 64 * 1024


class PreviewCut(PriceFileError):
    """The preview stopped reading: the byte cap or the time allowed was reached."""


def too_slow_for_preview(seconds: float) -> str:
    """Why the preview gave up on a slow or silent file server, and what to do instead."""
    return _(
        "The file server is too slow: no preview within %(seconds)s s "
        "(PRICEFILE_PREVIEW_SECONDS). Run a sync («Синхронизировать») instead: it reads the "
        "file in the background."
    ) % {"seconds": f"{seconds:g}"}


class PreviewStream(io.RawIOBase):
    """The body of the file at a URL as a read-only binary stream that pulls from the
    network only as the parser asks, so a preview of the first rows reads the first
    rows' bytes and no more. At most `max_bytes` are read and only until `deadline`
    (time.monotonic(); default `seconds` from now): past either, reading raises
    PreviewCut with the reason for staff. Each network read returns what has arrived
    (it does not wait for a whole chunk, so a server trickling a byte at a time cannot
    stretch one read) and waits at most the response's read timeout, so reading stops
    within about that timeout after the deadline. Use as a context manager (the
    connection is closed on exit); `bytes_read` says how much came over the network."""

    def __init__(
        self,
        response: requests.Response,
        *,
        supplier_name: str,
        max_bytes: int,
        seconds: float,
        too_large: str,
        deadline: float | None = None,
    ):
        super().__init__()
        self.too_large = too_large
        self.response = response
        self.supplier_name = supplier_name
        self.max_bytes = max_bytes
        self.deadline = time.monotonic() + seconds if deadline is None else deadline
        self.seconds = seconds
        self.bytes_read = 0
        self.finished = False
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._pending and not self._fill():
            return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def head(self, size: int) -> bytes:
        """The first `size` bytes (fewer if the file is shorter), without consuming them:
        for sniffing the encoding and delimiter before reading."""
        while len(self._pending) < size and self._fill(append=True):
            pass
        return self._pending[:size]

    def save(self, *, suffix: str = "") -> Path:
        """The whole body (within the cap) in a temporary file (an XLSX file is a zip:
        it cannot be read from its start alone). The caller deletes it."""
        handle = tempfile.NamedTemporaryFile(prefix="pricefile-", suffix=suffix, delete=False)  # noqa: SIM115
        path = Path(handle.name)
        try:
            with handle:
                shutil.copyfileobj(self, handle, PREVIEW_CHUNK)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def _fill(self, *, append: bool = False) -> bool:
        if self.finished:
            return False
        if time.monotonic() > self.deadline:
            raise PreviewCut(too_slow_for_preview(self.seconds))
        try:
            # read1, not iter_content: urllib3's read(amt) waits until `amt` bytes came.
            chunk = self.response.raw.read1(PREVIEW_CHUNK, decode_content=True) or b""
        except ReadTimeoutError:
            raise PreviewCut(too_slow_for_preview(self.seconds)) from None
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            raise ExternalServiceError(
                self.supplier_name,
                _("the download was cut off after %(kb)d KB (%(error)s)")
                % {"kb": self.bytes_read // 1024, "error": type(exc).__name__},
            ) from None
        if not chunk:
            self.finished = True
            return False
        self.bytes_read += len(chunk)
        if self.bytes_read > self.max_bytes:
            raise PreviewCut(self.too_large)
        self._pending = self._pending + chunk if append else chunk
        return True

    def close(self) -> None:
        if not self.closed:
            self.response.close()
        super().close()


def too_large_for_preview(max_mb: float, *, whole: bool) -> str:
    """Why the preview stopped at the byte cap, and what to do instead."""
    mb = f"{max_mb:g}"
    if whole:
        return _(
            "The XLSX file is larger than %(mb)s MB (PRICEFILE_PREVIEW_MAX_MB): an XLSX file "
            "can only be read whole, so there is no preview for it. Run a sync "
            "(«Синхронизировать»): it reads the whole file in the background and the run "
            "history shows the result."
        ) % {"mb": mb}
    return _(
        "The preview read the first %(mb)s MB of the file (PRICEFILE_PREVIEW_MAX_MB) and "
        "stopped there: the rows above are all it found in them. Run a sync "
        "(«Синхронизировать») to read the whole file."
    ) % {"mb": mb}


def open_preview(
    url: str,
    *,
    auth_env: str = "",
    supplier_name: str = "price file",
    whole: bool = False,
    session: requests.Session | None = None,
) -> PreviewStream:
    """The file at `url` as a PreviewStream: one attempt (no retries with backoff inside a
    web request), at most PRICEFILE_PREVIEW_MAX_MB read and only for
    PRICEFILE_PREVIEW_SECONDS in all, the answer's headers included; that is also the read
    timeout of each network read (the connect timeout is HTTP_CONNECT_TIMEOUT), so a
    preview waits at most about twice PRICEFILE_PREVIEW_SECONDS for a slow or silent
    server. `whole`: the file is needed whole (XLSX), so a Content-Length over the cap is
    refused before any of the body is read. Raises ExternalServiceError or PriceFileError
    (PreviewCut past the time or the byte cap)."""
    seconds = settings.PRICEFILE_PREVIEW_SECONDS
    deadline = time.monotonic() + seconds
    max_bytes = int(settings.PRICEFILE_PREVIEW_MAX_MB * 1024 * 1024)
    try:
        response = _get(
            url,
            auth_env=auth_env,
            supplier_name=supplier_name,
            session=session,
            retries=0,
            timeout=(settings.HTTP_CONNECT_TIMEOUT, seconds),
        )
    except ServiceTimeout:
        raise PreviewCut(too_slow_for_preview(seconds)) from None
    declared = response.headers.get("Content-Length", "")
    too_large = too_large_for_preview(settings.PRICEFILE_PREVIEW_MAX_MB, whole=whole)
    if whole and declared.isdigit() and int(declared) > max_bytes:
        response.close()
        raise PreviewCut(too_large)
    return PreviewStream(
        response,
        supplier_name=supplier_name,
        max_bytes=max_bytes,
        seconds=seconds,
        deadline=deadline,
        too_large=too_large,
    )


def copy_upload(field_file, *, suffix: str = "") -> Path:
    """The uploaded file (a FileField's file) copied to a temporary path."""
    handle = tempfile.NamedTemporaryFile(prefix="pricefile-", suffix=suffix, delete=False)  # noqa: SIM115
    with handle, field_file.open("rb") as source:
        shutil.copyfileobj(source, handle, CHUNK)
    return Path(handle.name)
