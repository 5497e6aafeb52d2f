"""Streamed readers for YML, XLSX and CSV price files.

Each reader yields one `SourceRow` per offer (the mapped sources and the original cells),
holding one row in memory at a time: YML through lxml `iterparse` with every read offer
cleared, XLSX through openpyxl's read-only mode, CSV through the csv module over the open
file. YML and CSV may also be read from a stream with `head(n)` (download.PreviewStream:
the admin preview pulls the file from the network only as far as the rows it shows; the
CSV encoding is then sniffed from the head). `iter_offers` turns rows into typed offer
values; a row it cannot use becomes a `BadRow` (its number and a reason staff can read)
and the file goes on. A file that cannot be read to its end raises `PriceFileError`: the
caller marks nothing vanished.

YML is fed to the XML parser through `XmlSafeStream`: the C0 control characters XML 1.0
forbids (raw bytes 0x00-0x08, 0x0B, 0x0C, 0x0E-0x1F, and character references such as
`&#11;` to any character XML cannot hold) become a space, counted on the reader
(`control_characters`), so one stray vertical tab in a 1C export does not fail the file.

Quirks of real price lists handled here, so no service has to know them: a header row
below a logo and a title; section headings (one filled cell) between the rows; articles
and barcodes typed as numbers in Excel (`12345.0`); prices with `₸`/`тг`; stock words
(«есть», «много»); CSV in cp1251 or with a BOM, `;` or `,` or tab separated.
"""

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from backoffice.core.exceptions import BackofficeError
from catalog.clients.records import clean_text, parse_money, parse_quantity

from . import mapping as mapping_module
from .mapping import FIELDS, REQUIRED, column_index, header_score, normalise_header, sources

FORMATS = ("yml", "xlsx", "csv")
ARTICLE_MAX = 64
HEADER_SEARCH_ROWS = 30
SNIFF_BYTES = 64 * 1024

_CURRENCY = re.compile(r"(₸|тг\.?|тенге|kzt|руб\.?|₽)", re.IGNORECASE)
_IN_STOCK_WORDS = {"есть", "да", "в наличии", "много", "yes", "true", "+", "available"}
_OUT_OF_STOCK_WORDS = {"нет", "нет в наличии", "no", "false", "-", "0", "под заказ"}


class PriceFileError(BackofficeError):
    """The file cannot be read (broken, truncated, wrong format or unusable mapping)."""


@dataclass
class SourceRow:
    number: int  # XLSX/CSV: the row number in the sheet/file; YML: the offer's ordinal
    values: dict[str, Any]  # offer field → the mapped source value
    raw: dict[str, Any]  # the original cells (header → value) or YML fields
    line: int | None = None  # YML: the line of the <offer> in the file


class BadRow(Exception):  # noqa: N818 - a row, raised and yielded
    """A row that cannot become an offer: its number (and YML line) and the reason."""

    def __init__(self, number: int, reason: str, *, article: str = "", line: int | None = None):
        self.number = number
        self.reason = reason
        self.article = article
        self.line = line
        super().__init__(f"{number}: {reason}")

    def where(self) -> str:
        """The row's number (and the article when known), as staff read it."""
        if self.line:
            where = _("offer %(number)d (line %(line)d)") % {
                "number": self.number,
                "line": self.line,
            }
        else:
            where = _("row %(number)d") % {"number": self.number}
        return f"{where} [{self.article}]" if self.article else where

    def describe(self) -> str:
        return f"{self.where()}: {self.reason}"


@dataclass
class ParsedOffer:
    number: int
    values: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict)


# --- Text helpers ------------------------------------------------------------------------


