"""Test settings: the real settings with test secrets, inline tasks and a temp media dir."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("ALSTYLE_TOKEN", "alstyle-test-token-9f8e7d6c5b4a")
os.environ.setdefault("KASPI_SHOP_TOKEN", "kaspi-shop-test-token-1a2b3c4d5e")
os.environ.setdefault("PAYMENTS_ALLOW_DEMO", "1")
os.environ.setdefault("PAYMENTS_WEBHOOK_SECRET", "webhook-test-secret-7f6e5d4c3b2a")
os.environ.setdefault("FEED_AUTH_USER", "")
os.environ.setdefault("LOG_FILE", "")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

from backoffice.settings import *  # noqa: E402, F403
from backoffice.settings import Q_CLUSTER  # noqa: E402

DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
Q_CLUSTER = {**Q_CLUSTER, "sync": True}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="backoffice-test-media-"))  # noqa: F405
FEED_DIR = MEDIA_ROOT / "feed"
ALSTYLE_MIN_INTERVAL = 0
ALSTYLE_RATE_LIMIT_PAUSE = 0
HTTP_BACKOFF_FACTOR = 0
LANGUAGE_CODE = "en"
