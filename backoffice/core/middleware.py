"""Content-Security-Policy for the pages we render ourselves (the public payment page).

Each response gets a fresh nonce; our templates put it on their one inline script and
style. The Django admin is left to Django's own headers (X-Frame-Options, nosniff).
"""

import secrets

from django.conf import settings


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
