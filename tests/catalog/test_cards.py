import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from responses import matchers

from catalog.models import (
    AttributeSource,
    CardImport,
    CardMapping,
    CardState,
    KaspiAttribute,
    KaspiCategory,
    Product,
)
from catalog.services.cards import (
    build_card,
    card_preview,
    cards_import,
    normalise_details,
    poll_card_imports,
    refresh_attributes,
    refresh_categories,
    refresh_details,
    schema_problems,
)
from tests import factories

API = "https://kaspi.kz/shop/api/"
CAT = "Master - Notebooks"


@pytest.fixture
def mapped():
    """A supplier category mapped to a Kaspi category with four kinds of attribute."""
    supplier = factories.category(name="Ноутбуки")
    kaspi = KaspiCategory.objects.create(code=CAT, title="Ноутбуки")
    attrs = {
        "ram": KaspiAttribute.objects.create(
            category=kaspi, code="Notebooks*RAM", type="number", mandatory=True
        ),
        "color": KaspiAttribute.objects.create(
            category=kaspi,
            code="Notebooks*Color",
            type="enum",
            mandatory=True,
            values=["серый", "черный"],
        ),
        "ports": KaspiAttribute.objects.create(
            category=kaspi, code="Notebooks*Ports", type="string", multi_valued=True
        ),
        "touch": KaspiAttribute.objects.create(
            category=kaspi, code="Notebooks*Touch", type="boolean"
        ),
    }
    mapping = CardMapping.objects.create(category=supplier, kaspi_category=kaspi)
    AttributeSource.objects.create(
        mapping=mapping, attribute=attrs["ram"], source="property", value="Оперативная память"
    )
    AttributeSource.objects.create(
        mapping=mapping, attribute=attrs["color"], source="property", value="Цвет"
    )
    AttributeSource.objects.create(
        mapping=mapping, attribute=attrs["ports"], source="property", value="Порты"
    )
    AttributeSource.objects.create(
        mapping=mapping, attribute=attrs["touch"], source="fixed", value="нет"
    )
    return supplier


def laptop(category, n=1, **details):
    data = {
        "images": [f"https://img.al-style.kz/{n:05d}_1.jpg"],
        "description": "Ноутбук для работы",
        "weight": "1.6",
        "properties": {"Оперативная память": "16 ГБ", "Цвет": "серый", "Порты": "USB-C; HDMI"},
    }
    data.update(details)
    return factories.product(
        article=str(n),
        sku=f"AS{n}",
        name=f"Demo Book {n}",
        category=category,
        brand=factories.brand(name=f"Demo{n}"),
        details=data,
    )


def test_card_is_built_with_typed_values(mapped):
    preview = card_preview(laptop(mapped))
    assert preview.problems == []
    assert preview.payload == {
        "sku": "AS1",
        "title": "Demo Book 1",
        "brand": "Demo1",
        "category": CAT,
        "attributes": [
            {"code": "Notebooks*Color", "value": "серый"},
            {"code": "Notebooks*RAM", "value": 16},
            {"code": "Notebooks*Ports", "value": ["USB-C", "HDMI"]},
            {"code": "Notebooks*Touch", "value": False},
        ],
        "images": [{"url": "https://img.al-style.kz/00001_1.jpg"}],
        "description": "Ноутбук для работы",
        "weight": "1.6",
    }


def test_missing_mandatory_and_bad_values_in_plain_words(mapped):
    product = laptop(mapped, properties={"Цвет": "розовый"}, images=[])
    problems = card_preview(product).problems
    assert "mandatory attribute «Notebooks*RAM» has no value" in problems
    assert "«Notebooks*Color»: «розовый» is not one of Kaspi's allowed values" in problems
    assert any(p.startswith("no images") for p in problems)


def test_multi_value_on_single_attribute_is_refused(mapped):
    KaspiAttribute.objects.filter(code="Notebooks*Ports").update(multi_valued=False)
    problems = card_preview(laptop(mapped)).problems
    assert "«Notebooks*Ports» takes one value, got 2" in problems


def test_schema_rejects_unknown_key_and_bad_category():
    problems = schema_problems(
        [
            {
                "sku": "AS1",
                "title": "T",
                "brand": "B",
                "category": "Ноутбуки",
                "attributes": [{"code": "A*B", "value": 1}],
                "images": [{"url": "https://x/1.jpg"}],
                "price": 1000,
            }
        ]
    )["AS1"]
    assert any("'price' was unexpected" in p for p in problems)
    assert any(p.startswith("category:") for p in problems)


def test_unmapped_category_is_named():
    product = factories.product(category=factories.category(name="Кабели"))
    assert build_card(product).problems == [
        "the supplier category «Кабели» is not mapped to a Kaspi category"
    ]


