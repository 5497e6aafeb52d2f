from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _


class BackofficeConfig(AppConfig):
    name = "backoffice"
    default = True
    verbose_name = _("Operations")

    def ready(self):
        from django.db.backends.signals import connection_created

        from .sqlite import install_like

        connection_created.connect(install_like, dispatch_uid="backoffice-sqlite-like")


class BackofficeAdminConfig(AdminConfig):
    default = False
    default_site = "backoffice.admin_site.BackofficeAdminSite"


class LoginLocksConfig(AxesAppConfig):
    """django-axes under a name staff understand (its admin is ours: backoffice/admin.py)."""

    default = False
    verbose_name = _("Login security")
