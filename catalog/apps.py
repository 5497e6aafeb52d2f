from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = _("Catalog and Kaspi price list")

    def ready(self):
        # New offers of suppliers other than Al-Style are matched to products
        # (catalog/services/offers.py hands them over; matching builds on offers).
        from .services import matching, offers

        offers.register_matcher(matching.match_offers)
        offers.register_finder(matching.find_products)

        from backoffice.core.schedules import register_minutes_source

        register_minutes_source(alstyle_schedule_minutes)


def alstyle_schedule_minutes() -> dict[str, int]:
    """The Al-Style schedules' intervals from its Supplier row (the row wins)."""
    from .models import Supplier

    row = (
        Supplier.objects.filter(code=Supplier.ALSTYLE)
        .values_list("full_sync_minutes", "stock_sync_minutes")
        .first()
    )
    if row is None:
        return {}
    return {"catalog-sync": row[0], "stock-sync": row[1]}
