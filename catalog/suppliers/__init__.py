"""Supplier adapters (catalog/suppliers/base.py describes the interface).

`get_adapter(supplier)` returns the adapter for a Supplier row: by code first (Al-Style's
API is one of a kind), then by kind (every price-file supplier shares one adapter).
Adapter modules register themselves in `ADAPTERS_BY_CODE` / `ADAPTERS_BY_KIND`.
"""

from .base import NotSupported, OfferPage, OfferRecord, StockPrice, SupplierAdapter

__all__ = [
    "NotSupported",
    "OfferPage",
    "OfferRecord",
    "StockPrice",
    "SupplierAdapter",
    "get_adapter",
    "register",
]

# Dotted paths, imported on first use: the registry costs nothing to import.
ADAPTERS_BY_CODE: dict[str, str] = {"alstyle": "catalog.suppliers.alstyle.AlStyleAdapter"}
ADAPTERS_BY_KIND: dict[str, str] = {"pricefile": "catalog.suppliers.pricefile.PriceFileAdapter"}


def register(*, code: str | None = None, kind: str | None = None, path: str) -> None:
    if code:
        ADAPTERS_BY_CODE[code] = path
    if kind:
        ADAPTERS_BY_KIND[kind] = path


def get_adapter(supplier, **kwargs) -> SupplierAdapter:
    """The adapter for `supplier` (a Supplier row or its code); kwargs go to the adapter
    (e.g. `client=` for tests)."""
    from django.utils.module_loading import import_string

    if isinstance(supplier, str):
        from ..models import Supplier

        supplier = Supplier.objects.get(code=supplier)
    path = ADAPTERS_BY_CODE.get(supplier.code) or ADAPTERS_BY_KIND.get(supplier.kind)
    if path is None:
        raise NotSupported(f"no adapter for supplier {supplier.code} ({supplier.kind})")
    return import_string(path)(supplier, **kwargs)