def test_import_lifecycle_with_mixed_results(mocked_http, mapped):
    good, bad = laptop(mapped, 1), laptop(mapped, 2)
    invalid = laptop(mapped, 3, properties={})
    mocked_http.post(
        API + "products/import",
        match=[
            matchers.header_matcher({"Content-Type": "text/plain", "Accept": "application/json"})
        ],
        json={"code": "imp-1", "status": "UPLOADED"},
    )

    summary = cards_import([good, bad, invalid])

    assert (summary.sent, summary.invalid, len(summary.batches)) == (2, 1, 1)
    sent = json.loads(mocked_http.calls[0].request.body)
    assert [card["sku"] for card in sent] == ["AS1", "AS2"]
    assert b"\\u041d" in mocked_http.calls[0].request.body  # Cyrillic sent as ASCII escapes
    assert Product.objects.get(pk=invalid.pk).card_state == CardState.INVALID

    mocked_http.get(API + "products/import", json={"code": "imp-1", "status": "UPLOADED"})
    assert poll_card_imports() == 0
    mocked_http.get(API + "products/import", json={"code": "imp-1", "status": "FINISHED"})
    mocked_http.get(
        API + "products/import/result",
        json={
            "errors": 1,
            "warnings": 0,
            "skipped": 0,
            "total": 2,
            "result": {
                "AS1": {"state": "FINISHED"},
                "AS2": {"state": "FINISHED", "errors": ["Неверный атрибут"]},
            },
        },
    )
    assert poll_card_imports() == 1

    record = CardImport.objects.get()
    assert (record.status, record.total, record.errors) == ("FINISHED", 2, 1)
    assert Product.objects.get(pk=good.pk).card_state == CardState.ACCEPTED
    failed = Product.objects.get(pk=bad.pk)
    assert failed.card_state == CardState.ERROR
    assert "Неверный атрибут" in failed.card_message


def test_unchanged_cards_are_not_resent(mocked_http, mapped):
    product = laptop(mapped)
    mocked_http.post(API + "products/import", json={"code": "imp-1", "status": "UPLOADED"})
    cards_import([product])
    product.refresh_from_db()

    summary = cards_import([product])

    assert (summary.sent, summary.unchanged) == (0, 1)
    assert len(mocked_http.calls) == 1


def test_batching(mocked_http, mapped, settings):
    products = [laptop(mapped, n) for n in range(1, 6)]
    for n in range(3):
        mocked_http.post(API + "products/import", json={"code": f"imp-{n}", "status": "UPLOADED"})
    summary = cards_import(products, batch_size=2)
    assert [len(json.loads(c.request.body)) for c in mocked_http.calls] == [2, 2, 1]
    assert [b.code for b in summary.batches] == ["imp-0", "imp-1", "imp-2"]


def test_dry_run_sends_nothing(mocked_http, mapped, capsys):
    laptop(mapped)
    summary = cards_import(list(Product.objects.all()), dry_run=True)
    assert summary.sent == 1
    call_command("push_kaspi_cards", "--dry-run")
    assert "would send=1" in capsys.readouterr().out
    assert len(mocked_http.calls) == 0
    assert CardImport.objects.count() == 0


def test_failed_post_is_recorded(mocked_http, mapped):
    product = laptop(mapped)
    mocked_http.post(
        API + "products/import",
        status=500,
        json={"message": "Content type 'application/json' not supported"},
    )
    summary = cards_import([product])
    assert summary.batches[0].status == "FAILED"
    assert Product.objects.get(pk=product.pk).card_state == CardState.ERROR
    assert len(mocked_http.calls) == 1  # a POST is never retried


def test_classification_refresh_encodes_spaces(mocked_http):
    mocked_http.get(
        API + "products/classification/categories", json=[{"code": CAT, "title": "Ноутбуки"}]
    )
    assert refresh_categories() == 1
    mocked_http.get(
        API + "products/classification/attributes?c=Master%20-%20Notebooks",
        json=[{"code": "Notebooks*Color", "type": "enum", "mandatory": True, "multiValued": False}],
    )
    mocked_http.get(
        API
        + "products/classification/attribute/values?c=Master%20-%20Notebooks&a=Notebooks%2AColor",
        json=[{"code": "серый", "name": "серый"}],
    )
    assert refresh_attributes(KaspiCategory.objects.get()) == 1
    attribute = KaspiAttribute.objects.get()
    assert (attribute.mandatory, attribute.values) == (True, ["серый"])
    assert "%20" in mocked_http.calls[1].request.url


