"""Downloading a price file: credentials from the named variable, masked; plain errors."""

import base64

import pytest

from backoffice.core.exceptions import ExternalServiceError
from backoffice.core.logging import mask_text
from catalog.suppliers.pricefile.download import download, url_credentials_problem
from catalog.suppliers.pricefile.parsers import PriceFileError

URL = "https://b2b.example.kz/price.xml"
BODY = b"<yml_catalog><shop><offers/></shop></yml_catalog>"


def test_basic_auth_from_the_named_variable(mocked_http, monkeypatch):
    monkeypatch.setenv("ACME_PRICE_AUTH", "shop:s3cret-pass")
    mocked_http.get(URL, body=BODY)

    path = download(URL, auth_env="ACME_PRICE_AUTH", suffix=".yml")

    try:
        assert path.read_bytes() == BODY
    finally:
        path.unlink()
    sent = mocked_http.calls[0].request.headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(b"shop:s3cret-pass").decode()
    assert "s3cret-pass" not in mask_text(f"GET {URL} password=s3cret-pass s3cret-pass")


def test_a_token_goes_where_the_url_says_and_is_masked(mocked_http, monkeypatch, caplog):
    monkeypatch.setenv("ACME_TOKEN", "tok-1234567890abcdef")
    mocked_http.get("https://b2b.example.kz/price.xml?key=tok-1234567890abcdef", body=BODY)

    with caplog.at_level("INFO"):
        download(URL + "?key={token}", auth_env="ACME_TOKEN").unlink()

    assert "Authorization" not in mocked_http.calls[0].request.headers
    # The client's log line goes through mask_text: the token is registered as a secret.
    assert "tok-1234567890abcdef" not in mask_text(caplog.text)


def test_a_token_without_a_placeholder_is_sent_as_bearer(mocked_http, monkeypatch):
    monkeypatch.setenv("ACME_TOKEN", "tok-abcdef123456")
    mocked_http.get(URL, body=BODY)

    download(URL, auth_env="ACME_TOKEN").unlink()

    assert mocked_http.calls[0].request.headers["Authorization"] == "Bearer tok-abcdef123456"


def test_a_missing_variable_is_named_before_any_request(mocked_http, monkeypatch):
    monkeypatch.delenv("ACME_PRICE_AUTH", raising=False)

    with pytest.raises(PriceFileError, match="ACME_PRICE_AUTH"):
        download(URL, auth_env="ACME_PRICE_AUTH")

    assert len(mocked_http.calls) == 0


def test_a_refusal_names_the_variable_to_check(mocked_http, monkeypatch):
    monkeypatch.setenv("ACME_PRICE_AUTH", "shop:wrong-password")
    mocked_http.get(URL, status=401)

    with pytest.raises(ExternalServiceError, match="ACME_PRICE_AUTH") as caught:
        download(URL, auth_env="ACME_PRICE_AUTH", supplier_name="Acme")

    assert caught.value.status == 401


def test_an_empty_file_is_refused(mocked_http):
    mocked_http.get(URL, body=b"")

    with pytest.raises(PriceFileError, match="empty file"):
        download(URL)


def test_a_file_over_the_size_cap_is_refused_and_removed(mocked_http, settings, tmp_path):
    settings.PRICEFILE_MAX_MB = 1
    mocked_http.get(URL, body=b"x" * (1024 * 1024 + 10))

    with pytest.raises(PriceFileError, match="1 MB"):
        download(URL)


def test_a_server_error_is_retried(mocked_http, settings):
    settings.HTTP_BACKOFF_FACTOR = 0
    mocked_http.get(URL, status=503)
    mocked_http.get(URL, body=BODY)

    download(URL).unlink()

    assert len(mocked_http.calls) == 2


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://b2b.example.kz/price.xml", ""),
        ("https://b2b.example.kz/price.xml?key={token}", ""),
        ("https://shop:pw@b2b.example.kz/price.xml", "user name or password"),
        ("https://b2b.example.kz/price.xml?token=abc123", "token={token}"),
        ("ftp://b2b.example.kz/price.xml", "http://"),
    ],
    ids=["plain", "placeholder", "userinfo", "token-in-query", "not-http"],
)
def test_urls_with_credentials_in_clear_are_refused(url, problem):
    result = url_credentials_problem(url)

    assert (problem in result) if problem else result == ""
