"""Read-only selectors for the reports page and its CSV exports, and small SVG charts."""

import csv
import io
from datetime import date, datetime, time, timedelta

from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.html import escape

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
    """Revenue and units by day, category or brand between two moments."""
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
    rows = entries.values("key").annotate(units=Sum("quantity"), revenue=Sum("total_price"))
    return sorted(
        (
            {"key": row["key"] or "—", "units": row["units"], "revenue": row["revenue"] or 0}
            for row in rows
        ),
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


def series_svg(values: list[float], labels: list[str], *, width=640, height=160, title="") -> str:
    """A small bar chart as inline SVG (no JavaScript, no CDN)."""
    top = max(values) if values and max(values) > 0 else 1
    n = max(len(values), 1)
    bar = width / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height + 20}" '
        f'width="100%" role="img" aria-label="{escape(title)}">'
    ]
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        h = (value / top) * height
        x = i * bar
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{height - h:.1f}" width="{max(bar - 2, 1):.1f}" '
            f'height="{h:.1f}" fill="#417690"><title>{escape(label)}: {value:g}</title></rect>'
        )
    if labels:
        parts.append(f'<text x="0" y="{height + 15}" font-size="11">{escape(labels[0])}</text>')
        parts.append(
            f'<text x="{width}" y="{height + 15}" font-size="11" '
            f'text-anchor="end">{escape(labels[-1])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
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
