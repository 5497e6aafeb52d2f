"""Per-city prices in the price list (docs/kaspi-price-list.md, docs/kaspi-offers.md §10).

An offer carries either `<price>` or `<cityprices>`, never both. When the repricer left a
product's prices different by city, `<cityprices>` lists EVERY city we sell in
(KASPI_CITIES; a city without its own price gets the home price), since what Kaspi does
with a city left out is unknown; otherwise the one `<price>`.
"""

from django.conf import settings

from ..feedxml import escape
from ..models import CityPrice


def applied_city_prices() -> dict[int, dict[str, int]]:
    """product id → {city: price} of the repricer's applied prices (loaded once a build)."""
    cities = set(settings.KASPI_CITIES)
    out: dict[int, dict[str, int]] = {}
    for product_id, city, price in CityPrice.objects.values_list("product_id", "city", "price"):
        if city in cities:
            out.setdefault(product_id, {})[city] = price
    return out


def offer_city_prices(price: int, applied: dict[str, int] | None) -> dict[str, int] | None:
    """Every city's price when they differ, else None (write `<price>`)."""
    if not applied or len(settings.KASPI_CITIES) < 2:
        return None
    if applied.get(settings.KASPI_HOME_CITY) != price:
        # The home price moved since the repricer applied these (a manual price, a rule
        # change): its other cities' prices are stale, so publish the one price.
        return None
    prices = {city: int(applied.get(city, price)) for city in settings.KASPI_CITIES}
    return prices if len(set(prices.values())) > 1 else None


def price_xml(price: int, city_prices: dict[str, int] | None) -> str:
    """`<price>` or `<cityprices>` of an offer (values checked by the writer)."""
    if not city_prices:
        return f"<price>{price}</price>"
    cities = "".join(
        f'<cityprice cityId="{escape(city, attribute=True)}">{value}</cityprice>'
        for city, value in city_prices.items()
    )
    return f"<cityprices>{cities}</cityprices>"
