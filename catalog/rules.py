"""Two rules several services need, each defined here once (issue 18.9).

- A supplier marks "price on request" with a price of 1 tenge or less (Al-Style's price1 of
  0 or 1, docs/alstyle-api.md): such a price is no price at all.
- A product is *offerable* (Kaspi may sell it now, available="yes" in the price list) when
  it is listed and enabled on Kaspi, has a Kaspi price, is not frozen below cost, and has
  free stock (units not reserved by open Kaspi orders) or a pre-order period.
  `catalog.models.OFFERABLE` is this rule as a query; `is_offerable` is the same rule for one
  row already in memory (the price-list writer). tests/catalog/test_rules.py keeps the two
  equal.

Plain Python: imported by the clients, the models and the services alike.
"""

NO_PRICE_AT_OR_BELOW = 1


def is_price_on_request(price) -> bool:
    """True for a supplier price that means "ask us" (missing, 0 or 1)."""
    return price is None or price <= NO_PRICE_AT_OR_BELOW


def has_price(price) -> bool:
    """True for a real price (above 1 tenge)."""
    return not is_price_on_request(price)


def is_offerable(
    *,
    listed: bool,
    kaspi_enabled: bool,
    price_on_request: bool,
    kaspi_price,
    below_cost: bool,
    available: bool,
    quantity: int,
    reserved_quantity: int,
    preorder_days: int,
) -> bool:
    """The OFFERABLE rule for one product's fields."""
    return bool(
        listed
        and kaspi_enabled
        and not price_on_request
        and has_price(kaspi_price)
        and not below_cost
        and ((available and quantity > reserved_quantity) or preorder_days > 0)
    )
