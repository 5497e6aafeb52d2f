"""The recurring jobs, as django-q2 schedules (editable in the admin afterwards)."""

from collections.abc import Callable

from django.conf import settings
from django.utils.translation import gettext_lazy as _

# Apps whose schedule intervals live in the database (catalog: the Supplier rows) register
# a function returning {schedule name: minutes} in their AppConfig.ready, so core imports
# no app. 0 minutes: the schedule is not set up.
_MINUTES_SOURCES: list[Callable[[], dict[str, int]]] = []


def register_minutes_source(source: Callable[[], dict[str, int]]) -> None:
    if source not in _MINUTES_SOURCES:
        _MINUTES_SOURCES.append(source)


def scheduled_minutes() -> dict[str, int]:
    minutes: dict[str, int] = {}
    for source in _MINUTES_SOURCES:
        minutes.update(source())
    return minutes


def schedule_specs() -> list[dict]:
    """Each recurring job: its task, its interval, the command cron runs instead (the same
    service; crontab.example lists every one), the setting without which it is off, and the
    run kind whose last status it shows."""
    return [
        {
            "name": "catalog-sync",
            "label": _("Al-Style catalog sync"),
            "setting": "CATALOG_SYNC_INTERVAL_MINUTES",
            "func": "catalog.tasks.sync_catalog_task",
            "minutes": settings.CATALOG_SYNC_INTERVAL_MINUTES,
            "command": "sync_alstyle",
            "requires": "ALSTYLE_TOKEN",
            "kind": "catalog",
        },
        {
            "name": "stock-sync",
            "label": _("Al-Style stock and prices"),
            "setting": "STOCK_SYNC_INTERVAL_MINUTES",
            "func": "catalog.tasks.sync_stock_task",
            "minutes": settings.STOCK_SYNC_INTERVAL_MINUTES,
            "command": "sync_alstyle --stock-only",
            "requires": "ALSTYLE_TOKEN",
            "kind": "stock",
        },
        {
            "name": "kaspi-orders",
            "label": _("Kaspi order import"),
            "setting": "ORDERS_SYNC_INTERVAL_MINUTES",
            "func": "orders.tasks.import_orders_task",
            "minutes": settings.ORDERS_SYNC_INTERVAL_MINUTES,
            "command": "pull_kaspi_orders",
            "requires": "KASPI_SHOP_TOKEN",
            "kind": "orders",
        },
        {
            "name": "payments-sweep",
            "label": _("Expire overdue payments"),
            "setting": "PAYMENTS_SWEEP_INTERVAL_MINUTES",
            "func": "payments.tasks.sweep_payments_task",
            "minutes": settings.PAYMENTS_SWEEP_INTERVAL_MINUTES,
            "command": "sweep_payments",
            "requires": "PAYMENTS_PROVIDER",
        },
        {
            "name": "incidents",
            "label": _("Alerts about problems"),
            "func": "backoffice.tasks.incidents_task",
            "minutes": 10,
            "command": "alert_incidents",
        },
        {
            "name": "kaspi-market",
            "label": _("Kaspi market read (competitor prices)"),
            "setting": "KASPI_MARKET_INTERVAL_MINUTES",
            "func": "catalog.tasks.read_market_task",
            "minutes": settings.KASPI_MARKET_INTERVAL_MINUTES,
            "command": "kaspi_market",
            "kind": "market",
        },
        {
            "name": "kaspi-reprice",
            "label": _("Kaspi repricing"),
            "setting": "REPRICER_FEED_CYCLE_MINUTES",
            "func": "catalog.tasks.reprice_kaspi_task",
            "minutes": settings.REPRICER_FEED_CYCLE_MINUTES,
            "command": "reprice_kaspi",
            "kind": "reprice",
        },
        {
            "name": "alstyle-purchases",
            "label": _("Al-Style purchase statuses"),
            "setting": "ALSTYLE_PURCHASE_POLL_MINUTES",
            "func": "orders.tasks.poll_supplier_purchases_task",
            "minutes": settings.ALSTYLE_PURCHASE_POLL_MINUTES,
            "command": "poll_alstyle_purchases",
        },
        {
            # Each price-file supplier at its own interval (Supplier.full_sync_minutes):
            # every 10 minutes the ones that are due run (catalog/services/supplier_sync.py).
            "name": "supplier-syncs",
            "label": _("Price-file supplier syncs"),
            "func": "catalog.tasks.sync_due_suppliers_task",
            "minutes": 10,
            "command": "sync_supplier --due",
            "kind": "supplier",
        },
        {
            "name": "kaspi-card-imports",
            "label": _("Kaspi card import results"),
            "setting": "KASPI_CARDS_POLL_MINUTES",
            "func": "catalog.tasks.poll_card_imports_task",
            "minutes": settings.KASPI_CARDS_POLL_MINUTES,
            "command": "poll_card_imports",
            "requires": "KASPI_SHOP_TOKEN",
        },
    ]


DAILY = [
    {
        "name": "daily-summary",
        "label": _("Daily order summary"),
        "func": "orders.tasks.daily_summary_task",
        "hour": 9,
        "command": "orders_daily_summary",
    },
    {
        "name": "data-cleanup",
        "label": _("Old data cleanup"),
        "func": "backoffice.tasks.cleanup_task",
        "hour": 3,
        "command": "cleanup_data",
    },
]


def all_specs() -> list[dict]:
    return [*schedule_specs(), *DAILY]


def is_configured(spec: dict) -> bool:
    """False when the setting the job needs is empty (or payments are switched off)."""
    name = spec.get("requires")
    if not name:
        return True
    value = getattr(settings, name, "")
    return bool(value) and value != "none"


def missing_setting(kind: str) -> str:
    """The empty setting without which a run of `kind` is certain to fail ("" if none)."""
    for spec in all_specs():
        if spec.get("kind") == kind and spec.get("requires") and not is_configured(spec):
            return spec["requires"]
    return ""


def setup_schedules() -> list[tuple[str, bool]]:
    """Create each schedule or bring its function and interval up to date; keep staff edits
    of anything else (e.g. a schedule switched off by setting repeats to 0)."""
    from django_q.models import Schedule

    result = []
    overrides = scheduled_minutes()
    for spec in schedule_specs():
        if spec["name"] in overrides:
            spec = {**spec, "minutes": overrides[spec["name"]]}
        if not spec["minutes"]:
            continue  # not scheduled (a Supplier row with 0 minutes)
        schedule, created = Schedule.objects.get_or_create(
            name=spec["name"],
            defaults={
                "func": spec["func"],
                "schedule_type": Schedule.MINUTES,
                "minutes": spec["minutes"],
                "repeats": -1,
            },
        )
        if not created and (schedule.func, schedule.minutes) != (spec["func"], spec["minutes"]):
            schedule.func = spec["func"]
            schedule.minutes = spec["minutes"]
            schedule.schedule_type = Schedule.MINUTES
            schedule.save()
        result.append((spec["name"], created))
    for spec in DAILY:
        _schedule, created = Schedule.objects.get_or_create(
            name=spec["name"],
            defaults={
                "func": spec["func"],
                "schedule_type": Schedule.DAILY,
                "next_run": _next_local_hour(spec["hour"]),
                "repeats": -1,
            },
        )
        result.append((spec["name"], created))
    return result


def _next_local_hour(hour: int):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.localtime()
    moment = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return moment if moment > now else moment + timedelta(days=1)
