"""Long work never runs in a web request (issue 18.10): the admin actions that call Al-Style
(one call per 5 s) queue a run for the worker and return at once; the task does the work,
counting as it goes, and the run page shows progress, counters and a line per order."""

import pytest
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.urls import reverse

from backoffice.models import SyncRun
from backoffice.ops.roles import ORDER_MANAGER
from orders.models import Order, OrderEntry, SupplierPurchase
from orders.services.batches import request_purchase, request_stock_check, run_stock_check
from orders.tasks import purchase_task, stock_check_task
from tests import factories
from tests.orders.test_purchase import CART, cart_until_submit

ALSTYLE = "https://api.al-style.kz/api/"


@pytest.fixture
def orders():
    made = []
    for n, (article, wanted) in enumerate([("301", 1), ("302", 3)], 1):
        product = factories.product(article=article, sku=f"AS{article}", price1=1000)
        order = Order.objects.create(
            kaspi_id=f"K{n}",
            code=f"30{n}",
            status="ACCEPTED_BY_MERCHANT",
            fulfilment="accepted",
            total_price=4000,
        )
        OrderEntry.objects.create(
            order=order,
            entry_number=1,
            offer_code=product.sku,
            name=product.name,
            quantity=wanted,
            base_price=2000,
            total_price=2000 * wanted,
            product=product,
        )
        made.append(order)
    return made


@pytest.fixture
def manager(client, django_user_model):
    user = django_user_model.objects.create_user("om", password="pw-123456", is_staff=True)
    user.groups.add(Group.objects.get(name=ORDER_MANAGER))
    client.force_login(user)
    client.user = user
    return client


def act(client, action, orders, **extra):
    return client.post(
        reverse("admin:orders_order_changelist"),
        {"action": action, "_selected_action": [o.pk for o in orders], **extra},
    )


def test_the_stock_check_action_queues_a_run_and_calls_nobody(manager, orders, mocked_http):
    response = act(manager, "check_stock_selected", orders)

    assert response.status_code == 302
    assert len(mocked_http.calls) == 0  # Al-Style is the worker's business
    run = SyncRun.objects.get(kind=SyncRun.Kind.ORDER_STOCK)
    assert run.status == SyncRun.Status.QUEUED
    assert run.params == {"orders": sorted(o.pk for o in orders)}
    assert run.user == manager.user
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(reverse("admin:backoffice_syncrun_change", args=[run.pk]) in t for t in texts)


def test_the_task_checks_each_order_and_records_progress(orders, mocked_http):
    mocked_http.get(
        ALSTYLE + "quantity-price",
        json={"data": {"301": {"quantity": 5, "price1": 1000, "price2": 1}}},
    )
    mocked_http.get(
        ALSTYLE + "quantity-price",
        json={"data": {"302": {"quantity": 2, "price1": 1000, "price2": 1}}},
    )
    run = request_stock_check(orders=Order.objects.all())

    stock_check_task(run.pk)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.OK
    assert (run.progress_done, run.progress_total) == (2, 2)
    assert run.counts == {"in_stock": 1, "short": 1}
    assert run.report.splitlines()[0].startswith("301: ")
    assert "supplier has 2, needs 3" in run.report
    assert OrderEntry.objects.get(order__code="302").supplier_quantity == 2
    assert Order.objects.get(code="302").needs_attention


def test_a_run_is_done_once_even_if_the_task_comes_twice(orders, mocked_http):
    mocked_http.get(ALSTYLE + "quantity-price", json={"data": {"301": {"quantity": 5}}})
    run = request_stock_check(orders=Order.objects.filter(code="301"))

    run_stock_check(run_id=run.pk)
    run_stock_check(run_id=run.pk)

    assert len(mocked_http.calls) == 1


def test_one_refused_order_makes_the_run_partial(orders, mocked_http, settings):
    mocked_http.get(ALSTYLE + "quantity-price", json={"data": {"301": {"quantity": 5}}})
    mocked_http.get(ALSTYLE + "quantity-price", status=401, json={"status": 401})
    run = request_stock_check(orders=Order.objects.all())

    stock_check_task(run.pk)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.PARTIAL
    assert run.counts == {"in_stock": 1, "errors": 1}
    assert run.report.splitlines()[1].startswith("302: ")


def test_the_purchase_action_queues_a_run_with_the_form(manager, orders, mocked_http):
    response = act(manager, "purchase_selected", orders[:1], apply="1", attorney="42", carrier="")

    assert response.status_code == 302
    assert len(mocked_http.calls) == 0
    run = SyncRun.objects.get(kind=SyncRun.Kind.PURCHASE)
    assert run.params["attorney"] == "42"
    assert run.params["dry_run"] is False
    assert not SupplierPurchase.objects.exists()


def test_the_purchase_task_buys_as_the_staff_member(manager, orders, mocked_http):
    cart_until_submit(mocked_http)
    mocked_http.post(CART + "submit", json={"status": True, "data": {"status": "ok", "id": 77}})
    run = request_purchase(orders=orders[:1], user=manager.user)

    purchase_task(run.pk)

    run.refresh_from_db()
    purchase = SupplierPurchase.objects.get()
    assert purchase.supplier_order_id == "77"
    assert purchase.created_by == manager.user
    assert run.counts == {"purchased": 1}
    assert "77" in run.report


def test_the_dry_run_action_queues_and_the_task_reports_the_plan(manager, orders, mocked_http):
    act(manager, "purchase_dry_run", orders[:1])
    run = SyncRun.objects.get(kind=SyncRun.Kind.PURCHASE)
    assert run.params["dry_run"] is True
    assert len(mocked_http.calls) == 0
    from tests.orders.test_purchase import ALSTYLE as API
    from tests.orders.test_purchase import profile

    mocked_http.get(API + "user-data", json=profile())

    purchase_task(run.pk)

    run.refresh_from_db()
    assert "301 × 1" in run.report
    assert not SupplierPurchase.objects.exists()


def test_the_run_page_shows_progress_and_the_report(staff_client, orders):
    run = request_stock_check(orders=Order.objects.all())
    SyncRun.objects.filter(pk=run.pk).update(
        status="running", progress_done=1, progress_total=2, report="301: все в наличии"
    )

    listing = staff_client.get(reverse("admin:backoffice_syncrun_changelist")).content.decode()
    detail = staff_client.get(
        reverse("admin:backoffice_syncrun_change", args=[run.pk])
    ).content.decode()

    assert "1 / 2" in listing
    assert "301: все в наличии" in detail
