"""Admin login locks, through django-axes.

A user name from one address is locked after LOGIN_FAILURE_LIMIT failures, and an address
after LOGIN_ADDRESS_FAILURE_LIMIT failures over any user names (someone trying names), for
LOGIN_LOCKOUT_MINUTES. A locked login is refused whatever the password, and the page says
for how long without telling whether the password was right. Attempts live in axes' table
(shared by every web process); the owner sees the locks in the admin and lifts them there.
"""

from datetime import timedelta

from axes.handlers.database import AxesDatabaseHandler
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.db.models import Sum
from django.forms.utils import ErrorDict
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

# The order matters: LockoutHandler reads the counts in this order.
LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def failure_limit(request=None, credentials=None) -> int:
    return settings.LOGIN_FAILURE_LIMIT


def cool_off(request=None) -> timedelta:
    return timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)


class LockoutHandler(AxesDatabaseHandler):
    """Axes compares one count with one limit (LOGIN_FAILURE_LIMIT). The failures of an
    address are scaled so that it reaches that limit at LOGIN_ADDRESS_FAILURE_LIMIT."""

    def get_failures(self, request, credentials=None) -> int:
        per_pair, per_address = (
            attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        address_limit = max(settings.LOGIN_ADDRESS_FAILURE_LIMIT, 1)
        return max(per_pair, per_address * settings.LOGIN_FAILURE_LIMIT // address_limit)


class _LockedForm(AdminAuthenticationForm):
    def __init__(self, request, message, **kwargs):
        super().__init__(request, **kwargs)
        self._errors = ErrorDict({"__all__": self.error_class([message], error_class="nonfield")})


def lockout_response(request, original_response=None, credentials=None):
    """The login page again, saying the login is locked and for how long (status 429)."""
    minutes = settings.LOGIN_LOCKOUT_MINUTES
    message = _(
        "Too many failed logins. Logging in from this address is locked for %(minutes)s "
        "minutes. Try again later or ask the owner to lift the lock."
    ) % {"minutes": minutes}
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    context = {
        **admin.site.each_context(request),
        "title": _("Log in"),
        "app_path": request.get_full_path(),
        "form": _LockedForm(request, message, initial={"username": username}),
        "username": username,
        "site_header": admin.site.site_header,
    }
    return TemplateResponse(request, "admin/login.html", context, status=429).render()
