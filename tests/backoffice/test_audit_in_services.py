"""Audit entries are written by the services, not the admin (issue 18.9): a change made
through the service itself — as a command, a task or the API would make it — is audited
the same way as one made in the admin."""

import json
from decimal import Decimal

from django.core.management import call_command

from backoffice.models import AuditEntry
from catalog.models import PriceRule, Product
from catalog.services.pricelist_import import request_pricelist_import
from catalog.services.pricing import approve_prices, delete_price_rule, save_price_rule
from catalog.services.products import save_product, set_kaspi_enabled
from payments.models import Payment
from payments.services.create import create_payment
from payments.services.events import apply_payment_event, record_manual_refund
from tests import factories


def entry(action: str) -> AuditEntry:
    return AuditEntry.objects.get(action=action)


def test_putting_products_on_kaspi_is_audited(django_user_model):
    user = django_user_model.objects.create_user("om")
    factories.product(sku="AS1", kaspi_enabled=False)
    factories.product(sku="AS2", kaspi_enabled=False)

    assert set_kaspi_enabled(products=Product.objects.all(), enabled=True, user=user) == 2
    set_kaspi_enabled(products=Product.objects.filter(sku="AS1"), enabled=False)

    on = entry("product.enable_on_kaspi")
    assert (on.user, sorted(on.after["skus"])) == (user, ["AS1", "AS2"])
    off = entry("product.disable_on_kaspi")
    assert (off.user, off.after["skus"]) == (None, ["AS1"])  # a command: no staff member
    assert not Product.objects.get(sku="AS1").kaspi_enabled


def test_a_product_edit_is_audited_and_a_manual_price_repriced():
    product = factories.product(sku="AS1", manual_price=None)
    product.manual_price = 25990

    changed = save_product(product=product, before={"manual_price": None})

    assert changed == ["manual_price"]
    audited = entry("product.change")
    assert (audited.before, audited.after) == ({"manual_price": None}, {"manual_price": 25990})
    assert Product.objects.get(pk=product.pk).kaspi_price == 25990


def test_approving_frozen_prices_is_audited():
    factories.product(sku="AS1", price_review=True)
    factories.product(sku="AS2", price_review=False)

    approve_prices(products=Product.objects.all())

    assert entry("product.approve_prices").after == {"skus": ["AS1"]}


def test_price_rules_are_audited_when_added_changed_and_deleted():
    rule = save_price_rule(rule=PriceRule(name="Все", markup_percent=10))
    rule.markup_percent = 15
    save_price_rule(rule=rule)
    delete_price_rule(rule=PriceRule.objects.get(pk=rule.pk))

    assert Decimal(entry("price_rule.add").after["markup_percent"]) == 10
    changed = entry("price_rule.change")
    assert Decimal(changed.before["markup_percent"]) == 10
    assert Decimal(changed.after["markup_percent"]) == 15
    assert entry("price_rule.delete").before["name"] == "Все"
    assert not PriceRule.objects.exists()


def test_a_manual_refund_is_audited_by_the_service():
    payment = create_payment(amount=5000)
    apply_payment_event(payment_id=payment.pk, source="t", key="p", status="paid")

    record_manual_refund(payment=Payment.objects.get(pk=payment.pk))

    assert Payment.objects.get(pk=payment.pk).status == "refunded"
    assert entry("payment.refund").after == {"status": "refunded"}


def test_a_payment_file_applied_by_the_command_is_audited(tmp_path):
    payment = create_payment(amount=700)
    rows = [{"orderId": payment.reference, "amount": 700, "status": "completed",
             "transactionId": "T1"}]  # fmt: skip
    path = tmp_path / "kaspi.json"
    path.write_text(json.dumps(rows))

    call_command("import_payments", str(path))

    audited = entry("payment.import")
    assert audited.after == {"applied": 1, "duplicates": 0, "rows": 1}
    assert audited.note == "kaspi.json"


def test_a_dry_run_of_a_payment_file_is_not_audited(tmp_path):
    payment = create_payment(amount=700)
    path = tmp_path / "kaspi.json"
    path.write_text(json.dumps([{"orderId": payment.reference, "amount": 700,
                                 "status": "completed", "transactionId": "T1"}]))  # fmt: skip

    call_command("import_payments", str(path), "--dry-run")

    assert not AuditEntry.objects.exists()


def test_queueing_an_old_price_list_is_audited(tmp_path):
    request_pricelist_import(path=tmp_path / "old.xml", source="old.xml")

    assert entry("pricelist.import_queued").note == "old.xml"
