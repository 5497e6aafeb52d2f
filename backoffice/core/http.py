"""The one HTTP client every external API goes through.

Each call has a connect and a read timeout. Idempotent requests (GET, HEAD, OPTIONS, PUT,
DELETE) are retried with exponential backoff and jitter on connection errors, read
timeouts, truncated JSON answers (`expect_json`) and on 429/502/503/504, honouring
`Retry-After`; a POST is never retried unless its caller says it is safe. Every attempt,
first try or retry, first calls `before_attempt` (a client's rate limiter takes its slot
there, so a retry never skips the limiter). Other 4xx answers are never retried, except
where a client adds its own rule (Al-Style's 403 "too many requests"). Every call is
logged with the URL's secrets masked.

We loop ourselves instead of mounting urllib3's `Retry` so that a client can add a status
rule with its own pause, every attempt is logged, and tests can replace the sleep.
"""

import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from backoffice.core.exceptions import ExternalServiceError, ServiceTimeout
from backoffice.core.logging import mask_text

logger = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryRule:
    """An extra retry rule a client adds: retry `status` after `pause` seconds, `tries` times."""

    status: int
    pause: float
    tries: int
    when: Callable[[requests.Response], bool] = field(default=lambda response: True)


def build_session(*, user_agent: str | None = None) -> requests.Session:
    """A `requests.Session` with our User-Agent; clients share one per API."""
    session = requests.Session()
    session.headers["User-Agent"] = user_agent or settings.HTTP_USER_AGENT
    return session


def retry_after_seconds(response: requests.Response) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


_STATUS_WORDS = {
    400: gettext_lazy("the request was refused as invalid"),
    401: gettext_lazy("the token was refused"),
    403: gettext_lazy("access denied"),
    404: gettext_lazy("not found"),
    409: gettext_lazy("conflicts with the current state"),
    422: gettext_lazy("the data was refused"),
    429: gettext_lazy("too many requests"),
    500: gettext_lazy("internal error of the service"),
    502: gettext_lazy("the service is temporarily unavailable"),
    503: gettext_lazy("the service is temporarily unavailable"),
    504: gettext_lazy("the service did not answer in time"),
}


def status_words(response: requests.Response) -> str:
    """What the answer's HTTP status means, in the staff's language, for an error without
    the API's own text (the server's reason phrase, «Service Unavailable», is English)."""
    status = response.status_code
    words = _STATUS_WORDS.get(status) or (_STATUS_WORDS[500] if status >= 500 else None)
    if words is not None:
        return str(words)
    return response.reason or _("request failed")


def error_title(response: requests.Response) -> str:
    """The API's own error text: JSON:API `errors[0].title`, or `message`/`error`/`detail`."""
    try:
        data = json_body(response)
    except ValueError:
        return ""
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return str(first.get("title") or first.get("detail") or "")[:500]
        for key in ("message", "error", "detail", "title"):
            if isinstance(data.get(key), str):
                return data[key][:500]
    return ""


def json_body(response: requests.Response) -> Any:
    """The JSON of `response`. JSON is UTF-8 (RFC 8259): without a charset in its
    Content-Type the bytes are decoded as such (json.loads detects UTF-8/16/32), not as the
    ISO-8859-1 that requests assumes for any text/* type, so a PHP answer sent as
    `text/html` keeps its Cyrillic. A declared charset is honoured. Raises ValueError."""
    if "charset=" in response.headers.get("Content-Type", "").lower():
        return response.json()
    return json.loads(response.content)


