"""Admin search ignores case in Cyrillic too, on SQLite (our like()) and PostgreSQL."""

import pytest
from django.db import connection
from django.urls import reverse

from backoffice.core.sqlite import like
from orders.models import Order
from tests import factories


def _found(client, url_name, query):
    response = client.get(reverse(url_name), {"q": query})
    assert response.status_code == 200
    return response.context["cl"].result_count


def test_lowercase_cyrillic_finds_products_and_orders(staff_client):
    factories.product(name="Ноутбук Demo 15 8/512 серый")
    factories.product(name="Мышь Qazaq Tech")
    Order.objects.create(kaspi_id="K1", code="1001", customer_name="Айгерим Сапарова")
    Order.objects.create(kaspi_id="K2", code="1002", customer_name="Ержан Ахметов")

    for query in ("ноутбук", "НОУТБУК", "Ноутбук", "demo"):
        assert _found(staff_client, "admin:catalog_product_changelist", query) == 1, query
    assert _found(staff_client, "admin:catalog_product_changelist", "планшет") == 0
    for query in ("айгерим", "АЙГЕРИМ", "сапарова"):
        assert _found(staff_client, "admin:orders_order_changelist", query) == 1, query


def test_the_database_itself_folds_cyrillic():
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM catalog_product")  # a real query first
        factories.product(name="Ёлка Қазақ")
    from catalog.models import Product

    assert Product.objects.filter(name__icontains="ёлка қазақ").count() == 1
    assert Product.objects.filter(name__iexact="ЁЛКА ҚАЗАҚ").count() == 1
    assert Product.objects.filter(name__istartswith="ёл").count() == 1


@pytest.mark.parametrize(
    ("pattern", "value", "escape", "expected"),
    [
        ("%ноут%", "Ноутбук Demo", "\\", 1),
        ("ноут", "Ноутбук", "\\", 0),  # no wildcard: the whole value
        ("н_утбук", "НОУТБУК", None, 1),
        ("100\\%", "100%", "\\", 1),  # an escaped % is a plain %
        ("100\\%", "1000", "\\", 0),
        ("a\\_b", "aXb", "\\", 0),
        ("%(x)%", "a(x)b", "\\", 1),  # regex characters are plain text
        (None, "x", None, None),
    ],
)
def test_like_follows_sqlite_rules(pattern, value, escape, expected):
    assert like(pattern, value, escape) == expected
