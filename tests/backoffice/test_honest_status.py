"""Honest status (issue 17.11): a run certain to fail (no token) is refused at once in
Russian instead of queued; «Kaspi скачал» shows the last download with its address and
User-Agent, and once Kaspi's User-Agent or addresses are named only those count as Kaspi's
while the last other download is shown apart."""

import pytest
from django.urls import reverse

from backoffice.models import SyncRun
from catalog.models import FeedFetch
from catalog.services.feed import build_feed
from catalog.services.fetches import reset_fetch_throttle
from tests import factories


@pytest.fixture
def owner(client, django_user_model, settings):
    settings.LANGUAGE_CODE = "ru"
    client.force_login(django_user_model.objects.create_superuser("owner", "", "pw-123456"))
    return client


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def test_dashboard_refuses_a_sync_without_a_token_at_once(owner, settings):
    settings.ALSTYLE_TOKEN = ""
    response = owner.post(reverse("dashboard"), {"what": "catalog"}, follow=True)
    (message,) = messages_of(response)
    assert "Запуск «Синхронизация каталога» не начат" in message
    assert "ALSTYLE_TOKEN" in message
    assert not SyncRun.objects.exists()


def test_dashboard_still_queues_a_configured_run(owner, settings, mocked_http):
    settings.ALSTYLE_TOKEN = "alstyle-test-token-9f8e7d6c5b4a"
    response = owner.post(reverse("dashboard"), {"what": "feed"}, follow=True)
    assert "поставлен в очередь" in messages_of(response)[0]
    assert SyncRun.objects.filter(kind="feed").exists()


def test_order_import_without_a_token_is_refused_from_the_list(owner, settings):
    settings.KASPI_SHOP_TOKEN = ""
    response = owner.post(reverse("admin:orders_order_pull"), follow=True)
    (message,) = messages_of(response)
    assert "не начат" in message
    assert "KASPI_SHOP_TOKEN" in message
    assert not SyncRun.objects.exists()


def test_catalog_sync_button_without_a_token_is_refused(owner, settings):
    settings.ALSTYLE_TOKEN = ""
    response = owner.post(reverse("admin:catalog_product_sync"), follow=True)
    assert "ALSTYLE_TOKEN" in messages_of(response)[0]
    assert not SyncRun.objects.exists()


@pytest.fixture
def feed(client):
    factories.product(article="1", sku="AS1", kaspi_price=5000)
    build_feed()

    def download(agent, ip):
        reset_fetch_throttle()
        return client.get("/feed.xml", HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)

    return download


def card_lines(owner):
    page = owner.get(reverse("dashboard")).text
    return " ".join(page.split())


def test_unmarked_downloads_show_address_and_agent_as_unverified(owner, feed, settings):
    settings.KASPI_FEED_USER_AGENTS = []
    settings.KASPI_FEED_ADDRESSES = []
    feed("Mozilla/5.0 (compatible; Fetcher)", "194.187.1.10")
    text = card_lines(owner)
    assert "Последняя загрузка: " in text
    assert "с адреса 194.187.1.10, User-Agent «Mozilla/5.0 (compatible; Fetcher)»" in text
    assert "не проверено, что это Kaspi" in text


def test_marked_user_agent_counts_only_kaspi_and_shows_the_other_apart(owner, feed, settings):
    settings.KASPI_FEED_USER_AGENTS = ["KaspiBot"]
    settings.KASPI_FEED_ADDRESSES = []
    feed("Mozilla/5.0 kaspibot/2.1", "194.187.1.10")
    feed("curl/8.5.0", "5.6.7.8")
    kaspi, other = FeedFetch.objects.get(key="feed"), FeedFetch.objects.get(key="other")
    assert (kaspi.last_user_agent, kaspi.fetch_count) == ("Mozilla/5.0 kaspibot/2.1", 1)
    assert (other.last_ip, other.fetch_count) == ("5.6.7.8", 1)
    text = card_lines(owner)
    assert "Kaspi скачал: " in text
    assert "User-Agent «Mozilla/5.0 kaspibot/2.1»" in text
    assert "Последняя другая загрузка: " in text
    assert "с адреса 5.6.7.8, User-Agent «curl/8.5.0»" in text
    assert "не проверено" not in text


def test_marked_addresses_match_ips_and_networks(feed, settings):
    settings.KASPI_FEED_USER_AGENTS = []
    settings.KASPI_FEED_ADDRESSES = ["10.0.0.0/8", "194.187.1.10"]
    feed("any", "10.20.30.40")
    feed("any", "194.187.1.10")
    feed("any", "194.187.1.11")
    assert FeedFetch.objects.get(key="feed").fetch_count == 2
    assert FeedFetch.objects.get(key="other").last_ip == "194.187.1.11"


def test_no_kaspi_download_yet_is_said(owner, feed, settings):
    settings.KASPI_FEED_USER_AGENTS = ["KaspiBot"]
    feed("curl/8.5.0", "5.6.7.8")
    text = card_lines(owner)
    assert "Kaspi ещё не скачивал" in text
    assert "Последняя другая загрузка" in text


def test_dashboard_names_schedules_and_counters_in_words(owner):
    from backoffice.core.schedules import setup_schedules

    setup_schedules()
    SyncRun.objects.create(
        kind="feed", status="ok", counts={"unchanged": False, "legacy_offers": 2}
    )
    text = card_lines(owner)
    assert "Синхронизация каталога Al-Style" in text
    assert "без изменений: нет" in text
    assert "legacy_offers" not in text
