"""Suppliers in the admin (issue 18 items 1, 3, 4): the Supplier list/form (mapping,
preview, «Синхронизировать»), a product's offers with the chosen one marked and a pin
that is audited, and the match queue (link / create, audited)."""

import re
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from backoffice.core.audit import AuditEntry
from backoffice.models import SyncRun
from catalog.models import Product, Supplier, SupplierOffer
from tests import factories


def product_form(response, **changes):
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None:
            value = ""
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = getattr(value, "pk", value)
    for formset in response.context["inline_admin_formsets"]:
        prefix = formset.formset.prefix
        data[f"{prefix}-TOTAL_FORMS"] = "0"
        data[f"{prefix}-INITIAL_FORMS"] = "0"
    data.update(changes)
    return data


def test_supplier_list_and_form_open_in_russian(staff_client, settings):
    settings.LANGUAGE_CODE = "ru"
    factories.supplier(code="akcent", name="Akcent")
    listing = staff_client.get(reverse("admin:catalog_supplier_changelist"))
    form = staff_client.get(reverse("admin:catalog_supplier_change", args=[Supplier.alstyle().pk]))
    assert listing.status_code == 200
    assert "Akcent" in listing.text
    assert "Al-Style" in listing.text
    assert "Префикс SKU" in listing.text or "префикс SKU" in listing.text
    assert "секунд между запросами" in form.text.lower()


def test_product_page_lists_offers_and_pin_is_audited(staff_client, settings):
    settings.LANGUAGE_CODE = "ru"
    product = factories.product(article="100", price1=10000, quantity=0)
    vtt = factories.supplier(code="vtt", name="VTT")
    other = factories.offer_for(product, vtt, article="V-100", dealer_price=9000, quantity=0)
    alstyle_offer = product.offer
    url = reverse("admin:catalog_product_change", args=[product.pk])
    page = staff_client.get(url)
    assert page.status_code == 200
    assert "V-100" in page.text
    assert "Предложения поставщиков" in page.text
    assert "9\u00a0000 ₸" in page.text

    response = staff_client.post(url, product_form(page, pinned_offer=alstyle_offer.pk))
    assert response.status_code == 302, response.context["adminform"].form.errors
    product.refresh_from_db()
    assert product.pinned_offer == alstyle_offer
    assert product.offer == alstyle_offer
    assert product.price1 == 10000
    entry = AuditEntry.objects.get(action="product.pin_offer")
    assert entry.after == {"pinned_offer": alstyle_offer.pk, "offer": alstyle_offer.pk}

    # Unpinned: the rule chooses again (the cheaper offer, both out of stock).
    page = staff_client.get(url)
    staff_client.post(url, product_form(page, pinned_offer=""))
    assert Product.objects.get(pk=product.pk).offer == other


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "pricefile"


@pytest.fixture
def acme():
    return factories.supplier(
        code="acme",
        name="Acme",
        format="csv",
        sku_prefix="AC",
        upload=SimpleUploadedFile("price.csv", (FIXTURES / "cp1251.csv").read_bytes()),
    )


def test_supplier_pages_open(admin_client, acme):
    assert admin_client.get(reverse("admin:catalog_supplier_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:catalog_supplier_add")).status_code == 200
    page = admin_client.get(reverse("admin:catalog_supplier_change", args=[acme.pk]))
    assert page.status_code == 200
    assert "map_article" in page.content.decode()


def test_preview_reads_the_uploaded_file_with_the_mapping(admin_client, acme):
    page = admin_client.get(reverse("admin:catalog_supplier_preview", args=[acme.pk]))

    text = page.content.decode()
    assert page.status_code == 200
    assert "A-001" in text
    assert "215000" in text
    assert "no name" in text  # row 7, listed with its reason


def test_saving_the_mapping_goes_through_the_service(admin_client, acme):
    url = reverse("admin:catalog_supplier_change", args=[acme.pk])
    data = {
        "code": "acme",
        "name": "Acme",
        "kind": "pricefile",
        "enabled": "on",
        "priority": 100,
        "sku_prefix": "AC",
        "create_unmatched": "on",
        "min_interval": 0,
        "full_sync_minutes": 0,
        "stock_sync_minutes": 0,
        "url": "",
        "format": "csv",
        "auth_env": "",
        "map_article": "Артикул",
        "map_dealer_price": "Цена",
        "map_header_row": "3",
    }

    response = admin_client.post(url, data)

    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.mapping == {"article": "Артикул", "dealer_price": "Цена", "header_row": 3}
    assert AuditEntry.objects.filter(action="supplier.change").count() == 1


def test_a_url_with_a_secret_is_refused_in_the_form(admin_client, acme):
    url = reverse("admin:catalog_supplier_change", args=[acme.pk])
    data = {
        "code": "acme", "name": "Acme", "kind": "pricefile", "priority": 100,
        "min_interval": 0, "full_sync_minutes": 0, "stock_sync_minutes": 0,
        "url": "https://x.kz/p.csv?token=abcdef", "format": "csv",
    }  # fmt: skip

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "token={token}" in response.content.decode()
    acme.refresh_from_db()
    assert acme.url == ""