class HttpClient:
    """A base URL, a service name and the retry/timeout/logging policy around a session."""

    def __init__(
        self,
        *,
        service: str,
        base_url: str,
        session: requests.Session | None = None,
        headers: dict[str, str] | None = None,
        retries: int | None = None,
        backoff_factor: float | None = None,
        extra_rules: Iterable[RetryRule] = (),
        timeout: tuple[float, float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        before_attempt: Callable[[], None] | None = None,
    ):
        self.service = service
        self.base_url = base_url
        self.session = session or build_session()
        if headers:
            self.session.headers.update(headers)
        self.retries = settings.HTTP_RETRIES if retries is None else retries
        self.backoff_factor = (
            settings.HTTP_BACKOFF_FACTOR if backoff_factor is None else backoff_factor
        )
        self.extra_rules = {rule.status: rule for rule in extra_rules}
        self.timeout = timeout or (settings.HTTP_CONNECT_TIMEOUT, settings.HTTP_READ_TIMEOUT)
        self.sleep = sleep
        self.before_attempt = before_attempt

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped at HTTP_BACKOFF_MAX."""
        ceiling = min(settings.HTTP_BACKOFF_MAX, self.backoff_factor * (2**attempt))
        return random.uniform(ceiling / 2, ceiling) if ceiling > 0 else 0.0  # noqa: S311

    def request(
        self,
        method: str,
        path: str,
        *,
        retry_unsafe: bool = False,
        idempotent: bool | None = None,
        raise_for_status: bool = True,
        expect_json: bool = False,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request with the retry policy; raise ExternalServiceError on failure.

        `idempotent=False` marks a GET that changes something (a cart "add"): it is never
        resent after it may have reached the server (timeouts, 5xx, cut-off answers).
        With `expect_json`, a 2xx answer whose body is not JSON (cut off mid-way, an error
        page) is retried like a 5xx when the request may be retried, and the parsed body is
        left on `response.parsed_json`.
        """
        method = method.upper()
        url = self.url(path)
        kwargs.setdefault("timeout", self.timeout)
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        may_retry = safe or retry_unsafe
        # The URL as sent (query included) is what we log, masked.
        log_url = requests.Request(method, url, params=kwargs.get("params")).prepare().url
        attempt = 0
        rule_tries: dict[int, int] = {}
        while True:
            if self.before_attempt is not None:
                self.before_attempt()
            started = time.monotonic()
            try:
                response = self.session.request(method, url, **kwargs)
            except requests.Timeout as exc:
                self._log(method, log_url, None, started, note=type(exc).__name__)
                # Connect timeouts never reached the server; read timeouts of idempotent
                # requests are safe to resend too (a POST only when its caller says so).
                if may_retry and attempt < self.retries:
                    self.sleep(self.backoff(attempt))
                    attempt += 1
                    continue
                waited = self._timeout_text(kwargs["timeout"])
                raise ServiceTimeout(
                    self.service,
                    _(
                        "no answer within %(timeout)s; the service is slow or unreachable, "
                        "try again later"
                    )
                    % {"timeout": waited},
                    timeout_text=waited,
                ) from None
            except requests.ConnectionError as exc:
                self._log(method, log_url, None, started, note=type(exc).__name__)
                if may_retry and attempt < self.retries:
                    self.sleep(self.backoff(attempt))
                    attempt += 1
                    continue
                raise ExternalServiceError(
                    self.service, _("could not connect; check the network and the API address")
                ) from None
            except requests.RequestException as exc:
                self._log(method, log_url, None, started, note=type(exc).__name__)
                raise ExternalServiceError(
                    self.service, mask_text(_("request failed: %(error)s") % {"error": exc})
                ) from None

            self._log(method, log_url, response.status_code, started)
            status = response.status_code
            rule = self.extra_rules.get(status)
            if rule and rule.when(response) and rule_tries.get(status, 0) < rule.tries:
                rule_tries[status] = rule_tries.get(status, 0) + 1
                wait = retry_after_seconds(response)
                self.sleep(rule.pause if wait is None else wait)
                continue
            if status in RETRY_STATUSES and may_retry and attempt < self.retries:
                wait = retry_after_seconds(response)
                self.sleep(self.backoff(attempt) if wait is None else min(wait, 300.0))
                attempt += 1
                continue
            if raise_for_status and status >= 400:
                raise self.error_for(response)
            if expect_json and 200 <= status < 300:
                try:
                    response.parsed_json = json_body(response)
                except ValueError:
                    self._log(method, log_url, status, started, note="not JSON / truncated")
                    if may_retry and attempt < self.retries:
                        self.sleep(self.backoff(attempt))
                        attempt += 1
                        continue
                    raise ExternalServiceError(
                        self.service,
                        _(
                            "the answer is not JSON or was cut off (the API may have changed, "
                            "sent an error page or dropped the connection)"
                        ),
                        status=status,
                    ) from None
            return response

    def error_for(self, response: requests.Response) -> ExternalServiceError:
        """An ExternalServiceError for a failed response; clients override for plain words."""
        title = error_title(response)
        return ExternalServiceError(
            self.service,
            title or status_words(response),
            status=response.status_code,
            title=title,
        )

    def get_json(self, path: str, **kwargs: Any) -> Any:
        """GET and parse JSON; a truncated or non-JSON 2xx body is retried (bounded)."""
        response = self.request("GET", path, expect_json=True, **kwargs)
        if hasattr(response, "parsed_json"):
            return response.parsed_json
        try:  # raise_for_status=False and a 4xx/5xx: parse what there is
            return json_body(response)
        except ValueError:
            raise ExternalServiceError(
                self.service,
                _("the answer is not JSON (the API may have changed or sent an error page)"),
                status=response.status_code,
            ) from None

    def _timeout_text(self, timeout: Any) -> str:
        if isinstance(timeout, tuple):
            return _("%(connect)s s to connect / %(read)s s to read") % {
                "connect": f"{timeout[0]:g}",
                "read": f"{timeout[1]:g}",
            }
        return _("%(seconds)s s") % {"seconds": f"{timeout:g}"}

    def _log(self, method: str, url: str, status: int | None, started: float, note: str = ""):
        logger.info(
            "%s %s %s %s %.0f ms%s",
            self.service,
            method,
            mask_text(url),
            status if status is not None else "-",
            (time.monotonic() - started) * 1000,
            f" {note}" if note else "",
        )