def test_supplier_details_normalised(mocked_http):
    product = factories.product(article="12345")
    mocked_http.get(
        "https://api.al-style.kz/api/element-info",
        json=[
            {
                "article": 12345,
                "description": "<p>Мощный <b>ноутбук</b></p><ul><li>USB</li></ul>",
                "images": [
                    "http://img.al-style.kz/12345_1.jpg",
                    "/upload/12345_2.jpg",
                    "http://img.al-style.kz/12345_1.jpg",
                ],
                "weight": 1.6,
                "properties": [{"name": "Цвет", "value": "серый"}],
            }
        ],
    )
    assert refresh_details([product]) == 1
    details = Product.objects.get(pk=product.pk).details
    assert details["images"] == [
        "https://img.al-style.kz/12345_1.jpg",
        "https://al-style.kz/upload/12345_2.jpg",
    ]
    assert details["description"] == "Мощный ноутбук\nUSB"
    assert details["properties"] == {"Цвет": "серый"}
    assert normalise_details({"images": "a.jpg, https://x/y.jpg"})["images"] == ["https://x/y.jpg"]


def test_admin_pages(staff_client, mapped):
    product = laptop(mapped)
    for name in ["kaspicategory", "kaspiattribute", "cardmapping", "cardimport"]:
        assert staff_client.get(reverse(f"admin:catalog_{name}_changelist")).status_code == 200
    preview = staff_client.get(reverse("admin:catalog_product_card", args=[product.pk]))
    assert "Notebooks*RAM" in preview.text
    mapping = CardMapping.objects.get()
    assert (
        staff_client.get(reverse("admin:catalog_cardmapping_change", args=[mapping.pk])).status_code
        == 200
    )
    listing = staff_client.get(reverse("admin:catalog_product_changelist"), {"card": "missing"})
    assert product.sku in listing.text


def test_card_building_queries_do_not_grow_with_the_batch(mapped, mocked_http):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    one = [laptop(mapped, 1)]
    many = one + [laptop(mapped, n) for n in range(2, 8)]
    with CaptureQueriesContext(connection) as small:
        cards_import(one, dry_run=True)
    with CaptureQueriesContext(connection) as large:
        cards_import(many, dry_run=True)
    assert len(large) == len(small)


# --- Issue 15, items 13-16 --------------------------------------------------------------------


def finished_import(mocked_http, states, code="imp-1"):
    """An import that Kaspi reports FINISHED with these per-SKU entries."""
    mocked_http.get(API + "products/import", json={"code": code, "status": "FINISHED"})
    mocked_http.get(
        API + "products/import/result",
        json={
            "errors": sum(1 for e in states.values() if e.get("state") == "ERROR"),
            "warnings": 0,
            "skipped": 0,
            "total": len(states),
            "result": states,
        },
    )


def test_sku_states_success_accepted_error_and_unknown(mocked_http, mapped):
    products = [laptop(mapped, n) for n in range(1, 7)]
    mocked_http.post(API + "products/import", json={"code": "imp-1", "status": "UPLOADED"})
    cards_import(products)
    finished_import(
        mocked_http,
        {
            "AS1": {"state": "SUCCESS", "errors": [], "warnings": []},
            "AS2": {"state": "FINISHED"},
            "AS3": {"state": ""},
            "AS4": {"state": "REJECTED"},
            "AS5": {"state": "SUCCESS", "errors": ["Неверный бренд"]},
            "AS6": {"state": "PENDING_MODERATION"},
        },
    )
    assert poll_card_imports() == 1
    states = dict(Product.objects.values_list("sku", "card_state"))
    assert states == {
        "AS1": CardState.ACCEPTED,
        "AS2": CardState.ACCEPTED,
        "AS3": CardState.ACCEPTED,
        "AS4": CardState.ERROR,
        "AS5": CardState.ERROR,
        "AS6": CardState.UNKNOWN,
    }
    assert "PENDING_MODERATION" in Product.objects.get(sku="AS6").card_message

    # The next push re-sends only the cards in error; accepted and unknown ones stay.
    mocked_http.post(API + "products/import", json={"code": "imp-2", "status": "UPLOADED"})
    summary = cards_import(list(Product.objects.order_by("sku")))
    assert (summary.sent, summary.unchanged) == (2, 4)
    assert [c["sku"] for c in json.loads(mocked_http.calls[-1].request.body)] == ["AS4", "AS5"]


def test_unknown_state_card_is_resent_when_its_content_changes(mocked_http, mapped):
    product = laptop(mapped, 1)
    mocked_http.post(API + "products/import", json={"code": "imp-1", "status": "UPLOADED"})
    cards_import([product])
    finished_import(mocked_http, {"AS1": {"state": "QUEUED_FOR_REVIEW"}})
    poll_card_imports()
    product = Product.objects.get(pk=product.pk)
    assert cards_import([product]).unchanged == 1
    product.details = {**product.details, "description": "Новое описание"}
    product.save()
    mocked_http.post(API + "products/import", json={"code": "imp-2", "status": "UPLOADED"})
    assert cards_import([Product.objects.get(pk=product.pk)]).sent == 1


