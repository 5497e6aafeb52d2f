"""Linking our products to Kaspi cards (docs/kaspi-offers.md §7).

Sources: a card URL from staff (admin field, bulk CSV/XLSX of `sku,url`), a Kaspi-made SKU
`{cardId}_{n}`, the order entries' product endpoint for items already sold, or a search
whose candidates staff confirm. Every link starts unverified; the first read of the card in
the home city (catalog/services/market.py) verifies it.
"""

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils.translation import gettext

from backoffice.core.runs import run_job
from backoffice.models import SyncRun

from ..clients.kaspi_offers import (
    KaspiOffersClient,
    MarketUnknown,
    card_id_from_sku,
    card_id_from_url,
)
from ..clients.kaspi_shop import KaspiShopClient
from ..demand import demand
from ..models import KaspiCardLink, Product

logger = logging.getLogger(__name__)


class LinkFileError(ValueError):
    pass


@dataclass
class LinkResult:
    linked: int = 0
    unchanged: int = 0
    candidates: int = 0
    errors: list[str] = field(default_factory=list)

    def as_counts(self) -> dict:
        # Prefixed: the totals per link status are counted beside these.
        return {
            "new_links": self.linked,
            "unchanged_links": self.unchanged,
            "new_candidates": self.candidates,
            "errors": len(self.errors),
        }


def read_link_file(path: str | Path) -> list[tuple[int, str, str]]:
    """(line, sku, url) rows of a CSV (`sku,url` header) or XLSX file."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        try:
            import openpyxl
        except ImportError:
            raise LinkFileError(
                gettext("reading .xlsx needs openpyxl; save the sheet as CSV")
            ) from None
        sheet = openpyxl.load_workbook(path, read_only=True, data_only=True).active
        rows = [
            [str(c) if c is not None else "" for c in row]
            for row in sheet.iter_rows(values_only=True)
        ]
    else:
        text = path.read_bytes().decode("utf-8-sig")
        dialect = csv.Sniffer().sniff(text[:2000], delimiters=",;\t") if text.strip() else csv.excel
        rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        raise LinkFileError(gettext("the file is empty"))
    header = [h.strip().lower() for h in rows[0]]
    if "sku" not in header or "url" not in header:
        raise LinkFileError(gettext("the first row must name the columns: sku,url"))
    i_sku, i_url = header.index("sku"), header.index("url")
    out = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        sku = row[i_sku].strip() if len(row) > i_sku else ""
        url = row[i_url].strip() if len(row) > i_url else ""
        out.append((number, sku, url))
    return out


def set_link(product: Product, card_id: str, source: str) -> bool:
    """Link `product` to `card_id`; a new or changed card id starts unverified."""
    link = KaspiCardLink.objects.filter(product=product).first()
    if link and link.card_id == card_id:
        return False
    if link is None:
        link = KaspiCardLink(product=product)
    link.card_id, link.source = card_id, source
    link.status, link.verified_at, link.note, link.candidates = (
        KaspiCardLink.Status.UNVERIFIED,
        None,
        "",
        [],
    )
    link.save()
    return True


def link_from_rows(rows: list[tuple[int, str, str]]) -> LinkResult:
    """Apply (line, sku, url) rows; a bad row is reported with its line and changes nothing."""
    result = LinkResult()
    products = Product.objects.in_bulk([sku for _n, sku, _u in rows], field_name="sku")
    with transaction.atomic():
        for number, sku, url in rows:
            product = products.get(sku)
            card_id = card_id_from_url(url)
            if product is None:
                result.errors.append(
                    gettext("line %(n)d: no product with SKU %(sku)r") % {"n": number, "sku": sku}
                )
            elif card_id is None:
                result.errors.append(
                    gettext("line %(n)d: %(url)r is not a Kaspi card URL")
                    % {"n": number, "url": url}
                )
            elif set_link(product, card_id, KaspiCardLink.Source.URL):
                result.linked += 1
            else:
                result.unchanged += 1
    return result


def link_from_skus() -> LinkResult:
    """Products whose SKU is Kaspi-made (`{cardId}_{n}`) carry their card id."""
    result = LinkResult()
    for product in Product.objects.filter(sku__contains="_", kaspi_link__isnull=True):
        card_id = card_id_from_sku(product.sku)
        if card_id and set_link(product, card_id, KaspiCardLink.Source.KASPI_SKU):
            result.linked += 1
    return result


def link_from_orders(*, client=None) -> LinkResult:
    """Items already sold: the order entry's product is the Kaspi card (code, unconfirmed)."""
    client = client or KaspiShopClient()
    result = LinkResult()
    for product, entry_id in demand.sold_unlinked():
        try:
            code = client.entry_card_code(entry_id)
        except Exception as exc:  # one entry's failure is reported, the rest go on
            result.errors.append(f"{product.sku}: {exc}")
            continue
        card_id = card_id_from_url(code or "")
        if card_id and set_link(product, card_id, KaspiCardLink.Source.ORDERS):
            result.linked += 1
    return result


