"""Kaspi SKUs: the ones we make, and the ones a shop already has.

SKUs *we* make are derived from the supplier article, never from the part number: part
numbers hold spaces, slashes and Cyrillic and collide after cleaning; the Al-Style article
is numeric and stable. `SKU_PREFIX` (default "AS") can keep suppliers apart; the result
matches `SKU_PATTERN` (Latin letters and digits, ≤ 20: safe everywhere).

SKUs a shop already sells under are kept byte for byte (docs/kaspi-price-list.md, "SKUs
Kaspi already accepts": spaces, slashes, Cyrillic, 21-60 chars and Kaspi-made
`130342357_673822557` all live on Kaspi). Only what cannot work is refused (`sku_errors`);
the characters our notes call risky only warn (`sku_warnings`).
"""

import re

from django.conf import settings
from django.utils.translation import gettext as _

# The card-import schema's limit (docs/kaspi-product-import.md) and our column length.
SKU_MAX_LENGTH = 64
# Characters XML 1.0 cannot carry at all (the feed writer would have to drop them).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def sku_errors(value: str | None) -> list[str]:
    """Why `value` cannot be a Kaspi SKU (empty list: it can)."""
    if not value:
        return [_("The SKU is empty.")]
    errors = []
    if not value.isprintable() and _XML_ILLEGAL.search(value):  # printable: none of them
        errors.append(_("The SKU holds a control character that XML cannot carry."))
    if value != value.strip():
        errors.append(_("The SKU starts or ends with a space."))
    if len(value) > SKU_MAX_LENGTH:
        errors.append(
            _("The SKU is %(n)d characters long; Kaspi takes at most %(max)d.")
            % {"n": len(value), "max": SKU_MAX_LENGTH}
        )
    return errors


def sku_is_valid(value: str | None) -> bool:
    return not sku_errors(value)


def sku_warnings(value: str | None) -> list[str]:
    """What in a usable SKU our notes call risky (kept anyway: it may be live on Kaspi)."""
    if not value or sku_errors(value) or re.fullmatch(settings.SKU_PATTERN, value):
        return []
    warnings = []
    if re.search(r"\s", value):
        warnings.append(_("spaces"))
    if "/" in value or "\\" in value:
        warnings.append(_("slashes"))
    if re.search("[\u0400-\u04ff]", value):
        warnings.append(_("Cyrillic letters"))
    if re.search(r"[^A-Za-z0-9\s/\\\u0400-\u04ff]", value):
        warnings.append(_("other characters than Latin letters and digits"))
    if len(value) > 20:
        warnings.append(_("more than 20 characters"))
    return warnings


def derive_sku(article: str, prefix: str | None = None) -> str:
    """The default SKU for a supplier article: prefix + its Latin letters and digits, ≤ 20.

    `prefix` is the supplier's SKU prefix (Supplier.sku_prefix) for products first created
    from a supplier other than Al-Style; Al-Style's products keep SKU_PREFIX."""
    prefix = settings.SKU_PREFIX if prefix is None else prefix
    cleaned = re.sub(r"[^A-Za-z0-9]", "", f"{prefix}{article}")
    return cleaned[:20]
