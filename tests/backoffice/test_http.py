import logging

import pytest
import requests
import responses

from backoffice.core.exceptions import ExternalServiceError
from backoffice.core.http import HttpClient, RetryRule

URL = "https://api.example.test/v1/"


def make_client(**kw):
    sleeps = []
    client = HttpClient(service="Example", base_url=URL, retries=3, sleep=sleeps.append, **kw)
    return client, sleeps


def test_retries_503_then_succeeds(mocked_http):
    mocked_http.get(URL + "items", status=503)
    mocked_http.get(URL + "items", status=503)
    mocked_http.get(URL + "items", json={"ok": True})
    client, sleeps = make_client()

    assert client.get_json("items") == {"ok": True}
    assert len(mocked_http.calls) == 3
    assert len(sleeps) == 2


def test_backoff_grows_exponentially(settings):
    settings.HTTP_BACKOFF_MAX = 1000
    client, _ = make_client(backoff_factor=1.0)
    for attempt in range(4):
        value = client.backoff(attempt)
        assert 2**attempt / 2 <= value <= 2**attempt


def test_no_retry_on_400_and_api_title_in_error(mocked_http):
    mocked_http.get(
        URL + "orders",
        status=400,
        json={"errors": [{"title": "Exceeded the maximum difference for the filter"}]},
    )
    client, sleeps = make_client()

    with pytest.raises(ExternalServiceError) as err:
        client.get_json("orders")

    assert len(mocked_http.calls) == 1
    assert sleeps == []
    assert err.value.status == 400
    assert err.value.title == "Exceeded the maximum difference for the filter"
    assert "Exceeded the maximum difference" in str(err.value)
    assert str(err.value).startswith("Example: HTTP 400:")


def test_retry_after_is_honoured(mocked_http):
    mocked_http.get(URL + "x", status=429, headers={"Retry-After": "7"})
    mocked_http.get(URL + "x", json=[])
    client, sleeps = make_client()

    client.get_json("x")

    assert sleeps == [7.0]


def test_post_is_not_retried(mocked_http):
    mocked_http.post(URL + "create", status=503)
    client, sleeps = make_client()

    with pytest.raises(ExternalServiceError):
        client.request("POST", "create", json={})
    assert len(mocked_http.calls) == 1


def test_timeout_raises_clear_error(mocked_http):
    mocked_http.get(URL + "slow", body=requests.ReadTimeout("read timed out"))
    client, _ = make_client(timeout=(1, 2))

    with pytest.raises(ExternalServiceError, match=r"no answer within 1 s to connect / 2 s"):
        client.get_json("slow")


def test_connection_error_retried_then_raised(mocked_http):
    for _ in range(4):
        mocked_http.get(URL + "down", body=requests.ConnectionError("refused"))
    client, sleeps = make_client()

    with pytest.raises(ExternalServiceError, match="could not connect"):
        client.get_json("down")
    assert len(mocked_http.calls) == 4
    assert len(sleeps) == 3


def test_extra_rule_retries_403_with_its_pause(mocked_http):
    mocked_http.get(URL + "x", status=403)
    mocked_http.get(URL + "x", json={"a": 1})
    client, sleeps = make_client(extra_rules=[RetryRule(status=403, pause=10, tries=2)])

    assert client.get_json("x") == {"a": 1}
    assert sleeps == [10]


def test_non_json_answer_is_clear_error(mocked_http):
    mocked_http.get(URL + "html", body="<html>oops</html>", status=200)
    client, _ = make_client()

    with pytest.raises(ExternalServiceError, match="not JSON"):
        client.get_json("html")


def test_every_call_has_timeout_and_user_agent(mocked_http, settings):
    mocked_http.get(URL + "x", json={})
    client, _ = make_client()
    client.get_json("x")
    request = mocked_http.calls[0].request
    assert request.headers["User-Agent"] == settings.HTTP_USER_AGENT
    assert "Mozilla/5.0" in request.headers["User-Agent"]


def test_secrets_masked_in_request_log(mocked_http, caplog):
    token = "supersecrettoken123456"
    mocked_http.get(URL + "items", json=[])
    client, _ = make_client()
    with caplog.at_level(logging.INFO, logger="backoffice.core.http"):
        client.get_json("items", params={"access-token": token})
    text = caplog.text
    assert token not in text
    assert "supe…3456" in text


