from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from backoffice.ops.reports import daily_orders, margin_report, sales_by, sold_but_unavailable
from orders.models import Order, OrderEntry
from tests import factories


def sell(product, *, qty, price, days_ago=1, status="COMPLETED", code=None):
    order = Order.objects.create(
        kaspi_id=code or f"K{product.pk}{days_ago}{status}",
        code=code or f"{product.pk}{days_ago}",
        status=status,
        total_price=qty * price,
        creation_date=timezone.now() - timedelta(days=days_ago),
    )
    OrderEntry.objects.create(
        order=order,
        offer_code=product.sku,
        quantity=qty,
        base_price=price,
        total_price=qty * price,
        product=product,
    )


def test_reports_numbers():
    laptops, cables = factories.category(name="Ноутбуки"), factories.category(name="Кабели")
    laptop = factories.product(category=laptops, price1=100000, kaspi_price=115000)
    cable = factories.product(
        category=cables, price1=1000, kaspi_price=1050, available=False, quantity=0
    )
    sell(laptop, qty=1, price=115000)
    sell(cable, qty=3, price=1050, days_ago=2)
    sell(cable, qty=5, price=1050, days_ago=3, status="CANCELLED")  # not a sale

    since, until = timezone.now() - timedelta(days=30), timezone.now() + timedelta(days=1)
    by_category = sales_by("category", since, until)
    assert by_category == [
        {"key": "Ноутбуки", "units": 1, "revenue": 115000},
        {"key": "Кабели", "units": 3, "revenue": 3150},
    ]
    daily = daily_orders(30)
    assert len(daily) == 30
    assert sum(row["orders"] for row in daily) == 2
    assert sum(row["revenue"] for row in daily) == 118150
    margins = margin_report()
    assert [(row["sku"], row["margin"], row["margin_pct"]) for row in margins] == [
        (cable.sku, 50, 5.0),
        (laptop.sku, 15000, 15.0),
    ]
    assert sold_but_unavailable() == [{"sku": cable.sku, "name": cable.name, "units": 3}]


def test_reports_page_and_csv(staff_client):
    product = factories.product(price1=1000, kaspi_price=1200)
    sell(product, qty=2, price=1200)
    page = staff_client.get(reverse("reports"))
    assert page.status_code == 200
    assert page.text.count('role="img"') == 4  # our four charts (the admin has icon SVGs)
    csv_text = staff_client.get(reverse("reports"), {"export": "sales", "group": "brand"}).content
    assert csv_text.decode("utf-8").splitlines()[0] == "\ufeffbrand;units;revenue, tenge"
    margin = staff_client.get(reverse("reports"), {"export": "margin"}).content.decode()
    assert margin.splitlines()[1].startswith(f"{product.sku};")
    assert reverse("reports") in staff_client.get(reverse("admin:index")).text


def test_reports_need_a_role(client, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("reports")).status_code == 403


def test_exports_open_in_russian_excel(staff_client, settings):
    import io

    from openpyxl import load_workbook

    laptop = factories.product(name="Ноутбук Demo 15", price1=1000000, kaspi_price=1035120)
    sell(laptop, qty=1, price=1035120)
    settings.LANGUAGE_CODE = "ru"
    raw = staff_client.get(reverse("reports"), {"export": "sales", "group": "product"})
    assert raw["Content-Type"].startswith("text/csv")
    assert raw.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for UTF-8
    lines = raw.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "Артикул (SKU);штук;выручка, тенге;название"
    assert lines[1] == f"{laptop.sku};1;1035120;Ноутбук Demo 15"

    xlsx = staff_client.get(reverse("reports"), {"export": "margin-xlsx"})
    assert xlsx["Content-Disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    header = [cell.value for cell in sheet[1]]
    assert header[:3] == ["Артикул (SKU)", "название", "категория"]
    row = [cell.value for cell in sheet[2]]
    assert row[0] == laptop.sku
    assert row[header.index("маржа, тенге")] == 35120  # a number, not text


def test_top_products_have_headers_and_names(staff_client):
    laptop = factories.product(name="Ноутбук Nordlight 14")
    sell(laptop, qty=2, price=300000)
    page = staff_client.get(reverse("reports")).text
    top = page.split("Top products by revenue")[1].split("</table>")[0]
    assert "<th>SKU</th>" in top
    assert "Ноутбук Nordlight 14" in top
    assert "600\u00a0000\u00a0₸" in top  # money with thousands separators and the sign


def test_chart_scales_read_sensibly():
    import re

    from backoffice.ops.reports import series_svg

    # One 0.001 s failed run is a sliver on a 0–10 s scale, not a full-height bar.
    svg = series_svg([0.001], ["01.12 10:00"], min_top=10, highlight=[True])
    height = float(re.search(r'<rect [^>]*height="([\d.]+)"', svg).group(1))
    assert height <= 2
    assert 'fill="#ba2121"' in svg  # failed: red
    assert ">10<" in svg  # the axis says what the scale is
    # A flat level is a line at one height, not a wall of bars.
    flat = series_svg([37, 37, 37], ["a", "b", "c"], kind="line", min_top=10)
    assert "<rect" not in flat
    ys = set(re.findall(r'<circle [^>]*cy="([\d.]+)"', flat))
    assert len(ys) == 1
    assert "<polyline" in flat
