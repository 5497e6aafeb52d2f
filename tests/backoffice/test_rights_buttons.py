"""Buttons a user has no right to use are not shown (issue 17.8); the price-list rebuild
is a page button that needs no row selected."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from backoffice.models import SyncRun
from backoffice.ops.roles import ACCOUNTANT, CATALOG_MANAGER, ORDER_MANAGER


@pytest.fixture
def login(client, django_user_model, settings):
    settings.LANGUAGE_CODE = "ru"

    def as_role(role):
        user = django_user_model.objects.create_user(
            role.split()[0].lower(), password="pw-123456", is_staff=True
        )
        user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
        return client

    return as_role


def dashboard_buttons(client):
    html = client.get(reverse("dashboard")).content.decode()
    return {what for what in ("catalog", "stock", "feed", "orders") if f'value="{what}"' in html}


def test_dashboard_shows_only_the_runs_each_role_may_start(login):
    assert dashboard_buttons(login(ORDER_MANAGER)) == {"orders"}


def test_accountant_sees_no_run_buttons(login):
    client = login(ACCOUNTANT)
    assert dashboard_buttons(client) == set()
    orders = client.get(reverse("admin:orders_order_changelist")).content.decode()
    assert reverse("admin:orders_order_pull") not in orders
    client.post(reverse("admin:orders_order_pull"))
    assert not SyncRun.objects.exists()


def test_catalog_manager_sees_the_catalog_buttons(login):
    client = login(CATALOG_MANAGER)
    assert dashboard_buttons(client) == {"catalog", "stock", "feed"}
    products = client.get(reverse("admin:catalog_product_changelist")).content.decode()
    assert reverse("admin:catalog_product_sync") in products


def test_order_manager_does_not_see_the_catalog_sync(login):
    client = login(ORDER_MANAGER)
    products = client.get(reverse("admin:catalog_product_changelist")).content.decode()
    assert reverse("admin:catalog_product_sync") not in products
    orders = client.get(reverse("admin:orders_order_changelist")).content.decode()
    assert reverse("admin:orders_order_pull") in orders


def test_price_list_rebuild_without_selecting_a_row(login):
    client = login(CATALOG_MANAGER)
    page = client.get(reverse("admin:catalog_feedbuild_changelist")).content.decode()
    assert reverse("admin:catalog_feedbuild_rebuild") in page

    client.post(reverse("admin:catalog_feedbuild_rebuild"), {"force": "1"})

    run = SyncRun.objects.get(kind=SyncRun.Kind.FEED)
    assert run.params["force"] is True


def test_order_manager_cannot_rebuild_the_price_list(login):
    client = login(ORDER_MANAGER)
    client.post(reverse("admin:catalog_feedbuild_rebuild"))
    assert not SyncRun.objects.exists()