@responses.activate
def test_mask_filter_on_real_handler_output(capsys, settings):
    """The configured logging filter masks secrets in the final formatted line."""
    from backoffice.core.logging import SecretMaskingFilter

    settings.SECRET_SETTINGS = ["ALSTYLE_TOKEN"]
    settings.ALSTYLE_TOKEN = "alstyle-token-abcdef-987654"
    logger = logging.getLogger("test.mask")
    handler = logging.StreamHandler()
    handler.addFilter(SecretMaskingFilter())
    logger.addHandler(handler)
    try:
        try:
            raise ValueError(f"boom with {settings.ALSTYLE_TOKEN}")
        except ValueError:
            logger.exception("failed calling ?access-token=%s", settings.ALSTYLE_TOKEN)
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert "alstyle-token-abcdef-987654" not in err
    assert "alst…7654" in err
    assert "Traceback" in err


def test_truncated_json_answer_is_retried_then_parsed(mocked_http):
    mocked_http.get(URL + "page", body='{"elements": [{"article": 1', status=200)
    mocked_http.get(URL + "page", json={"elements": []})
    client, sleeps = make_client()

    assert client.get_json("page") == {"elements": []}
    assert len(mocked_http.calls) == 2
    assert len(sleeps) == 1


def test_truncated_json_gives_up_after_the_retry_budget(mocked_http):
    for _ in range(4):
        mocked_http.get(URL + "page", body='{"cut', status=200)
    client, _ = make_client()

    with pytest.raises(ExternalServiceError, match="cut off"):
        client.get_json("page")
    assert len(mocked_http.calls) == 4


def test_read_timeout_of_a_get_is_retried_but_not_of_a_post(mocked_http):
    mocked_http.get(URL + "slow", body=requests.ReadTimeout("read timed out"))
    mocked_http.get(URL + "slow", json={"ok": 1})
    mocked_http.post(URL + "slow", body=requests.ReadTimeout("read timed out"))
    client, _ = make_client()

    assert client.get_json("slow") == {"ok": 1}
    with pytest.raises(ExternalServiceError, match="no answer"):
        client.request("POST", "slow")
    assert [call.request.method for call in mocked_http.calls] == ["GET", "GET", "POST"]


def test_before_attempt_runs_before_every_attempt_retries_included(mocked_http):
    mocked_http.get(URL + "x", status=503)
    mocked_http.get(URL + "x", status=403)
    mocked_http.get(URL + "x", json={})
    slots = []
    client, _ = make_client(
        before_attempt=lambda: slots.append(len(mocked_http.calls)),
        extra_rules=[RetryRule(status=403, pause=1.0, tries=1)],
    )

    client.get_json("x")
    assert slots == [0, 1, 2]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", '{"name": "Ноутбук «Демо»"}'.encode()),  # PHP's default type, no charset
        ("text/plain", '{"name": "Ноутбук «Демо»"}'.encode()),
        ("application/json", '{"name": "Ноутбук «Демо»"}'.encode()),
        ("application/json; charset=windows-1251", '{"name": "Ноутбук «Демо»"}'.encode("cp1251")),
    ],
)
def test_json_keeps_its_cyrillic_whatever_the_content_type_says(mocked_http, content_type, body):
    """JSON is UTF-8 unless the answer names another charset; requests alone reads any
    text/* answer without a charset as ISO-8859-1 («ÐÐ¾ÑÑÐ±ÑÐº»)."""
    client, _sleeps = make_client()
    mocked_http.get(URL + "item", body=body, content_type=content_type)
    assert client.get_json("item") == {"name": "Ноутбук «Демо»"}


def test_an_error_without_the_apis_own_words_says_what_the_status_means(mocked_http, settings):
    """Staff read «сервис временно недоступен», not the server's English «Service
    Unavailable»; the API's own error text, when it gives one, is kept."""
    from django.utils import translation

    client, _sleeps = make_client()
    client.retries = 0
    mocked_http.get(URL + "down", status=503, body="<html>oops</html>", content_type="text/html")
    mocked_http.get(URL + "odd", status=418)
    mocked_http.get(URL + "said", status=503, json={"message": "Техработы до 12:00"})
    with translation.override("ru"):
        with pytest.raises(ExternalServiceError) as down:
            client.get_json("down")
        with pytest.raises(ExternalServiceError) as odd:
            client.get_json("odd")
        with pytest.raises(ExternalServiceError) as said:
            client.get_json("said")
    assert str(down.value) == "Example: HTTP 503: сервис временно недоступен"
    assert str(odd.value) == "Example: HTTP 418: I'm a Teapot"  # no words of ours: the reason
    assert "Техработы до 12:00" in str(said.value)
