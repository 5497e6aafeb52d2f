"""Old offers we could not match, kept in our price list as they were (cut-over grace).

A shop's old price list may sell SKUs none of our products took (no match, ambiguous,
conflicts waiting for staff). Dropping them from the first file we publish would take them
off Kaspi by surprise, so until `LegacyOffer.keep_until` (CUTOVER_GRACE_DAYS after the
import) the price-list build writes them exactly as the old file had them: price or city
prices, every pickup point with its availability, stock and pre-order. The admin marks them
"from the old price list". Once staff link one to a product, the product's offer replaces it.
"""

from django.db.models import Exists, OuterRef
from django.utils import timezone

from ..models import LegacyOffer, Product
from ..rules import has_price
from ..skus import sku_is_valid


def legacy_feed_offers(now=None) -> list[LegacyOffer]:
    """Unresolved old offers still in their grace period whose SKU no product uses, one per
    SKU (the first row of a SKU the file had twice), sorted by SKU."""
    now = now or timezone.now()
    taken = Product.objects.filter(sku=OuterRef("sku"))
    rows = (
        LegacyOffer.objects.exclude(status__in=LegacyOffer.RESOLVED)
        .filter(keep_until__gte=now)
        .exclude(Exists(taken))
        .exclude(sku__in=LegacyOffer.objects.filter(status__in=LegacyOffer.RESOLVED).values("sku"))
        .order_by("sku", "occurrence")
    )
    offers, seen = [], set()
    for offer in rows:
        if offer.sku in seen or not offer.availabilities or not sku_is_valid(offer.sku):
            continue
        if not _prices(offer):
            continue
        seen.add(offer.sku)
        offers.append(offer)
    return offers


def legacy_store_ids(now=None) -> list[str]:
    """Pickup points the kept old offers use (the feed's schema must accept them)."""
    stores: dict[str, None] = {}
    for offer in legacy_feed_offers(now):
        for point in offer.availabilities:
            stores.setdefault(point["storeId"], None)
    return list(stores)


def _prices(offer: LegacyOffer) -> dict[str, int] | None:
    if offer.city_prices:
        prices = {city: int(price) for city, price in offer.city_prices.items()}
        return prices if all(has_price(price) for price in prices.values()) else None
    return {"": offer.price} if has_price(offer.price) else None


def write_legacy_offers(element, write, offers, *, ns: str, text, preorder_cap: int) -> int:
    """Write `offers` inside the open <offers> of an lxml xmlfile; returns how many."""
    for offer in offers:
        with element(f"{{{ns}}}offer", {"sku": offer.sku}):
            with element(f"{{{ns}}}model"):
                write(text(offer.model, 250) or offer.sku)
            brand = text(offer.brand, 255)
            if brand:
                with element(f"{{{ns}}}brand"):
                    write(brand)
            with element(f"{{{ns}}}availabilities"):
                for point in offer.availabilities:
                    available = bool(point.get("available"))
                    attrs = {"available": "yes" if available else "no"}
                    attrs["storeId"] = point["storeId"]
                    preorder = min(int(point.get("preOrder") or 0), preorder_cap)
                    if available and preorder:
                        attrs["preOrder"] = str(preorder)
                    stock = point.get("stockCount")
                    if not available:
                        attrs["stockCount"] = "0"
                    elif stock is not None:
                        attrs["stockCount"] = str(int(stock))
                    with element(f"{{{ns}}}availability", attrs):
                        pass
            prices = _prices(offer)
            if "" in prices:
                with element(f"{{{ns}}}price"):
                    write(str(prices[""]))
            else:
                with element(f"{{{ns}}}cityprices"):
                    for city, price in sorted(prices.items()):  # jsonb keeps no key order
                        with element(f"{{{ns}}}cityprice", {"cityId": city}):
                            write(str(price))
    return len(offers)
