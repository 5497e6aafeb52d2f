"""What the catalog needs to know about sales, answered by the app above it.

The catalog sits below orders and imports nothing of it (tests/test_layers.py). A few
catalog decisions still depend on sales: which products are hot for the stock sync, which
sell best for the market read, which Kaspi order lines can name a product's card. Orders
answers these by registering its functions here when the app is ready
(`orders.apps.OrdersConfig.ready`); without it the catalog sees no sales at all.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass


def _nothing(*_args, **_kwargs):
    return []


@dataclass
class Demand:
    # Ids of products in an order that is not final yet (a list or a values() queryset).
    open_order_products: Callable[[], Iterable[int]] = _nothing
    # Ids of the products with the most units sold over the last `days`, best first.
    best_sellers: Callable[..., Iterable[int]] = _nothing
    # (product, Kaspi order-entry id) of sold products not linked to a card yet, one each.
    sold_unlinked: Callable[[], Iterable[tuple]] = _nothing


demand = Demand()


def register(**answers: Callable) -> None:
    """Set some of Demand's answers (called once by the app above the catalog)."""
    for name, function in answers.items():
        if not hasattr(demand, name):
            raise TypeError(f"unknown demand answer {name!r}")
        setattr(demand, name, function)
