"""The Kaspi card flow in the admin (issue 17.9): each card problem links to its fix (map
the category, fill the attribute) with the fix page prefilled; the empty «Категории Kaspi»
page says how to fill it and queues the refresh as a task; «Загрузить карточки» links to
the import it creates."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from lxml import html as lxml_html

from backoffice.models import SyncRun
from backoffice.ops.roles import CATALOG_MANAGER, ORDER_MANAGER
from catalog.models import CardImport, CardMapping, KaspiAttribute, KaspiCategory
from tests import factories
from tests.catalog.test_cards import API, CAT, laptop, mapped  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("_russian")


@pytest.fixture
def _russian(settings):
    settings.LANGUAGE_CODE = "ru"


@pytest.fixture
def as_role(client, django_user_model):
    def login(role):
        user = django_user_model.objects.create_user(
            role.split()[0].lower(), password="pw-123456", is_staff=True
        )
        user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
        client.user = user
        return client

    return login


def fixes(client, product):
    """(problem text, link) of each problem on the product's card page."""
    page = client.get(reverse("admin:catalog_product_card", args=[product.pk])).text
    doc = lxml_html.fromstring(page)
    return [
        (li.text_content(), (li.xpath(".//a[@class='card-fix']/@href") or [""])[0])
        for li in doc.xpath("//ul[@id='card-problems']/li")
    ]


def test_unmapped_category_links_to_a_prefilled_mapping(as_role):
    client = as_role(CATALOG_MANAGER)
    cables = factories.category(name="Кабели")
    product = factories.product(category=cables)
    (text, link), *_ = fixes(client, product)
    assert "«Кабели» не сопоставлена" in text
    assert link == reverse("admin:catalog_cardmapping_add") + f"?category={cables.pk}"
    form = lxml_html.fromstring(client.get(link).text)
    assert form.xpath("//select[@name='category']/option[@selected]/@value") == [str(cables.pk)]


def test_attribute_without_a_source_links_to_its_mapping_row(as_role, mapped):  # noqa: F811
    client = as_role(CATALOG_MANAGER)
    mapping = CardMapping.objects.get()
    weight = KaspiAttribute.objects.create(
        category=mapping.kaspi_category, code="Notebooks*Weight", type="number", mandatory=True
    )
    product = laptop(mapped)
    found = dict(fixes(client, product))
    text = next(t for t in found if "Notebooks*Weight" in t)
    assert "не указан источник" in text
    link = found[text]
    url = reverse("admin:catalog_cardmapping_change", args=[mapping.pk])
    assert link == f"{url}?attribute={weight.pk}"
    page = lxml_html.fromstring(client.get(link).text)
    chosen = page.xpath("//select[contains(@name, '-attribute')]/option[@selected]/@value")
    assert str(weight.pk) in chosen


def test_missing_brand_links_to_the_product(as_role, mapped):  # noqa: F811
    client = as_role(CATALOG_MANAGER)
    product = laptop(mapped)
    product.brand = None
    product.save()
    found = dict(fixes(client, product))
    text = next(t for t in found if "нет бренда" in t)
    assert found[text] == reverse("admin:catalog_product_change", args=[product.pk])


def test_empty_kaspi_categories_explain_and_queue_the_refresh(
    as_role, mocked_http, django_capture_on_commit_callbacks
):
    client = as_role(CATALOG_MANAGER)
    page = client.get(reverse("admin:catalog_kaspicategory_changelist")).text
    assert "Категорий Kaspi пока нет" in page
    assert "Загрузить категории из Kaspi" in page
    mocked_http.get(
        API + "products/classification/categories", json=[{"code": CAT, "title": "Ноутбуки"}]
    )
    mocked_http.get(API + "products/import/schema", json={"type": "array"})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:catalog_kaspicategory_refresh"), follow=True)
    # Tests run tasks inline (Q_CLUSTER sync): the queued task has run.
    assert KaspiCategory.objects.get().title == "Ноутбуки"
    assert "поставлена в очередь" in [str(m) for m in response.context["messages"]][0]
    page = client.get(reverse("admin:catalog_kaspicategory_changelist")).text
    assert "Категорий Kaspi пока нет" not in page


def test_refresh_without_a_token_says_so_at_once(as_role, settings):
    settings.KASPI_SHOP_TOKEN = ""
    client = as_role(CATALOG_MANAGER)
    response = client.post(reverse("admin:catalog_kaspicategory_refresh"), follow=True)
    (message,) = [str(m) for m in response.context["messages"]]
    assert "Kaspi не подключён" in message
    assert "KASPI_SHOP_TOKEN" in message


def test_refresh_button_needs_the_right(as_role):
    client = as_role(ORDER_MANAGER)
    assert client.post(reverse("admin:catalog_kaspicategory_refresh")).status_code == 403


def test_upload_cards_links_to_its_run_which_names_the_import(
    as_role,
    mapped,  # noqa: F811
    mocked_http,
    django_capture_on_commit_callbacks,
):
    client = as_role(CATALOG_MANAGER)
    product = laptop(mapped)
    mocked_http.post(API + "products/import", json={"code": "imp-7", "status": "UPLOADED"})
    with django_capture_on_commit_callbacks(execute=True):  # the task runs (sync mode)
        response = client.post(
            reverse("admin:catalog_product_changelist"),
            {"action": "upload_cards", "_selected_action": [product.pk]},
            follow=True,
        )
    (message,) = response.context["messages"]
    assert "Загрузка карточек в Kaspi поставлена в очередь" in str(message)
    link = lxml_html.fromstring(str(message)).xpath("//a/@href")[0]
    run = SyncRun.objects.get(kind=SyncRun.Kind.CARD_UPLOAD)
    assert link == reverse("admin:backoffice_syncrun_change", args=[run.pk])
    page = client.get(link)
    assert page.status_code == 200
    assert "imp-7" in page.text
    assert "отправлено карточек: 1" in page.text
    assert CardImport.objects.get().code == "imp-7"


def test_upload_cards_without_a_token_says_so_at_once(as_role, mapped, settings):  # noqa: F811
    settings.KASPI_SHOP_TOKEN = ""
    client = as_role(CATALOG_MANAGER)
    product = laptop(mapped)
    response = client.post(
        reverse("admin:catalog_product_changelist"),
        {"action": "upload_cards", "_selected_action": [product.pk]},
        follow=True,
    )
    assert "Kaspi не подключён" in str(list(response.context["messages"])[0])
    assert not CardImport.objects.exists()
    assert not SyncRun.objects.exists()
