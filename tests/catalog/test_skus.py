import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from catalog.models import Product
from catalog.skus import derive_sku, sku_errors, sku_warnings
from tests import factories


@pytest.mark.parametrize(
    ("sku", "refused"),
    [
        ("AS10001", False),
        ("ST/UPC-ST/UPC MM OM1 62.5/125 Simplex 3.0мм 1 м", False),
        ("130342357_673822557", False),
        ("A" * 64, False),
        ("", True),
        ("A" * 65, True),
        (" AS1", True),
        ("AS1 ", True),
        ("AS\x0b1", True),
    ],
    ids=[
        "derived",
        "part-number",
        "kaspi-made",
        "64",
        "empty",
        "65",
        "leading-space",
        "trailing-space",
        "control-char",
    ],
)
def test_only_skus_that_cannot_work_are_refused(sku, refused):
    assert bool(sku_errors(sku)) is refused


@pytest.mark.parametrize(
    ("sku", "warnings"),
    [
        ("AS10001", []),
        ("A B", ["spaces"]),
        ("A/B", ["slashes"]),
        ("КабельA", ["Cyrillic letters"]),
        ("130342357_673822557", ["other characters than Latin letters and digits"]),
        ("A" * 21, ["more than 20 characters"]),
    ],
    ids=["safe", "space", "slash", "cyrillic", "underscore", "21"],
)
def test_risky_characters_only_warn(sku, warnings):
    assert sku_warnings(sku) == warnings


def test_derived_skus_stay_latin_and_short(settings):
    settings.SKU_PREFIX = "AS"
    assert derive_sku("12 345/Б") == "AS12345"


@pytest.mark.django_db
def test_full_clean_takes_a_shops_live_sku_and_the_column_holds_64():
    product = factories.product(article="1", sku="AS1")
    product.sku = "ST/UPC-ST/UPC MM OM1 62.5/125 Simplex 3.0мм 1 м " + "x" * 15
    product.full_clean()
    product.save()
    product.sku = "Y" * 64
    product.save()  # PostgreSQL refuses values over the column length
    assert Product.objects.get(pk=product.pk).sku == "Y" * 64
    product.sku = " padded"
    with pytest.raises(ValidationError, match="space"):
        product.full_clean()


@pytest.mark.django_db
def test_admin_keeps_a_risky_sku_and_warns(staff_client):
    product = factories.product(article="1", sku="AS1", kaspi_price=5000)
    url = reverse("admin:catalog_product_change", args=[product.pk])
    form = {
        "kaspi_enabled": "on",
        "sku": "ST/UPC 3.0мм 1 м",
        "manual_price": "",
        "preorder_days": "0",
    }
    response = staff_client.post(url, form, follow=True)
    assert response.status_code == 200
    assert Product.objects.get(pk=product.pk).sku == "ST/UPC 3.0мм 1 м"
    assert "Cyrillic" in response.content.decode() or "кириллиц" in response.content.decode()
