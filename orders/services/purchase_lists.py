"""Purchase lists of suppliers without a cart API (issue 18.5): what staff order by hand,
as a printable page and an XLSX file with Russian headers."""

import io

from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.styles import Font

from ..models import SupplierPurchase


def list_rows(purchase: SupplierPurchase) -> list[dict]:
    """One row per line: supplier article, name, quantity, dealer price, line total."""
    rows = []
    for line in purchase.lines or []:
        price = line.get("dealer_price")
        quantity = int(line.get("quantity") or 0)
        rows.append(
            {
                "article": str(line.get("article") or ""),
                "name": str(line.get("name") or ""),
                "quantity": quantity,
                "dealer_price": price,
                "total": price * quantity if isinstance(price, int) else None,
                "order": purchase.order.code,
            }
        )
    return rows


def headers() -> list[str]:
    return [
        _("Supplier article"),
        _("Name"),
        _("Quantity"),
        _("Dealer price, ₸"),
        _("Total, ₸"),
        _("Kaspi order"),
    ]


def list_xlsx(purchase: SupplierPurchase) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = _("Purchase list")[:31]
    sheet.append([f"{purchase.supplier.name}: {_('purchase list')} {purchase.reference}"])
    sheet.append(headers())
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in list_rows(purchase):
        sheet.append(
            [
                row["article"],
                row["name"],
                row["quantity"],
                row["dealer_price"],
                row["total"],
                row["order"],
            ]
        )
    for column, width in zip("ABCDEF", (18, 60, 10, 16, 14, 14), strict=True):
        sheet.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
