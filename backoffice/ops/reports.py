"""Read-only selectors for the reports page, its CSV and XLSX exports, and SVG charts."""

import csv
import io
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, F, Max, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext_lazy as _

from backoffice.core.formats import group_digits

NOT_SOLD = ["CANCELLED", "CANCELLING", "RETURNED"]


def _sold_entries(since, until):
    from orders.models import OrderEntry

    return OrderEntry.objects.filter(
        order__channel="kaspi",
        order__creation_date__gte=since,
        order__creation_date__lt=until,
    ).exclude(order__status__in=NOT_SOLD)


def daily_orders(days: int = 30) -> list[dict]:
    """Orders and revenue per day (local dates), every day present (zeros included)."""
    from orders.models import Order

    today = timezone.localdate()
    start = today - timedelta(days=days - 1)
    rows = (
        Order.objects.filter(channel="kaspi", creation_date__date__gte=start)
        .exclude(status__in=NOT_SOLD)
        .annotate(day=TruncDate("creation_date"))
        .values("day")
        .annotate(orders=Count("id"), revenue=Sum("total_price"))
    )
    by_day = {row["day"]: row for row in rows}
    return [
        {
            "day": start + timedelta(days=n),
            "orders": by_day.get(start + timedelta(days=n), {}).get("orders", 0),
            "revenue": by_day.get(start + timedelta(days=n), {}).get("revenue") or 0,
        }
        for n in range(days)
    ]


def sales_by(group: str, since, until) -> list[dict]:
    """Revenue and units by day, category, brand or product between two moments (a
    product's row also has its name)."""
    field = {
        "day": None,
        "category": "product__category__name",
        "brand": "product__brand__name",
        "product": "offer_code",
    }[group]
    entries = _sold_entries(since, until)
    if field is None:
        entries = entries.annotate(key=TruncDate("order__creation_date"))
    else:
        entries = entries.annotate(key=F(field))
    extra = (
        {"name": Max("name"), "product_name": Max("product__name")} if group == "product" else {}
    )
    rows = entries.values("key").annotate(
        units=Sum("quantity"), revenue=Sum("total_price"), **extra
    )
    result = []
    for row in rows:
        item = {"key": row["key"] or "—", "units": row["units"], "revenue": row["revenue"] or 0}
        if group == "product":
            item["name"] = row["product_name"] or row["name"] or ""
        result.append(item)
    return sorted(
        result,
        key=lambda row: (-row["revenue"], str(row["key"])) if field else (str(row["key"]),),
    )


def margin_report(limit: int | None = None) -> list[dict]:
    """Kaspi price against the supplier's dealer price, thinnest margins first."""
    from catalog.models import Product

    rows = []
    products = (
        Product.objects.filter(kaspi_price__isnull=False, price1__gt=1)
        .select_related("brand", "category")
        .only("sku", "name", "kaspi_price", "price1", "brand__name", "category__name")
    )
    for p in products.iterator(chunk_size=2000):
        margin = p.kaspi_price - p.price1
        rows.append(
            {
                "sku": p.sku,
                "name": p.name[:120],
                "category": p.category.name if p.category_id else "",
                "brand": p.brand.name if p.brand_id else "",
                "dealer_price": p.price1,
                "kaspi_price": p.kaspi_price,
                "margin": margin,
                "margin_pct": round(margin * 100 / p.price1, 1),
            }
        )
    rows.sort(key=lambda row: row["margin_pct"])
    return rows[:limit] if limit else rows