def cell_text(value) -> str:
    """A cell as text: Excel's integral floats without `.0`, everything cleaned."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    if isinstance(value, str) and value.isprintable() and "  " not in value:
        # Fast path (most cells): no control, format or odd space characters to clean.
        return value.strip()
    return clean_text(value)


def _money(value, *, retail: bool = False) -> int | None:
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        text = value
    else:
        text = _CURRENCY.sub("", cell_text(value)).strip()
    try:
        return parse_money(text)
    except ValueError:
        if str(text).strip().startswith("-"):
            return_message = _("negative price «%(value)s»")
            raise ValueError(return_message % {"value": cell_text(value)[:40]}) from None
        if retail:
            message = _("retail price «%(value)s» is not a number")
        else:
            message = _("price «%(value)s» is not a number")
        raise ValueError(message % {"value": cell_text(value)[:40]}) from None


def _stock(quantity_value, available_value) -> tuple[int, str]:
    """(units, raw text). An unreadable stock text is kept raw and counted as 0, except the
    usual "in stock" words (1: some units, count unknown; never promise more)."""
    available = cell_text(available_value).casefold()
    if quantity_value not in (None, ""):
        value = quantity_value
        if isinstance(value, float):
            value = int(value)
        elif not isinstance(value, int):
            value = cell_text(value)
        units, raw, understood = parse_quantity(value)
        if not understood:
            word = raw.casefold()
            units = 1 if word in _IN_STOCK_WORDS else 0
        if available in ("false", "0", "нет", "no"):
            units = 0
        return units, raw
    if available in _OUT_OF_STOCK_WORDS:
        return 0, available[:32]
    if available in _IN_STOCK_WORDS:
        return 1, available[:32]
    return 0, ""


def offer_values(row: SourceRow, *, categories: dict[str, str] | None = None) -> dict:
    """Typed offer values (OfferRecord keyword arguments) from a mapped row; raises
    BadRow with a reason staff can read."""
    values = row.values
    article = cell_text(values.get("article"))
    if not article:
        raise BadRow(row.number, _("no supplier article"), line=row.line)
    if len(article) > ARTICLE_MAX:
        raise BadRow(
            row.number,
            _("the article is longer than %(max)d characters") % {"max": ARTICLE_MAX},
            article=article[:32] + "…",
            line=row.line,
        )
    name = cell_text(values.get("name"))[:500]
    if not name:
        raise BadRow(row.number, _("no name"), article=article, line=row.line)
    try:
        dealer_price = _money(values.get("dealer_price"))
        retail_price = _money(values.get("retail_price"), retail=True)
    except ValueError as exc:
        raise BadRow(row.number, str(exc), article=article, line=row.line) from None
    quantity, quantity_raw = _stock(values.get("quantity"), values.get("available"))
    category = cell_text(values.get("category"))[:255]
    category_id = ""
    if categories is not None:  # YML: the mapped value is a categoryId
        category_id, category = category[:64], categories.get(category, "")[:255]
    barcode = cell_text(values.get("barcode")).split(",")[0].strip()[:64]
    return {
        "article": article,
        "part_number": cell_text(values.get("part_number"))[:255],
        "name": name,
        "full_name": "",
        "category_id": category_id or None,
        "brand": cell_text(values.get("brand"))[:255],
        "dealer_price": dealer_price,
        "retail_price": retail_price,
        "quantity": quantity,
        "quantity_raw": quantity_raw,
        "is_new": False,
        "barcode": barcode,
        "category": category,
    }


# --- Readers -----------------------------------------------------------------------------


class Reader:
    """One pass over a file: `rows()` yields SourceRows; `headers` and `categories` (YML)
    are known once reading has started. `path`: a file path, or (YML, CSV) a binary stream
    with `head(n)`."""

    def __init__(self, path, file_format: str, mapping: dict | None):
        if file_format not in FORMATS:
            raise PriceFileError(
                _("Unknown price-file format «%(format)s»: use yml, xlsx or csv.")
                % {"format": file_format}
            )
        self.path = path
        self.format = file_format
        self.mapping = mapping_module.effective(mapping, file_format)
        self.headers: list[str] = []
        self.header_row: int | None = None
        self.categories: dict[str, str] | None = {} if file_format == "yml" else None
        self._xml_stream: XmlSafeStream | None = None

    @property
    def control_characters(self) -> int:
        """YML: the control characters (raw or `&#11;`) replaced by a space so far."""
        return self._xml_stream.replaced if self._xml_stream else 0

    def rows(self) -> Iterator[SourceRow]:
        if self.format == "yml":
            return self._yml_rows()
        if self.format == "xlsx":
            return self._table_rows(self._xlsx_cells())
        return self._table_rows(self._csv_cells())

    # YML ------------------------------------------------------------------------------

    def _yml_rows(self) -> Iterator[SourceRow]:
        from lxml import etree

        wanted = [(field, sources(self.mapping.get(field, ""))) for field in FIELDS]
        handle = self.path if _is_stream(self.path) else open(self.path, "rb")  # noqa: SIM115
        self._xml_stream = XmlSafeStream(handle)
        context = etree.iterparse(
            self._xml_stream,
            events=("end",),
            tag=("category", "offer"),
            resolve_entities=False,
            no_network=True,
            huge_tree=True,
            load_dtd=False,
        )
        number = 0
        seen_catalog = False
        try:
            for _event, element in context:
                parent = element.getparent()
                parent_tag = parent.tag if parent is not None else ""
                if element.tag == "category" and parent_tag == "categories":
                    key = (element.get("id") or "").strip()
                    if key:
                        self.categories[key] = clean_text(element.text)
                    _release(element)
                    continue
                if element.tag != "offer" or parent_tag != "offers":
                    continue
                seen_catalog = True
                number += 1
                fields = _yml_fields(element)
                line = element.sourceline
                _release(element)
                values = {}
                for name, alternatives in wanted:  # a plain loop: this runs 10× per offer
                    value = None
                    for source in alternatives:
                        found = fields.get(source)
                        if found:
                            value = found
                            break
                    values[name] = value
                yield SourceRow(number=number, values=values, raw=fields, line=line)
        except etree.XMLSyntaxError as exc:
            raise PriceFileError(
                _(
                    "The YML file is broken at line %(line)s (%(error)s) after %(count)d "
                    "offers; nothing was taken off sale. Check the file or its address "
                    "and run the sync again."
                )
                % {"line": exc.lineno or "?", "error": exc.msg, "count": number}
            ) from None
        finally:
            if not _is_stream(self.path):
                handle.close()
        if not seen_catalog:
            raise PriceFileError(
                _(
                    "The file holds no yml_catalog/shop/offers/offer elements: it is not a "
                    "YML price list (or it is empty). Nothing was changed."
                )
            )

    # XLSX / CSV -------------------------------------------------------------------------

    def _xlsx_cells(self) -> Iterator[tuple[int, list]]:
        import zipfile

        from openpyxl import load_workbook

        try:
            workbook = load_workbook(str(self.path), read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise PriceFileError(
                _(
                    "The XLSX file cannot be opened (%(error)s): it is broken, cut off or "
                    "not an Excel .xlsx file. Nothing was changed."
                )
                % {"error": exc}
            ) from None
        try:
            sheet_name = self.mapping.get("sheet")
            if sheet_name:
                if sheet_name not in workbook.sheetnames:
                    raise PriceFileError(
                        _("The file has no sheet «%(sheet)s»; its sheets: %(sheets)s.")
                        % {"sheet": sheet_name, "sheets": ", ".join(workbook.sheetnames)}
                    )
                sheet = workbook[sheet_name]
            else:
                sheet = workbook.worksheets[0]
            try:
                for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
                    yield number, list(cells)
            except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
                raise PriceFileError(
                    _("The XLSX file is broken (%(error)s); nothing was taken off sale.")
                    % {"error": exc}
                ) from None
        finally:
            workbook.close()

    def _csv_cells(self) -> Iterator[tuple[int, list]]:
        stream = _is_stream(self.path)
        head = self.path.head(SNIFF_BYTES) if stream else b""
        encoding = self.mapping.get("encoding") or (
            sniff_head_encoding(head) if stream else sniff_encoding(self.path)
        )
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise PriceFileError(
                _("Unknown encoding «%(encoding)s».") % {"encoding": encoding}
            ) from None
        if stream:
            handle = io.TextIOWrapper(io.BufferedReader(self.path), encoding=encoding, newline="")
        else:
            handle = open(self.path, encoding=encoding, newline="")  # noqa: SIM115
        with handle:
            reader = None
            try:
                delimiter = self.mapping.get("delimiter")
                if not delimiter and stream:
                    sample = codecs.getincrementaldecoder(encoding)(errors="replace")
                    delimiter = sniff_delimiter(sample.decode(head)[:8192])
                elif not delimiter:
                    delimiter = sniff_delimiter(handle.read(8192))
                    handle.seek(0)
                reader = csv.reader(handle, delimiter=delimiter)
                yield from enumerate(reader, start=1)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise PriceFileError(
                    _(
                        "The CSV file cannot be read after row %(row)d (%(error)s); nothing "
                        "was taken off sale."
                    )
                    % {"row": reader.line_num if reader else 0, "error": exc}
                ) from None

    def _table_rows(self, cells: Iterator[tuple[int, list]]) -> Iterator[SourceRow]:
        explicit = self.mapping.get("header_row")
        has_fields = any(self.mapping.get(f) for f in FIELDS)
        buffered: list[tuple[int, list]] = []
        header = None
        for number, row in cells:
            if header is None:
                normalised = [normalise_header(c) for c in row]
                if explicit:
                    if number == explicit:
                        header = normalised
                        self.header_row = number
                    continue
                if has_fields:
                    found = header_score(normalised, self.mapping) >= 1 and any(
                        column_index(s, normalised) is not None
                        for s in sources(self.mapping.get("article", ""))
                    )
                else:
                    guessed = mapping_module.guess_from_headers(normalised)
                    found = "article" in guessed and "name" in guessed
                    if found:
                        self.mapping = {**guessed, **self.mapping}
                if found:
                    header = normalised
                    self.header_row = number
                    buffered.clear()
                    continue
                buffered.append((number, row))
                if number < HEADER_SEARCH_ROWS:
                    continue
                if not has_fields or not _letters_only(self.mapping):
                    raise PriceFileError(self._no_header_reason())
                # Column letters only: there is no header; every row is data.
                header = []
                self.header_row = 0
                yield from self._map_rows(buffered, header)
                buffered.clear()
                continue
            yield from self._map_rows([(number, row)], header)
        if header is None:
            if has_fields and _letters_only(self.mapping):
                self.header_row = 0
                yield from self._map_rows(buffered, [])
                return
            if not buffered:
                raise PriceFileError(_("The file is empty. Nothing was changed."))
            raise PriceFileError(self._no_header_reason())

    def _no_header_reason(self) -> str:
        return _(
            "No header row with the mapped columns in the first %(rows)d rows (article: "
            "«%(article)s»). Check the column mapping of the supplier (or set header_row)."
        ) % {"rows": HEADER_SEARCH_ROWS, "article": self.mapping.get("article", "")}

    def _map_rows(self, rows: list[tuple[int, list]], header: list[str]) -> Iterator[SourceRow]:
        if not hasattr(self, "_columns") or self.headers != header:
            self.headers = header
            self._columns = {
                field: [
                    index
                    for index in (column_index(s, header) for s in sources(self.mapping.get(field)))
                    if index is not None
                ]
                for field in FIELDS
            }
            missing = [f for f in REQUIRED if not self._columns[f]]
            if missing:
                raise PriceFileError(
                    _(
                        "The mapped column for %(fields)s is not in the file (its columns: "
                        "%(columns)s). Check the column mapping of the supplier."
                    )
                    % {
                        "fields": ", ".join(str(FIELDS[f]) for f in missing),
                        "columns": ", ".join(h for h in header if h) or "—",
                    }
                )
        for number, row in rows:
            filled = [c for c in row if c not in (None, "") and str(c).strip()]
            if len(filled) <= 1:
                continue  # empty row or a section heading («Ноутбуки»)
            values = {}
            for name, indexes in self._columns.items():
                values[name] = next(
                    (row[i] for i in indexes if i < len(row) and row[i] not in (None, "")), None
                )
            raw = {
                (header[i] if i < len(header) and header[i] else f"#{i + 1}"): _jsonable(c)
                for i, c in enumerate(row)
                if c not in (None, "")
            }
            yield SourceRow(number=number, values=values, raw=raw)


def iter_offers(reader: Reader) -> Iterator[ParsedOffer | BadRow]:
    """Typed offers (or bad rows) from a reader; a repeated article is a bad row."""
    seen: dict[str, int] = {}
    for row in reader.rows():
        try:
            values = offer_values(row, categories=reader.categories)
        except BadRow as bad:
            yield bad
            continue
        first = seen.get(values["article"])
        if first is not None:
            yield BadRow(
                row.number,
                _("the article is repeated (first at %(first)d); the first one is kept")
                % {"first": first},
                article=values["article"],
                line=row.line,
            )
            continue
        seen[values["article"]] = row.number
        yield ParsedOffer(number=row.number, values=values, raw=row.raw)


def preview(path, file_format: str, mapping: dict | None, *, limit: int = 10) -> dict:
    """The first rows as the current mapping reads them, for the admin (never raises)."""
    reader = Reader(path, file_format, mapping)
    rows = []
    error = ""
    items = iter_offers(reader)
    try:
        for item in items:
            rows.append(item)
            if len(rows) >= limit:
                break  # a streamed file is read no further
    except PriceFileError as exc:
        error = str(exc)
    finally:
        items.close()
    return {
        "rows": rows,
        "error": error,
        "headers": [h for h in reader.headers if h],
        "header_row": reader.header_row,
        "mapping": reader.mapping,
    }


# --- XML-safe byte stream ------------------------------------------------------------------

# The C0 controls XML 1.0 forbids (tab, LF and CR are allowed). These bytes never occur
# inside a multibyte UTF-8 sequence, nor in windows-1251 letters, so replacing them byte by
# byte is safe for the encodings price lists come in.
_XML_FORBIDDEN = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_XML_SPACES = bytes.maketrans(_XML_FORBIDDEN, b" " * len(_XML_FORBIDDEN))
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")
_CHAR_REF_MAX = 14  # len("&#x0000000B;") and a little more: a tail this short may be cut


def _xml_char_allowed(code: int) -> bool:
    return (
        code in (0x09, 0x0A, 0x0D)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


class XmlSafeStream:
    """A binary stream for the XML parser with the characters XML 1.0 forbids replaced by
    a space, chunk by chunk (no copy of the whole file); `replaced` counts them.

    Raw control bytes go through `bytes.translate`; character references (`&#11;`,
    `&#x1F;`) are looked for only in a chunk that holds `&#`, and a reference cut by the
    chunk boundary waits for the next chunk. A UTF-16 file (a BOM or `<` followed by NUL)
    is passed through untouched: its NUL bytes are halves of characters.
    """

    def __init__(self, source):
        self._source = source
        self._pending = b""
        self._first = True
        self._passthrough = False
        self.replaced = 0

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes (a chunk; b"" only at the end); everything left when `size`
        is negative or None, as io streams do."""
        if size is None or size < 0:
            parts = []
            while part := self._read_chunk(64 * 1024):
                parts.append(part)
            return b"".join(parts)
        return self._read_chunk(size) if size else b""

    def _read_chunk(self, size: int) -> bytes:
        while True:
            chunk = self._source.read(size)
            if self._first and chunk:
                self._first = False
                self._passthrough = chunk[:2] in (b"\xff\xfe", b"\xfe\xff", b"<\x00", b"\x00<")
            if self._passthrough:
                return chunk
            if not chunk:  # the end: what was held back goes out as it is
                data, self._pending = self._pending, b""
                return self._clean_refs(data)
            kept = chunk.translate(None, _XML_FORBIDDEN)
            if len(kept) != len(chunk):
                self.replaced += len(chunk) - len(kept)
                chunk = chunk.translate(_XML_SPACES)
            data = self._pending + chunk if self._pending else chunk
            self._pending = b""
            cut = data.rfind(b"&", max(0, len(data) - _CHAR_REF_MAX))
            if cut >= 0 and b";" not in data[cut:]:
                data, self._pending = data[:cut], data[cut:]
            if data:
                return self._clean_refs(data)

    def _clean_refs(self, data: bytes) -> bytes:
        if b"&#" not in data:
            return data
        return _CHAR_REF.sub(self._replace_ref, data)

    def _replace_ref(self, match) -> bytes:
        hex_digits, digits = match.groups()
        code = int(hex_digits, 16) if hex_digits else int(digits)
        if _xml_char_allowed(code):
            return match.group(0)
        self.replaced += 1
        return b" "


