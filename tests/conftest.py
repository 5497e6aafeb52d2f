import pytest
import responses as responses_lib

from catalog.services import fetches


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