def sold_but_unavailable(days: int = 30) -> list[dict]:
    """Products sold on Kaspi recently that the supplier no longer has."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        _sold_entries(since, timezone.now())
        .filter(product__isnull=False, product__available=False)
        .values("product__sku", "product__name")
        .annotate(units=Sum("quantity"))
        .order_by("-units")
    )
    return [
        {"sku": r["product__sku"], "name": r["product__name"], "units": r["units"]} for r in rows
    ]


def _nice_top(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^n at or above value: a scale that reads easily."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power + 1e-12:
            return step * power
    return 10 * power


def _tick(value: float) -> str:
    if value >= 1000 or value == int(value):
        return group_digits(int(round(value)))
    return f"{value:g}".replace(".", ",")


def series_svg(
    values: list[float],
    labels: list[str],
    *,
    kind: str = "bar",
    unit: str = "",
    min_top: float = 1,
    highlight: list[bool] | None = None,
    width: int = 720,
    height: int = 200,
    title: str = "",
) -> str:
    """A chart as inline SVG (no JavaScript, no CDN): a y axis from 0 with round ticks, a
    few dates under the x axis, a tooltip on every point.

    `kind="line"` for levels (offers on Kaspi: a flat series is a flat line), "bar" for
    amounts per period. The scale reaches at least `min_top`, so one tiny value (a 0.001 s
    failed run) is not drawn full height. `highlight` marks points (failed runs) in red."""
    left, right, top_pad, bottom = 64, 12, 22, 30
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    numbers = [float(v or 0) for v in values]
    highest = max([*numbers, min_top, 0])
    top = _nice_top(highest)
    if all(v == int(v) for v in numbers) and highest <= 20:
        top = max(4, math.ceil(highest / 4) * 4)  # small counts: whole-number ticks
    n = max(len(numbers), 1)
    y = lambda v: top_pad + plot_h - (v / top) * plot_h  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" font-size="11" '
        'font-family="sans-serif">'
    ]
    for i in range(5):  # grid lines and y ticks
        value = top * i / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="{"#888" if i == 0 else "#ddd"}" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" '
            f'fill="#555">{escape(_tick(value))}</text>'
        )
    if unit:
        parts.append(
            f'<text x="{left - 6}" y="10" text-anchor="end" fill="#555">{escape(unit)}</text>'
        )
    if not numbers:
        parts.append(
            f'<text x="{left + plot_w / 2}" y="{top_pad + plot_h / 2}" text-anchor="middle" '
            f'fill="#777">{escape(str(_("no data yet")))}</text></svg>'
        )
        return "".join(parts)
    slot = plot_w / n
    marks = highlight or [False] * n
    points = []
    for i, (value, label) in enumerate(zip(numbers, labels, strict=True)):
        tip = f"{label}: {_tick(value)} {unit}".strip()
        colour = "#ba2121" if marks[i] else "#417690"
        if kind == "line":
            cx = left + slot * (i + 0.5)
            points.append(f"{cx:.1f},{y(value):.1f}")
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{y(value):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(tip)}</title></circle>"
            )
        else:
            h = max((value / top) * plot_h, 1 if value else 0)
            parts.append(
                f'<rect x="{left + slot * i + 1:.1f}" y="{top_pad + plot_h - h:.1f}" '
                f'width="{max(slot - 2, 1):.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(tip)}</title></rect>"
            )
    if kind == "line" and len(points) > 1:
        parts.insert(
            6,
            f'<polyline points="{" ".join(points)}" fill="none" stroke="#417690" '
            'stroke-width="2"/>',
        )
    step = max(1, math.ceil(n / 6))  # at most ~7 dates under the axis
    for i in range(0, n, step):
        parts.append(
            f'<text x="{left + slot * (i + 0.5):.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle" fill="#555">{escape(labels[i])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# Column headers of the exports, in the staff's language.
COLUMNS = {
    "key": _("group"),
    "day": _("day"),
    "category": _("category"),
    "brand": _("brand"),
    "product": _("SKU"),
    "sku": _("SKU"),
    "name": _("name"),
    "units": _("units"),
    "revenue": _("revenue, tenge"),
    "dealer_price": _("dealer price, tenge"),
    "kaspi_price": _("Kaspi price, tenge"),
    "margin": _("margin, tenge"),
    "margin_pct": _("margin, %"),
}


def _headers(rows: list[dict], key_label: str | None) -> list[str]:
    return [
        str(key_label if field == "key" and key_label else COLUMNS.get(field, field))
        for field in rows[0]
    ]


def to_csv(rows: list[dict], *, key_label: str | None = None) -> bytes:
    """CSV that Russian Excel opens as it is: UTF-8 with a BOM, ";" between fields, a
    decimal comma, Russian headers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    if rows:
        writer.writerow(_headers(rows, key_label))
        for row in rows:
            writer.writerow(
                [
                    value.strftime("%d.%m.%Y")
                    if isinstance(value, date)
                    else str(value).replace(".", ",")
                    if isinstance(value, float | Decimal)
                    else value
                    for value in row.values()
                ]
            )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(rows: list[dict], *, title: str, key_label: str | None = None) -> bytes:
    """The same table as an Excel workbook (numbers stay numbers, dates stay dates)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    if rows:
        sheet.append(_headers(rows, key_label))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(list(row.values()))
        for column, field in zip(sheet.columns, rows[0], strict=True):
            width = max(len(str(c.value or "")) for c in column)
            sheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, 10), 60)
            if field in ("revenue", "dealer_price", "kaspi_price", "margin"):
                for c in column[1:]:
                    c.number_format = "#,##0"  # Excel shows its own separator: a space in Russian
            if field in ("key", "day") and rows and isinstance(rows[0][field], date):
                for c in column[1:]:
                    c.number_format = "DD.MM.YYYY"
        sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def parse_period(since: str | None, until: str | None) -> tuple:
    today = timezone.localdate()
    try:
        start = date.fromisoformat(since) if since else today - timedelta(days=29)
        end = date.fromisoformat(until) if until else today
    except ValueError:
        start, end = today - timedelta(days=29), today
    tz = timezone.get_current_timezone()
    return (
        datetime.combine(start, time.min, tzinfo=tz),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=tz),
        start,
        end,
    )