# --- Sniffing ------------------------------------------------------------------------------


def sniff_encoding(path) -> str:
    """utf-8-sig for a BOM, utf-8 when the whole file decodes as UTF-8, else cp1251 (the
    encoding Russian Excel saves CSV in)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            # Not final: a file cut for the preview may end inside a character.
            while chunk := handle.read(SNIFF_BYTES):
                decoder.decode(chunk)
        except UnicodeDecodeError:
            return "cp1251"
    return "utf-8"


def sniff_head_encoding(head: bytes) -> str:
    """sniff_encoding from the start of a file alone (a streamed preview)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head)  # may end inside a character
    except UnicodeDecodeError:
        return "cp1251"
    return "utf-8"


def sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=";,\t|").delimiter
    except csv.Error:
        counts = {d: sample.count(d) for d in ";,\t"}
        return max(counts, key=counts.get) if any(counts.values()) else ";"


# --- Internals -----------------------------------------------------------------------------


def _is_stream(source) -> bool:
    return hasattr(source, "head")


def _release(element) -> None:
    """Free a parsed element and the siblings before it (memory stays flat)."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def _yml_fields(element) -> dict[str, Any]:
    """An <offer> as a flat dict: `@attr`, child tags (first occurrence), `param:Name`."""
    fields: dict[str, Any] = {f"@{k}": v for k, v in element.attrib.items()}
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue  # comments, processing instructions
        # A leaf's text directly (nearly every element); mixed content joined.
        text = (child.text or "") if len(child) == 0 else "".join(child.itertext())
        text = text.strip()
        if tag == "param":
            key = f"param:{clean_text(child.get('name'))}"
        else:
            key = tag
        if key not in fields:
            fields[key] = text
    if not fields.get("name") and fields.get("model"):
        # type="vendor.model" offers: the name is typePrefix + vendor + model.
        parts = (fields.get("typePrefix"), fields.get("vendor"), fields["model"])
        fields["name"] = " ".join(part for part in parts if part)
    return fields


def _letters_only(mapping: dict) -> bool:
    refs = [s for f in FIELDS for s in sources(mapping.get(f, ""))]
    return bool(refs) and all(re.fullmatch(r"[A-Z]{1,3}", s) for s in refs)


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
