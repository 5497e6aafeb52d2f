"""The price-file adapter: a supplier whose catalog is one YML, XLSX or CSV file.

The whole file is the listing: `iter_offer_pages` fetches it (URL or upload), reads it as a
stream and yields pages of OfferRecords, bad rows listed on each page. A file broken
mid-way still yields the rows read before the break, then raises PriceFileError. There is no quick
stock call and no cart: stock and prices come with the file, purchases from such a
supplier are a purchase list for staff.
"""

import logging
from pathlib import Path

from django.utils.translation import gettext as _

from ..base import NotSupported, OfferPage, OfferRecord
from .download import copy_upload, download
from .parsers import BadRow, ParsedOffer, PriceFileError, Reader, iter_offers

logger = logging.getLogger(__name__)

PAGE_SIZE = 500


class PriceFileAdapter:
    supports_stock = False
    supports_cards = False
    supports_cart = False

    def __init__(self, supplier, *, session=None, path: Path | str | None = None):
        self.supplier = supplier
        self.session = session
        self.path = Path(path) if path else None  # a local file (tests, benchmarks)
        self.reader: Reader | None = None

    # --- The file -------------------------------------------------------------------------

    def fetch_file(self) -> Path:
        """A temporary copy of the supplier's file: downloaded from its URL, else the file
        staff uploaded. The caller deletes it."""
        supplier = self.supplier
        suffix = f".{supplier.format}" if supplier.format else ""
        if supplier.url:
            return download(
                supplier.url,
                auth_env=supplier.auth_env,
                supplier_name=supplier.name or supplier.code,
                suffix=suffix,
                session=self.session,
            )
        if supplier.upload:
            return copy_upload(supplier.upload, suffix=suffix)
        raise PriceFileError(
            _(
                "The supplier %(code)s has neither a price-file URL nor an uploaded file: "
                "set one in the admin or with add_supplier --url."
            )
            % {"code": supplier.code}
        )

    def iter_offer_pages(self, start: int = 0):
        """Pages of PAGE_SIZE offers (and the bad rows among them) from the whole file.
        `start` skips that many rows (a file has no server-side paging)."""
        path = self.path or self.fetch_file()
        try:
            self.reader = Reader(path, self.supplier.format, self.supplier.mapping)
            records, bad, rows = [], [], 0
            try:
                for item in iter_offers(self.reader):
                    rows += 1
                    if rows <= start:
                        continue
                    if isinstance(item, BadRow):
                        bad.append((item.where(), item.describe()))
                    elif isinstance(item, ParsedOffer):
                        records.append((OfferRecord(**item.values), item.raw))
                    if len(records) >= PAGE_SIZE:
                        yield OfferPage(
                            records=records,
                            raw_rows=len(records) + len(bad),
                            next_offset=rows,
                            bad=bad,
                        )
                        records, bad = [], []
            except PriceFileError:
                # A file broken mid-way: the rows read before the break are one last page
                # (written and counted like any other), then the error fails the run.
                if records or bad:
                    yield OfferPage(
                        records=records, raw_rows=len(records) + len(bad), next_offset=None, bad=bad
                    )
                raise
            yield OfferPage(
                records=records, raw_rows=len(records) + len(bad), next_offset=None, bad=bad
            )
        finally:
            if self.path is None:
                path.unlink(missing_ok=True)

    # --- What a price file cannot do --------------------------------------------------------

    def categories(self) -> list[dict]:
        """Categories come with each offer (YML: resolved from <categories>)."""
        return []

    def brands(self) -> list[dict]:
        return []

    def fetch_stock(self, articles):
        raise NotSupported(_("a price file has no stock check: stock comes with the file"))

    def card_data(self, articles):
        raise NotSupported(_("a price file has no product cards"))

    def place_order(self, lines, **options):
        raise NotSupported(_("a price-file supplier has no cart: use the purchase list"))

    def order_status(self, order_id):
        raise NotSupported(_("a price-file supplier has no cart: use the purchase list"))
