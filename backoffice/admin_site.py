"""The admin site: our title, and app groups in the order staff work through them."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

APP_ORDER = ["catalog", "orders", "payments", "backoffice", "django_q", "auth"]


class BackofficeAdminSite(admin.AdminSite):
    site_header = _("Kaspi back office")
    site_title = _("Kaspi back office")
    index_title = _("Administration")
    index_template = "admin/backoffice_index.html"
    # No public site behind the back office ("/" comes back here): no "View site" link.
    site_url = None
    # The pages fit 1366 px without the app list on the left (it is on the index page).
    enable_nav_sidebar = False

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        rank = {label: index for index, label in enumerate(APP_ORDER)}
        return sorted(apps, key=lambda app: (rank.get(app["app_label"], len(rank)), app["name"]))
