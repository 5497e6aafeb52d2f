"""Login throttling: after LOGIN_FAILURE_LIMIT failed logins for one user name from one
address, that pair is refused for LOGIN_LOCKOUT_MINUTES, whatever the password.

A dozen lines on the shared cache instead of a package (django-axes would bring its own
models, middleware and admin for what the back office needs here: one counter per pair).
The counter lives in the cache shared by every web process, so the limit holds across them.
"""

import hashlib
import logging

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied

logger = logging.getLogger(__name__)


def _key(username, request) -> str:
    ip = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    digest = hashlib.sha256(f"{(username or '').lower()}|{ip}".encode()).hexdigest()[:32]
    return f"login-failures:{digest}"


def is_locked(username, request) -> bool:
    return (cache.get(_key(username, request)) or 0) >= settings.LOGIN_FAILURE_LIMIT


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        key = _key(username, request)
        if is_locked(username, request):
            logger.warning("login refused: %r is locked after repeated failures", username)
            raise PermissionDenied  # stops here; Django reports it as a failed login
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            timeout = settings.LOGIN_LOCKOUT_MINUTES * 60
            if not cache.add(key, 1, timeout):
                try:
                    cache.incr(key)
                except ValueError:
                    cache.set(key, 1, timeout)
        else:
            cache.delete(key)
        return user
