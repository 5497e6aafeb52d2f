"""Times in Almaty time, money as "1 035 120 ₸" (helpers and the admin's titles)."""

from datetime import UTC, datetime
from decimal import Decimal

from django.template import Context, Template

from backoffice.core.formats import local_time, money
from backoffice.models import AuditEntry

NBSP = "\u00a0"


def test_money_has_thousands_separators_and_the_sign():
    assert money(1035120) == f"1{NBSP}035{NBSP}120{NBSP}₸"
    assert money(Decimal("990")) == f"990{NBSP}₸"
    assert money(Decimal("1500.5")) == f"1{NBSP}500,50{NBSP}₸"
    assert money(-2000) == f"-2{NBSP}000{NBSP}₸"
    assert money(None) == "—"


def test_times_are_almaty_time(settings):
    settings.TIME_ZONE = "Asia/Almaty"
    moment = datetime(2026, 12, 1, 20, 30, tzinfo=UTC)  # 01:30 next day in Almaty (UTC+5)
    assert local_time(moment) == "02.12.2026 01:30"
    entry = AuditEntry(at=moment, action="order.fulfilment", object_repr="order 1001")
    assert str(entry).startswith("02.12.2026 01:30 ")


def test_template_filters():
    moment = datetime(2026, 12, 1, 20, 30, tzinfo=UTC)
    out = Template("{% load backoffice_format %}{{ a|money }} | {{ t|local_time }}").render(
        Context({"a": 1035120, "t": moment})
    )
    assert out == f"1{NBSP}035{NBSP}120{NBSP}₸ | 02.12.2026 01:30"
