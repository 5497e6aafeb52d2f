"""Which column of a price file (or which YML element) holds which offer field.

A mapping is a flat JSON object kept on the supplier: offer fields to a source, plus a few
reading options. A source is
- for XLSX/CSV: a header text (case and spaces ignored) or a column letter (`A`, `AB`);
- for YML: a child element of `<offer>` (`price`, `vendorCode`), an attribute (`@id`),
  or a `<param name="…">` (`param:Артикул`);
- several sources joined by `|`: the first non-empty one wins (`count|quantity`).
Options: `header_row` (1-based; found automatically when absent), `sheet` (XLSX sheet
name), `delimiter` and `encoding` (CSV; sniffed when absent).
"""

import re

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

# The offer fields a price file can fill, with the label staff see in the admin.
FIELDS = {
    "article": gettext_lazy("Supplier article"),
    "name": gettext_lazy("Name"),
    "dealer_price": gettext_lazy("Dealer price"),
    "retail_price": gettext_lazy("Retail price"),
    "quantity": gettext_lazy("Stock"),
    "available": gettext_lazy("Availability"),
    "part_number": gettext_lazy("Part number"),
    "brand": gettext_lazy("Brand"),
    "category": gettext_lazy("Category"),
    "barcode": gettext_lazy("Barcode"),
}
REQUIRED = ("article", "name")
OPTIONS = ("header_row", "sheet", "delimiter", "encoding")
# Short names accepted on the command line (`--map price=Цена`).
ALIASES = {"price": "dealer_price", "stock": "quantity", "pn": "part_number", "sku": "article"}

# yml_catalog/shop/offers/offer: the fields of the Yandex Market format.
YML_DEFAULTS = {
    "article": "@id",
    "name": "name",
    "dealer_price": "price",
    "retail_price": "",
    "quantity": "count|quantity|stock_quantity",
    "available": "@available",
    "part_number": "vendorCode",
    "brand": "vendor",
    "category": "categoryId",
    "barcode": "barcode",
}

# Header texts seen in CIS price lists, for files mapped without an explicit mapping.
HEADER_SYNONYMS = {
    "article": ["артикул", "код", "код товара", "article", "sku", "id"],
    "name": ["наименование", "название", "товар", "наименование товара", "name"],
    "dealer_price": ["цена", "цена дилера", "дилерская цена", "оптовая цена", "price", "опт"],
    "retail_price": ["розничная цена", "ррц", "розница", "retail", "retail price"],
    "quantity": ["остаток", "количество", "кол-во", "наличие", "stock", "qty", "quantity"],
    "part_number": ["партномер", "парт-номер", "part number", "partnumber", "p/n", "pn", "модель"],
    "brand": ["бренд", "производитель", "марка", "brand", "vendor"],
    "category": ["категория", "группа", "раздел", "category"],
    "barcode": ["штрихкод", "штрих-код", "ean", "barcode"],
}

_LETTERS = re.compile(r"[A-Z]{1,3}")


class MappingError(ValueError):
    """A mapping staff wrote that cannot be used; the message says why, in Russian."""


def normalise_header(value) -> str:
    return " ".join(str(value or "").replace("\ufeff", "").split()).casefold()


def parse_map_options(items: list[str]) -> dict:
    """`field=column` strings (from the command line) into a mapping dict."""
    mapping = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise MappingError(
                _("«%(item)s»: write field=column, for example price=Цена") % {"item": item}
            )
        mapping[key.strip()] = value.strip()
    return validate(mapping)


def validate(mapping: dict | None) -> dict:
    """The mapping with aliases resolved; unknown keys and bad options are refused."""
    clean = {}
    for key, value in (mapping or {}).items():
        key = ALIASES.get(key, key)
        if key not in FIELDS and key not in OPTIONS:
            raise MappingError(
                _("Unknown field «%(key)s». Known fields: %(fields)s; options: %(options)s.")
                % {"key": key, "fields": ", ".join(FIELDS), "options": ", ".join(OPTIONS)}
            )
        if key == "header_row" and value not in ("", None):
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise MappingError(_("header_row must be a row number.")) from None
            if value < 1:
                raise MappingError(_("header_row must be a row number."))
        elif value is None:
            value = ""
        else:
            value = str(value).strip() if key != "delimiter" else str(value)
        if key == "delimiter" and value in ("\\t", "tab"):
            value = "\t"
        clean[key] = value
    return clean


def effective(mapping: dict | None, file_format: str) -> dict:
    """The mapping a parser uses: YML defaults under staff's entries; XLSX/CSV as given."""
    mapping = validate(mapping)
    if file_format == "yml":
        return {**YML_DEFAULTS, **{k: v for k, v in mapping.items() if v != "" or k in FIELDS}}
    return mapping


def sources(value: str) -> list[str]:
    """The alternatives of one mapping entry (`count|quantity` → ['count', 'quantity'])."""
    return [part.strip() for part in str(value or "").split("|") if part.strip()]


def column_index(source: str, headers: list[str]) -> int | None:
    """The 0-based column of a source: its header text first, then a column letter."""
    wanted = normalise_header(source)
    for index, header in enumerate(headers):
        if header and header == wanted:
            return index
    if _LETTERS.fullmatch(source.strip()):
        index = 0
        for char in source.strip():
            index = index * 26 + (ord(char) - ord("A") + 1)
        return index - 1
    return None


def guess_from_headers(headers: list[str]) -> dict:
    """A mapping for a header row from the usual header texts (exact words first)."""
    guessed: dict[str, str] = {}
    used: set[int] = set()
    for field, names in HEADER_SYNONYMS.items():
        for name in names:
            for index, header in enumerate(headers):
                if index not in used and header == name:
                    guessed[field] = header
                    used.add(index)
                    break
            if field in guessed:
                break
    return guessed


def header_score(headers: list[str], mapping: dict) -> int:
    """How many of the mapping's header-text sources this row holds (to find the header)."""
    wanted = {
        normalise_header(source)
        for field in FIELDS
        for source in sources(mapping.get(field, ""))
        if not _LETTERS.fullmatch(source)
    }
    return sum(1 for header in headers if header and header in wanted)
