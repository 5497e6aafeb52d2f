"""«Загрузить карточки в Kaspi» queues a card upload run like every other long action: one
queued run with the ticked products, one task; the task records counts, progress per batch,
the problem cards and Kaspi's reason when it fails; push_kaspi_cards runs the same service."""

import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import translation
from lxml import html as lxml_html

from backoffice.core.runs import RunFailed
from backoffice.models import SyncRun
from catalog.models import CardImport, CardState, Product
from catalog.services import cards
from catalog.services.cards import request_card_upload
from catalog.tasks import push_cards_task
from tests.catalog.test_cards import API, laptop, mapped  # noqa: F401 - the fixture

IMPORT = API + "products/import"


@pytest.fixture
def queued(monkeypatch):
    """The tasks handed to django-q2 (the task itself does not run)."""
    tasks = []

    def capture(task, *args, **kwargs):
        tasks.append((task, args, kwargs))
        return f"task-{len(tasks)}"

    monkeypatch.setattr("django_q.tasks.async_task", capture)
    return tasks


def _click(client, products):
    return client.post(
        reverse("admin:catalog_product_changelist"),
        {"action": "upload_cards", "_selected_action": [p.pk for p in products]},
        follow=True,
    )


def test_the_action_queues_one_run_with_the_products_and_one_task(
    staff_client,
    mapped,  # noqa: F811
    queued,
    mocked_http,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.LANGUAGE_CODE = "ru"
    products = [laptop(mapped, n) for n in (1, 2)]

    with django_capture_on_commit_callbacks(execute=True):
        response = _click(staff_client, products)

    run = SyncRun.objects.get()
    assert run.kind == SyncRun.Kind.CARD_UPLOAD
    assert run.status == SyncRun.Status.QUEUED
    assert run.params == {"products": sorted(p.pk for p in products)}
    assert run.user == staff_client.user
    assert queued == [
        (
            "catalog.tasks.push_cards_task",
            (),
            {"run_id": run.pk, "task_name": f"card_upload-run-{run.pk}"},
        )
    ]
    assert SyncRun.objects.get(pk=run.pk).task_id == "task-1"
    (message,) = [str(m) for m in response.context["messages"]]
    assert "Загрузка карточек в Kaspi поставлена в очередь" in message
    link = lxml_html.fromstring(message).xpath("//a/@href")[0]
    assert link == reverse("admin:backoffice_syncrun_change", args=[run.pk])
    assert len(mocked_http.calls) == 0  # nothing is sent inside the web request
    assert not CardImport.objects.exists()


def test_a_second_click_on_the_same_products_joins_the_queued_run(
    staff_client,
    mapped,  # noqa: F811
    queued,
    django_capture_on_commit_callbacks,
):
    products = [laptop(mapped, n) for n in (1, 2)]

    with django_capture_on_commit_callbacks(execute=True):
        _click(staff_client, products)
        second = _click(staff_client, products)
        other = _click(staff_client, products[:1])

    assert "already queued or running" in str(list(second.context["messages"])[0])
    runs = list(SyncRun.objects.order_by("pk"))
    # The same selection joined; another selection is a run of its own (not dropped).
    assert [r.params["products"] for r in runs] == [
        sorted(p.pk for p in products),
        [products[0].pk],
    ]
    assert [kwargs["run_id"] for _task, _args, kwargs in queued] == [r.pk for r in runs]
    assert "queued" in str(list(other.context["messages"])[0])


def test_the_task_completes_the_run_with_counts_progress_and_problems(
    mocked_http,
    mapped,  # noqa: F811
    settings,
    monkeypatch,
):
    settings.KASPI_CARDS_BATCH = 2
    for n in range(1, 6):
        laptop(mapped, n)
    broken = laptop(mapped, 6, images=[])  # no images: not sent, named in the report
    for n in range(3):
        mocked_http.post(IMPORT, json={"code": f"imp-{n}", "status": "UPLOADED"})
    beats = []
    real = cards.heartbeat

    def spy(run, **kwargs):
        real(run, **kwargs)
        beats.append(run.progress_done)

    monkeypatch.setattr(cards, "heartbeat", spy)
    run, started = request_card_upload(products=Product.objects.all())
    assert started

    result = push_cards_task(run.pk)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.OK
    assert run.counts == {"sent": 5, "failed": 0, "unchanged": 0, "invalid": 1}
    assert (run.progress_done, run.progress_total) == (6, 6)
    assert beats == [0, 1, 3, 5, 6, 6]  # after validation, then after each batch
    assert [len(json.loads(c.request.body)) for c in mocked_http.calls] == [2, 2, 1]
    assert "imp-0, imp-1, imp-2" in run.report
    assert f"{broken.sku}: " in run.report
    assert "sent=5" in result
    assert Product.objects.filter(card_state=CardState.SENT).count() == 5
    assert CardImport.objects.count() == 3  # the import records stay as they were
    # A task handed out twice finds its run taken and sends nothing again.
    push_cards_task(run.pk)
    assert len(mocked_http.calls) == 3


def test_a_kaspi_failure_fails_the_run_with_a_russian_reason(
    mocked_http,
    mapped,  # noqa: F811
    staff_client,
    settings,
):
    product = laptop(mapped)
    mocked_http.post(IMPORT, status=500, json={"message": "Internal error"})
    run, _started = request_card_upload(products=Product.objects.filter(pk=product.pk))

    with translation.override("ru"), pytest.raises(RunFailed):
        push_cards_task(run.pk)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert run.error.startswith("1 из 1 пакета карточек не удалось отправить в Kaspi: ")
    assert "HTTP 500" in run.error
    assert run.counts == {"sent": 0, "failed": 1, "unchanged": 0, "invalid": 0}
    assert CardImport.objects.get().status == CardImport.Status.FAILED
    settings.LANGUAGE_CODE = "ru"
    page = staff_client.get(reverse("admin:backoffice_syncrun_changelist")).content.decode()
    assert "не удалось отправить в Kaspi" in page
    assert "Загрузка карточек в Kaspi" in page


def test_some_batches_failed_is_partial(mocked_http, mapped, settings):  # noqa: F811
    settings.KASPI_CARDS_BATCH = 1
    for n in (1, 2):
        laptop(mapped, n)
    mocked_http.post(IMPORT, json={"code": "imp-1", "status": "UPLOADED"})
    mocked_http.post(IMPORT, status=500, json={"message": "Internal error"})
    run, _started = request_card_upload(products=Product.objects.all())

    assert "partial" in push_cards_task(run.pk)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.PARTIAL
    assert run.counts == {"sent": 1, "failed": 1, "unchanged": 0, "invalid": 0}
    assert "1 of 2 card batches could not be sent" in run.error


def test_the_command_runs_the_same_service_as_a_run(mocked_http, mapped, settings):  # noqa: F811
    settings.KASPI_CARDS_BATCH = 1
    for n in (1, 2):
        laptop(mapped, n)
    mocked_http.post(IMPORT, json={"code": "imp-1", "status": "UPLOADED"})
    mocked_http.post(IMPORT, status=500, json={"message": "Internal error"})

    with pytest.raises(SystemExit) as exited:
        call_command("push_kaspi_cards")

    assert exited.value.code == 2  # partial: some batches went through
    run = SyncRun.objects.get(kind=SyncRun.Kind.CARD_UPLOAD)
    assert run.triggered_by == "command"
    assert run.status == SyncRun.Status.PARTIAL
    assert run.params == {"category": None, "only_missing": False, "dry_run": False}
    assert run.counts["sent"] == 1


def test_the_command_without_a_token_fails_with_exit_1(mapped, settings):  # noqa: F811
    from django.core.management.base import CommandError

    settings.KASPI_SHOP_TOKEN = ""
    laptop(mapped)

    with pytest.raises(CommandError) as failed:
        call_command("push_kaspi_cards")

    assert failed.value.returncode == 1
    assert "KASPI_SHOP_TOKEN" in str(failed.value)
    assert SyncRun.objects.get(kind=SyncRun.Kind.CARD_UPLOAD).status == SyncRun.Status.FAILED


def test_a_task_queued_before_card_uploads_were_runs_still_uploads_as_a_run(
    mocked_http,
    mapped,  # noqa: F811
    admin_user,
):
    """The old task arguments (product ids, the user's id) from a queue filled before the
    deploy: the upload still happens, recorded as a run of that user."""
    products = [laptop(mapped, n) for n in (1, 2)]
    mocked_http.post(IMPORT, json={"code": "imp-old", "status": "UPLOADED"})

    push_cards_task([p.pk for p in products], admin_user.pk)

    run = SyncRun.objects.get(kind=SyncRun.Kind.CARD_UPLOAD)
    assert run.status == SyncRun.Status.OK
    assert run.user == admin_user
    assert run.counts["sent"] == 2
    assert len(mocked_http.calls) == 1
    # The same old task handed out twice: its run is found, nothing is sent again.
    push_cards_task([p.pk for p in products], admin_user.pk)
    assert SyncRun.objects.filter(kind=SyncRun.Kind.CARD_UPLOAD).count() == 1
    assert len(mocked_http.calls) == 1
