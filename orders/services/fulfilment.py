"""Order fulfilment: stock check, new-order handling, packing, supplier purchase, summary.

The steps themselves and their table are in stages.py (below this module and status.py);
this module does the work that moves an order through them.
"""

import json
import logging
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from backoffice.core.alerts import send_alert
from backoffice.core.audit import audit
from backoffice.core.exceptions import BackofficeError, ExternalServiceError
from backoffice.core.formats import money
from backoffice.core.i18n import in_shop_language
from backoffice.core.labels import DELIVERY_MODE
from backoffice.core.labels import label as code_label
from backoffice.core.runs import acquire_lock, release_lock
from catalog.models import Supplier
from catalog.suppliers import NotSupported, get_adapter
from catalog.suppliers.alstyle import CartRefused

from ..models import Fulfilment, Order, OrderEntry, SupplierPurchase
from .stages import (
    TRANSITIONS,
    FulfilmentRefused,
    _packed_in_kaspi_first,
    _step_refused,
    set_fulfilment,
)
from .status import accept_order, assemble_order

logger = logging.getLogger(__name__)


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


# --- Stock check --------------------------------------------------------------------------


def line_source(entry: OrderEntry) -> tuple[Supplier, str]:
    """The supplier and supplier article of a line's product: those of its chosen offer,
    else Al-Style's with our article (a product that has no offer row yet)."""
    product = entry.product
    if product.offer_id:
        return product.offer.supplier, product.offer.article
    return Supplier.alstyle(), product.article


def supplier_adapter(supplier: Supplier, client=None):
    """The adapter of `supplier` (`client`: an Al-Style client to use), or None when the
    supplier has none (then it has no stock call and no cart: a purchase list)."""
    kwargs = {"client": client} if client is not None and supplier.code == Supplier.ALSTYLE else {}
    try:
        return get_adapter(supplier, **kwargs)
    except (NotSupported, ImportError):
        return None


def has_cart(supplier: Supplier, adapter) -> bool:
    """Whether we submit the purchase through the supplier's cart (Al-Style's cart-api);
    any other supplier gets a purchase list."""
    return supplier.code == Supplier.ALSTYLE and adapter is not None and adapter.supports_cart


def _entries(order: Order) -> list[OrderEntry]:
    return list(order.entries.select_related("product__offer__supplier").order_by("pk"))


def check_stock(order: Order, *, client=None) -> bool:
    """A fresh supplier quantity for each line (one stock call per supplier of the lines,
    through its adapter; a price-file supplier's stock is that of its last file); True
    when every line can be supplied."""
    entries = _entries(order)
    groups: dict[int, tuple[Supplier, dict[int, str]]] = {}
    for entry in entries:
        if entry.product_id:
            supplier, article = line_source(entry)
            groups.setdefault(supplier.pk, (supplier, {}))[1][entry.pk] = article
    fresh: dict[int, int] = {}
    for supplier, articles in groups.values():
        adapter = supplier_adapter(supplier, client)
        if adapter is not None and adapter.supports_stock:
            answer = adapter.fetch_stock(sorted(set(articles.values())))
            for pk, article in articles.items():
                fresh[pk] = answer[article].quantity if article in answer else 0
        else:
            for entry in entries:
                if entry.pk in articles:
                    offer = entry.product.offer
                    fresh[entry.pk] = offer.quantity if offer is not None else 0
    now = timezone.now()
    problems = []
    for entry in entries:
        if entry.product_id is None:
            entry.supplier_quantity, entry.in_stock = None, False
            problems.append(
                gettext("line %(sku)s: no matching product in our catalog")
                % {"sku": entry.offer_code}
            )
        else:
            quantity = fresh.get(entry.pk, 0)
            entry.supplier_quantity = quantity
            entry.in_stock = quantity >= entry.quantity
            if not entry.in_stock:
                needs = entry.quantity
                problems.append(
                    gettext("line %(sku)s: supplier has %(has)s, needs %(needs)s")
                    % {"sku": entry.offer_code, "has": quantity, "needs": needs}
                )
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
        f"Новый заказ Kaspi {order.code}: {money(order.total_price)}, "
        f"{code_label(DELIVERY_MODE, order.delivery_mode)}",
        *(
            f"• {e.offer_code} {e.name[:60]} × {e.quantity} = {money(e.total_price)}"
            + ("" if e.in_stock is None else (" ✓" if e.in_stock else " ✗ нет у поставщика"))
            for e in order.entries.all()
        ),
    ]
    if order.needs_attention:
        lines.append("Требует внимания: " + order.attention_reason.replace("\n", "; "))
    return "\n".join(lines)


