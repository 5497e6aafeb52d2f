"""Reconciliation of payments and direct orders (a selector: it reads, never writes)."""

import csv
import io
from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from orders.models import Order

from ..models import Payment


@dataclass(frozen=True)
class Discrepancy:
    kind: str
    reference: str
    order: str
    payment_amount: int | None
    order_amount: int | None
    detail: str


def reconcile() -> list[Discrepancy]:
    rows: list[Discrepancy] = []
    for payment in Payment.objects.filter(status="paid", order__isnull=True):
        rows.append(
            Discrepancy(
                "paid_without_order",
                payment.reference,
                "",
                payment.amount,
                None,
                "paid, but no order was linked or created",
            )
        )
    paid_payment = Payment.objects.filter(order=OuterRef("pk"), status__in=["paid", "refunded"])
    for order in Order.objects.filter(channel="direct", paid_at__isnull=False).exclude(
        Exists(paid_payment)
    ):
        rows.append(
            Discrepancy(
                "order_paid_without_payment",
                "",
                order.code,
                None,
                order.total_price,
                "the order is marked paid but has no paid payment",
            )
        )
    for payment in Payment.objects.filter(status="paid", order__isnull=False).select_related(
        "order"
    ):
        if payment.amount != payment.order.total_price:
            rows.append(
                Discrepancy(
                    "amount_mismatch",
                    payment.reference,
                    payment.order.code,
                    payment.amount,
                    payment.order.total_price,
                    "payment amount differs from the order total",
                )
            )
    return rows


def reconciliation_csv(rows: list[Discrepancy]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["kind", "payment", "order", "payment_amount", "order_amount", "detail"])
    for row in rows:
        writer.writerow(
            [row.kind, row.reference, row.order, row.payment_amount, row.order_amount, row.detail]
        )
    return buffer.getvalue()
