"""GET /feed.xml: serves the pre-built price list; sets headers, never builds.
GET /feed.xlsx (staff): the same price list as the cabinet's Excel upload file."""

import base64
import binascii
import hmac
import logging
import os
import time

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import FileResponse, HttpResponse, HttpResponseNotModified
from django.utils.http import http_date, parse_http_date_safe
from django.views.decorators.http import require_http_methods

from backoffice.core.exceptions import BackofficeError

from .services.feed import feed_path
from .services.fetches import record_fetch
from .services.pricelist_export import build_excel

logger = logging.getLogger("catalog.feed.fetch")

# The price list is data: no script may run in it. A browser's XML viewer draws its tree
# with inline styles and data: images (the fold arrows), which the site-wide policy (nonce
# only) blocks, leaving a run of text; neither can do harm in a file we write ourselves.
FEED_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; "
    "base-uri 'none'"
)


def _authorized(request) -> bool:
    user, password = settings.FEED_AUTH_USER, settings.FEED_AUTH_PASSWORD
    if not user and not password:
        return True
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Basic "):
        return False
    try:
        given_user, _, given_password = (
            base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return False
    return hmac.compare_digest(given_user, user) & hmac.compare_digest(given_password, password)


@require_http_methods(["GET", "HEAD"])
def feed_xml(request):
    started = time.monotonic()
    response = _feed_response(request)
    size = response.get("Content-Length", "0")
    logger.info(
        "feed fetch ip=%s status=%s bytes=%s ms=%.0f ua=%r",
        request.META.get("REMOTE_ADDR", ""),
        response.status_code,
        size if response.status_code == 200 else 0,
        (time.monotonic() - started) * 1000,
        request.META.get("HTTP_USER_AGENT", "")[:200],
    )
    record_fetch(request, response.status_code)
    response["Content-Security-Policy"] = FEED_CSP
    return response


def _feed_response(request):
    if not _authorized(request):
        response = HttpResponse("Authentication required", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Basic realm="Kaspi price list", charset="UTF-8"'
        return response
    path = feed_path()
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        response = HttpResponse(
            "The price list has not been built yet.", status=503, content_type="text/plain"
        )
        response["Retry-After"] = "300"
        return response
    # The file is replaced only when its bytes change (an unchanged rebuild publishes
    # nothing), so its mtime and size name its content. The gzip copy is another
    # representation of it: its own ETag, so a cache never mixes up the two.
    gz_path = _fresh_gzip(request, path, stat)
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}{"-gzip" if gz_path else ""}"'
    last_modified = http_date(stat.st_mtime)
    if_none_match = request.META.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        # Weak comparison (RFC 9110 13.1.2): W/"x" matches "x".
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        not_modified = etag in tags or if_none_match.strip() == "*"
    else:
        since = parse_http_date_safe(request.META.get("HTTP_IF_MODIFIED_SINCE", ""))
        not_modified = since is not None and int(stat.st_mtime) <= since
    if not_modified:
        response = HttpResponseNotModified()
    elif gz_path:
        # FileResponse streams the file; GZipMiddleware is not used, so gzip is done here.
        response = FileResponse(open(gz_path, "rb"), content_type="application/xml; charset=utf-8")
        response["Content-Encoding"] = "gzip"
        response["Content-Length"] = str(gz_path.stat().st_size)
    else:
        response = FileResponse(open(path, "rb"), content_type="application/xml; charset=utf-8")
        response["Content-Length"] = str(stat.st_size)
    response["ETag"] = etag
    response["Last-Modified"] = last_modified
    response["Cache-Control"] = "no-cache"
    response["Vary"] = "Accept-Encoding, Authorization"
    return response


def _fresh_gzip(request, path, stat):
    """The gzip copy's path when the client accepts gzip and the copy is not older than
    the file, else None."""
    if "gzip" not in request.META.get("HTTP_ACCEPT_ENCODING", "").lower():
        return None
    gz_path = path.with_name(path.name + ".gz")
    try:
        fresh = gz_path.stat().st_mtime_ns >= stat.st_mtime_ns
    except FileNotFoundError:
        return None
    return gz_path if fresh else None


@staff_member_required
@require_http_methods(["GET"])
def feed_xlsx(request):
    """The current price list as the cabinet's Excel upload file (staff only)."""
    try:
        export = build_excel()
    except BackofficeError as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    response = HttpResponse(
        export.data,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    response["Content-Disposition"] = 'attachment; filename="kaspi-price-list.xlsx"'
    response["Cache-Control"] = "no-store"
    return response
