"""Kaspi QR partner API client, scheme 1 (docs/kaspi-qr-payments.md, part A).

Every call carries `Api-Key` and a fresh `X-Request-ID`. Answers are an envelope
`{StatusCode, Message, Data}`: a non-zero StatusCode is a business error even with HTTP
200, reported with its documented meaning. A purchase is created by POST, which is never
retried (a retry would create a second purchase). Status lives under v02.
"""

import uuid

from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from backoffice.core.exceptions import ExternalServiceError
from backoffice.core.http import HttpClient, json_body, status_words

SERVICE = "Kaspi QR"

ERROR_MEANINGS = {
    -10000: _("the API key or client certificate was not accepted"),
    -1501: _("no device with this id: register it again (kaspi_qr_register)"),
    -1502: _("the device is inactive (disabled or deleted): register it again"),
    -1503: _("the device is linked to another trade point"),
    -1601: _("purchase not found"),
    -14000002: _("the organisation has no trade points: create one in the Kaspi Pay app"),
    -99000001: _("purchase with this id not found"),
    -99000002: _("trade point not found"),
    -99000003: _("the purchase's trade point does not match this device"),
    -99000005: _("refund amount exceeds the purchase amount"),
    -99000006: _("refund failed; retry, and contact Kaspi if it repeats"),
    -99000011: _("the purchase cannot be refunded in its current status"),
    -99000020: _("a partial refund is not possible"),
    990000018: _("the trade point is disabled"),
    990000026: _("the trade point does not accept QR payments"),
    990000028: _("invalid operation amount"),
    990000033: _("no payment methods available"),
    -999: _("service temporarily unavailable; try again later"),
}


def business_error(code, message, *, status: int | None = None) -> ExternalServiceError:
    """A non-zero StatusCode in plain words: its documented meaning, and Kaspi's own
    `Message` kept verbatim beside it (the title)."""
    message = str(message or "").strip()
    meaning = ERROR_MEANINGS.get(code)
    text = gettext("code %(code)s: %(meaning)s") % {
        "code": code,
        "meaning": meaning if meaning is not None else (message or gettext("business error")),
    }
    return ExternalServiceError(SERVICE, text, status=status, title=message[:500])


class KaspiQrClient(HttpClient):
    def __init__(self, *, api_key: str | None = None, base_url: str | None = None, **kwargs):
        api_key = settings.KASPI_QR_API_KEY if api_key is None else api_key
        if not api_key:
            raise ExternalServiceError(SERVICE, "no API key: set KASPI_QR_API_KEY")
        super().__init__(
            service=SERVICE,
            base_url=base_url or settings.KASPI_QR_API_URL,
            headers={"Api-Key": api_key, "Content-Type": "application/json"},
            **kwargs,
        )

    def error_for(self, response) -> ExternalServiceError:
        """HTTP errors: 401 names the key; an envelope's StatusCode/Message is kept."""
        try:
            envelope = json_body(response)
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):
            envelope = {}
        message = str(envelope.get("Message") or "").strip()
        if response.status_code == 401:
            return ExternalServiceError(
                SERVICE,
                gettext(
                    "the API key is wrong or not activated: check KASPI_QR_API_KEY "
                    "(a key is activated by Kaspi together with the partner agreement)"
                ),
                status=401,
                title=message[:500],
            )
        code = envelope.get("StatusCode")
        if isinstance(code, int) and code != 0:
            return business_error(code, message, status=response.status_code)
        return ExternalServiceError(
            SERVICE,
            message or status_words(response),
            status=response.status_code,
            title=message[:500],
        )

    def call(self, method: str, path: str, **kwargs) -> dict | list:
        headers = {"X-Request-ID": str(uuid.uuid4()), **kwargs.pop("headers", {})}
        response = self.request(method, path, headers=headers, **kwargs)
        try:
            envelope = json_body(response)
        except ValueError:
            raise ExternalServiceError(SERVICE, gettext("the answer is not JSON")) from None
        if not isinstance(envelope, dict) or "StatusCode" not in envelope:
            raise ExternalServiceError(SERVICE, gettext("the answer has no StatusCode envelope"))
        code = envelope.get("StatusCode")
        if code != 0:
            raise business_error(code, envelope.get("Message"), status=None)
        return envelope.get("Data") or {}

    def status_url(self, qr_payment_id: str) -> str:
        return self.url("payment/status/" + qr_payment_id).replace("/v01/", "/v02/")

    # --- Methods ---------------------------------------------------------------------------

    def trade_points(self) -> list[dict]:
        data = self.call("GET", "partner/tradepoints")
        return data if isinstance(data, list) else []

    def register_device(self, *, device_id: str, trade_point_id: int | str) -> str:
        """`trade_point_id` goes out exactly as the trade-point list returned it (a number)."""
        data = self.call(
            "POST", "device/register", json={"DeviceId": device_id, "TradePointId": trade_point_id}
        )
        return str(data.get("DeviceToken") or "")

    def create(self, *, device_token: str, amount: int, external_id: str, link: bool) -> dict:
        return self.call(
            "POST",
            "qr/create-link" if link else "qr/create",
            json={"DeviceToken": device_token, "Amount": amount, "ExternalId": external_id},
        )

    def status(self, qr_payment_id: str) -> dict:
        return self.call("GET", self.status_url(qr_payment_id))
