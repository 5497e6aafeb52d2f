"""Reading a Kaspi price list a shop already has: XML, Excel .xlsx or CSV.

No ORM here: the import service (catalog/services/pricelist_import.py), the cut-over report
and the Excel export's round-trip test all read files through `PriceListReader`, so every
habit of those files lives in this one module (docs/kaspi-price-list.md):

* XML `kaspi_catalog` with or without the `kaspiShopping` namespace, `price` or
  `cityprices`, any number of `availability` points; the cabinet's export of active offers
  has the same shape and carries `stockCount="2.0"`, empty `<brand/>` and Kaspi-made SKUs
  (`130342357_673822557`). Parsed as a stream (each offer freed once read); DTDs are
  refused and entities never expanded, so an XML bomb costs nothing.
* Excel `.xlsx` (guide q3348): first sheet only; columns SKU, model, brand, price, PP1…PP5
  (a stock number or yes/no per point), preorder. An old `.xls` gets "save it as .xlsx".
* CSV (an Excel export): UTF-8 with or without BOM, or Windows-1251; `;`, `,` or tab.

SKUs are returned exactly as the file has them (attribute values are never trimmed).
"""

import codecs
import csv
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext as _
from lxml import etree

from backoffice.core.exceptions import BackofficeError

XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
EXCEL_POINTS = 5  # the Excel format's PP1…PP5 columns


class PriceListError(BackofficeError):
    """The file cannot be read as a price list; the message names the row or element."""


@dataclass(slots=True)
class Availability:
    store_id: str
    available: bool
    stock: int | None = None
    preorder: int | None = None


@dataclass(slots=True)
class OldOffer:
    row: int  # offer number in an XML file, sheet/line number in Excel and CSV
    sku: str
    model: str
    brand: str = ""
    price: int | None = None
    city_prices: dict[str, int] = field(default_factory=dict)
    availabilities: list[Availability] = field(default_factory=list)

    @property
    def available(self) -> bool:
        return any(point.available for point in self.availabilities)

    def price_in(self, city_id: str | None = None) -> int | None:
        """The single price, or the given (else the first) city's price."""
        if self.price is not None or not self.city_prices:
            return self.price
        if city_id and city_id in self.city_prices:
            return self.city_prices[city_id]
        return next(iter(self.city_prices.values()))


def _number(text, what: str, where: str) -> int | None:
    """A whole number from text such as `7`, `2.0`, `189 990`, `2490,00`; None if empty."""
    if text is None:
        return None
    if isinstance(text, bool):
        raise PriceListError(
            _("%(where)s: %(what)s %(value)r is not a number")
            % {"where": where, "what": what, "value": text}
        )
    if isinstance(text, int):
        return text
    value = str(text).strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise PriceListError(
            _("%(where)s: %(what)s %(value)r is not a number")
            % {"where": where, "what": what, "value": str(text)[:40]}
        ) from None
    if not number.is_finite() or number < 0:
        raise PriceListError(
            _("%(where)s: %(what)s %(value)r is not a number ≥ 0")
            % {"where": where, "what": what, "value": str(text)[:40]}
        )
    return int(number)


def _local(tag) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