def test_sync_action_queues_the_supplier_sync(admin_client, acme, monkeypatch):
    from catalog.services import feed

    monkeypatch.setattr(feed, "request_feed_build", lambda **kw: None)
    url = reverse("admin:catalog_supplier_changelist")

    with pytest.MonkeyPatch.context():
        response = admin_client.post(
            url, {"action": "sync_now", "_selected_action": [acme.pk]}, follow=True
        )

    assert response.status_code == 200
    run = SyncRun.objects.get(kind=SyncRun.Kind.SUPPLIER)
    assert run.params["supplier"] == "acme"
    assert run.triggered_by == "user"


def test_match_queue_link_and_create(admin_client, acme, admin_user):
    laptop = factories.product(article="100", article_pn="PN-1", brand=factories.brand(name="HP"))
    queued = [
        SupplierOffer.objects.create(supplier=acme, article=a, name=f"Item {a}", part_number="PN-1")
        for a in ("Q1", "Q2")
    ]
    changelist = reverse("admin:catalog_matchqueueoffer_changelist")

    page = admin_client.get(changelist)
    assert page.status_code == 200
    assert "Q1" in page.content.decode()
    change = reverse("admin:catalog_matchqueueoffer_change", args=[queued[0].pk])
    form = admin_client.get(change)
    assert form.status_code == 200
    assert laptop.sku in form.content.decode()  # shown as a candidate (part number, no brand)

    response = admin_client.post(change, {"product": laptop.pk})

    assert response.status_code == 302
    queued[0].refresh_from_db()
    assert queued[0].product_id == laptop.pk
    admin_client.post(changelist, {"action": "create_products", "_selected_action": [queued[1].pk]})
    queued[1].refresh_from_db()
    assert queued[1].product.sku == "ACQ2"
    assert set(AuditEntry.objects.values_list("action", flat=True)) >= {
        "offer.link",
        "offer.create_product",
    }
    assert Supplier.objects.get(pk=acme.pk)  # untouched


def visible(response) -> str:
    from lxml import html as lxml_html

    assert response.status_code == 200
    body = lxml_html.fromstring(response.content.decode()).body
    return re.sub(r"[ \t\r\n]+", " ", body.text_content())  # keeps no-break spaces


def test_match_queue_reads_russian_with_supplier_name_and_money(admin_client, acme, settings):
    settings.LANGUAGE_CODE = "ru"
    queued = [
        SupplierOffer.objects.create(
            supplier=acme, article=f"AC-8{n}", name=f"Мышь {n}", dealer_price=131667 + n
        )
        for n in range(3)
    ]

    listing = visible(admin_client.get(reverse("admin:catalog_matchqueueoffer_changelist")))
    change = admin_client.get(reverse("admin:catalog_matchqueueoffer_change", args=[queued[0].pk]))

    assert "Очередь сопоставления" in listing
    assert "3 предложения ждут сопоставления" in listing
    assert "131\u00a0668\u00a0₸" in listing
    assert "для сопоставления для изменения" not in listing
    assert "очередь сопоставления" not in listing.replace("Очередь", "")
    title = visible(change)
    assert "Acme: AC-80 — Мышь 0" in title
    assert f"{acme.pk}:AC-80" not in title
    assert "131\u00a0667\u00a0₸" in title


@pytest.mark.parametrize(
    ("count", "words"),
    [(1, "1 поставщик"), (2, "2 поставщика"), (5, "5 поставщиков")],
    ids=["one", "few", "many"],
)
def test_supplier_pages_read_russian(admin_client, settings, count, words):
    settings.LANGUAGE_CODE = "ru"
    for n in range(count - 1):  # Al-Style's row is the first
        factories.supplier(code=f"s{n}", name=f"S{n}")

    listing = visible(admin_client.get(reverse("admin:catalog_supplier_changelist")))
    change = visible(
        admin_client.get(reverse("admin:catalog_supplier_change", args=[Supplier.alstyle().pk]))
    )
    add = visible(admin_client.get(reverse("admin:catalog_supplier_add")))

    assert f"{words} " in listing
    assert "Выберите поставщик" not in listing
    assert "Поставщик Al-Style" in change
    assert "Изменить поставщик" not in change
    assert "Новый поставщик" in add
    assert "Добавить поставщик" not in add


def test_product_page_names_the_chosen_offers_supplier(staff_client, settings):
    settings.LANGUAGE_CODE = "ru"
    product = factories.product(article="100", price1=10000, quantity=0)
    vtt = factories.supplier(code="vtt", name="VTT Trade")
    cheaper = factories.offer_for(product, vtt, article="V-100", dealer_price=9000, quantity=3)
    Product.objects.filter(pk=product.pk).update(offer=cheaper)

    page = visible(staff_client.get(reverse("admin:catalog_product_change", args=[product.pk])))

    assert "Выбранное предложение: VTT Trade: V-100" in page
    assert "Код товара у первого поставщика: 100" in page
    assert "(Al-Style)" not in page