def search_candidates(*, client: KaspiOffersClient | None = None, limit: int = 50) -> LinkResult:
    """Unlinked products on sale: search Kaspi by name, keep candidates for staff to confirm."""
    client = client or KaspiOffersClient()
    result = LinkResult()
    products = Product.objects.filter(kaspi_enabled=True, listed=True, kaspi_link__isnull=True)
    for product in products.select_related("brand").order_by("sku")[:limit]:
        text = " ".join(product.name.split()[:6])
        try:
            found = client.search(text)
        except MarketUnknown as exc:
            result.errors.append(f"{product.sku}: {exc.reason}")
            continue
        KaspiCardLink.objects.create(
            product=product,
            source=KaspiCardLink.Source.SEARCH,
            status=KaspiCardLink.Status.CANDIDATES,
            candidates=found[:5],
            note="" if found else "search found no card",
        )
        result.candidates += 1
    return result


def confirm_candidate(link: KaspiCardLink, index: int = 0) -> bool:
    """Staff chose candidate `index` of a search: link it (unverified until read)."""
    if link.status != KaspiCardLink.Status.CANDIDATES or index >= len(link.candidates):
        return False
    link.card_id = str(link.candidates[index]["id"])
    link.status = KaspiCardLink.Status.UNVERIFIED
    link.save(update_fields=["card_id", "status", "updated_at"])
    return True


def run_link_cards(
    *,
    file: str | None = None,
    from_orders: bool = False,
    search: bool = False,
    verify: bool = False,
    triggered_by: str = "command",
    client: KaspiOffersClient | None = None,
) -> SyncRun:
    """The bulk linking job: file, Kaspi-made SKUs, orders, search, then verification."""
    rows = read_link_file(file) if file else None

    def job(run: SyncRun) -> None:
        total = LinkResult()
        steps = [link_from_skus]
        if rows is not None:
            steps.insert(0, lambda: link_from_rows(rows))
        if from_orders:
            steps.append(link_from_orders)
        if search:
            steps.append(lambda: search_candidates(client=client))
        for step in steps:
            part = step()
            total.linked += part.linked
            total.unchanged += part.unchanged
            total.candidates += part.candidates
            total.errors += part.errors
        run.counts.update(total.as_counts())
        if verify:
            from django.conf import settings

            from .market import read_market, readable_links

            pending = readable_links().exclude(status=KaspiCardLink.Status.LINKED)
            counts = read_market(client=client, links=pending, cities=[settings.KASPI_HOME_CITY])
            run.counts["verify_reads"] = counts["read"]
            run.counts["verify_unknown"] = counts["unknown"] + counts["format_changed"]
        statuses = dict.fromkeys(KaspiCardLink.Status.values, 0)
        for status in KaspiCardLink.objects.values_list("status", flat=True):
            statuses[status] += 1
        run.counts.update(statuses)
        if total.errors:
            run.status = SyncRun.Status.PARTIAL
            run.error = "; ".join(total.errors[:10])[:2000]

    return run_job(
        kind=SyncRun.Kind.CARD_LINKS,
        triggered_by=triggered_by,
        params={"file": file, "from_orders": from_orders, "search": search, "verify": verify},
        job=job,
    )
