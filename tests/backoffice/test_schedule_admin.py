"""The schedules page in plain words (issue 17.10): what, how often, next run in shop time,
on/off; no function path or pickled arguments; the time hint matches what is shown."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django_q.models import Schedule
from lxml import html as lxml_html

from backoffice.core.schedules import setup_schedules


@pytest.fixture
def owner(client, django_user_model, settings):
    settings.LANGUAGE_CODE = "ru"
    settings.ALSTYLE_TOKEN = "alstyle-test-token-9f8e7d6c5b4a"
    settings.KASPI_SHOP_TOKEN = ""
    setup_schedules()
    client.force_login(django_user_model.objects.create_superuser("owner", "", "pw-123456"))
    return client


def text_of(page: str) -> str:
    doc = lxml_html.fromstring(page)
    for hidden in doc.xpath("//script|//style|//head"):
        hidden.drop_tree()
    return " ".join(doc.text_content().split())


def test_list_says_what_how_often_and_when_in_shop_time(owner):
    catalog = Schedule.objects.get(name="catalog-sync")
    Schedule.objects.filter(pk=catalog.pk).update(next_run=datetime(2026, 3, 1, 5, 30, tzinfo=UTC))
    page = text_of(owner.get(reverse("admin:django_q_schedule_changelist")).text)
    assert "Синхронизация каталога Al-Style" in page
    assert "каждые 30 минут" in page
    assert "01.03.2026 10:30" in page  # 05:30 UTC is 10:30 in Almaty
    assert "catalog.tasks.sync_catalog_task" not in page
    assert "Загрузка заказов Kaspi" in page
    assert "выключено (не задано: KASPI_SHOP_TOKEN)" in page


def test_change_page_has_plain_fields_and_an_honest_time_hint(owner):
    schedule = Schedule.objects.get(name="daily-summary")
    response = owner.get(reverse("admin:django_q_schedule_change", args=[schedule.pk]))
    doc = lxml_html.fromstring(response.text)
    names = {el.get("name") for el in doc.xpath("//form//*[@name]")}
    assert {"enabled", "next_run_0", "next_run_1"} <= names
    assert not names & {"func", "args", "kwargs", "hook", "repeats", "schedule_type", "cron"}
    page = text_of(response.text)
    assert "UTC" not in page
    assert "Время магазина (Asia/Almaty)" in page
    assert "каждый день в 09:00" in page
    assert "manage.py orders_daily_summary" in page


def test_switching_off_and_moving_the_next_run(owner):
    schedule = Schedule.objects.get(name="daily-summary")
    url = reverse("admin:django_q_schedule_change", args=[schedule.pk])
    owner.post(url, {"next_run_0": "02.03.2026", "next_run_1": "10:30:00"})
    schedule.refresh_from_db()
    assert schedule.repeats == 0  # the box was left unticked: off
    assert schedule.next_run == datetime(2026, 3, 2, 5, 30, tzinfo=UTC)
    page = text_of(owner.get(reverse("admin:django_q_schedule_changelist")).text)
    assert "выключено сотрудником" in page
    owner.post(url, {"enabled": "on", "next_run_0": "02.03.2026", "next_run_1": "10:30:00"})
    schedule.refresh_from_db()
    assert schedule.repeats == -1
    assert "каждый день в 10:30" in text_of(owner.get(url).text)


def test_schedules_are_neither_added_nor_deleted_here(owner):
    schedule = Schedule.objects.first()
    assert owner.get(reverse("admin:django_q_schedule_add")).status_code == 403
    delete = reverse("admin:django_q_schedule_delete", args=[schedule.pk])
    assert owner.post(delete, {"post": "yes"}).status_code == 403
    assert Schedule.objects.filter(pk=schedule.pk).exists()
