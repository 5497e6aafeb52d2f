import json
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import responses

from catalog.clients.kaspi_offers import (
    FormatChanged,
    IpBlocked,
    KaspiOffersClient,
    MarketUnknown,
    card_id_from_sku,
    card_id_from_url,
    to_tenge,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kaspi_offers"
BASE = "http://kaspi.test"
URL = f"{BASE}/yml/offer-view/offers/123456789"


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 3))
        self.now += seconds

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def client(clock):
    return KaspiOffersClient(base_url=BASE, min_interval=2.0, sleep=clock.sleep, clock=clock)


@pytest.mark.parametrize(
    ("text", "card_id"),
    [
        ("https://kaspi.kz/shop/p/noutbuk-demo-15-123456789/?c=750000000", "123456789"),
        ("https://kaspi.kz/shop/p/-123456789/", "123456789"),
        ("https://kaspi.kz/shop/p/chehol-11636226b/", "11636226b"),
        ("123456789", "123456789"),
        ("https://kaspi.kz/shop/search/?text=demo", None),
        ("not a url", None),
    ],
    ids=["slug", "empty-slug", "letter-suffix", "bare-id", "search-page", "junk"],
)
def test_card_id_from_url(text, card_id):
    assert card_id_from_url(text) == card_id


def test_card_id_from_kaspi_made_sku():
    assert card_id_from_sku("130342357_673822557") == "130342357"
    assert card_id_from_sku("AS10001") is None


@pytest.mark.parametrize(
    ("value", "tenge"),
    [(289990.0, 289990), ("289990.0", 289990), (289990, 289990), (None, None), (True, None)],
)
def test_prices_as_floats_become_whole_tenge(value, tenge):
    assert to_tenge(value) == tenge


@responses.activate
def test_reads_sorted_offers_with_the_page_headers(client):
    responses.post(URL, json=fixture("page_almaty.json"))

    market = client.card_offers("123456789", "750000000")

    sent = responses.calls[0].request
    body = json.loads(sent.body)
    assert body["cityId"] == "750000000"
    assert body["id"] == "123456789"
    assert (body["limit"], body["page"], body["sortOption"]) == (64, 0, "PRICE")
    assert sent.headers["X-KS-City"] == "750000000"
    assert sent.headers["Referer"] == f"{BASE}/shop/p/-123456789/?c=750000000"
    assert sent.headers["User-Agent"].startswith("Mozilla/5.0")
    assert "Authorization" not in sent.headers
    assert "X-Auth-Token" not in sent.headers
    # A shop listed twice keeps its lowest price; entries without id or price are skipped.
    assert [(o.merchant_id, o.price, o.position) for o in market.offers] == [
        ("17240031", 289990, 1),
        ("30581207", 290400, 2),
        ("30999001", 295000, 3),
    ]
    nomad, cifra, ours = market.offers
    assert nomad.rating == Decimal("4.7")
    assert nomad.reviews == 812
    assert nomad.inter_city is False
    assert cifra.inter_city is True
    assert cifra.rating is None
    assert cifra.reviews == 0
    assert cifra.preorder == 3
    assert ours.delivery_type == ""  # absent in the answer
    assert market.master_category == "Master - Notebooks"
    assert market.total == 6


@responses.activate
def test_a_non_empty_page_without_usable_entries_is_format_changed(client):
    responses.post(URL, json=fixture("shape_changed.json"))

    with pytest.raises(FormatChanged, match="format changed"):
        client.card_offers("123456789", "750000000")


@responses.activate
def test_an_empty_answer_is_no_offers(client):
    responses.post(URL, json=fixture("empty.json"))

    assert client.card_offers("123456789", "750000000").offers == []


@responses.activate
def test_calls_are_paced_by_the_min_interval(client, clock):
    responses.post(URL, json=fixture("empty.json"))

    for _ in range(3):
        client.card_offers("123456789", "750000000")

    assert clock.sleeps == [2.0, 2.0]


@responses.activate
def test_after_a_403_the_first_wait_is_at_least_15_seconds(client, clock):
    responses.post(URL, status=403, body="<html>403 Forbidden</html>", content_type="text/html")
    responses.post(URL, json=fixture("page_almaty.json"))

    market = client.card_offers("123456789", "750000000")

    assert len(market.offers) == 3
    assert clock.sleeps[0] >= 15.0
    assert client.consecutive_403 == 0


@responses.activate
@pytest.mark.parametrize(
    "failure",
    [
        {"status": 502, "body": "<html>502 Bad Gateway</html>", "content_type": "text/html"},
        {"status": 200, "body": "<html>Проверка браузера</html>", "content_type": "text/html"},
        {
            "status": 200,
            "body": '{"offers": [{"merchantId": "1", "pri',
            "content_type": "application/json",
        },
    ],
    ids=["gateway", "html-challenge", "truncated"],
)
def test_an_empty_answer_after_an_error_is_market_unknown(client, failure):
    responses.post(URL, **failure)
    responses.post(URL, json=fixture("empty.json"))

    with pytest.raises(MarketUnknown, match="empty answer after an error"):
        client.card_offers("123456789", "750000000")


@responses.activate
def test_three_attempts_at_most_then_market_unknown(client):
    responses.post(URL, status=503, body="<html>503</html>", content_type="text/html")

    with pytest.raises(MarketUnknown, match="3 attempts failed"):
        client.card_offers("123456789", "750000000")
    assert len(responses.calls) == 3


@responses.activate
def test_timeouts_are_market_unknown(client):
    responses.post(URL, body=requests.ReadTimeout("slow"))

    with pytest.raises(MarketUnknown):
        client.card_offers("123456789", "750000000")
    assert len(responses.calls) == 3


@responses.activate
def test_five_consecutive_403s_stop(client):
    responses.post(URL, status=403, body="<html>403</html>", content_type="text/html")

    with pytest.raises(MarketUnknown):
        client.card_offers("123456789", "750000000")  # attempts 1-3
    with pytest.raises(IpBlocked, match="refused our IP"):
        client.card_offers("123456789", "750000000")  # attempts 4-5
    assert len(responses.calls) == 5


@responses.activate
def test_search_returns_candidates(client):
    responses.get(
        f"{BASE}/yml/product-view/pl/results",
        json={
            "data": [
                {"id": "123456789", "title": "Ноутбук Demo", "brand": "Demo", "unitPrice": 1990.0},
                {"title": "no id"},
            ]
        },
    )

    found = client.search("Ноутбук Demo")

    assert found == [
        {
            "id": "123456789",
            "title": "Ноутбук Demo",
            "brand": "Demo",
            "unit_price": 1990,
            "url": f"{BASE}/shop/p/-123456789/",
        }
    ]


@responses.activate
def test_the_interval_counts_from_the_end_of_the_previous_call(clock):
    """A slow answer does not shorten the pause Kaspi sees between two arrivals."""

    def slow_answer(request):
        clock.now += 1.5  # the call takes 1.5 s
        return (200, {}, json.dumps(fixture("empty.json")))

    responses.add_callback(responses.POST, URL, callback=slow_answer)
    client = KaspiOffersClient(base_url=BASE, min_interval=2.0, sleep=clock.sleep, clock=clock)

    client.card_offers("123456789", "750000000")
    client.card_offers("123456789", "750000000")

    assert clock.sleeps == [2.0]
