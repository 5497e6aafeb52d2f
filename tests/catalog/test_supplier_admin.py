"""Suppliers in the admin (issue 18 item 1): the Supplier list/form and a product's offers
with the chosen one marked and a pin that is audited."""

from django.urls import reverse

from backoffice.core.audit import AuditEntry
from catalog.models import Product, Supplier
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


def test_supplier_list_and_form_open_in_russian(staff_client):
    factories.supplier(code="akcent", name="Akcent")
    listing = staff_client.get(
        reverse("admin:catalog_supplier_changelist"), HTTP_ACCEPT_LANGUAGE="ru"
    )
    form = staff_client.get(
        reverse("admin:catalog_supplier_change", args=[Supplier.alstyle().pk]),
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert listing.status_code == 200
    assert "Akcent" in listing.text
    assert "Al-Style" in listing.text
    assert "Префикс SKU" in listing.text or "префикс SKU" in listing.text
    assert "секунд между запросами" in form.text.lower()


def test_product_page_lists_offers_and_pin_is_audited(staff_client):
    product = factories.product(article="100", price1=10000, quantity=0)
    vtt = factories.supplier(code="vtt", name="VTT")
    other = factories.offer_for(product, vtt, article="V-100", dealer_price=9000, quantity=0)
    alstyle_offer = product.offer
    url = reverse("admin:catalog_product_change", args=[product.pk])
    page = staff_client.get(url, HTTP_ACCEPT_LANGUAGE="ru")
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
