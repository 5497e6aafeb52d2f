"""The "fetch supplier card data" action queues a run (Al-Style: one call per 5 s for each
ALSTYLE_DETAILS_CHUNK products); the task fetches and records progress (issue 18.10)."""

from django.urls import reverse

from backoffice.models import SyncRun
from catalog.models import Product
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
