"""Order fulfilment: stock check, new-order handling, statuses, supplier purchase, summary.

A Kaspi order moves new → accepted → purchased → assembled → handed over → completed (or
cancelled / returned). Every move is checked against the table below and recorded with who
and when; Kaspi's own status from the import moves it forward too (never back).
"""

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext

from backoffice.alerts import send_alert
from backoffice.audit import audit
from backoffice.exceptions import BackofficeError, ExternalServiceError
from backoffice.runs import acquire_lock, release_lock
from catalog.clients.records import parse_quantity

from ..models import Fulfilment, FulfilmentEvent, Order, OrderEntry, SupplierPurchase

logger = logging.getLogger(__name__)

TRANSITIONS = {
    Fulfilment.NEW: {Fulfilment.ACCEPTED, Fulfilment.CANCELLED},
    Fulfilment.ACCEPTED: {Fulfilment.PURCHASED, Fulfilment.ASSEMBLED, Fulfilment.CANCELLED},
    Fulfilment.PURCHASED: {Fulfilment.ASSEMBLED, Fulfilment.CANCELLED},
    Fulfilment.ASSEMBLED: {Fulfilment.HANDED_OVER, Fulfilment.CANCELLED},
    Fulfilment.HANDED_OVER: {Fulfilment.COMPLETED, Fulfilment.RETURNED},
    Fulfilment.COMPLETED: {Fulfilment.RETURNED},
    Fulfilment.CANCELLED: set(),
    Fulfilment.RETURNED: set(),
}
ORDER = [
    Fulfilment.NEW,
    Fulfilment.ACCEPTED,
    Fulfilment.PURCHASED,
    Fulfilment.ASSEMBLED,
    Fulfilment.HANDED_OVER,
    Fulfilment.COMPLETED,
]
# Kaspi status → the fulfilment step it proves at least.
FROM_KASPI = {
    "ACCEPTED_BY_MERCHANT": Fulfilment.ACCEPTED,
    "COMPLETED": Fulfilment.COMPLETED,
    "CANCELLED": Fulfilment.CANCELLED,
    "CANCELLING": Fulfilment.CANCELLED,
    "RETURNED": Fulfilment.RETURNED,
    "RETURN_ACCEPTED_BY_MERCHANT": Fulfilment.RETURNED,
}


class FulfilmentRefused(BackofficeError):
    pass


def set_fulfilment(*, order: Order, to: str, user=None, note: str = "") -> Order:
    """Move `order` to `to` if the table allows it; record who and when."""
    with transaction.atomic():
        current = Order.objects.select_for_update().get(pk=order.pk)
        if to not in TRANSITIONS.get(current.fulfilment, set()):
            raise FulfilmentRefused(_step_refused(current, to))
        if to == Fulfilment.ASSEMBLED and _packed_in_kaspi_first(current):
            raise FulfilmentRefused(
                gettext(
                    "order %(code)s is a Kaspi Delivery order: give the number of parcels, "
                    "so it is packed in Kaspi and the courier comes"
                )
                % {"code": current.code}
            )
        FulfilmentEvent.objects.create(
            order=current,
            from_status=current.fulfilment,
            to_status=to,
            user=user if getattr(user, "pk", None) else None,
            note=note[:500],
        )
        Order.objects.filter(pk=current.pk).update(fulfilment=to)
        if getattr(user, "pk", None):
            audit(
                user=user,
                action="order.fulfilment",
                obj=current,
                before={"fulfilment": current.fulfilment},
                after={"fulfilment": to},
                note=note,
            )
    order.fulfilment = to
    return order


def _step_refused(order: Order, to: str) -> str:
    return gettext("order %(code)s: cannot go from «%(from)s» to «%(to)s»") % {
        "code": order.code,
        "from": order.get_fulfilment_display(),
        "to": Fulfilment(to).label,
    }


def _packed_in_kaspi_first(order: Order) -> bool:
    """A Kaspi Delivery order becomes "assembled" only through ASSEMBLE in Kaspi."""
    return (
        order.channel == Order.Channel.KASPI
        and order.is_kaspi_delivery
        and not (order.kaspi_assembled)
    )


