"""Payments from the admin (issue 17.6): «Новый платёж» creates a payment through the
provider and shows the QR and link; the page is read-only with the basket as a table; a
failed payment offers «Попробовать снова»; «Возврат» asks first and moves the sale;
«Обновить статус» says what it found."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from lxml import html as lxml_html

from backoffice.models import AuditEntry
from backoffice.ops.roles import ACCOUNTANT
from orders.models import Order
from payments.models import Payment
from payments.services.create import create_payment
from payments.services.events import apply_payment_event


@pytest.fixture(autouse=True)
def _russian(settings):
    settings.LANGUAGE_CODE = "ru"
    settings.PAYMENTS_PROVIDER = "demo"  # no credentials needed


@pytest.fixture
def accountant(client, django_user_model):
    user = django_user_model.objects.create_user("buh", password="pw-123456", is_staff=True)
    user.groups.add(Group.objects.get(name=ACCOUNTANT))
    client.force_login(user)
    client.user = user
    return client


def change_url(payment):
    return reverse("admin:payments_payment_change", args=[payment.pk])


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def test_accountant_creates_a_payment_and_sees_qr_and_link(accountant):
    page = accountant.get(reverse("admin:payments_payment_changelist")).text
    assert "Новый платёж" in page
    response = accountant.post(
        reverse("admin:payments_payment_add"),
        {"amount": "4990", "description": "Чехол, в магазине"},
        follow=True,
    )
    payment = Payment.objects.get()
    assert (payment.amount, payment.status, payment.provider) == (4990, "pending", "demo")
    assert payment.created_by == accountant.user
    assert response.redirect_chain[-1][0] == change_url(payment)
    assert "<svg" in response.text  # the QR to show the customer
    assert f'id="payment-link">{payment.payment_link}<' in response.text
    assert "4\u00a0990\u00a0₸" in messages_of(response)[0]
    assert AuditEntry.objects.filter(action="payment.create", object_id=str(payment.pk)).exists()


def test_new_payment_for_an_order_takes_the_amount_due(accountant):
    sale = Order.objects.create(channel="direct", code="D-7", total_price=12000)
    kaspi = Order.objects.create(channel="kaspi", kaspi_id="K1", code="K-1", total_price=500)
    form = accountant.get(reverse("admin:payments_payment_add")).text
    assert "D-7" in form
    assert "K-1" not in form
    accountant.post(reverse("admin:payments_payment_add"), {"order": sale.pk})
    assert Payment.objects.get().amount == 12000
    assert kaspi.payments.count() == 0


def test_new_payment_refusal_is_shown_in_russian(accountant):
    sale = Order.objects.create(channel="direct", code="D-8", total_price=12000)
    response = accountant.post(
        reverse("admin:payments_payment_add"), {"order": sale.pk, "amount": 5}
    )
    assert "не совпадает с суммой к оплате" in response.text
    assert Payment.objects.count() == 0
    empty = accountant.post(reverse("admin:payments_payment_add"), {"description": "x"})
    assert "Укажите сумму или выберите заказ" in empty.text


def test_payment_page_is_read_only_and_shows_the_basket_as_a_table(accountant):
    payment = create_payment(
        amount=3000,
        basket=[{"sku": "AS1", "name": "Кабель USB-C", "quantity": 2, "price": 1500}],
    )
    page = accountant.get(change_url(payment)).text
    doc = lxml_html.fromstring(page)
    editable = doc.xpath(
        "//form[@id='payment_form']//*[self::input or self::textarea or self::select]"
    )
    names = {el.get("name") for el in editable if el.get("type") != "hidden"}
    assert not names & {"options", "next_poll_at_0", "last_polled_at_0", "amount", "basket"}
    assert not doc.xpath("//input[@name='_save']")
    cells = [td.text_content() for td in doc.xpath("//td")]
    assert "Кабель USB-C" in cells
    assert "3\u00a0000\u00a0₸" in cells
    assert '"sku"' not in page  # not JSON


def test_failed_payment_offers_try_again(accountant):
    sale = Order.objects.create(channel="direct", code="D-9", total_price=700)
    payment = create_payment(order=sale)
    apply_payment_event(payment_id=payment.pk, source="demo", key="f", status="failed")
    page = accountant.get(change_url(payment)).text
    assert "Попробовать снова" in page
    response = accountant.post(
        reverse("admin:payments_payment_retry", args=[payment.pk]), follow=True
    )
    new = Payment.objects.exclude(pk=payment.pk).get()
    assert (new.amount, new.order, new.status) == (700, sale, "pending")
    assert response.redirect_chain[-1][0] == change_url(new)
    assert "<svg" in response.text


def test_open_payment_has_no_try_again_nor_refund(accountant):
    payment = create_payment(amount=100)
    page = accountant.get(change_url(payment)).text
    assert "Попробовать снова" not in page
    assert "Возврат…" not in page
    assert "Обновить статус" in page


def test_refund_asks_first_then_cancels_the_sale(accountant):
    sale = Order.objects.create(channel="direct", code="D-10", total_price=900)
    payment = create_payment(order=sale)
    apply_payment_event(payment_id=payment.pk, source="demo", key="p", status="paid")
    url = reverse("admin:payments_payment_refund", args=[payment.pk])
    assert "Возврат…" in accountant.get(change_url(payment)).text
    asked = accountant.get(url)
    assert "Да, записать возврат" in asked.text
    assert "900\u00a0₸" in asked.text
    accountant.post(url)  # no confirmation: nothing happens
    assert Payment.objects.get(pk=payment.pk).status == "paid"
    response = accountant.post(url, {"confirm": "yes"}, follow=True)
    assert Payment.objects.get(pk=payment.pk).status == "refunded"
    sale.refresh_from_db()
    assert (sale.status, sale.fulfilment) == ("CANCELLED", "cancelled")
    assert "D-10" in messages_of(response)[0]
    assert "Kaspi Pay" in messages_of(response)[0]
    assert AuditEntry.objects.filter(action="payment.refund").count() == 1


def test_refund_of_a_handed_over_sale_returns_it(accountant):
    sale = Order.objects.create(
        channel="direct", code="D-11", total_price=900, fulfilment="handed_over"
    )
    payment = create_payment(order=sale)
    apply_payment_event(payment_id=payment.pk, source="demo", key="p", status="paid")
    accountant.post(reverse("admin:payments_payment_refund", args=[payment.pk]), {"confirm": "1"})
    sale.refresh_from_db()
    assert sale.fulfilment == "returned"


def test_refresh_status_says_what_it_found(accountant):
    payment = create_payment(amount=100)
    response = accountant.post(
        reverse("admin:payments_payment_refresh", args=[payment.pk]), follow=True
    )
    (message,) = messages_of(response)
    assert payment.reference in message
    assert "демо" in message
    assert "ожидает оплаты" in message
    apply_payment_event(payment_id=payment.pk, source="demo", key="p", status="paid")
    response = accountant.post(
        reverse("admin:payments_payment_changelist"),
        {"action": "refresh_status", "_selected_action": [payment.pk]},
        follow=True,
    )
    assert "проверять нечего" in messages_of(response)[0]


def test_view_only_staff_get_no_payment_buttons(client, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw-123456", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_payment"))
    client.force_login(user)
    payment = create_payment(amount=100)
    page = client.get(change_url(payment)).text
    assert "Обновить статус" not in page
    assert "Новый платёж" not in client.get(reverse("admin:payments_payment_changelist")).text
    assert client.get(reverse("admin:payments_payment_add")).status_code == 403
    client.post(reverse("admin:payments_payment_refresh", args=[payment.pk]))
    assert (
        client.post(reverse("admin:payments_payment_retry", args=[payment.pk])).status_code == 403
    )
