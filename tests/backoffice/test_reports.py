from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from backoffice.reports import daily_orders, margin_report, sales_by, sold_but_unavailable
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
    assert csv_text.decode().splitlines()[0] == "key,units,revenue"
    margin = staff_client.get(reverse("reports"), {"export": "margin"}).content.decode()
    assert margin.splitlines()[1].startswith(f"{product.sku},")
    assert reverse("reports") in staff_client.get(reverse("admin:index")).text


def test_reports_need_a_role(client, django_user_model):
    user = django_user_model.objects.create_user("nobody", password="x", is_staff=True)
    client.force_login(user)
    assert client.get(reverse("reports")).status_code == 403
