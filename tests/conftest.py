import io
import logging

import pytest
import responses as responses_lib

from catalog.services import fetches

# Everything logged during the suite, through the same masking filter as production
# handlers; tests/test_zz_secrets.py checks it holds no secret.
SUITE_LOG = io.StringIO()


@pytest.fixture(scope="session", autouse=True)
def _capture_suite_log():
    from backoffice.logging import SecretMaskingFilter

    handler = logging.StreamHandler(SUITE_LOG)
    handler.setLevel(logging.DEBUG)
    handler.addFilter(SecretMaskingFilter())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    yield
    root.removeHandler(handler)


@pytest.fixture
def mocked_http():
    """Every outgoing request must be faked: an unexpected one fails the test."""
    with responses_lib.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path, db):
    settings.FEED_DIR = tmp_path / "feed"
    settings.MEDIA_ROOT = tmp_path
    fetches.reset_fetch_throttle()
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("admin", "", "pw-123456")
    client.force_login(user)
    client.user = user
    return client
