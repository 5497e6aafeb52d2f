import pytest
from responses import matchers

from backoffice.core.exceptions import ExternalServiceError
from catalog.clients.alstyle import AlStyleClient, RateLimiter
from catalog.clients.records import parse_element, parse_money, parse_quantity
from tests.factories import element

API = "https://api.al-style.kz/api/"
TOKEN = "alstyle-test-token-9f8e7d6c5b4a"


def page(elements, current, total_pages, total_count):
    return {
        "elements": elements,
        "pagination": {
            "totalCount": total_count,
            "totalPages": total_pages,
            "currentPage": current,
            "limit": 2,
            "offset": (current - 1) * 2,
        },
    }


def test_paginates_until_last_page_with_token_in_query(mocked_http, settings):
    settings.ALSTYLE_PAGE_SIZE = 2
    for number, offset, items in [(1, 0, [1, 2]), (2, 2, [3, 4]), (3, 4, [5])]:
        mocked_http.get(
            API + "elements-pagination",
            match=[
                matchers.query_param_matcher(
                    {
                        "limit": "2",
                        "offset": str(offset),
                        "additional_fields": "brand",
                        "access-token": TOKEN,
                    }
                )
            ],
            json=page([element(i) for i in items], number, 3, 5),
        )
    client = AlStyleClient(token=TOKEN)

    pages = list(client.iter_product_pages())

    assert [[e["article"] for e in p] for p in pages] == [[1, 2], [3, 4], [5]]
    assert client.calls == 3


def test_endless_pagination_is_stopped(mocked_http, settings):
    settings.ALSTYLE_PAGE_SIZE = 1
    settings.ALSTYLE_MAX_PAGES = 3
    # A broken API that always says "page 1 of 99" and never runs dry.
    for _ in range(3):
        mocked_http.get(API + "elements-pagination", json=page([element(1)], 1, 99, 10**6))

    with pytest.raises(ExternalServiceError, match="pagination did not end after 3 pages"):
        list(AlStyleClient(token=TOKEN).iter_product_pages())


def test_403_rate_limit_then_recovery(mocked_http, settings):
    settings.ALSTYLE_RATE_LIMIT_PAUSE = 10
    mocked_http.get(API + "categories", status=403, json={"message": "Too many requests"})
    mocked_http.get(API + "categories", json=[{"id": 1, "name": "A"}])
    sleeps = []
    client = AlStyleClient(token=TOKEN, sleep=sleeps.append)

    assert client.categories() == [{"id": 1, "name": "A"}]
    assert 10 in sleeps


def test_403_forever_gives_plain_error(mocked_http, settings):
    settings.ALSTYLE_RATE_LIMIT_RETRIES = 2
    for _ in range(3):
        mocked_http.get(API + "categories", status=403)

    with pytest.raises(ExternalServiceError, match="access refused") as err:
        AlStyleClient(token=TOKEN, sleep=lambda s: None).categories()
    assert err.value.status == 403


def test_token_never_in_error_or_log(mocked_http, caplog):
    mocked_http.get(API + "categories", status=401)

    with pytest.raises(ExternalServiceError) as err:
        AlStyleClient(token=TOKEN).categories()

    assert "token was rejected" in str(err.value)
    assert TOKEN not in str(err.value)
    assert TOKEN not in caplog.text


def test_missing_token_is_a_clear_error(settings):
    settings.ALSTYLE_TOKEN = ""
    with pytest.raises(ExternalServiceError, match="set ALSTYLE_TOKEN"):
        AlStyleClient()


class FakeClock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 3))
        self.now += seconds


def test_rate_limiter_spaces_calls_by_interval():
    clock = FakeClock()
    limiter = RateLimiter("tok", 5.0, margin=0, clock=clock.time, sleep=clock.sleep)

    limiter.wait()  # first call: no wait
    clock.now += 1.0  # one second of work
    limiter.wait()  # must wait the remaining 4 s
    limiter.wait()  # immediately again: a full 5 s

    assert clock.sleeps == [4.0, 5.0]


def test_rate_limiter_is_shared_through_the_cache():
    """Two limiter objects (two processes) for one token share one clock."""
    clock = FakeClock()
    first = RateLimiter("tok", 5.0, margin=0, clock=clock.time, sleep=clock.sleep)
    second = RateLimiter("tok", 5.0, margin=0, clock=clock.time, sleep=clock.sleep)
    other_token = RateLimiter("other", 5.0, margin=0, clock=clock.time, sleep=clock.sleep)

    first.wait()
    second.wait()
    other_token.wait()

    assert clock.sleeps == [5.0]


def test_client_waits_for_slot_before_each_call(mocked_http):
    clock = FakeClock()
    limiter = RateLimiter("t", 5.0, margin=0, clock=clock.time, sleep=clock.sleep)
    mocked_http.get(API + "categories", json=[])
    mocked_http.get(API + "brands", json={"data": []})
    client = AlStyleClient(token=TOKEN, limiter=limiter)

    client.categories()
    client.brands()

    assert clock.sleeps == [5.0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (12, (12, "12")),
        ("12", (12, "12")),
        (">50", (50, ">50")),
        ("> 100", (100, "> 100")),
        ("<10", (1, "<10")),
        ("", (0, "")),
        (None, (0, "")),
        (0, (0, "0")),
        ("много", (0, "много")),
        (-3, (0, "-3")),
    ],
    ids=repr,
)
def test_parse_quantity(raw, expected):
    assert parse_quantity(raw)[:2] == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(161000, 161000), ("161000", 161000), ("161 000", 161000), ("1990.00", 1990), (None, None)],
)
def test_parse_money(raw, expected):
    assert parse_money(raw) == expected


def test_parse_element_rejects_bad_price_with_article():
    with pytest.raises(ValueError, match="article 77: price 'abc' is not a number"):
        parse_element(element(77, price1="abc"))


def test_parse_element_keeps_hostile_name_exactly():
    name = 'Кабель "USB" <&> 😀 ' + "x" * 600
    record = parse_element(element(5, name=name + "\x00"))
    assert record.name == name
    assert record.price_on_request is False
    assert parse_element(element(6, price1=1)).price_on_request is True


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Мышь\x0bLogitech\tM185\u200b беспроводная", "Мышь Logitech M185 беспроводная"),
        ("Мышь\u200bLogitech", "Мышь Logitech"),
        ("Клавиатура A4Tech\x00KR-85", "Клавиатура A4Tech KR-85"),
        ("\ufeffSSD\x85 1TB\u2060", "SSD 1TB"),
        ('  Монитор   Samsung  27"  ', 'Монитор Samsung 27"'),
        ("Line\r\nbreak\x1fhere\x7fend", "Line break here end"),
    ],
)
def test_control_and_zero_width_characters_become_one_space(raw, expected):
    """Issue 14.8: \\x0b between two words glued them ("МышьLogitech"); zero-width kept."""
    assert parse_element(element(9, name=raw)).name == expected
