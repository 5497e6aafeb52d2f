"""Kaspi content API: classification and product-card import (docs/kaspi-product-import.md).

Same token and browser User-Agent as the orders API, but base `…/shop/api` (no /v2),
`Accept: application/json`, and the import body sent as `text/plain` (Kaspi answers 500 to
`application/json` there). Category and attribute codes hold spaces and `*`: the query is
encoded with %20, not `+`.
"""

import json
from urllib.parse import quote, urlencode

from django.conf import settings
from django.utils.translation import gettext

from backoffice.core.exceptions import ExternalServiceError
from backoffice.core.http import HttpClient, error_title, json_body, status_words

SERVICE = "Kaspi content"


class KaspiContentClient(HttpClient):
    def __init__(self, *, token: str | None = None, base_url: str | None = None, **kwargs):
        token = settings.KASPI_SHOP_TOKEN if token is None else token
        if not token:
            raise ExternalServiceError(SERVICE, gettext("no API token: set KASPI_SHOP_TOKEN"))
        super().__init__(
            service=SERVICE,
            base_url=base_url or settings.KASPI_CONTENT_API_URL,
            headers={
                "X-Auth-Token": token,
                "Accept": "application/json",
                "User-Agent": settings.HTTP_USER_AGENT or settings.KASPI_USER_AGENT,
            },
            **kwargs,
        )

    def error_for(self, response):
        status, title = response.status_code, error_title(response)
        if status in (401, 403):
            message = "the token was rejected: KASPI_SHOP_TOKEN is wrong or API access is off"
        else:
            message = title or status_words(response)
        return ExternalServiceError(SERVICE, message, status=status, title=title)

    def _get(self, path: str, **params):
        query = urlencode(params, quote_via=quote) if params else ""
        return self.get_json(path + (f"?{query}" if query else ""))

    def _list(self, data, what: str) -> list[dict]:
        if not isinstance(data, list):
            raise ExternalServiceError(SERVICE, f"{what}: expected a list")
        return [item for item in data if isinstance(item, dict)]

    def categories(self) -> list[dict]:
        return self._list(self._get("products/classification/categories"), "categories")

    def attributes(self, category: str) -> list[dict]:
        return self._list(self._get("products/classification/attributes", c=category), "attributes")

    def attribute_values(self, category: str, attribute: str) -> list[dict]:
        return self._list(
            self._get("products/classification/attribute/values", c=category, a=attribute),
            "attribute values",
        )

    def schema(self) -> dict:
        data = self._get("products/import/schema")
        if not isinstance(data, dict):
            raise ExternalServiceError(SERVICE, "import schema: expected an object")
        return data

    def import_products(self, products: list[dict]) -> dict:
        """POST the batch (never retried: a retry could queue it twice)."""
        body = json.dumps(products, ensure_ascii=True)
        response = self.request(
            "POST", "products/import", data=body.encode(), headers={"Content-Type": "text/plain"}
        )
        return json_body(response)

    def import_status(self, code: str) -> dict:
        return self._get("products/import", i=code)

    def import_result(self, code: str) -> dict:
        return self._get("products/import/result", i=code)
