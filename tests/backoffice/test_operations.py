import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from backoffice.models import Alert, ApiToken, SyncRun
from backoffice.ops.api import new_token
from backoffice.ops.incidents import alert_incidents, find_incidents
from backoffice.ops.roles import ACCOUNTANT, CATALOG_MANAGER, setup_roles
from payments.models import Payment


@pytest.fixture
def token(django_user_model):
    setup_roles()
    user = django_user_model.objects.create_user("monitor", is_staff=True)
    user.groups.add(Group.objects.get(name=CATALOG_MANAGER))
    return new_token(name="zabbix", user=user)[1]


def test_api_is_never_open(client):
    for url in ["/api/status", "/api/runs/1"]:
        assert client.get(url).status_code == 401
    assert client.post("/api/sync", "{}", content_type="application/json").status_code == 401
    assert client.get("/api/status", HTTP_AUTHORIZATION="Bearer nope").status_code == 401


def test_status_with_bearer_token(client, token):
    response = client.get("/api/status", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"jobs", "schedules", "versions", "last_runs", "feed", "counts", "health"}
    assert body["last_runs"]["catalog"] is None
    assert ApiToken.objects.get().last_used_at is not None
    assert ApiToken.objects.get().token_hash != token  # stored hashed
    assert token not in ApiToken.objects.values_list("prefix", flat=True)


def test_sync_queues_once_and_run_state_is_readable(client, token, monkeypatch):
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **kw: "task-1")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    first = client.post(
        "/api/sync", json.dumps({"what": "feed"}), content_type="application/json", **headers
    )
    second = client.post(
        "/api/sync", json.dumps({"what": "feed"}), content_type="application/json", **headers
    )
    assert (first.status_code, first.json()["started"]) == (202, True)
    assert (second.status_code, second.json()["run_id"]) == (200, first.json()["run_id"])
    run = client.get(f"/api/runs/{first.json()['run_id']}", **headers).json()
    assert (run["kind"], run["status"]) == ("feed", "queued")
    bad = client.post(
        "/api/sync", json.dumps({"what": "everything"}), content_type="application/json", **headers
    )
    assert bad.status_code == 400


def test_sync_needs_the_matching_permission(client, django_user_model):
    setup_roles()
    user = django_user_model.objects.create_user("acc", is_staff=True)
    user.groups.add(Group.objects.get(name=ACCOUNTANT))
    raw = new_token(name="acc", user=user)[1]
    response = client.post(
        "/api/sync",
        json.dumps({"what": "catalog"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert response.status_code == 403


def test_dashboard_cards_and_buttons(staff_client, monkeypatch, settings):
    settings.ALSTYLE_TOKEN = "x" * 20
    SyncRun.objects.create(kind="catalog", status="failed", error="boom")
    monkeypatch.setattr("django_q.tasks.async_task", lambda *a, **kw: "task-1")
    page = staff_client.get(reverse("dashboard"))
    assert page.status_code == 200
    levels = {card["title"]: card["level"] for card in page.context["cards"]}
    assert levels["Catalog sync"] == "red"
    assert levels["Kaspi price list"] == "red"  # never built
    response = staff_client.post(reverse("dashboard"), {"what": "stock"}, follow=True)
    assert "queued" in response.text
    assert SyncRun.objects.filter(kind="stock", status="queued").exists()
    assert 'http-equiv="refresh"' in staff_client.get(reverse("dashboard")).text
    assert reverse("dashboard") in staff_client.get(reverse("admin:index")).text


def test_the_price_list_card_says_when_products_have_no_kaspi_price(staff_client, settings):
    """A new shop synced its supplier but has no price rule yet: nothing reaches the price
    list, and the dashboard says why and where to fix it (in Russian for staff)."""
    from catalog.models import PriceRule
    from tests import factories

    settings.LANGUAGE_CODE = "ru"
    for n in range(3):
        factories.product(article=str(n), sku=f"AS{n}", kaspi_price=None, listed=True)
    factories.product(article="9", sku="AS9", kaspi_price=5000)
    factories.product(article="8", sku="AS8", kaspi_price=None, price1=1, price_on_request=True)

    def card():
        cards = staff_client.get(reverse("dashboard")).context["cards"]
        return next(c for c in cards if c["title"] == "Прайс-лист Kaspi")

    assert "У 3 товаров нет цены Kaspi: нет ни одного активного правила наценки" in " ".join(
        card()["lines"]
    )
    PriceRule.objects.create(name="Бренд X", markup_percent=10, active=True)
    lines = " ".join(card()["lines"])
    assert "ни одно правило наценки их не охватывает" in lines
    assert card()["level"] in ("amber", "red")


def test_api_token_admin_shows_token_once(staff_client, django_user_model):
    user = django_user_model.objects.get(username="admin")
    response = staff_client.post(
        reverse("admin:backoffice_apitoken_add"),
        {"name": "grafana", "user": user.pk, "active": "on"},
        follow=True,
    )
    token = ApiToken.objects.get()
    assert "kb_" in response.text
    assert token.token_hash not in response.text
    listing = staff_client.get(reverse("admin:backoffice_apitoken_changelist")).text
    assert token.prefix in listing


def test_incidents_alert_once_per_cooldown(settings):
    settings.STAFF_ALERT_EMAILS = ["ops@example.kz"]
    for _ in range(2):
        SyncRun.objects.create(kind="orders", status="failed", error="Kaspi: HTTP 401")
    Payment.objects.create(
        provider="demo",
        amount=100,
        status="pending",
        created_at=timezone.now() - timedelta(hours=1),
    )
    keys = [key for key, _text in find_incidents()]
    assert keys == ["runs-failing:orders", "payments-stuck"]
    assert alert_incidents() == 2
    assert alert_incidents() == 0  # cool-down
    assert Alert.objects.filter(key="incident:runs-failing:orders").count() == 1


def test_schedules_visible_with_last_result(staff_client):
    from django_q.models import Schedule, Task

    from backoffice.core.health import check_schedules
    from backoffice.core.schedules import setup_schedules

    setup_schedules()
    schedule = Schedule.objects.get(name="catalog-sync")
    task = Task.objects.create(
        id="t1" * 16,
        name="x",
        func="f",
        started=timezone.now(),
        stopped=timezone.now(),
        success=False,
    )
    Schedule.objects.filter(pk=schedule.pk).update(task=task.id)
    ok, details = check_schedules()
    assert not ok
    assert details["last_run_failed"] == ["catalog-sync"]
    page = staff_client.get(reverse("dashboard")).text
    assert "catalog-sync" in page
    assert "✗" in page
