"""Cut-over report: the shop's old price list against the price list we publish now.

Read from the imported old offers (LegacyOffer keeps every row of the old file) and the
published file itself (read back with the same reader as the import), so it shows what
Kaspi will see: for every old SKU, whether our file keeps it as it was, changes its price,
makes it unavailable, or drops it.
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext as _

from ..models import LegacyOffer, Product
from ..pricelists import PriceListReader
from .feed import feed_path


@dataclass
class CutoverLine:
    sku: str
    model: str
    old_price: int | None
    new_price: int | None
    old_available: bool
    new_available: bool | None
    from_old_list: bool = False  # our file carries it only because it was in the old one


@dataclass
class CutoverReport:
    old_offers: int = 0
    new_offers: int = 0
    kept: list[CutoverLine] = field(default_factory=list)
    price_changed: list[CutoverLine] = field(default_factory=list)
    now_unavailable: list[CutoverLine] = field(default_factory=list)
    dropped: list[CutoverLine] = field(default_factory=list)
    error: str = ""

    @property
    def counts(self) -> dict:
        return {
            "old_offers": self.old_offers,
            "new_offers": self.new_offers,
            "kept": len(self.kept),
            "price_changed": len(self.price_changed),
            "now_unavailable": len(self.now_unavailable),
            "dropped": len(self.dropped),
        }


def _old_price(offer: LegacyOffer) -> int | None:
    if offer.price is not None or not offer.city_prices:
        return offer.price
    home = settings.KASPI_HOME_CITY_ID
    return offer.city_prices.get(home, next(iter(offer.city_prices.values())))


def cutover_report(*, path=None) -> CutoverReport:
    """Compare every SKU of the imported old price list with our published file."""
    report = CutoverReport()
    path = path or feed_path()
    if not path.exists():
        report.error = _("our price list has not been built yet: build it first")
        return report
    ours: dict[str, tuple[int | None, bool]] = {}
    reader = PriceListReader(path)
    for offer in reader:
        ours[offer.sku] = (offer.price_in(settings.KASPI_HOME_CITY_ID), offer.available)
    report.new_offers = len(ours)
    held_by_products = set(
        Product.objects.filter(sku__in=LegacyOffer.objects.values("sku")).values_list(
            "sku", flat=True
        )
    )
    seen: set[str] = set()
    for offer in LegacyOffer.objects.order_by("sku", "occurrence").iterator(chunk_size=2000):
        if offer.sku in seen:
            continue
        seen.add(offer.sku)
        old_available = any(point.get("available") for point in offer.availabilities)
        new = ours.get(offer.sku)
        line = CutoverLine(
            sku=offer.sku,
            model=offer.model,
            old_price=_old_price(offer),
            new_price=new[0] if new else None,
            old_available=old_available,
            new_available=new[1] if new else None,
            from_old_list=new is not None and offer.sku not in held_by_products,
        )
        if new is None:
            report.dropped.append(line)
        elif old_available and not new[1]:
            report.now_unavailable.append(line)
        elif line.old_price != line.new_price:
            report.price_changed.append(line)
        else:
            report.kept.append(line)
    report.old_offers = len(seen)
    return report
