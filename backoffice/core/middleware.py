"""Request middleware of the project: the client's address behind the proxy, the shop's
language, and a Content-Security-Policy for the pages we render ourselves (the public
payment page).

For the CSP each response gets a fresh nonce; our templates put it on their one inline script and
style. The Django admin is left to Django's own headers (X-Frame-Options, nosniff).
"""

import secrets

from django.conf import settings
from django.utils import translation
from django.utils.cache import patch_vary_headers


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = secrets.token_urlsafe(16)
        response = self.get_response(request)
        if not request.path.startswith("/admin/") and "Content-Security-Policy" not in response:
            nonce = request.csp_nonce
            response["Content-Security-Policy"] = settings.CSP_POLICY.format(nonce=nonce)
        return response


class RealIpMiddleware:
    """Behind nginx every request comes from the proxy: take the client's address from
    X-Real-IP, but only when the direct peer is one of TRUSTED_PROXIES (anyone else could
    forge the header). The webhook IP allowlist and login throttling read REMOTE_ADDR."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        real_ip = request.META.get("HTTP_X_REAL_IP", "").strip()
        if real_ip and request.META.get("REMOTE_ADDR") in settings.TRUSTED_PROXIES:
            request.META["REMOTE_ADDR"] = real_ip
        return self.get_response(request)


class ShopLanguageMiddleware:
    """The admin speaks the shop's language (settings.LANGUAGE_CODE), not the browser's.

    Django's LocaleMiddleware negotiates from Accept-Language, so a Russian shop's manager
    with an English browser got an English admin. Here only an explicit choice counts: the
    cookie Django's `set_language` view writes (settings.LANGUAGE_COOKIE_NAME), when it names
    one of settings.LANGUAGES. There are no i18n_patterns, so the URL never carries one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        translation.activate(shop_language(request))
        request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        patch_vary_headers(response, ("Cookie",))
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        return response


def shop_language(request) -> str:
    """The language a request is served in: the set_language cookie if it names one of
    settings.LANGUAGES, else the shop's LANGUAGE_CODE."""
    chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
    if chosen in dict(settings.LANGUAGES):
        return chosen
    return settings.LANGUAGE_CODE
