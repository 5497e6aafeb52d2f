"""Download a shop's current price list from its public URL (the one set in the cabinet)."""

import tempfile
from pathlib import Path

from django.conf import settings

from backoffice.core.exceptions import ExternalServiceError
from backoffice.core.http import HttpClient


def download_pricelist(url: str, *, directory: Path | None = None, session=None) -> Path:
    """Stream `url` to a temporary file (at most PRICELIST_IMPORT_MAX_MB); the caller
    deletes it. Raises ExternalServiceError on HTTP errors, timeouts or an oversize file."""
    if not url.startswith(("http://", "https://")):
        raise ExternalServiceError("price list URL", "the address must start with http(s)://")
    client = HttpClient(service="price list URL", base_url=url, session=session)
    limit = settings.PRICELIST_IMPORT_MAX_MB * 1024 * 1024
    response = client.request("GET", url, stream=True)
    fd, name = tempfile.mkstemp(prefix="pricelist-", suffix=".download", dir=directory)
    size = 0
    try:
        with open(fd, "wb") as handle:
            for block in response.iter_content(1 << 16):
                size += len(block)
                if size > limit:
                    raise ExternalServiceError(
                        "price list URL",
                        f"the file is larger than {settings.PRICELIST_IMPORT_MAX_MB} MB "
                        "(PRICELIST_IMPORT_MAX_MB)",
                    )
                handle.write(block)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    finally:
        response.close()
    return Path(name)
