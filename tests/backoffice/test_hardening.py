import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from backoffice.models import AuditEntry
from backoffice.ops.roles import ACCOUNTANT, CATALOG_MANAGER, ORDER_MANAGER, setup_roles
from catalog.models import PriceRule
from orders.models import Order
from payments.services.create import create_payment
from tests import factories


@pytest.fixture
def staff_in(client, django_user_model):
    # The migration made the groups; a transactional test's flush may have removed them.
    setup_roles()

    def login(role):
        user = django_user_model.objects.create_user(f"u-{role}", password="pw", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
        return client

    return login


PAGES = {
    "products": "admin:catalog_product_changelist",
    "price_rules": "admin:catalog_pricerule_changelist",
    "price_rule_add": "admin:catalog_pricerule_add",
    "card_mappings": "admin:catalog_cardmapping_changelist",
    "orders": "admin:orders_order_changelist",
    "payments": "admin:payments_payment_changelist",
    "webhooks": "admin:payments_webhookdelivery_changelist",
    "audit": "admin:backoffice_auditentry_changelist",
    "users": "admin:auth_user_changelist",
}
ALLOWED = {
    CATALOG_MANAGER: {"products", "price_rules", "price_rule_add", "card_mappings"},
    ORDER_MANAGER: {"products", "orders"},
    ACCOUNTANT: {"orders", "payments", "webhooks", "audit"},
}


@pytest.mark.parametrize("role", [CATALOG_MANAGER, ORDER_MANAGER, ACCOUNTANT])
def test_each_role_reaches_exactly_its_pages(staff_in, role):
    client = staff_in(role)
    for name, url_name in PAGES.items():
        status = client.get(reverse(url_name)).status_code
        expected = 200 if name in ALLOWED[role] else 403
        assert status == expected, f"{role} {name}: {status}"


def test_order_manager_cannot_run_catalog_actions(staff_in):
    client = staff_in(ORDER_MANAGER)
    product = factories.product(kaspi_enabled=True)
    client.post(
        reverse("admin:catalog_product_changelist"),
        {"action": "disable_on_kaspi", "_selected_action": [product.pk]},
    )
    product.refresh_from_db()
    assert product.kaspi_enabled is True


def test_catalog_manager_cannot_touch_payments(staff_in):
    client = staff_in(CATALOG_MANAGER)
    payment = create_payment(amount=100)
    response = client.post(
        reverse("admin:payments_payment_changelist"),
        {"action": "refund", "_selected_action": [payment.pk]},
    )
    assert response.status_code == 403


def test_audit_of_price_rule_and_kaspi_switch(staff_client):
    response = staff_client.post(
        reverse("admin:catalog_pricerule_add"),
        {
            "name": "Все +10%",
            "active": "on",
            "scope": "all",
            "base": "price1",
            "markup_percent": "10",
            "markup_fixed": "0",
            "min_margin": "0",
            "rounding": "1",
            "priority": "0",
        },
    )
    assert response.status_code == 302
    rule = PriceRule.objects.get()
    staff_client.post(
        reverse("admin:catalog_pricerule_change", args=[rule.pk]),
        {
            "name": "Все +12%",
            "active": "on",
            "scope": "all",
            "base": "price1",
            "markup_percent": "12",
            "markup_fixed": "0",
            "min_margin": "0",
            "rounding": "1",
            "priority": "0",
        },
    )
    change = AuditEntry.objects.get(action="price_rule.change")
    assert (change.before["markup_percent"], change.after["markup_percent"]) == ("10.00", "12")
    assert change.user.username == "admin"

    product = factories.product(sku="AS777")
    staff_client.post(
        reverse("admin:catalog_product_changelist"),
        {"action": "disable_on_kaspi", "_selected_action": [product.pk]},
    )
    entry = AuditEntry.objects.get(action="product.disable_on_kaspi")
    assert entry.after == {"skus": ["AS777"]}


def test_audit_log_is_read_only(staff_client):
    entry = AuditEntry.objects.create(action="x")
    assert (
        staff_client.get(reverse("admin:backoffice_auditentry_change", args=[entry.pk])).status_code
        == 200
    )
    assert (
        staff_client.post(
            reverse("admin:backoffice_auditentry_delete", args=[entry.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_fulfilment_change_is_audited(django_user_model):
    from orders.services.fulfilment import set_fulfilment

    user = django_user_model.objects.create_user("picker")
    order = Order.objects.create(kaspi_id="A", code="1")
    set_fulfilment(order=order, to="accepted", user=user)
    entry = AuditEntry.objects.get(action="order.fulfilment")
    assert (entry.before, entry.after, entry.user) == (
        {"fulfilment": "new"},
        {"fulfilment": "accepted"},
        user,
    )


def test_login_throttling_locks_user_and_address(client, django_user_model, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_LOCKOUT_MINUTES = 15
    django_user_model.objects.create_superuser("boss", "", "right-password-1")
    url = reverse("admin:login")
    for _ in range(3):
        client.post(url, {"username": "boss", "password": "wrong"})
    wrong = client.post(url, {"username": "boss", "password": "wrong"})
    right = client.post(url, {"username": "boss", "password": "right-password-1"})
    assert "_auth_user_id" not in client.session  # locked, even with the right password
    for response in (wrong, right):
        assert response.status_code == 429
        assert "locked for 15 minutes" in response.text
    # The page does not tell a right password from a wrong one.
    assert _errornote(wrong) == _errornote(right)

    other = client.post(
        url, {"username": "boss", "password": "right-password-1"}, REMOTE_ADDR="10.1.2.3"
    )
    assert other.status_code == 302  # another address is not locked


def _errornote(response):
    return response.text.split('class="errornote"')[1].split("</p>")[0]


def test_login_lock_by_address_over_many_user_names(client, django_user_model, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 6
    django_user_model.objects.create_superuser("boss", "", "right-password-1")
    url = reverse("admin:login")
    for n in range(6):  # never 3 for one name, 6 from the address
        client.post(url, {"username": f"guess{n}", "password": "wrong"})
    locked = client.post(url, {"username": "boss", "password": "right-password-1"})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    elsewhere = client.post(
        url, {"username": "boss", "password": "right-password-1"}, REMOTE_ADDR="10.9.9.9"
    )
    assert elsewhere.status_code == 302


def test_owner_lists_locks_and_unlocks(client, django_user_model, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    owner = django_user_model.objects.create_superuser("owner", "", "owner-password-1")
    django_user_model.objects.create_user("clerk", password="clerk-password-1", is_staff=True)
    url = reverse("admin:login")
    for _ in range(3):
        client.post(url, {"username": "clerk", "password": "wrong"}, REMOTE_ADDR="10.0.0.5")
    client.post(url, {"username": "someone", "password": "wrong"}, REMOTE_ADDR="10.0.0.6")

    client.force_login(owner)
    listing = client.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200
    assert "10.0.0.5" in listing.text  # the lock
    assert "10.0.0.6" not in listing.text  # one failure is no lock
    from axes.models import AccessAttempt

    attempt = AccessAttempt.objects.get(username="clerk")
    done = client.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "unlock", "_selected_action": [attempt.pk]},
    )
    assert done.status_code == 302
    client.logout()
    again = client.post(
        url, {"username": "clerk", "password": "clerk-password-1"}, REMOTE_ADDR="10.0.0.5"
    )
    assert again.status_code == 302  # unlocked


def test_row_button_lifts_an_address_lock(client, django_user_model, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 4
    owner = django_user_model.objects.create_superuser("owner", "", "owner-password-1")
    django_user_model.objects.create_user("clerk", password="clerk-password-1", is_staff=True)
    url = reverse("admin:login")
    for n in range(4):  # four names from one address: the address is locked
        client.post(url, {"username": f"name{n}", "password": "wrong"}, REMOTE_ADDR="10.0.0.7")
    locked = client.post(
        url, {"username": "clerk", "password": "clerk-password-1"}, REMOTE_ADDR="10.0.0.7"
    )
    assert locked.status_code == 429

    client.force_login(owner)
    listing = client.get(reverse("admin:axes_accessattempt_changelist"))
    from axes.models import AccessAttempt

    attempt = AccessAttempt.objects.filter(ip_address="10.0.0.7").first()
    button = reverse("admin:axes_accessattempt_unlock", args=[attempt.pk])
    assert button in listing.text
    assert client.get(button).status_code == 200  # asks first
    assert client.post(button).status_code == 302
    assert not AccessAttempt.objects.filter(ip_address="10.0.0.7").exists()
    client.logout()
    again = client.post(
        url, {"username": "clerk", "password": "clerk-password-1"}, REMOTE_ADDR="10.0.0.7"
    )
    assert again.status_code == 302


def test_staff_do_not_see_login_locks(staff_in):
    client = staff_in(ORDER_MANAGER)
    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403


def test_public_pages_carry_csp_with_nonce(client):
    payment = create_payment(amount=500)
    response = client.get(f"/pay/{payment.id}/")
    policy = response["Content-Security-Policy"]
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in response.text
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "<?xml" not in response.text


def test_real_ip_only_from_trusted_proxies(client, settings):
    from payments.services.intake import signature_for

    settings.PAYMENTS_WEBHOOK_ALLOWED_IPS = ["203.0.113.7"]
    payment = create_payment(amount=100)
    body = (
        f'{{"orderId": "{payment.reference}", "amount": 100, "status": "paid", '
        f'"transactionId": "T1"}}'
    )
    post = lambda **extra: client.post(  # noqa: E731
        "/api/kaspi-webhook",
        data=body,
        content_type="application/json",
        HTTP_X_SIGNATURE=signature_for(body.encode()),
        **extra,
    )
    settings.TRUSTED_PROXIES = []
    assert post(HTTP_X_REAL_IP="203.0.113.7").status_code == 403  # forged header ignored
    settings.TRUSTED_PROXIES = ["127.0.0.1"]
    assert post(HTTP_X_REAL_IP="203.0.113.7").status_code == 200
