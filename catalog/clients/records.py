"""Defensive parsing of Al-Style records into plain, typed values.

Supplier data is loose: `quantity` is an int, `">50"`, `"<10"`, empty or null; prices may
be strings; names may carry markup characters, emoji, control characters or 600 chars.
A record we cannot use raises `BadRecord` naming its article; the caller counts it and
goes on with the rest.
"""

import hashlib
import json
import logging
import re
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation

from ..rules import is_price_on_request

logger = logging.getLogger(__name__)
_DIGITS = re.compile(r"\d+")


class BadRecord(ValueError):
    def __init__(self, article: str, reason: str):
        self.article = article
        self.reason = reason
        super().__init__(f"article {article or '?'}: {reason}")


@dataclass(frozen=True)
class OfferRecord:
    """One supplier offer as plain, typed values (any supplier: Al-Style, a price file).

    The first eleven fields are what Al-Style gives; the rest have defaults and join the
    content hash only when given, so an Al-Style record hashes exactly as it did before
    offers existed (the migrated hashes stay valid: no rewrite after the migration)."""

    article: str
    part_number: str
    name: str
    full_name: str
    category_id: int | str | None
    brand: str
    dealer_price: int | None
    retail_price: int | None
    quantity: int
    quantity_raw: str
    is_new: bool
    barcode: str = ""
    category: str = ""  # the supplier's category name (price files)
    warehouse_stock: dict | None = None  # {warehouse: units} where the supplier says it
    on_request: bool = False  # the supplier says "price on request" in words

    # The names the Al-Style code has always used.
    @property
    def article_pn(self) -> str:
        return self.part_number

    @property
    def price1(self) -> int | None:
        return self.dealer_price

    @property
    def price2(self) -> int | None:
        return self.retail_price

    @property
    def price_on_request(self) -> bool:
        return self.on_request or is_price_on_request(self.dealer_price)

    def data_hash(self) -> str:
        # A plain list of the values: dataclasses.asdict deep-copies and is 10× slower.
        values = [getattr(self, name) for name in _BASE_FIELDS]
        extras = [getattr(self, name) for name in _EXTRA_FIELDS]
        if any(extras):
            values.append(extras)
        payload = json.dumps(values, ensure_ascii=False, sort_keys=True)
        return hashlib.md5(payload.encode(), usedforsecurity=False).hexdigest()


_OLD_NAMES = {"article_pn": "part_number", "price1": "dealer_price", "price2": "retail_price"}


def ProductRecord(**fields_) -> OfferRecord:  # noqa: N802 (the old class name)
    """An OfferRecord from Al-Style's old field names (article_pn, price1, price2): records
    were called ProductRecord before products had offers."""
    return OfferRecord(**{_OLD_NAMES.get(name, name): value for name, value in fields_.items()})


_FIELD_NAMES = [f.name for f in fields(OfferRecord)]
_BASE_FIELDS = _FIELD_NAMES[:11]
_EXTRA_FIELDS = _FIELD_NAMES[11:]


# Control characters (C0 and C1, tab and newline included) and zero-width/format
# characters that have no place in a product name: each becomes a space, so
# "Мышь\x0bLogitech" reads "Мышь Logitech", never "МышьLogitech".
# (U+200D, the zero-width joiner, is kept: it glues emoji sequences.)
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b\u200c\u200e\u200f\u2028-\u202e\u2060-\u2064\ufeff]"
)
_SPACES = re.compile(r"\s+")


def clean_text(value) -> str:
    """Supplier text with control and zero-width characters replaced by a space, runs of
    spaces collapsed and the ends trimmed (NUL included: PostgreSQL cannot store it)."""
    if value is None:
        return ""
    return _SPACES.sub(" ", _INVISIBLE.sub(" ", str(value))).strip()


def parse_money(value) -> int | None:
    """Whole tenge from an int, a float-like string or '161 000'; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("a price cannot be a boolean")
    text = str(value).replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"price {value!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"price {value!r} is not a non-negative number")
    return int(amount.to_integral_value())


def parse_quantity(value) -> tuple[int, str, bool]:
    """(units, raw text, understood): 12 → 12; '>50' → 50; '<10' → 1; '' / None → 0.

    Buckets are read conservatively so the price list never promises more than exists.
    """
    if value is None:
        return 0, "", True
    if isinstance(value, bool):
        return 0, str(value), False
    if isinstance(value, int):
        return max(value, 0), str(value), True
    if isinstance(value, float):
        return max(int(value), 0), str(value), True
    raw = str(value).strip()
    if raw == "":
        return 0, "", True
    if raw.isdigit():
        return int(raw), raw, True
    match = _DIGITS.search(raw)
    if raw.startswith(">") and match:
        return int(match.group()), raw[:32], True
    if raw.startswith("<") and match:
        # "fewer than N": some units, count unknown: promise one.
        return (1 if int(match.group()) > 1 else 0), raw[:32], True
    return 0, raw[:32], False


def parse_element(raw: dict) -> OfferRecord:
    if not isinstance(raw, dict):
        raise BadRecord("", "record is not an object")
    article = clean_text(raw.get("article"))
    if not article or not re.fullmatch(r"[0-9A-Za-z\-_.]{1,32}", article):
        raise BadRecord(article[:32], "missing or malformed article")
    name = clean_text(raw.get("name")) or clean_text(raw.get("full_name"))
    if not name:
        raise BadRecord(article, "no name")
    try:
        price1 = parse_money(raw.get("price1"))
        price2 = parse_money(raw.get("price2"))
    except ValueError as exc:
        raise BadRecord(article, str(exc)) from None
    quantity, quantity_raw, _understood = parse_quantity(raw.get("quantity"))
    category = raw.get("category")
    try:
        category_id = int(category) if category not in (None, "") else None
    except (TypeError, ValueError):
        category_id = None
    brand = raw.get("brand")
    if isinstance(brand, dict):
        brand = brand.get("name")
    return OfferRecord(
        article=article,
        part_number=clean_text(raw.get("article_pn"))[:255],
        name=name,
        full_name=clean_text(raw.get("full_name")),
        category_id=category_id,
        brand=clean_text(brand)[:255],
        dealer_price=price1,
        retail_price=price2,
        quantity=quantity,
        quantity_raw=quantity_raw,
        is_new=str(raw.get("isnew", "0")).strip().lower() in {"1", "true", "yes"},
    )


def parse_warehouse_stock(value, *, article: str = "") -> dict[str, int]:
    """Al-Style's `warehouse` field of a quantity-price row as {warehouse code: units}.

    Its shape is unconfirmed (docs/alstyle-api.md): both plausible ones are read, an object
    `{"panfilov": 3}` and a list `[{"code": "panfilov", "quantity": 3}]` (`name` instead of
    `code`); quantities as parse_quantity reads them. Anything else, or an entry that is not
    understood, is no warehouse data (empty, so the shares apply) with a warning.
    """
    if value in (None, "", [], {}):
        return {}
    pairs = None
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
        pairs = [(item.get("code") or item.get("name"), item.get("quantity")) for item in value]
    result: dict[str, int] = {}
    for code, quantity in pairs or ():
        units, _raw, understood = parse_quantity(quantity)
        ok = isinstance(code, str | int) and not isinstance(code, bool)
        code = str(code).strip() if ok else ""
        if not code or not understood or isinstance(quantity, bool):
            pairs = None
            break
        result[code] = result.get(code, 0) + units
    if pairs is None:
        logger.warning(
            "Al-Style article %s: warehouse field not understood, ignored: %.200r", article, value
        )
        return {}
    return result