def test_result_is_read_only_after_finished(mocked_http, mapped):
    product = laptop(mapped, 1)
    mocked_http.post(API + "products/import", json={"code": "imp-1", "status": "UPLOADED"})
    cards_import([product])
    for status in ("UPLOADED", "PROCESSING", "PROCESSING"):
        mocked_http.get(API + "products/import", json={"code": "imp-1", "status": status})
        assert poll_card_imports() == 0
        assert CardImport.objects.get().status == status
    assert not any("/result" in c.request.url for c in mocked_http.calls)
    assert Product.objects.get(pk=product.pk).card_state == CardState.SENT
    finished_import(mocked_http, {"AS1": {"state": "SUCCESS"}})
    assert poll_card_imports() == 1
    assert Product.objects.get(pk=product.pk).card_state == CardState.ACCEPTED
    assert poll_card_imports() == 0  # done: not polled again
    assert sum("/result" in c.request.url for c in mocked_http.calls) == 1


def test_a_4xx_from_result_is_not_a_failure(mocked_http, mapped):
    product = laptop(mapped, 1)
    mocked_http.post(API + "products/import", json={"code": "imp-1", "status": "UPLOADED"})
    cards_import([product])
    mocked_http.get(API + "products/import", json={"code": "imp-1", "status": "FINISHED"})
    mocked_http.get(
        API + "products/import/result",
        status=400,
        json={"status": 400, "error": "Bad Request", "message": "Import is not finished yet"},
    )
    assert poll_card_imports() == 0
    record = CardImport.objects.get()
    assert "not finished yet" in record.description
    assert Product.objects.get(pk=product.pk).card_state == CardState.SENT
    finished_import(mocked_http, {"AS1": {"state": "SUCCESS"}})
    assert poll_card_imports() == 1


def test_content_url_derived_from_the_shop_url():
    from backoffice.settings import kaspi_content_base_url

    assert kaspi_content_base_url("http://127.0.0.1:8751/shop/api/v2") == (
        "http://127.0.0.1:8751/shop/api"
    )
    assert kaspi_content_base_url("https://kaspi.kz/shop/api/v2/") == "https://kaspi.kz/shop/api"
    assert kaspi_content_base_url("http://localhost:9000") == "http://localhost:9000/shop/api"


def test_content_url_follows_the_shop_url_at_start_up():
    import os
    import subprocess
    import sys

    from django.conf import settings as django_settings

    env = {k: v for k, v in os.environ.items() if k != "KASPI_CONTENT_API_URL"}
    env.update(
        KASPI_SHOP_API_URL="http://127.0.0.1:8751/shop/api/v2",
        DJANGO_SETTINGS_MODULE="backoffice.settings_test",
    )
    code = "from django.conf import settings; print(settings.KASPI_CONTENT_API_URL)"
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip().splitlines()[-1] == "http://127.0.0.1:8751/shop/api"


def test_commands_print_both_base_urls(mocked_http, mapped, capsys, settings):
    settings.KASPI_SHOP_API_URL = "http://127.0.0.1:8751/shop/api/v2"
    settings.KASPI_CONTENT_API_URL = "http://127.0.0.1:8751/shop/api"
    call_command("kaspi_classification")
    call_command("push_kaspi_cards", "--dry-run")
    out = capsys.readouterr().out
    line = (
        "Kaspi Shop API: http://127.0.0.1:8751/shop/api/v2; "
        "content API: http://127.0.0.1:8751/shop/api"
    )
    assert out.count(line) == 2


def test_push_counts_only_what_the_post_accepted(mocked_http, mapped, capsys):
    for n in range(1, 10):
        laptop(mapped, n)
    mocked_http.post(
        API + "products/import",
        status=500,
        json={"message": "Content type 'application/json' not supported"},
    )
    with pytest.raises(CommandError):
        call_command("push_kaspi_cards")
    out = capsys.readouterr().out
    assert "sent=0 failed=9" in out


def test_problem_said_in_words_is_not_repeated_as_a_raw_schema_message(mapped):
    """No images: the Russian-translatable «no images» line, not also the JSON Schema's
    English «images: [] should be non-empty», in the preview and in the upload's report."""
    product = laptop(mapped, images=[])
    problems = card_preview(product).problems
    assert [p for p in problems if "images" in p.lower()] == [
        p for p in problems if p.startswith("no images")
    ]
    assert len(problems) == 1
    summary = cards_import([product], dry_run=True)
    assert summary.previews[0].problems == problems


def test_schema_message_kept_for_a_problem_not_said_in_words(mapped):
    product = laptop(mapped, images=["ftp://img.al-style.kz/1.jpg"])
    problems = card_preview(product).problems
    assert len(problems) == 1
    assert problems[0].startswith("images/0/url: ")
