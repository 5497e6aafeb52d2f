"""Every admin page staff open reads Russian: each changelist and change page, rendered in
Russian over the demo data and a run of each kind, holds no Latin word that is not a code
shown as such (<code>, a tooltip), a name from the data, or in the allow-list below."""

import re

import pytest
from django.contrib import admin
from django.db import models
from django.urls import reverse
from django.utils import timezone
from lxml import html as lxml_html

from backoffice.core.audit import audit
from backoffice.core.labels import (
    CANCELLATION_REASON,
    DELIVERY_MODE,
    ORDER_STATE,
    ORDER_STATUS,
    PAYMENT_MODE,
)
from backoffice.models import SyncRun

# Names and abbreviations staff read as they are.
ALLOWED = {
    "Kaspi", "Al", "Style", "SKU", "QR", "API", "XML", "JSON", "URL", "ID", "IP", "UTC",
    "KZT", "CSV", "XLSX", "YML", "Part", "Number", "User", "Agent", "Cron", "PP", "Telegram",
    "Email", "Mail", "SMS", "HTTP", "HTTPS", "PDF", "Postomat",
    # Django's own help for multiple choice: «Удерживайте “Control“ (или “Command“ на Mac)».
    "Control", "Command", "Mac",
    # Kaspi's own field names, quoted in help texts.
    "masterCategory", "QrPaymentId",
    # The YML price-file format and its element names, quoted in the column-mapping help;
    # the credentials format user:password.
    "vendorCode", "param", "id", "password",
}  # fmt: skip
LATIN = re.compile(r"[A-Za-z]{2,}")
# Kaspi's codes are shown in words; their pieces are not names, even when a record holds them.
CODE_WORDS = {
    word
    for mapping in (ORDER_STATE, ORDER_STATUS, DELIVERY_MODE, PAYMENT_MODE, CANCELLATION_REASON)
    for code in mapping
    for word in code.split("_")
}
# Fields whose values are codes or machine text, not names.
NAME_TEXTS = {"name", "title", "full_name", "description", "delivery_address", "user_agent"}
NOT_NAMES = {
    "status", "state", "kind", "action", "event_type", "payment_mode", "delivery_mode",
    "source", "status_before", "status_after", "type", "result",
}  # fmt: skip


def visible_text(page: str) -> str:
    """The words a user reads: text nodes, button labels and placeholders; not scripts,
    raw data blocks (<pre>, <code>), tooltips or what was typed into fields."""
    doc = lxml_html.fromstring(page)
    for hidden in doc.xpath(
        "//script|//style|//pre|//code|//bdi|//textarea|//head|//*[@hidden]|//template"
    ):
        hidden.drop_tree()
    parts = list(doc.xpath("//body//text()"))
    parts += [el.get("value") or "" for el in doc.xpath("//input[@type='submit']")]
    parts += [el.get("placeholder") for el in doc.xpath("//input[@placeholder]")]
    return " ".join(parts)


def data_words() -> set[str]:
    """Latin words found in names stored in the database (products, brands, customers…)."""
    from django.apps import apps

    words = set()
    for model in apps.get_models():
        fields = [
            f.name
            for f in model._meta.concrete_fields
            if (
                isinstance(f, models.CharField | models.URLField)
                or (isinstance(f, models.TextField) and f.name in NAME_TEXTS)
            )
            and not f.choices
            and f.name not in NOT_NAMES
        ]
        for row in model._default_manager.values_list(*fields) if fields else []:
            for value in row:
                words.update(LATIN.findall(value or ""))
    return words - CODE_WORDS


def _pages(model, model_admin):
    prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
    yield reverse(f"{prefix}_changelist")
    obj = model._default_manager.first()
    if obj is not None:
        yield reverse(f"{prefix}_change", args=[obj.pk])


