"""Fields of Kaspi's order documents that more than one service reads (import, ASSEMBLE)."""

from datetime import UTC, datetime


def from_ms(value) -> datetime | None:
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def kaspi_delivery(attrs: dict) -> dict:
    """Packing and waybill of a Kaspi Delivery order (`assembled`, `kaspiDelivery`; any of
    them may be missing or null)."""
    delivery = attrs.get("kaspiDelivery")
    delivery = delivery if isinstance(delivery, dict) else {}
    url = str(delivery.get("waybill") or "").strip()
    try:
        courier = from_ms(delivery.get("courierTransmissionPlanningDate"))
    except (TypeError, ValueError, OverflowError):
        courier = None
    return {
        "kaspi_assembled": bool(attrs.get("assembled") or delivery.get("waybillNumber")),
        "waybill_number": str(delivery.get("waybillNumber") or "")[:64],
        "waybill_url": url[:1000] if url.startswith(("https://", "http://")) else "",
        "courier_planned_at": courier,
    }
