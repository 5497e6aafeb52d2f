"""Fetching a supplier's price file: by URL through the shared HTTP client, or the file
staff uploaded in the admin.

Credentials never sit in the URL or the database: the supplier names an environment
variable (`auth_env`) holding `user:password` (sent as HTTP Basic auth) or a token
(put where the URL says `{token}`, else sent as `Authorization: Bearer …`). The values are
registered with the log masking before the first request, so no log line or error text
carries them; the URL is logged masked by the client.
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import requests
from django.conf import settings
from django.utils.translation import gettext as _

from backoffice.core.exceptions import ExternalServiceError
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


def download(
    url: str,
    *,
    auth_env: str = "",
    supplier_name: str = "price file",
    suffix: str = "",
    session: requests.Session | None = None,
    head_bytes: int | None = None,
) -> Path:
    """Stream the file at `url` into a temporary file and return its path (the caller
    deletes it). Raises ExternalServiceError (network, HTTP) or PriceFileError.
    `head_bytes`: keep only the start of the file (the admin preview of the first rows)."""
    secret = credentials(auth_env)
    kwargs: dict = {"stream": True}
    if secret and ":" in secret:
        user, password = secret.split(":", 1)
        kwargs["auth"] = (user, password)
    elif secret and TOKEN_PLACEHOLDER in url:
        url = url.replace(TOKEN_PLACEHOLDER, secret)
    elif secret:
        kwargs["headers"] = {"Authorization": f"Bearer {secret}"}
    client = PriceFileClient(supplier_name=supplier_name, auth_env=auth_env, session=session)
    response = client.request("GET", url, **kwargs)
    limit = settings.PRICEFILE_MAX_MB * 1024 * 1024
    handle = tempfile.NamedTemporaryFile(prefix="pricefile-", suffix=suffix, delete=False)  # noqa: SIM115
    path = Path(handle.name)
    size = 0
    try:
        with handle, response:
            for chunk in response.iter_content(CHUNK):
                if head_bytes is not None and size >= head_bytes:
                    break
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


def copy_upload(field_file, *, suffix: str = "") -> Path:
    """The uploaded file (a FileField's file) copied to a temporary path."""
    handle = tempfile.NamedTemporaryFile(prefix="pricefile-", suffix=suffix, delete=False)  # noqa: SIM115
    with handle, field_file.open("rb") as source:
        shutil.copyfileobj(source, handle, CHUNK)
    return Path(handle.name)