def mark_assembled(*, order: Order, parcels=None, user=None, note: str = "", client=None) -> Order:
    """The "assembled" step. A Kaspi Delivery order is first packed in Kaspi: ASSEMBLE with
    the number of parcels (sent once, recorded as an order action; Kaspi's refusal is
    raised as is), then Kaspi's waybill is stored; other orders only move the step."""
    if _packed_in_kaspi_first(order):
        if Fulfilment.ASSEMBLED not in TRANSITIONS.get(order.fulfilment, set()):
            raise FulfilmentRefused(_step_refused(order, Fulfilment.ASSEMBLED))
        if not parcels:
            raise FulfilmentRefused(
                gettext(
                    "order %(code)s is a Kaspi Delivery order: give the number of parcels, "
                    "so it is packed in Kaspi and the courier comes"
                )
                % {"code": order.code}
            )
        from .status import assemble_order

        assemble_order(order=order, parcels=parcels, user=user, client=client)
        waybill = (
            gettext("waybill %(number)s") % {"number": order.waybill_number}
            if order.waybill_number
            else gettext("waybill not issued yet")
        )
        packed = gettext("Kaspi Delivery: %(n)d parcel(s), %(waybill)s") % {
            "n": order.parcels,
            "waybill": waybill,
        }
        note = f"{packed}. {note}" if note else packed
    return set_fulfilment(order=order, to=Fulfilment.ASSEMBLED, user=user, note=note)


def follow_kaspi_status(order: Order) -> None:
    """Move fulfilment forward to what Kaspi's status proves (never backwards)."""
    target = FROM_KASPI.get(order.status)
    if target is None or target == order.fulfilment:
        return
    current = order.fulfilment
    if target in (Fulfilment.CANCELLED, Fulfilment.RETURNED):
        if current in (Fulfilment.CANCELLED, Fulfilment.RETURNED):
            return
        steps = [target]
    else:
        if current not in ORDER or ORDER.index(target) <= ORDER.index(current):
            return
        steps = ORDER[ORDER.index(current) + 1 : ORDER.index(target) + 1]
    with transaction.atomic():
        for step in steps:
            FulfilmentEvent.objects.create(
                order=order, from_status=current, to_status=step, note=f"Kaspi: {order.status}"
            )
            current = step
        Order.objects.filter(pk=order.pk).update(fulfilment=current)
    order.fulfilment = current


# --- Stock check --------------------------------------------------------------------------


def check_stock(order: Order, *, client=None) -> bool:
    """A fresh supplier quantity for each line; True when every line can be supplied."""
    from catalog.clients.alstyle import AlStyleClient

    entries = list(order.entries.select_related("product"))
    articles = sorted({e.product.article for e in entries if e.product_id})
    answer = (client or AlStyleClient()).quantity_price(articles) if articles else {}
    now = timezone.now()
    problems = []
    for entry in entries:
        if entry.product_id is None:
            entry.supplier_quantity, entry.in_stock = None, False
            problems.append(f"line {entry.offer_code}: no matching product in our catalog")
        else:
            row = answer.get(entry.product.article)
            quantity = parse_quantity(row.get("quantity"))[0] if row else 0
            entry.supplier_quantity = quantity
            entry.in_stock = quantity >= entry.quantity
            if not entry.in_stock:
                needs = entry.quantity
                problems.append(f"line {entry.offer_code}: supplier has {quantity}, needs {needs}")
        entry.stock_checked_at = now
    OrderEntry.objects.bulk_update(entries, ["supplier_quantity", "in_stock", "stock_checked_at"])
    ok = bool(entries) and not problems
    Order.objects.filter(pk=order.pk).update(
        needs_attention=not ok, attention_reason="\n".join(problems)
    )
    order.needs_attention, order.attention_reason = not ok, "\n".join(problems)
    return ok


def priced_above_cost(order: Order) -> bool:
    return all(
        e.product_id and e.product.price1 and e.base_price > e.product.price1
        for e in order.entries.select_related("product")
    )


# --- New orders ----------------------------------------------------------------------------


def order_alert_text(order: Order) -> str:
    lines = [
        f"Новый заказ Kaspi {order.code}: {order.total_price} ₸, {order.delivery_mode or '—'}",
        *(
            f"• {e.offer_code} {e.name[:60]} × {e.quantity} = {e.total_price} ₸"
            + ("" if e.in_stock is None else (" ✓" if e.in_stock else " ✗ нет у поставщика"))
            for e in order.entries.all()
        ),
    ]
    if order.needs_attention:
        lines.append("Требует внимания: " + order.attention_reason.replace("\n", "; "))
    return "\n".join(lines)


