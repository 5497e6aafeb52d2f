from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = _("Orders")

    def ready(self):
        # The catalog asks about sales through catalog.demand (it must not import orders).
        from .services.demand import register

        register()