class PriceListReader:
    """Iterate the offers of a price list file; `format`, `company`, `merchant_id` and
    `store_ids` (in order of first appearance) are filled in while reading.

    Raises PriceListError for anything that is not a readable price list.
    """

    def __init__(self, path, *, name: str = ""):
        self.path = str(path)
        self.name = name or self.path
        self.company = ""
        self.merchant_id = ""
        self.store_ids: list[str] = []
        self._stores: set[str] = set()
        self.offers = 0
        with open(self.path, "rb") as handle:
            head = handle.read(4096)
        self.format = self._detect(head)

    @staticmethod
    def _detect(head: bytes) -> str:
        if not head.strip():
            raise PriceListError(_("the file is empty"))
        if head.startswith(XLS_MAGIC):
            raise PriceListError(
                _(
                    "this is an old Excel .xls file: open it in Excel, choose "
                    "'Save as' → 'Excel workbook (.xlsx)' and upload the .xlsx"
                )
            )
        if head.startswith(ZIP_MAGIC):
            return "xlsx"
        text = head.removeprefix(codecs.BOM_UTF8).lstrip()
        if text.startswith(b"<") or head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "xml"
        if b"\x00" in head:
            raise PriceListError(
                _("not a price list: binary data that is neither Kaspi XML nor an Excel .xlsx file")
            )
        return "csv"

    def __iter__(self) -> Iterator[OldOffer]:
        reader = {"xml": self._xml, "xlsx": self._xlsx, "csv": self._csv}[self.format]
        for offer in reader():
            self.offers += 1
            for point in offer.availabilities:
                if point.store_id not in self._stores:
                    self._stores.add(point.store_id)
                    self.store_ids.append(point.store_id)
            yield offer
        if not self.offers:
            raise PriceListError(_("the price list has no offers"))

    # --- XML ------------------------------------------------------------------------------

    def _xml(self) -> Iterator[OldOffer]:
        with open(self.path, "rb") as handle:
            prolog = handle.read(1 << 16)
        if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
            raise PriceListError(_(self.DTD_REFUSED))
        context = etree.iterparse(
            self.path,
            events=("end",),
            tag=("{*}offer", "{*}company", "{*}merchantid"),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        number, last_sku, checked = 0, None, False
        try:
            for _event, element in context:
                if not checked:
                    self._check_xml_root(element)
                    checked = True
                name = _local(element.tag)
                if name == "company":
                    self.company = (element.text or "").strip()
                elif name == "merchantid":
                    self.merchant_id = (element.text or "").strip()
                else:
                    number += 1
                    offer = self._xml_offer(element, number)
                    last_sku = offer.sku
                    yield offer
                    element.clear()
                    while element.getprevious() is not None:
                        del element.getparent()[0]
        except etree.XMLSyntaxError as exc:
            after = (
                _(" (after offer %(n)d, SKU %(sku)r)") % {"n": number, "sku": last_sku}
                if number
                else ""
            )
            line, column = exc.position if exc.position else (exc.lineno, 0)
            raise PriceListError(
                _(
                    "the XML is broken or cut off at line %(line)s, column %(column)s"
                    "%(after)s: %(error)s"
                )
                % {"line": line, "column": column, "after": after, "error": exc.msg}
            ) from None
        if not checked:
            # No offer/company/merchantid anywhere: parse the root to say what it is.
            root = etree.parse(
                self.path,
                etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False),
            ).getroot()
            self._check_xml_root(root)

    DTD_REFUSED = (
        "the XML declares a DTD (<!DOCTYPE …>); a Kaspi price list has none, and entity "
        "declarations are refused for safety (nothing is expanded)"
    )

    def _check_xml_root(self, element) -> None:
        tree = element.getroottree()
        if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
            raise PriceListError(_(self.DTD_REFUSED))
        root = tree.getroot()
        if _local(root.tag) != "kaspi_catalog":
            raise PriceListError(
                _("not a Kaspi price list: the root element is <%(tag)s>, expected <kaspi_catalog>")
                % {"tag": _local(root.tag)}
            )

    def _xml_offer(self, element, number: int) -> OldOffer:
        sku = element.get("sku")
        where = _("offer %(n)d (line %(line)s)") % {"n": number, "line": element.sourceline}
        if sku is None or not sku.strip():
            raise PriceListError(_("%(where)s: <offer> has no sku attribute") % {"where": where})
        where = _("offer %(n)d (SKU %(sku)r, line %(line)s)") % {
            "n": number,
            "sku": sku,
            "line": element.sourceline,
        }
        offer = OldOffer(row=number, sku=sku, model="")
        for child in element:
            name = _local(child.tag)
            if name == "model":
                offer.model = " ".join((child.text or "").split())
            elif name == "brand":
                offer.brand = " ".join((child.text or "").split())
            elif name == "price":
                offer.price = _number(child.text, _("price"), where)
            elif name == "cityprices":
                for city in child:
                    if _local(city.tag) == "cityprice":
                        city_id = (city.get("cityId") or "").strip()
                        if not city_id:
                            raise PriceListError(
                                _("%(where)s: <cityprice> without cityId") % {"where": where}
                            )
                        offer.city_prices[city_id] = _number(city.text, _("city price"), where)
            elif name == "availabilities":
                for point in child:
                    if _local(point.tag) != "availability":
                        continue
                    store = (point.get("storeId") or "").strip()
                    if not store:
                        raise PriceListError(
                            _("%(where)s: <availability> without storeId") % {"where": where}
                        )
                    flag = (point.get("available") or "").strip().lower()
                    if flag not in ("yes", "no"):
                        raise PriceListError(
                            _("%(where)s: available=%(flag)r at %(store)s (expected yes or no)")
                            % {"where": where, "flag": flag, "store": store}
                        )
                    offer.availabilities.append(
                        Availability(
                            store,
                            flag == "yes",
                            _number(point.get("stockCount"), _("stockCount"), where),
                            _number(point.get("preOrder"), _("preOrder"), where),
                        )
                    )
        return offer

    # --- Excel and CSV --------------------------------------------------------------------

    COLUMNS = {
        "sku": ("sku", "артикул", "код товара"),
        "model": ("model", "модель", "наименование", "название"),
        "brand": ("brand", "бренд", "производитель"),
        "price": ("price", "цена"),
        "preorder": ("preorder", "pre-order", "предзаказ"),
    }
    POINT_HEADER = re.compile(r"^(?:.+_)?pp\d+$", re.IGNORECASE)

    def _columns(self, header: list, where: str) -> dict:
        names = [" ".join(str(cell or "").split()) for cell in header]
        found: dict = {"points": []}
        for index, name in enumerate(names):
            lowered = name.lower()
            for key, aliases in self.COLUMNS.items():
                if lowered in aliases and key not in found:
                    found[key] = index
                    break
            else:
                if self.POINT_HEADER.match(name):
                    found["points"].append((index, name))
        missing = [key for key in ("sku", "model", "price") if key not in found]
        if missing:
            shown = ", ".join(repr(n) for n in names if n)[:300] or "—"
            raise PriceListError(
                _(
                    "%(where)s: not the Kaspi price-list layout: no %(missing)s column "
                    "(expected SKU, model, brand, price, PP1…PP5, preorder; found %(found)s)"
                )
                % {"where": where, "missing": ", ".join(missing), "found": shown}
            )
        return found

    def _row_offer(self, cells: list, columns: dict, where: str, row: int) -> OldOffer | None:
        def cell(key):
            index = columns.get(key)
            value = cells[index] if index is not None and index < len(cells) else None
            return value

        if not any(value not in (None, "") for value in cells):
            return None  # a blank row
        sku = cell("sku")
        if isinstance(sku, float) and sku.is_integer():
            sku = int(sku)  # Excel stores a numeric SKU as a number
        sku = "" if sku is None else str(sku)
        if not sku.strip():
            raise PriceListError(_("%(where)s: no SKU") % {"where": where})
        where = _("%(where)s (SKU %(sku)r)") % {"where": where, "sku": sku}
        offer = OldOffer(
            row=row,
            sku=sku,
            model=" ".join(str(cell("model") or "").split()),
            brand=" ".join(str(cell("brand") or "").split()),
            price=_number(cell("price"), _("price"), where),
        )
        preorder = _number(cell("preorder"), _("preorder"), where)
        for index, store in columns["points"]:
            value = cells[index] if index < len(cells) else None
            if value is None or str(value).strip() == "":
                continue  # a point this offer does not use
            text = str(value).strip().lower()
            if text in ("yes", "да", "+"):
                point = Availability(store, True)
            elif text in ("no", "нет", "-"):
                point = Availability(store, False, 0)
            else:
                stock = _number(value, _("stock at %(store)s") % {"store": store}, where)
                point = Availability(store, stock > 0, stock)
            point.preorder = preorder or None
            offer.availabilities.append(point)
        return offer

    def _xlsx(self) -> Iterator[OldOffer]:
        import openpyxl
        from openpyxl.utils.exceptions import InvalidFileException

        try:
            workbook = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise PriceListError(
                _("not a readable Excel .xlsx file (%(error)s)")
                % {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            ) from None
        try:
            sheet = workbook.worksheets[0]
            yield from self._table(
                (list(cells) for cells in sheet.iter_rows(values_only=True)),
                lambda n: _("sheet %(sheet)r, row %(n)d") % {"sheet": sheet.title, "n": n},
                lambda cells: not any(value not in (None, "") for value in cells),
            )
        except zipfile.BadZipFile as exc:
            raise PriceListError(
                _("the Excel file is damaged: %(error)s") % {"error": exc}
            ) from None
        finally:
            workbook.close()

    def _encoding(self) -> str:
        """UTF-8 (BOM or not) when the start of the file decodes as UTF-8, else cp1251."""
        with open(self.path, "rb") as handle:
            head = handle.read(1 << 16)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            return "cp1251"
        return "utf-8"

    def _table(self, rows, place, blank) -> Iterator[OldOffer]:
        """The offers of a table (an Excel sheet, a CSV file): the first row that is not
        `blank` names the columns. `place(n)` says where row n is; `self.row_number` is
        the last row read (for the caller's errors)."""
        columns = None
        for number, cells in enumerate(rows, start=1):
            self.row_number = number
            where = place(number)
            if columns is None:
                if not blank(cells):
                    columns = self._columns(cells, where)
                continue
            offer = self._row_offer(cells, columns, where, number)
            if offer is not None:
                yield offer

    def _csv(self) -> Iterator[OldOffer]:
        encoding = self._encoding()
        self.row_number = 0
        try:
            with open(self.path, encoding=encoding, newline="") as handle:
                first = handle.readline(1 << 16)
                delimiter = max(";,\t", key=first.count)
                handle.seek(0)
                yield from self._table(
                    csv.reader(handle, delimiter=delimiter),
                    lambda n: _("line %(n)d") % {"n": n},
                    lambda cells: not any(cell.strip() for cell in cells),
                )
        except UnicodeDecodeError as exc:
            raise PriceListError(
                _(
                    "line %(n)d: the text is not %(encoding)s (%(error)s); save the file as "
                    "CSV UTF-8 or Windows-1251"
                )
                % {"n": self.row_number + 1, "encoding": encoding, "error": exc.reason}
            ) from None
        except csv.Error as exc:
            raise PriceListError(
                _("line %(n)d: not a readable CSV line (%(error)s)")
                % {"n": self.row_number + 1, "error": exc}
            ) from None


def read_all(path) -> tuple[PriceListReader, list[OldOffer]]:
    """The whole file in memory (small files, tests); the import streams instead."""
    reader = PriceListReader(path)
    return reader, list(reader)