@in_shop_language
def process_new_orders(*, client=None, now=None) -> dict:
    """Stock-check, alert and (optionally) auto-accept new Kaspi orders; remind late ones."""
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
            reason = gettext("stock check failed: %(error)s") % {"error": exc}
            Order.objects.filter(pk=order.pk).update(needs_attention=True, attention_reason=reason)
            order.needs_attention, order.attention_reason = True, reason
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
                    needs_attention=True,
                    attention_reason=gettext("auto-accept failed: %(error)s") % {"error": exc},
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
# Values of an `Основной` key that mean "yes" (the shape is unconfirmed, docs §6).
YES_MARKS = {"true", "1", "да", "yes", "y"}
MAIN_MARK = "основной"
# Keys that mark an entry rather than describe it.
MARKER_KEYS = {"основной", "empty", "бин"}
REQUIRED_FIELDS = {"attorney": ("Номер", "ФИО"), "carrier": ("СпособДоставки",)}
# Minutes around a submit in which an order of the supplier's list may be ours by its
# date, sum and lines alone.
LOOKUP_WINDOW_MINUTES = 30
ALMATY = ZoneInfo("Asia/Almaty")  # the time of Al-Style's order dates


def purchase_reference(order: Order) -> str:
    """Our reference for the purchase of `order`, sent as `external_id` and in `comments`."""
    return f"kaspi-{order.code}"


def purchase_lines(order: Order, supplier: Supplier | None = None) -> list[dict]:
    """The lines still to buy from `supplier` (every supplier's without one), by supplier
    article: lines no live purchase of the order covers (see _to_buy); refused when a line
    of the order has no product of ours."""
    entries = _entries(order)
    missing = [e.offer_code for e in entries if e.product_id is None]
    if missing or not entries:
        raise FulfilmentRefused(
            gettext("order %(code)s: lines without a product: %(lines)s")
            % {"code": order.code, "lines": ", ".join(missing) or gettext("no lines")}
        )
    return [
        {"article": article, "quantity": entry.quantity}
        for entry, _source, article in _to_buy(order, supplier, entries=entries)
    ]


def _covers(purchase: SupplierPurchase, entry: OrderEntry) -> bool:
    """Whether `purchase` buys the line `entry`: its product is among the products the
    purchase was planned for. A purchase made before those were recorded (none kept) buys
    the lines its supplier's chosen offers supply."""
    if purchase.products:
        return entry.product_id in purchase.products
    return line_source(entry)[0].pk == purchase.supplier_id


def _to_buy(order: Order, supplier: Supplier | None = None, *, entries=None, live=None):
    """(entry, supplier, article) of each line with a product that no live purchase of the
    order covers, from `supplier` when given (by the line's chosen offer now).

    What is bought is what the purchases were made for, not the chosen offers of today:
    Al-Style's stock drops once we buy, so a line's chosen offer may switch suppliers
    between the purchase and its settling; the line must not be bought twice, and the
    order must not wait for a supplier it never needed."""
    entries = _entries(order) if entries is None else entries
    if live is None:
        live = list(SupplierPurchase.objects.filter(order=order, status__in=SupplierPurchase.LIVE))
    found = []
    for entry in entries:
        if not entry.product_id or any(_covers(p, entry) for p in live):
            continue
        source, article = line_source(entry)
        if supplier is None or source.pk == supplier.pk:
            found.append((entry, source, article))
    return found


def suppliers_of(order: Order) -> list[Supplier]:
    """The suppliers of an order's lines still to buy (by their chosen offers), Al-Style
    first, then by name."""
    found = {source.pk: source for _entry, source, _article in _to_buy(order)}
    return sorted(found.values(), key=lambda s: (s.code != Supplier.ALSTYLE, s.name))


def _expected_sum(order: Order, supplier: Supplier | None = None):
    total = 0
    for entry, _source, _article in _to_buy(order, supplier):
        if not entry.product.price1:
            return None
        total += entry.product.price1 * entry.quantity
    return total


