"""Kaspi SKUs: derived from the supplier article, never from the part number.

Part numbers hold spaces, slashes and Cyrillic and collide after cleaning; the Al-Style
article is numeric and stable. `SKU_PREFIX` (default empty) can keep suppliers apart.
"""

import re

from django.conf import settings


def sku_is_valid(value: str | None) -> bool:
    return bool(value) and re.fullmatch(settings.SKU_PATTERN, value) is not None


def derive_sku(article: str) -> str:
    """The default SKU for a supplier article: prefix + its Latin letters and digits, ≤ 20."""
    cleaned = re.sub(r"[^A-Za-z0-9]", "", f"{settings.SKU_PREFIX}{article}")
    return cleaned[:20]