def process_new_orders(*, client=None, now=None) -> dict:
    """Stock-check, alert and (optionally) auto-accept new Kaspi orders; remind late ones."""
    from .status import accept_order

    now = now or timezone.now()
    counts = {"checked": 0, "accepted": 0, "attention": 0, "reminded": 0}
    fresh = Order.objects.filter(
        channel=Order.Channel.KASPI, status="APPROVED_BY_BANK", alerted_at__isnull=True
    )
    for order in fresh:
        try:
            in_stock = check_stock(order, client=client)
        except ExternalServiceError as exc:
            in_stock = False
            Order.objects.filter(pk=order.pk).update(
                needs_attention=True, attention_reason=f"stock check failed: {exc}"
            )
            order.needs_attention, order.attention_reason = True, f"stock check failed: {exc}"
        counts["checked"] += 1
        accepted = False
        if settings.ORDERS_AUTO_ACCEPT and in_stock and priced_above_cost(order):
            try:
                # Kaspi's new status moves fulfilment to "accepted" (follow_kaspi_status).
                accept_order(order=order)
                accepted = True
                counts["accepted"] += 1
            except BackofficeError as exc:
                Order.objects.filter(pk=order.pk).update(
                    needs_attention=True, attention_reason=f"auto-accept failed: {exc}"
                )
        if not accepted and not in_stock:
            counts["attention"] += 1
        send_alert(key=f"order:new:{order.code}", text=order_alert_text(order))
        Order.objects.filter(pk=order.pk).update(alerted_at=now)
    late = Order.objects.filter(
        channel=Order.Channel.KASPI,
        status="APPROVED_BY_BANK",
        reminded_at__isnull=True,
        creation_date__lt=now - timedelta(minutes=settings.ORDERS_ACCEPT_REMINDER_MINUTES),
    )
    for order in late:
        send_alert(
            key=f"order:remind:{order.code}",
            text=f"Заказ Kaspi {order.code} не принят уже "
            f"{int((now - order.creation_date).total_seconds() // 60)} мин.",
        )
        Order.objects.filter(pk=order.pk).update(reminded_at=now)
        counts["reminded"] += 1
    return counts


# --- Supplier purchase -----------------------------------------------------------------------

CART_LOCK = "alstyle_cart"


def purchase_lines(order: Order) -> list[dict]:
    entries = list(order.entries.select_related("product"))
    missing = [e.offer_code for e in entries if e.product_id is None]
    if missing or not entries:
        raise FulfilmentRefused(
            f"order {order.code}: lines without a product: {', '.join(missing) or 'no lines'}"
        )
    return [{"article": e.product.article, "quantity": e.quantity} for e in entries]


