"""Kaspi QR partner API client, scheme 1 (docs/kaspi-qr-payments.md, part A).

Every call carries `Api-Key` and a fresh `X-Request-ID`. Answers are an envelope
`{StatusCode, Message, Data}`: a non-zero StatusCode is a business error even with HTTP
200, reported with its documented meaning. A purchase is created by POST, which is never
retried (a retry would create a second purchase). Status lives under v02.
"""

import uuid

from django.conf import settings

from backoffice.exceptions import ExternalServiceError
from backoffice.http import HttpClient

SERVICE = "Kaspi QR"

ERROR_MEANINGS = {
    -10000: "the API key or client certificate was not accepted",
    -1501: "no device with this id: register it again (kaspi_qr_register)",
    -1502: "the device is inactive (disabled or deleted): register it again",
    -1503: "the device is linked to another trade point",
    -1601: "purchase not found",
    -14000002: "the organisation has no trade points: create one in the Kaspi Pay app",
    -99000001: "purchase with this id not found",
    -99000002: "trade point not found",
    -99000003: "the purchase's trade point does not match this device",
    -99000005: "refund amount exceeds the purchase amount",
    -99000006: "refund failed; retry, and contact Kaspi if it repeats",
    -99000011: "the purchase cannot be refunded in its current status",
    -99000020: "a partial refund is not possible",
    990000018: "the trade point is disabled",
    990000026: "the trade point does not accept QR payments",
    990000028: "invalid operation amount",
    990000033: "no payment methods available",
    -999: "service temporarily unavailable; try again later",
}


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

    def call(self, method: str, path: str, **kwargs) -> dict | list:
        headers = {"X-Request-ID": str(uuid.uuid4()), **kwargs.pop("headers", {})}
        response = self.request(method, path, headers=headers, **kwargs)
        try:
            envelope = response.json()
        except ValueError:
            raise ExternalServiceError(SERVICE, "the answer is not JSON") from None
        if not isinstance(envelope, dict) or "StatusCode" not in envelope:
            raise ExternalServiceError(SERVICE, "the answer has no StatusCode envelope")
        code = envelope.get("StatusCode")
        if code != 0:
            meaning = ERROR_MEANINGS.get(code, envelope.get("Message") or "business error")
            raise ExternalServiceError(
                SERVICE, f"code {code}: {meaning}", title=str(envelope.get("Message") or "")
            )
        return envelope.get("Data") or {}

    def status_url(self, qr_payment_id: str) -> str:
        return self.url("payment/status/" + qr_payment_id).replace("/v01/", "/v02/")

    # --- Methods ---------------------------------------------------------------------------

    def trade_points(self) -> list[dict]:
        data = self.call("GET", "partner/tradepoints")
        return data if isinstance(data, list) else []

    def register_device(self, *, device_id: str, trade_point_id: str) -> str:
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
