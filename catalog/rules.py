"""Rules several services need, each defined once (issue 18.9).

- A supplier marks "price on request" with a price of 1 tenge or less (Al-Style's price1 of
  0 or 1, docs/alstyle-api.md): such a price is no price at all.
- "Offerable" (Kaspi may sell it now: available="yes" in the price list) is one query,
  `catalog.models.OFFERABLE`, which the price-list writer evaluates in the database for
  each row; it uses NO_PRICE_AT_OR_BELOW from here.

Plain Python: imported by the clients, the models and the services alike.
"""

NO_PRICE_AT_OR_BELOW = 1


def is_price_on_request(price) -> bool:
    """True for a supplier price that means "ask us" (missing, 0 or 1)."""
    return price is None or price <= NO_PRICE_AT_OR_BELOW


def has_price(price) -> bool:
    """True for a real price (above 1 tenge)."""
    return not is_price_on_request(price)