@pytest.fixture
def shop_data(django_user_model):
    from catalog.services.demo import load_demo_catalog
    from orders.models import Order
    from orders.services.demo import load_demo_orders
    from orders.services.fulfilment import set_fulfilment
    from payments.services.demo import load_demo_payments

    load_demo_catalog()
    load_demo_orders()
    load_demo_payments()
    owner = django_user_model.objects.create_superuser("owner", "", "pw-123456")
    for role in ("Order manager", "Accountant", "Catalog manager"):
        django_user_model.objects.create_user(role.split()[0].lower(), password="pw-123456")
    order = Order.objects.filter(fulfilment="new").first()
    set_fulfilment(order=order, to="accepted", user=owner, note="")
    audit(user=owner, action="payment.refund", note="")
    for kind in SyncRun.Kind.values:
        SyncRun.objects.create(
            kind=kind,
            status=SyncRun.Status.OK,
            finished_at=timezone.now(),
            counts={"fetched": 3, "errors": 0, "skipped_bad_sku": 1, "offers": 2},
        )
    return owner


@pytest.mark.django_db
def test_every_admin_page_reads_russian(client, shop_data, settings):
    settings.LANGUAGE_CODE = "ru"
    client.force_login(shop_data)
    names = data_words()
    found = {}
    for model, model_admin in admin.site._registry.items():
        for url in _pages(model, model_admin):
            response = client.get(url)
            assert response.status_code == 200, url
            text = " ".join(visible_text(response.content.decode()).split())
            for match in LATIN.finditer(text):
                word = match.group()
                if word not in ALLOWED and word not in names and word not in found:
                    around = text[max(0, match.start() - 40) : match.end() + 40]
                    found[word] = f"{url}: …{around}…"
    assert not found, "Latin words on Russian pages:\n" + "\n".join(
        f"{word}  {where}" for word, where in found.items()
    )


def test_the_checker_sees_english_and_codes():
    page = (
        "<html><body><p>Статус: APPROVED_BY_BANK, offers: 3</p>"
        "<code>APPROVED_BY_BANK</code><span title='PICKUP'>Самовывоз</span></body></html>"
    )
    assert LATIN.findall(visible_text(page)) == ["APPROVED", "BY", "BANK", "offers"]


@pytest.mark.django_db
def test_english_browser_gets_the_shops_russian_admin(staff_client, settings):
    settings.LANGUAGE_CODE = "ru"

    page = staff_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    assert page["Content-Language"] == "ru"
    assert '<html lang="ru"' in page.text
    assert "Выйти" in page.text
    assert "Log out" not in page.text


@pytest.mark.django_db
def test_a_chosen_language_in_the_set_language_cookie_wins(staff_client, settings):
    settings.LANGUAGE_CODE = "ru"
    staff_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    page = staff_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="ru")

    assert page["Content-Language"] == "en"
    assert "Log out" in page.text
    assert "Выйти" not in page.text


@pytest.mark.django_db
@pytest.mark.parametrize("cookie", ["de", "", "en-us-evil"], ids=["other", "empty", "unknown"])
def test_a_cookie_outside_languages_falls_back_to_the_shops_language(
    staff_client, settings, cookie
):
    settings.LANGUAGE_CODE = "ru"
    staff_client.cookies[settings.LANGUAGE_COOKIE_NAME] = cookie

    page = staff_client.get(reverse("admin:index"), HTTP_ACCEPT_LANGUAGE="en")

    assert page["Content-Language"] == "ru"
    assert "Выйти" in page.text


def test_admin_titles_read_right_whatever_the_models_gender(staff_client, settings):
    """Django puts the model's name into «Выберите %s для изменения» / «Добавить %s», which
    needs the accusative («категорию»); the shop's catalogue words them so the name can stand
    as it is."""
    settings.LANGUAGE_CODE = "ru"
    page = staff_client.get(reverse("admin:catalog_category_changelist")).content.decode()
    assert "Выберите для изменения: категория" in page
    assert "Выберите категория" not in page
    page = staff_client.get(reverse("admin:catalog_pricerule_add")).content.decode()
    assert "Добавить: правило наценки" in page


def test_who_started_a_run_reads_in_words(staff_client, settings):
    settings.LANGUAGE_CODE = "ru"
    SyncRun.objects.create(kind=SyncRun.Kind.FEED, status="ok", triggered_by="user")
    SyncRun.objects.create(kind=SyncRun.Kind.FEED, status="ok", triggered_by="schedule")
    page = staff_client.get(reverse("admin:backoffice_syncrun_changelist")).content.decode()
    assert "сотрудник в админке" in page
    assert "расписание" in page
    assert ">user<" not in page
