"""The "fetch supplier card data" action queues a run (Al-Style: one call per 5 s for each
ALSTYLE_DETAILS_CHUNK products); the task fetches and records progress (issue 18.10)."""

from django.urls import reverse
from responses import matchers

from backoffice.models import SyncRun
from catalog.models import Product, Supplier
from catalog.services.cards import request_card_data
from catalog.tasks import card_data_task
from tests import factories

INFO = "https://api.al-style.kz/api/element-info"


def test_the_action_queues_a_run_and_calls_nobody(staff_client, mocked_http):
    products = [factories.product(article=str(n)) for n in (1, 2)]

    response = staff_client.post(
        reverse("admin:catalog_product_changelist"),
        {"action": "fetch_card_data", "_selected_action": [p.pk for p in products]},
    )

    assert response.status_code == 302
    assert len(mocked_http.calls) == 0
    run = SyncRun.objects.get(kind=SyncRun.Kind.CARD_DATA)
    assert run.status == SyncRun.Status.QUEUED
    assert run.params == {"products": sorted(p.pk for p in products)}


def test_the_task_fetches_in_chunks_with_progress(mocked_http, settings):
    settings.ALSTYLE_DETAILS_CHUNK = 2
    for n in (1, 2, 3):
        factories.product(article=str(n))
    mocked_http.get(INFO, json=[{"article": 1, "description": "a"}, {"article": 2}])
    mocked_http.get(INFO, json=[{"article": 3, "description": "c"}])
    run = request_card_data(products=Product.objects.all())

    card_data_task(run.pk)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.OK
    assert run.counts == {"updated": 3}
    assert (run.progress_done, run.progress_total) == (3, 3)
    assert len(mocked_http.calls) == 2
    assert Product.objects.get(article="3").details["description"] == "c"


def test_a_price_file_product_joined_by_al_style_is_asked_by_al_styles_article(
    mocked_http, settings
):
    # Given: a product made from Acme's price file (our article «acme:A1»), later joined by
    # an Al-Style offer; and one Acme product Al-Style does not supply.
    settings.LANGUAGE_CODE = "ru"
    acme = factories.supplier(code="acme", name="Acme")
    joined = factories.product(article="acme:A1", sku="ACA1", with_offer=False)
    factories.offer_for(joined, acme, article="A1")
    factories.offer_for(joined, Supplier.alstyle(), article="31337", listed=False)
    factories.offer_for(joined, Supplier.alstyle(), article="31338", listed=True)
    acme_only = factories.product(article="acme:A2", sku="ACA2", with_offer=False)
    factories.offer_for(acme_only, acme, article="A2")
    plain = factories.product(article="777")
    mocked_http.get(
        INFO,
        json=[{"article": 31338, "description": "с Al-Style"}, {"article": 777}],
        match=[matchers.query_param_matcher({"article": "31338,777"}, strict_match=False)],
    )
    run = request_card_data(products=Product.objects.all())

    card_data_task(run.pk)

    run.refresh_from_db()
    assert len(mocked_http.calls) == 1
    assert Product.objects.get(pk=joined.pk).details["description"] == "с Al-Style"
    assert Product.objects.get(pk=plain.pk).details["description"] == ""
    assert Product.objects.get(pk=acme_only.pk).details == {}
    assert run.counts == {"not_alstyle": 1, "updated": 2}
    assert run.report == (
        "Не товары Al-Style (нет предложения Al-Style), данные не запрошены: 1 шт.: ACA2"
    )
