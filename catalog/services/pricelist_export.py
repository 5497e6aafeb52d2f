"""Kaspi Excel price list (the cabinet's manual upload format) from our published file.

The manual fallback when Kaspi's URL pull is broken: staff download `/feed.xlsx` and upload
it in the cabinet. The format (guide q3348, docs/kaspi-price-list.md) is one sheet with
SKU, model, brand, price, PP1…PP5, preorder: one price and five pickup points. Offers with
city prices get the home city's price (KASPI_HOME_CITY_ID), and the admin page says so;
more than five pickup points cannot be written, so the export refuses with the list.

Built from the published XML (read back with catalog/pricelists.py), so the Excel file says
exactly what Kaspi downloads.
"""

import io
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext as _

from backoffice.core.exceptions import BackofficeError

from ..pricelists import EXCEL_POINTS, PriceListReader
from .feed import feed_path

HEADER = ("SKU", "model", "brand", "price")


class ExcelExportError(BackofficeError):
    pass


@dataclass
class ExcelExport:
    data: bytes = b""
    offers: int = 0
    stores: list[str] = field(default_factory=list)
    city_price_offers: int = 0  # offers whose home-city price was written
    home_city: str = ""


def export_stores(path=None) -> list[str]:
    """The pickup points of the published file, in order (one streamed pass)."""
    reader = PriceListReader(path or _published())
    for _offer in reader:
        pass
    return reader.store_ids


def _published():
    path = feed_path()
    if not path.exists():
        raise ExcelExportError(_("the price list has not been built yet: build it first"))
    return path


def point_columns(stores: list[str]) -> list[str]:
    """Column headers of the five point columns: our store ids (PP1, 123_PP2…), then the
    format's unused PPn names."""
    if len(stores) > EXCEL_POINTS:
        raise ExcelExportError(
            _(
                "the Excel price list has %(max)d pickup-point columns, but our price list "
                "uses %(n)d points: %(stores)s. Upload the XML instead, or sell from at most "
                "five points"
            )
            % {"max": EXCEL_POINTS, "n": len(stores), "stores": ", ".join(stores)}
        )
    names = list(stores)
    number = 1
    while len(names) < EXCEL_POINTS:
        if f"PP{number}" not in names:
            names.append(f"PP{number}")
        number += 1
    return names


def build_excel(*, path=None) -> ExcelExport:
    import openpyxl

    path = path or _published()
    stores = export_stores(path)
    columns = point_columns(stores)
    home = settings.KASPI_HOME_CITY_ID
    export = ExcelExport(stores=stores, home_city=home)
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Price list")
    sheet.append([*HEADER, *columns, "preorder"])
    for offer in PriceListReader(path):
        points = {point.store_id: point for point in offer.availabilities}
        cells = []
        for store in columns:
            point = points.get(store)
            if point is None:
                cells.append(None)
            elif not point.available:
                cells.append("no")
            else:  # a pre-order is available with stock 0: "yes", not 0 (which reads "no")
                cells.append(point.stock if point.stock else "yes")
        preorder = max((point.preorder or 0 for point in offer.availabilities), default=0)
        if offer.price is None and offer.city_prices:
            export.city_price_offers += 1
        sheet.append(
            [offer.sku, offer.model, offer.brand, offer.price_in(home), *cells, preorder or None]
        )
        export.offers += 1
    out = io.BytesIO()
    workbook.save(out)
    export.data = out.getvalue()
    return export