def _yes(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().casefold() in YES_MARKS


def is_main_entry(entry: dict) -> bool:
    """Marked as the main one: a key `Основной` that is true (true, 1, "1", "да"), or a
    field whose value is `Основной` — both shapes are seen (docs/alstyle-api.md §6)."""
    for key, value in entry.items():
        if str(key).strip().casefold() == MAIN_MARK:
            if _yes(value):
                return True
        elif isinstance(value, str) and value.strip().casefold() == MAIN_MARK:
            return True
    return False


def _content(entry: dict) -> list[str]:
    return [
        str(value).strip()
        for key, value in entry.items()
        if str(key).strip().casefold() not in MARKER_KEYS
        and value not in (None, "", [], {})
        and str(value).strip()
        and str(value).strip().casefold() != MAIN_MARK
    ]


def _parse_day(value):
    text = str(value or "").strip()[:10]
    for fmt in ("%d.%m.%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).date()  # noqa: DTZ007 (a calendar day)
        except ValueError:
            continue
    return None


def _unusable(entry, *, kind: str, our_bin: str, today) -> str:
    """Why `entry` must never be sent ("" when it may be)."""
    if not isinstance(entry, dict):
        return str(_("not an entry"))
    if _yes(entry.get("empty", False)) or not _content(entry):
        return str(_("empty"))
    if any(
        field in entry and not str(entry[field] or "").strip() for field in REQUIRED_FIELDS[kind]
    ):
        return str(_("empty"))
    end = _parse_day(entry.get("ДатаОкончания"))
    if end is not None and end < today:
        return str(_("expired on %(date)s")) % {"date": end.strftime("%d.%m.%Y")}
    entry_bin = str(entry.get("БИН") or "").strip()
    if entry_bin and our_bin and entry_bin != our_bin:
        return str(_("for another BIN %(bin)s")) % {"bin": entry_bin}
    return ""


def describe_entry(entry) -> str:
    """An entry in a few words for staff: «№42 Примерова А. С. (до 31.12.2030)»."""
    if not isinstance(entry, dict):
        return str(entry)[:80]
    if entry.get("Номер") or entry.get("ФИО"):
        text = f"№{entry.get('Номер') or '—'} {entry.get('ФИО') or ''}".strip()
        if entry.get("ДатаОкончания"):
            text += f" (до {entry['ДатаОкончания']})"
        return text
    named = [
        str(entry[key]).strip()
        for key in ("СпособДоставки", "Транспортник", "Адрес")
        if str(entry.get(key) or "").strip()
    ]
    return ", ".join(named or _content(entry)[:3]) or "—"


def _matches(entry, wanted: str) -> bool:
    wanted = wanted.strip().casefold()
    return isinstance(entry, dict) and any(
        str(value).strip().casefold() == wanted
        for key, value in entry.items()
        if str(key).strip().casefold() not in MARKER_KEYS
    )


def choose_entry(entries, *, kind: str, our_bin: str, wanted: str = "", setting: str = ""):
    """The attorney or carrier entry of the dealer profile a purchase sends.

    Staff's choice (`wanted`: the purchase form, else the setting) wins; otherwise the one
    marked Основной. Never an empty entry, an expired attorney or one for another BIN. With
    nothing to send, FulfilmentRefused names the entries so staff can pick one.
    """
    if isinstance(entries, dict):
        entries = list(entries.values())
    entries = entries if isinstance(entries, list) else []
    today = timezone.localdate()
    reasons = [_unusable(e, kind=kind, our_bin=our_bin, today=today) for e in entries]
    usable = [e for e, why in zip(entries, reasons, strict=True) if not why]
    label = _("attorney") if kind == "attorney" else _("carrier")
    listed = "; ".join(
        describe_entry(e) + (f" — {why}" if why else "")
        for e, why in zip(entries, reasons, strict=True)
    ) or str(_("none in the profile"))
    if wanted:
        chosen = [e for e in usable if _matches(e, wanted)]
        if chosen:
            return chosen[0]
        raise FulfilmentRefused(
            _(
                "Al-Style %(label)s «%(wanted)s» is not among the usable entries of the dealer "
                "profile; entries: %(listed)s"
            )
            % {"label": label, "wanted": wanted, "listed": listed}
        )
    main = [e for e in usable if is_main_entry(e)]
    if main:
        return main[0]
    raise FulfilmentRefused(
        _(
            "The Al-Style dealer profile marks no usable %(label)s as «Основной»: pick one in "
            "the purchase form or with the setting %(setting)s. Entries: %(listed)s"
        )
        % {"label": label, "setting": setting, "listed": listed}
    )


def purchase_plan(*, order: Order, client, attorney: str = "", carrier: str = "") -> dict:
    """What an Al-Style purchase would send: lines, submit fields, base URLs and problems."""
    alstyle = Supplier.alstyle()
    lines = purchase_lines(order, alstyle)
    if not lines:
        raise FulfilmentRefused(
            _("order %(code)s has no line from Al-Style") % {"code": order.code}
        )
    profile = client.user_data()
    our_bin = str(profile.get("bin") or profile.get("БИН") or "").strip()
    problems, chosen = [], {}
    for kind, key, wanted, setting in (
        (
            "attorney",
            "Доверенности",
            attorney or settings.ALSTYLE_ATTORNEY_NUMBER,
            "ALSTYLE_ATTORNEY_NUMBER",
        ),
        ("carrier", "Транспортники", carrier or settings.ALSTYLE_CARRIER, "ALSTYLE_CARRIER"),
    ):
        try:
            chosen[kind] = choose_entry(
                profile.get(key), kind=kind, our_bin=our_bin, wanted=wanted, setting=setting
            )
        except FulfilmentRefused as exc:
            chosen[kind] = None
            problems.append(str(exc))
    reference = purchase_reference(order)
    submit = {
        "shipping_date": (
            timezone.localdate() + timedelta(days=settings.ALSTYLE_SHIPPING_DAYS)
        ).strftime("%d.%m.%Y"),
        "attorney_json": _as_json(chosen["attorney"]),
        "delivery_json": _as_json(chosen["carrier"]),
        "comments": f"{reference} (Kaspi {order.code})",
        "external_id": reference,
    }
    return {
        "lines": lines,
        "products": sorted({entry.product_id for entry, _s, _a in _to_buy(order, alstyle)}),
        "submit": submit,
        "attorney": chosen["attorney"],
        "carrier": chosen["carrier"],
        "urls": {"catalog": client.http.base_url, "cart": client.cart_url},
        "problems": problems,
    }


def describe_plan(plan: dict) -> str:
    """A purchase plan in one line for staff (the dry run): URLs, lines, entries, problems."""
    lines = ", ".join(f"{line['article']} × {line['quantity']}" for line in plan["lines"])
    parts = [
        str(_("catalog %(catalog)s, cart %(cart)s")) % plan["urls"],
        str(_("lines: %(lines)s")) % {"lines": lines},
        str(_("attorney: %(entry)s"))
        % {"entry": describe_entry(plan["attorney"]) if plan["attorney"] else "—"},
        str(_("carrier: %(entry)s"))
        % {"entry": describe_entry(plan["carrier"]) if plan["carrier"] else "—"},
        str(_("shipping date %(date)s, reference %(ref)s"))
        % {"date": plan["submit"]["shipping_date"], "ref": plan["submit"]["external_id"]},
        *plan["problems"],
    ]
    return "; ".join(parts)


def _as_json(entry):
    return json.dumps(entry, ensure_ascii=False) if entry else None


def _alstyle_client():
    """Al-Style's client, from its adapter (the one place that builds it, paced by the
    Supplier row)."""
    return supplier_adapter(Supplier.alstyle()).client


def _live(order: Order, supplier: Supplier) -> SupplierPurchase | None:
    return SupplierPurchase.objects.filter(
        order=order, supplier=supplier, status__in=SupplierPurchase.LIVE
    ).first()


@in_shop_language
def purchase_from_alstyle(
    *,
    order: Order,
    user=None,
    dry_run: bool = False,
    client=None,
    attorney: str = "",
    carrier: str = "",
):
    """Buy an accepted order's goods through the Al-Style cart API, once.

    Sequence: user-data → clear → add → submit, under a lock because the cart is shared by
    every process using the token. A failure before submit, or a definite refusal at submit,
    leaves nothing bought (the cart is cleared, a new attempt may follow). A submit without
    a clear answer (timeout, connection error, 5xx, a cut-off body) is "unknown": the order
    is looked up in Al-Style's order list by our reference; if it is not found the purchase
    stays unknown for staff and is never retried automatically.

    Only the order's Al-Style lines are bought here (purchase_order handles the others);
    the cart is Al-Style's adapter's.
    """
    alstyle = Supplier.alstyle()
    if order.fulfilment != Fulfilment.ACCEPTED:
        raise FulfilmentRefused(_not_accepted(order))
    live = _live(order, alstyle)
    if live is not None:
        raise FulfilmentRefused(_already(order, live))
    client = client or _alstyle_client()
    plan = purchase_plan(order=order, client=client, attorney=attorney, carrier=carrier)
    if dry_run:
        return plan
    if plan["problems"]:
        raise FulfilmentRefused(" ".join(plan["problems"]))
    lines, submit = plan["lines"], plan["submit"]
    holder = f"order-{order.pk}"
    if not acquire_lock(CART_LOCK, holder):
        raise FulfilmentRefused(
            gettext("another Al-Style purchase is in progress; try again shortly")
        )
    try:
        try:
            with transaction.atomic():
                purchase = SupplierPurchase.objects.create(
                    order=order,
                    supplier=alstyle,
                    status=SupplierPurchase.Status.UNKNOWN,
                    reference=submit["external_id"],
                    lines=lines,
                    products=plan["products"],
                    sent={
                        "attorney": plan["attorney"],
                        "delivery": plan["carrier"],
                        "shipping_date": submit["shipping_date"],
                        "comments": submit["comments"],
                        "expected_sum": _expected_sum(order, alstyle),
                    },
                    created_by=user if getattr(user, "pk", None) else None,
                )
        except IntegrityError:
            raise FulfilmentRefused(
                gettext("order %(code)s was already ordered from Al-Style") % {"code": order.code}
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
            raise FulfilmentRefused(
                gettext("Al-Style cart failed, nothing was submitted: %(error)s") % {"error": exc}
            ) from None
        return _submit(purchase=purchase, client=client, submit=submit, user=user)
    finally:
        release_lock(CART_LOCK, holder)


@in_shop_language
def make_purchase_list(*, order: Order, supplier: Supplier, user=None) -> SupplierPurchase:
    """A supplier without a cart API: the list staff order by hand (supplier article, name,
    quantity, dealer price), kept as a `listed` purchase, so it is made once per order and
    supplier and the goods are never listed for buying twice."""
    live = _live(order, supplier)
    if live is not None:
        raise FulfilmentRefused(_already(order, live))
    lines, products = [], set()
    for entry, _source, article in _to_buy(order, supplier):
        products.add(entry.product_id)
        offer = entry.product.offer
        lines.append(
            {
                "article": article,
                "name": (offer.name if offer is not None else entry.product.name)[:500],
                "quantity": entry.quantity,
                "dealer_price": offer.dealer_price if offer is not None else entry.product.price1,
            }
        )
    if not lines:
        raise FulfilmentRefused(
            _("order %(code)s has no line from %(supplier)s")
            % {"code": order.code, "supplier": supplier.name}
        )
    try:
        with transaction.atomic():
            return SupplierPurchase.objects.create(
                order=order,
                supplier=supplier,
                status=SupplierPurchase.Status.LISTED,
                reference=purchase_reference(order),
                lines=lines,
                products=sorted(products),
                sent={"expected_sum": _expected_sum(order, supplier)},
                created_by=user if getattr(user, "pk", None) else None,
            )
    except IntegrityError:
        live = _live(order, supplier)
        raise FulfilmentRefused(_already(order, live) if live else str(order.code)) from None


@in_shop_language
def mark_list_ordered(*, purchase: SupplierPurchase, user=None) -> SupplierPurchase:
    """Staff ordered a purchase list's goods from its supplier by hand: the list becomes
    `ordered`. Once every supplier of the order is bought from (its cart purchase submitted
    or its list ordered), an accepted order moves to "bought from supplier"
    (mark_bought_when_complete). Marking a list already ordered changes nothing."""
    with transaction.atomic():
        current = (
            SupplierPurchase.objects.select_for_update()
            .select_related("order", "supplier")
            .get(pk=purchase.pk)
        )
        if current.status == SupplierPurchase.Status.ORDERED:
            return current
        # The order row before the list's status: see mark_bought_when_complete.
        Order.objects.select_for_update().filter(pk=current.order_id).first()
        if current.status != SupplierPurchase.Status.LISTED:
            raise FulfilmentRefused(
                _("purchase %(ref)s is not a purchase list to order (%(status)s)")
                % {"ref": current.reference or current.pk, "status": current.get_status_display()}
            )
        current.status = SupplierPurchase.Status.ORDERED
        current.save(update_fields=["status"])
        if getattr(user, "pk", None):
            audit(
                user=user,
                action="purchase.ordered",
                obj=current.order,
                before={"status": SupplierPurchase.Status.LISTED.value},
                after={"status": current.status, "supplier": current.supplier.code},
            )
        mark_bought_when_complete(
            order=current.order,
            user=user,
            note=_("ordered by hand from %(supplier)s") % {"supplier": current.supplier.name},
        )
    return current


def bought_from_every_supplier(order: Order) -> bool:
    """Whether the order is bought: it has live purchases, each of them bought (its cart
    purchase submitted, or its purchase list ordered by hand), and together they cover every
    line. Decided from the purchases made, not from the lines' chosen offers of today (those
    may have switched suppliers since: see _to_buy)."""
    live = list(SupplierPurchase.objects.filter(order=order, status__in=SupplierPurchase.LIVE))
    if not live or any(p.status not in SupplierPurchase.BOUGHT for p in live):
        return False
    return not _to_buy(order, live=live)


def mark_bought_when_complete(*, order: Order, user=None, note: str = "") -> bool:
    """Move an accepted order to "bought from supplier" once every supplier of its lines is
    bought from (bought_from_every_supplier), whichever purchase settles last: the Al-Style
    submit or the last purchase list marked ordered. Otherwise, or when the order is past
    "accepted" already, nothing changes (so a second call does nothing). Returns whether it
    moved.

    The order row is locked before purchases are read; a list marked ordered locks it
    before changing the list, so when the Al-Style submit and the last list settle at the
    same time, the one that checks second sees the other's purchase.
    """
    with transaction.atomic():
        current = Order.objects.select_for_update().get(pk=order.pk)
        if current.fulfilment != Fulfilment.ACCEPTED or not bought_from_every_supplier(current):
            order.fulfilment = current.fulfilment
            return False
        set_fulfilment(order=current, to=Fulfilment.PURCHASED, user=user, note=note)
    order.fulfilment = current.fulfilment
    return True


@in_shop_language
def purchase_order(*, order: Order, user=None, client=None, attorney="", carrier="") -> list:
    """One purchase per supplier of the order's lines: Al-Style's through its cart, a
    purchase list for a supplier without a cart API. Returns (supplier, purchase or the
    refusal) per supplier; a supplier already bought from (or listed) is refused, nothing
    new is made, so running it twice buys nothing twice."""
    if order.fulfilment not in (Fulfilment.ACCEPTED, Fulfilment.PURCHASED):
        raise FulfilmentRefused(_not_accepted(order))
    purchase_lines(order)  # every line has a product of ours, else refused as a whole
    results = []
    # The suppliers already purchased from (each refused as "already") and those of the
    # lines no purchase covers yet: a line whose chosen offer switched suppliers after its
    # purchase is not bought again.
    found = {
        p.supplier_id: p.supplier
        for p in SupplierPurchase.objects.filter(
            order=order, status__in=SupplierPurchase.LIVE
        ).select_related("supplier")
    }
    found.update({s.pk: s for s in suppliers_of(order)})
    suppliers = sorted(found.values(), key=lambda s: (s.code != Supplier.ALSTYLE, s.name))
    # Lists first, Al-Style last. The order becomes "bought from supplier" only once every
    # list is also marked ordered (mark_bought_when_complete), never by the cart alone.
    for supplier in sorted(suppliers, key=lambda s: s.code == Supplier.ALSTYLE):
        try:
            live = _live(order, supplier)
            if live is not None:
                raise FulfilmentRefused(_already(order, live))
            adapter = supplier_adapter(supplier, client)
            if has_cart(supplier, adapter):
                result = purchase_from_alstyle(
                    order=order,
                    user=user,
                    client=client or adapter.client,
                    attorney=attorney,
                    carrier=carrier,
                )
            else:
                result = make_purchase_list(order=order, supplier=supplier, user=user)
        except FulfilmentRefused as exc:
            result = exc
        results.append((supplier, result))
    return results


def _not_accepted(order: Order) -> str:
    return gettext("order %(code)s must be accepted first") % {"code": order.code}


def _already(order: Order, live: SupplierPurchase) -> str:
    if live.status == SupplierPurchase.Status.ORDERED:
        return str(_("order %(code)s was already ordered from %(supplier)s by hand")) % {
            "code": order.code,
            "supplier": live.supplier.name,
        }
    if live.status == SupplierPurchase.Status.LISTED:
        return str(_("order %(code)s already has a purchase list for %(supplier)s")) % {
            "code": order.code,
            "supplier": live.supplier.name,
        }
    if live.status == SupplierPurchase.Status.SUBMITTED:
        return str(_("order %(code)s was already ordered from Al-Style (order %(id)s)")) % {
            "code": order.code,
            "id": live.supplier_order_id or "—",
        }
    return str(
        _(
            "order %(code)s was already sent to Al-Style and the result is unknown: check "
            "Al-Style's order list for %(ref)s before anything else"
        )
    ) % {"code": order.code, "ref": live.reference or purchase_reference(order)}


def _submit(*, purchase: SupplierPurchase, client, submit: dict, user):
    try:
        answer = client.cart("submit", method="POST", **submit)
    except CartRefused as exc:
        # A definite "no": the order was not created. Recorded, the cart emptied, and a
        # new attempt is allowed once the cause is fixed.
        purchase.status = SupplierPurchase.Status.REFUSED
        purchase.error = exc.supplier_text or str(exc)
        purchase.response = str(exc)[:10000]
        purchase.save()
        _clear_quietly(client)
        raise FulfilmentRefused(
            _(
                "Al-Style refused the order: %(text)s. Nothing was bought; fix the cause and "
                "order again."
            )
            % {"text": purchase.error.rstrip(". ")}
        ) from None
    except ExternalServiceError as exc:
        return _after_unknown_submit(purchase=purchase, client=client, user=user, cause=str(exc))
    data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
    supplier_id = str(data.get("id") or answer.get("id") or "")
    purchase.response = json.dumps(answer, ensure_ascii=False)[:10000]
    if answer.get("status") and supplier_id:
        _settle(purchase, supplier_id=supplier_id, supplier_status="", user=user)
        return purchase
    purchase.save()
    return _after_unknown_submit(
        purchase=purchase,
        client=client,
        user=user,
        cause=gettext("Al-Style answered without an order number"),
    )


def _settle(purchase, *, supplier_id: str, supplier_status: str, user=None, note: str = ""):
    purchase.status = SupplierPurchase.Status.SUBMITTED
    purchase.supplier_order_id = supplier_id[:64]
    purchase.supplier_status = supplier_status[:32]
    if supplier_status:
        purchase.supplier_checked_at = timezone.now()
    if note:
        purchase.error = note
    purchase.save()
    mark_bought_when_complete(
        order=purchase.order,
        user=user,
        note=gettext("Al-Style order %(id)s") % {"id": supplier_id},
    )


def _after_unknown_submit(*, purchase, client, user, cause: str):
    """The submit got no clear answer: look the order up; found → settled, else unknown."""
    try:
        found, searched = find_supplier_order(purchase=purchase, client=client)
    except ExternalServiceError as exc:
        found, searched = (
            None,
            str(_("the order list could not be read: %(error)s")) % {"error": exc},
        )
    if found is not None:
        _settle(
            purchase,
            supplier_id=found["id"],
            supplier_status=found["status"],
            user=user,
            note=str(_("Submit answer: %(cause)s. Found in Al-Style's order list: %(how)s."))
            % {"cause": cause, "how": searched},
        )
        return purchase
    purchase.error = str(
        _(
            "Submit answer: %(cause)s. The order may or may not exist at Al-Style and is never "
            "sent again automatically: check Al-Style's order list. Searched: %(searched)s."
        )
    ) % {"cause": cause, "searched": searched}
    purchase.save()
    send_alert(
        key=f"purchase:unknown:{purchase.pk}",
        text=f"Закупка у Al-Style для заказа Kaspi {purchase.order.code}: результат неизвестен. "
        + purchase.error,
    )
    raise FulfilmentRefused(purchase.error)


def _ref_in(reference: str, text: str) -> bool:
    return bool(re.search(rf"(?<![\w-]){re.escape(reference)}(?![\w-])", text or ""))


def _supplier_time(value: str):
    text = (value or "").strip().replace("T", " ")[:19]
    for fmt in ("%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M:%S", "%Y-%m-%d %H:%M", "%d.%m.%Y %H:%M"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=ALMATY)
        except ValueError:
            continue
    return None


def _decimal(value):
    try:
        return Decimal(str(value).replace(" ", "").replace(",", "."))
    except (InvalidOperation, ValueError):
        return None


def lookup_range(purchase: SupplierPurchase):
    start = timezone.localtime(purchase.created_at).date() - timedelta(days=1)
    return start, timezone.localdate() + timedelta(days=1)


def find_supplier_order(*, purchase: SupplierPurchase, client, entries=None):
    """Our order in Al-Style's order list: by external_id, else our reference in the
    comment, else by date, sum and lines. Returns (entry or None, what was searched)."""
    reference = purchase.reference or purchase_reference(purchase.order)
    date_from, date_to = lookup_range(purchase)
    if entries is None:
        entries = client.orders(date_from=date_from, date_to=date_to)
    searched = str(
        _(
            "%(n)d orders from %(from)s to %(to)s by external_id %(ref)s, by %(ref)s in the "
            "comment, by date ± %(minutes)d min, sum and lines"
        )
    ) % {
        "n": len(entries),
        "from": date_from.strftime("%d.%m.%Y"),
        "to": date_to.strftime("%d.%m.%Y"),
        "ref": reference,
        "minutes": LOOKUP_WINDOW_MINUTES,
    }
    for how, test in (
        (
            gettext("by external_id %(ref)s → %(id)s"),
            lambda e: e["external_id"].strip() == reference,
        ),
        (
            gettext("by %(ref)s in the comment → %(id)s"),
            lambda e: _ref_in(reference, e["comment"]),
        ),
    ):
        hits = [e for e in entries if test(e)]
        if hits:
            return hits[0], how % {"ref": reference, "id": hits[0]["id"]}
    # Date + sum + lines: only entries that carry no other reference of ours.
    window = timedelta(minutes=LOOKUP_WINDOW_MINUTES)
    expected = _decimal((purchase.sent or {}).get("expected_sum"))
    wanted = sorted((str(x["article"]), int(x["quantity"])) for x in purchase.lines)
    matches = []
    for entry in entries:
        if entry["external_id"] or "kaspi-" in entry["comment"]:
            continue
        when = _supplier_time(entry["date"])
        if when is None or not (purchase.created_at - window <= when <= timezone.now() + window):
            continue
        total = _decimal(entry["sum"])
        if expected and total is not None and abs(total - expected) > expected * Decimal("0.05"):
            continue
        detail = client.order(entry["id"])
        got = sorted((x["article"], x["quantity"] or 0) for x in detail["lines"])
        if got == wanted:
            matches.append(entry)
        if len(matches) > 1:
            break
    if len(matches) == 1:
        return matches[0], gettext("by date, sum and lines → %(id)s") % {"id": matches[0]["id"]}
    if matches:
        searched += "; " + str(_("several orders match by date, sum and lines: %(ids)s")) % {
            "ids": ", ".join(e["id"] for e in matches)
        }
    return None, searched


@in_shop_language
def poll_supplier_purchases(*, client=None, now=None) -> dict:
    """Read the supplier status of open purchases from Al-Style's order list (one listing
    for all of them) and look up the unknown ones again. Read-only at Al-Style: nothing is
    ever submitted again here."""
    now = now or timezone.now()
    since = now - timedelta(days=settings.ALSTYLE_PURCHASE_POLL_DAYS)
    open_ = list(
        SupplierPurchase.objects.filter(
            supplier__code=Supplier.ALSTYLE,
            status=SupplierPurchase.Status.SUBMITTED,
            created_at__gte=since,
        )
        .exclude(supplier_order_id="")
        .exclude(supplier_status__in=SupplierPurchase.FINAL_SUPPLIER_STATUSES)
        .select_related("order")
    )
    unknown = list(
        SupplierPurchase.objects.filter(
            supplier__code=Supplier.ALSTYLE,
            status=SupplierPurchase.Status.UNKNOWN,
            created_at__gte=since,
        ).select_related("order")
    )
    counts = {"open": len(open_), "changed": 0, "missing": 0, "unknown": len(unknown), "found": 0}
    if not open_ and not unknown:
        return counts
    client = client or _alstyle_client()
    oldest = min(p.created_at for p in open_ + unknown)
    date_from = timezone.localtime(oldest).date() - timedelta(days=1)
    date_to = timezone.localdate() + timedelta(days=1)
    entries = client.orders(date_from=date_from, date_to=date_to)
    by_id = {e["id"]: e for e in entries}
    for purchase in open_:
        entry = by_id.get(purchase.supplier_order_id)
        if entry is None:
            counts["missing"] += 1
            continue
        status = entry["status"][:32]
        if status != purchase.supplier_status:
            counts["changed"] += 1
            if status == "DA":
                send_alert(
                    key=f"purchase:cancelled:{purchase.pk}",
                    text=f"Al-Style отменил заказ {purchase.supplier_order_id} "
                    f"(заказ Kaspi {purchase.order.code}).",
                )
        SupplierPurchase.objects.filter(pk=purchase.pk).update(
            supplier_status=status, supplier_checked_at=now
        )
    for purchase in unknown:
        found, searched = find_supplier_order(purchase=purchase, client=client, entries=entries)
        if found is not None:
            counts["found"] += 1
            _settle(
                purchase,
                supplier_id=found["id"],
                supplier_status=found["status"],
                note=f"{purchase.error}\n"
                + str(_("Found in Al-Style's order list: %(how)s.")) % {"how": searched},
            )
        else:
            SupplierPurchase.objects.filter(pk=purchase.pk).update(supplier_checked_at=now)
    return counts


@in_shop_language
def resolve_unknown_purchase(
    *, purchase: SupplierPurchase, user, supplier_order_id: str = ""
) -> SupplierPurchase:
    """Staff settle an unknown purchase after checking Al-Style's order list themselves:
    with its Al-Style number it is recorded as submitted; without, it was not created there
    and becomes "failed", so a new purchase may follow."""
    with transaction.atomic():
        current = SupplierPurchase.objects.select_for_update().get(pk=purchase.pk)
        if current.status != SupplierPurchase.Status.UNKNOWN:
            raise FulfilmentRefused(
                _("purchase %(ref)s is not unknown (%(status)s)")
                % {"ref": current.reference or current.pk, "status": current.get_status_display()}
            )
        name = getattr(user, "username", "") or "—"
        supplier_order_id = supplier_order_id.strip()
        if supplier_order_id:
            note = _("%(user)s found it at Al-Style as order %(id)s.") % {
                "user": name,
                "id": supplier_order_id,
            }
            _settle(
                current,
                supplier_id=supplier_order_id,
                supplier_status="",
                user=user,
                note=f"{current.error}\n{note}",
            )
        else:
            current.status = SupplierPurchase.Status.FAILED
            current.error += "\n" + _(
                "%(user)s checked Al-Style's order list: not there; a new purchase is allowed."
            ) % {"user": name}
            current.save()
        if getattr(user, "pk", None):
            audit(
                user=user,
                action="purchase.resolve",
                obj=current.order,
                before={"status": "unknown"},
                after={"status": current.status, "supplier_order_id": supplier_order_id},
            )
    return current


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
    lines.append(f"Деньги в незавершённых заказах: {money(waiting)}")
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
