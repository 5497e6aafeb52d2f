"""The product list fits 1366 px (issue 17.4) and shows money as staff write it (17.2):
name cut with the full name on hover, Kaspi price in «1 035 120 ₸», stock, on Kaspi, and
«needs attention» only on the products that need it, with the reason."""

import pytest
from django.urls import reverse
from lxml import html as lxml_html

from tests import factories


@pytest.fixture
def page(client, django_user_model, settings):
    settings.LANGUAGE_CODE = "ru"
    client.force_login(django_user_model.objects.create_superuser("owner", "", "pw-123456"))

    def get(url=None):
        return lxml_html.fromstring(
            client.get(url or reverse("admin:catalog_product_changelist")).text
        )

    return get


def rows(doc):
    return {
        tr.xpath("string(.//th)").strip(): tr
        for tr in doc.xpath("//table[@id='result_list']/tbody/tr")
    }


def test_columns_fit_and_the_rest_is_on_the_product_page(page):
    factories.product(article="1")
    doc = page()
    headers = [
        h.strip() for h in doc.xpath("//table[@id='result_list']/thead//th//text()") if h.strip()
    ]
    assert headers == [
        "Код товара у первого поставщика",
        "Название",
        "Цена на Kaspi",
        "Остаток",
        "Продавать на Kaspi",
        "Требует внимания",
    ]


def test_long_name_is_cut_with_the_full_name_on_hover(page):
    name = 'Ноутбук Lenovo IdeaPad Slim 5 16IAH8 16" 2.5K IPS Core i5-12450H 16/512 ГБ серый'
    factories.product(article="2", sku="AS2", name=name)
    cell = rows(page())["2"].xpath(".//td[contains(@class, 'field-name_short')]")[0]
    shown = cell.text_content().strip()
    assert shown.endswith("…")
    assert len(shown) <= 60
    assert cell.xpath(".//span/@title")[0] == f"{name} · AS2"


def test_kaspi_price_with_thousands_separators_and_tenge(page):
    factories.product(article="3", kaspi_price=1035120)
    cell = rows(page())["3"].xpath(".//td[contains(@class, 'field-kaspi_price_display')]")[0]
    assert cell.text_content().strip() == "1\u00a0035\u00a0120\u00a0₸"


def test_attention_only_where_it_applies_with_the_reason(page):
    factories.product(article="4")
    factories.product(article="5", price_review=True, price_review_note="цена выросла на 35%")
    found = rows(page())
    fine = found["4"].xpath(".//td[contains(@class, 'field-attention_display')]")[0]
    assert "⚠" not in fine.text_content()
    assert not fine.xpath(".//img")  # no red ✗ on a product that is fine
    flagged = found["5"].xpath(".//td[contains(@class, 'field-attention_display')]")[0]
    assert "цену нужно проверить: цена выросла на 35%" in flagged.text_content()


def test_price_rules_show_money(page):
    factories.rule(name="Дорогие", scope="band", band_min=1000000, min_margin=15000)
    doc = page(reverse("admin:catalog_pricerule_changelist"))
    text = doc.xpath("//table[@id='result_list']")[0].text_content()
    assert "1\u00a0000\u00a0000\u00a0₸" in text
    assert "15\u00a0000\u00a0₸" in text
