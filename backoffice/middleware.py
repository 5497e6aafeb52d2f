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