def purchase_from_alstyle(*, order: Order, user=None, dry_run: bool = False, client=None):
    """Buy an accepted order's goods through the Al-Style cart API, once.

    Sequence: user-data → clear → add → submit, under a lock because the cart is shared by
    every process using the token. A failure before submit leaves nothing submitted (the
    cart is cleared again, best effort); a failure at submit is recorded as "unknown" —
    staff check Al-Style's order list before anything is retried.
    """
    from catalog.clients.alstyle import AlStyleClient

    if order.fulfilment != Fulfilment.ACCEPTED:
        raise FulfilmentRefused(f"order {order.code} must be accepted first")
    if SupplierPurchase.objects.filter(order=order).exclude(status="failed").exists():
        raise FulfilmentRefused(f"order {order.code} was already ordered from Al-Style")
    lines = purchase_lines(order)
    client = client or AlStyleClient()
    profile = client.user_data()
    attorney = _main(profile.get("Доверенности"))
    delivery = _main(profile.get("Транспортники"))
    submit = {
        "shipping_date": (
            timezone.localdate() + timedelta(days=settings.ALSTYLE_SHIPPING_DAYS)
        ).strftime("%d.%m.%Y"),
        "attorney_json": json.dumps(attorney, ensure_ascii=False) if attorney else None,
        "delivery_json": json.dumps(delivery, ensure_ascii=False) if delivery else None,
        "comments": f"Kaspi {order.code}",
        "external_id": f"kaspi-{order.code}",
    }
    plan = {"lines": lines, "submit": submit}
    if dry_run:
        return plan
    if not acquire_lock(CART_LOCK, f"order-{order.pk}"):
        raise FulfilmentRefused("another Al-Style purchase is in progress; try again shortly")
    try:
        SupplierPurchase.objects.filter(order=order, status="failed").delete()
        try:
            purchase = SupplierPurchase.objects.create(
                order=order,
                status=SupplierPurchase.Status.UNKNOWN,
                lines=lines,
                created_by=user if getattr(user, "pk", None) else None,
            )
        except IntegrityError:
            raise FulfilmentRefused(
                f"order {order.code} was already ordered from Al-Style"
            ) from None
        try:
            client.cart("clear")
            client.cart(
                "add",
                add=",".join(line["article"] for line in lines),
                quantity=",".join(str(line["quantity"]) for line in lines),
            )
        except ExternalServiceError as exc:
            purchase.status, purchase.error = SupplierPurchase.Status.FAILED, str(exc)
            purchase.save()
            _clear_quietly(client)
            raise FulfilmentRefused(f"Al-Style cart failed, nothing was submitted: {exc}") from None
        try:
            answer = client.cart("submit", method="POST", **submit)
        except ExternalServiceError as exc:
            purchase.error = (
                f"{exc}. The order may or may not exist at Al-Style: check its order list "
                "before trying again."
            )
            purchase.save()
            raise FulfilmentRefused(purchase.error) from None
        data = answer.get("data") if isinstance(answer, dict) else None
        supplier_id = str((data or {}).get("id") or "")
        purchase.response = json.dumps(answer, ensure_ascii=False)[:10000]
        if answer.get("status") and supplier_id:
            purchase.status = SupplierPurchase.Status.SUBMITTED
            purchase.supplier_order_id = supplier_id
            purchase.supplier_status = str((data or {}).get("status") or "")[:32]
            purchase.save()
            set_fulfilment(
                order=order,
                to=Fulfilment.PURCHASED,
                user=user,
                note=f"Al-Style order {supplier_id}",
            )
        else:
            purchase.error = "Al-Style did not confirm the order; check its order list"
            purchase.save()
            raise FulfilmentRefused(purchase.error)
        return purchase
    finally:
        release_lock(CART_LOCK, f"order-{order.pk}")


def _main(entries):
    if isinstance(entries, dict):
        entries = list(entries.values())
    if not isinstance(entries, list) or not entries:
        return None
    for entry in entries:
        if isinstance(entry, dict) and any("Основн" in str(v) for v in entry.values()):
            return entry
    return entries[0]


def _clear_quietly(client) -> None:
    try:
        client.cart("clear")
    except ExternalServiceError:
        logger.warning("could not clear the Al-Style cart after a failure")


# --- Daily summary ---------------------------------------------------------------------------


def daily_summary() -> str:
    kaspi = Order.objects.filter(channel=Order.Channel.KASPI)
    by_status = dict(
        kaspi.exclude(fulfilment__in=["completed", "cancelled", "returned"])
        .values_list("fulfilment")
        .annotate(n=Count("id"))
        .values_list("fulfilment", "n")
    )
    waiting = (
        kaspi.exclude(fulfilment__in=["completed", "cancelled", "returned"]).aggregate(
            total=Sum("total_price")
        )["total"]
        or 0
    )
    attention = kaspi.filter(needs_attention=True).exclude(
        fulfilment__in=["completed", "cancelled", "returned"]
    )
    labels = dict(Fulfilment.choices)
    lines = [f"Сводка на {timezone.localdate():%d.%m.%Y}"]
    lines += [f"• {labels[key]}: {value}" for key, value in sorted(by_status.items())]
    lines.append(f"Деньги в незавершённых заказах: {waiting} ₸")
    lines.append(f"Требуют внимания: {attention.count()}")
    lines += [
        f"  – {o.code}: {o.attention_reason.splitlines()[0]}"
        for o in attention[:10]
        if o.attention_reason
    ]
    return "\n".join(lines)


def send_daily_summary() -> str:
    """Send the daily summary to staff (once a day: the alert key carries the date)."""
    text = daily_summary()
    send_alert(key=f"summary:{timezone.localdate()}", text=text, cooldown_minutes=60 * 20)
    return text
