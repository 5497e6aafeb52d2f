"""How staff read times and money: Almaty time (TIME_ZONE) and whole tenge with thousands
separators, e.g. "02.12.2026 14:05" and "1 035 120 ₸". One place for the admin, the
reports and the messages (template filters in templatetags/backoffice_format.py)."""

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone

# A no-break space: the separator and the sign never wrap away from the digits.
NBSP = "\u00a0"
TENGE = "₸"


def local_time(value, fmt: str = "%d.%m.%Y %H:%M") -> str:
    """A moment in the shop's time zone; "—" for none. Dates pass through as dates."""
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.strftime(fmt)
    if isinstance(value, date):
        return value.strftime(fmt.split(" ")[0])
    return str(value)


def group_digits(value) -> str:
    """1035120 → "1 035 120" (no-break spaces); kopecks/tiyn kept with a comma."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    sign = "-" if number < 0 else ""
    number = abs(number)
    whole = int(number)
    text = f"{whole:,}".replace(",", NBSP)
    fraction = number - whole
    if fraction:
        text += "," + f"{fraction:.2f}"[2:]
    return sign + text


def money(value) -> str:
    """Tenge as staff write them: "1 035 120 ₸"; "—" for none."""
    if value is None or value == "":
        return "—"
    return f"{group_digits(value)}{NBSP}{TENGE}"
