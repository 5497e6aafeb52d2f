"""Staff selections that call a rate-limited supplier API, run by the worker.

An admin action never waits for Al-Style (one call per 5 s: a stock check of 50 orders is
minutes of calls). It queues one run for the ticked orders (`request_*`); the worker's task
runs it (`run_*`), counting as it goes, so the run page shows progress, counters and one
report line per order. The command-line and admin paths call the same services
(check_stock, purchase_from_alstyle).
"""

from django.utils.translation import gettext as _

from backoffice.core.exceptions import BackofficeError
from backoffice.core.runs import enqueue_run, heartbeat, run_queued
from backoffice.models import SyncRun

from ..models import Order, SupplierPurchase
from .fulfilment import (
    _live,
    check_stock,
    describe_plan,
    has_cart,
    purchase_from_alstyle,
    purchase_lines,
    purchase_order,
    supplier_adapter,
    suppliers_of,
)

MAX_ORDERS = 200  # one selection; a bigger one is cut here and said so in the report


def _order_ids(orders) -> list[int]:
    return sorted({order.pk for order in orders})[:MAX_ORDERS]


def request_stock_check(*, orders, user=None, triggered_by: str = "user") -> SyncRun:
    return enqueue_run(
        kind=SyncRun.Kind.ORDER_STOCK,
        task="orders.tasks.stock_check_task",
        triggered_by=triggered_by,
        user=user,
        params={"orders": _order_ids(orders)},
    )


def request_purchase(
    *, orders, user=None, dry_run=False, attorney="", carrier="", triggered_by: str = "user"
) -> SyncRun:
    return enqueue_run(
        kind=SyncRun.Kind.PURCHASE,
        task="orders.tasks.purchase_task",
        triggered_by=triggered_by,
        user=user,
        params={
            "orders": _order_ids(orders),
            "dry_run": bool(dry_run),
            "attorney": attorney,
            "carrier": carrier,
        },
    )


def run_stock_check(*, run_id: int, client=None) -> SyncRun:
    return run_queued(run_id=run_id, job=lambda run: _each_order(run, _check_one, client))


def run_purchase(*, run_id: int, client=None) -> SyncRun:
    return run_queued(run_id=run_id, job=lambda run: _each_order(run, _purchase_one, client))


def _check_one(run: SyncRun, order: Order, client) -> str:
    ok = check_stock(order, client=client)
    run.count("in_stock" if ok else "short")
    return _("all lines in stock") if ok else order.attention_reason


def _purchase_one(run: SyncRun, order: Order, client) -> str:
    """One purchase per supplier of the order (Al-Style's cart, a purchase list for the
    others); the dry run shows Al-Style's plan and which suppliers get a list."""
    params = run.params
    if params.get("dry_run"):
        parts = []
        for supplier in suppliers_of(order):
            if has_cart(supplier, supplier_adapter(supplier, client)):
                plan = purchase_from_alstyle(order=order, dry_run=True, client=client)
                run.count("flagged" if plan["problems"] else "checked")
                parts.append(describe_plan(plan))
            else:
                lines = purchase_lines(order, supplier)
                parts.append(
                    _("%(supplier)s: a purchase list of %(n)d line(s)")
                    % {"supplier": supplier.name, "n": len(lines)}
                )
        return "; ".join(parts)
    parts, refused = [], []
    for supplier, result in purchase_order(
        order=order,
        user=run.user,
        client=client,
        attorney=params.get("attorney") or "",
        carrier=params.get("carrier") or "",
    ):
        if isinstance(result, Exception) and _live(order, supplier) is not None:
            run.count("unchanged")  # bought (or listed) before: nothing new, as it should be
            parts.append(f"{supplier.name}: {result}")
        elif isinstance(result, Exception):
            refused.append(f"{supplier.name}: {result}")
        elif result.status == SupplierPurchase.Status.LISTED:
            run.count("listed")
            parts.append(_("%(supplier)s: purchase list made") % {"supplier": supplier.name})
        elif result.supplier_order_id:
            run.count("purchased")
            parts.append(_("Al-Style order %(id)s") % {"id": result.supplier_order_id})
        else:
            run.count("unknown")
            parts.append(f"{supplier.name}: {result.get_status_display()}")
    if refused and not parts:
        raise BackofficeError("; ".join(refused))
    return "; ".join(parts + refused)


def _each_order(run: SyncRun, one, client) -> None:
    """Call `one(run, order, client)` for each order of the run; one order's refusal is
    its report line, the rest go on. A run with refusals ends partial, all refused failed."""
    ids = run.params.get("orders") or []
    orders = list(Order.objects.filter(pk__in=ids).order_by("pk"))
    heartbeat(run, done=0, total=len(orders), force=True)
    lines = []
    for done, order in enumerate(orders, 1):
        try:
            text = one(run, order, client)
        except BackofficeError as exc:
            run.count("errors")
            text = str(exc)
        lines.append(f"{order.code}: {text}")
        run.report = "\n".join(lines)
        heartbeat(run, done=done)
    heartbeat(run, done=len(orders), force=True)
    run.report = "\n".join(lines)
    errors = run.counts.get("errors", 0)
    if errors and errors == len(orders):
        raise BackofficeError(_("nothing done: every order was refused (see the report)"))
    if errors:
        run.status = SyncRun.Status.PARTIAL
