"""Supplier price → Kaspi price.

`kaspi_price()` is pure: given a product, the active rules and the product's category path,
it returns whole tenge (or None when the product must not be offered at a price). Decimal
inside, rounded once at the end, never floats. The result is stored on the product by the
sync and by `reprice_products()`, so the price-list build only reads stored values.
"""

import logging
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from backoffice.core.audit import audit, snapshot
from backoffice.core.db import update_objects

from ..models import Category, CityPrice, KaspiCommission, PriceRule, Product
from ..rules import has_price

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PriceQuote:
    price: int | None
    rule: PriceRule | None = None
    reason: str = ""


def break_even_price(
    *,
    dealer_price: int | Decimal,
    commission_percent: Decimal | None = None,
    tax_percent: Decimal | None = None,
    extra_costs: int | Decimal = 0,
    master_category: str | None = None,
    commissions: "CommissionTable | None" = None,
) -> int:
    """The lowest Kaspi price, in whole tenge, that still covers what a unit costs us.

    Kaspi takes its commission and the tax office its tax as shares of the selling price,
    so break-even = ceil((dealer price + extra costs) / (1 − commission − tax))
    (docs/kaspi-offers.md §9). The commission is one flat rate for now
    (KASPI_COMMISSION_PERCENT); a caller with a per-category rate passes it. Tax:
    SALES_TAX_PERCENT. `extra_costs` (delivery, packaging) in tenge.

    With `master_category` (the card's Kaspi category as the offers name it) and no
    explicit rate, the rate comes from the Kaspi commissions table (the repricer passes
    `commissions`, loaded once per run; else it is read here).
    """
    if commission_percent is None and master_category is not None:
        commission_percent = (commissions or CommissionTable()).percent(master_category)
    commission = (
        settings.KASPI_COMMISSION_PERCENT if commission_percent is None else commission_percent
    )
    tax = settings.SALES_TAX_PERCENT if tax_percent is None else tax_percent
    kept = Decimal(100) - Decimal(commission) - Decimal(tax)
    if kept <= 0:
        raise ValueError("commission and tax must leave something of the price: below 100 %")
    cost = Decimal(dealer_price) + Decimal(extra_costs)
    return int((cost * Decimal(100) / kept).to_integral_value(rounding=ROUND_CEILING))


def frozen_below_cost(product) -> bool:
    """A frozen (price needs review) Kaspi price below the break-even price of the current
    dealer price: such an offer must not sell until staff approve a price."""
    if not product.price_review or not product.kaspi_price:
        return False
    dealer = product.price1
    if not has_price(dealer):
        return False
    return product.kaspi_price < break_even_price(dealer_price=dealer)


def round_price(value: Decimal, rounding: int) -> int:
    """Round up to a step of 1/10/100 tenge, or up to the next amount ending in 990."""
    if rounding == PriceRule.Rounding.ENDING_990:
        thousands = ((value - 990) / 1000).to_integral_value(rounding=ROUND_CEILING)
        return int(max(thousands, 0) * 1000 + 990)
    step = Decimal(rounding or 1)
    return int((value / step).to_integral_value(rounding=ROUND_CEILING) * step)


def rule_specificity(rule: PriceRule, category_path: tuple[int, ...]) -> tuple[int, int] | None:
    """How specifically `rule` fits a product, or None when it does not apply.

    A category rule beats a brand rule, which beats a price band, which beats "all"; a
    deeper category beats its parent.
    """
    if rule.scope == PriceRule.Scope.CATEGORY:
        if rule.category_id in category_path:
            return (3, category_path.index(rule.category_id))
        return None
    return {
        PriceRule.Scope.BRAND: (2, 0),
        PriceRule.Scope.BAND: (1, 0),
        PriceRule.Scope.ALL: (0, 0),
    }[rule.scope]


def rule_applies(rule: PriceRule, product: Product, category_path: tuple[int, ...]) -> bool:
    if not rule.active:
        return False
    if rule.scope == PriceRule.Scope.BRAND and rule.brand_id != product.brand_id:
        return False
    if rule.scope == PriceRule.Scope.BAND:
        base = getattr(product, rule.base) or 0
        if rule.band_min is not None and base < rule.band_min:
            return False
        if rule.band_max is not None and base >= rule.band_max:
            return False
    return rule_specificity(rule, category_path) is not None


def select_rule(
    product: Product, rules: list[PriceRule], category_path: tuple[int, ...]
) -> PriceRule | None:
    candidates = [rule for rule in rules if rule_applies(rule, product, category_path)]
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda rule: (rule_specificity(rule, category_path), rule.priority, -(rule.pk or 0)),
    )


def kaspi_price(
    product: Product, rules: list[PriceRule], *, category_path: tuple[int, ...] = ()
) -> PriceQuote:
    """The price Kaspi should show for `product`, in whole tenge, or None with a reason."""
    if product.manual_price is not None:
        if has_price(product.manual_price):
            return PriceQuote(int(product.manual_price), None, "manual price")
        return PriceQuote(None, None, "manual price must be above 1 tenge")
    if product.price_on_request:
        return PriceQuote(None, None, "price on request at the supplier")
    rule = select_rule(product, rules, category_path)
    if rule is None:
        return PriceQuote(None, None, "no price rule applies")
    base = getattr(product, rule.base)
    if not has_price(base):
        return PriceQuote(None, rule, f"{rule.base} is not set")
    value = Decimal(base) * (Decimal(100) + rule.markup_percent) / Decimal(100)
    value += Decimal(rule.markup_fixed)
    if has_price(product.price1):
        value = max(value, Decimal(product.price1 + rule.min_margin))
    price = round_price(value, rule.rounding)
    if not has_price(price):
        return PriceQuote(None, rule, "computed price is not above 1 tenge")
    return PriceQuote(price, rule, rule.name)


class Pricer:
    """Loads the active rules and the category tree once, then quotes many products."""

    def __init__(self):
        self.rules = list(PriceRule.objects.filter(active=True))
        # Prices the repricer applied in the home city win over the rules (issue 19).
        self.market_prices = dict(
            CityPrice.objects.filter(city=settings.KASPI_HOME_CITY).values_list(
                "product_id", "price"
            )
        )
        parents = dict(Category.objects.values_list("id", "parent_id"))
        self._paths: dict[int | None, tuple[int, ...]] = {None: ()}
        for category_id in parents:
            self._paths[category_id] = self._path(category_id, parents)

    @staticmethod
    def _path(category_id, parents) -> tuple[int, ...]:
        path, seen = [], set()
        while category_id is not None and category_id not in seen:
            seen.add(category_id)
            path.append(category_id)
            category_id = parents.get(category_id)
        return tuple(reversed(path))

    def quote(self, product: Product, *, market: bool = True) -> PriceQuote:
        """The rules' price, or the repricer's applied price when there is one (`market`)."""
        path = self._paths.get(product.category_id, ())
        quote = kaspi_price(product, self.rules, category_path=path)
        # New rows of the sync are quoted as plain namespaces, without a pk yet.
        applied = self.market_prices.get(getattr(product, "pk", None)) if market else None
        if applied and product.manual_price is None and not product.price_on_request:
            return PriceQuote(int(applied), quote.rule, "repricer")
        return quote

    def apply(self, product: Product) -> bool:
        """Store the quote on `product` (unless its price is frozen); True if it changed."""
        held = frozen_below_cost(product)
        held_changed = held != product.below_cost
        product.below_cost = held
        if product.price_review:
            return held_changed
        quote = self.quote(product)
        rule_id = quote.rule.pk if quote.rule else None
        changed = (product.kaspi_price, product.price_rule_id) != (quote.price, rule_id)
        product.kaspi_price = quote.price
        product.price_rule_id = rule_id
        return changed or held_changed


def flag_price_anomaly(product: Product, old_price1: int | None) -> bool:
    """Freeze the Kaspi price when the dealer price moved by more than PRICE_ANOMALY_SHARE."""
    new = product.price1
    if not has_price(old_price1) or not new:
        return False
    if not has_price(new):
        return False
    share = abs(Decimal(new) - Decimal(old_price1)) / Decimal(old_price1)
    if share <= Decimal(str(settings.PRICE_ANOMALY_SHARE)):
        return False
    product.price_review = True
    product.price_review_note = (
        f"dealer price {old_price1} → {new} ({(share * 100).quantize(Decimal('1'))}%)"
    )[:255]
    return True


PRICING_FIELDS = ["kaspi_price", "price_rule", "price_review", "price_review_note", "below_cost"]


def refresh_below_cost() -> int:
    """Recompute `below_cost` of every frozen product (few rows) and clear it elsewhere, so
    the price list follows the current dealer prices and commission settings."""
    changed = []
    for product in Product.objects.filter(Q(price_review=True) | Q(below_cost=True)).only(
        "pk", "price1", "kaspi_price", "price_review", "below_cost"
    ):
        held = frozen_below_cost(product)
        if held != product.below_cost:
            product.below_cost = held
            changed.append(product)
    if changed:
        Product.objects.bulk_update(changed, ["below_cost"])
    return len(changed)


def reprice_products(*, queryset=None, approve: bool = False, batch_size: int = 1000) -> dict:
    """Recompute and store Kaspi prices; `approve` also unfreezes reviewed prices."""
    pricer = Pricer()
    queryset = queryset if queryset is not None else Product.objects.all()
    counts = {"checked": 0, "changed": 0}
    pending: list[Product] = []
    for product in queryset.order_by("pk").iterator(chunk_size=batch_size):
        counts["checked"] += 1
        unfrozen = approve and product.price_review
        if unfrozen:
            product.price_review = False
            product.price_review_note = ""
        if pricer.apply(product) or unfrozen:
            pending.append(product)
        if len(pending) >= batch_size:
            counts["changed"] += _save_prices(pending)
            pending = []
    counts["changed"] += _save_prices(pending)
    logger.info("repriced products: %s", counts)
    return counts


def unpriced_products() -> tuple[int, bool]:
    """(listed products no rule prices, whether any active price rule exists): they are not
    in the price list. Products whose supplier price is "on request" are left out (they
    have no price on purpose), as are those with a manual price."""
    unpriced = Product.objects.filter(
        listed=True,
        kaspi_enabled=True,
        price_on_request=False,
        kaspi_price__isnull=True,
        manual_price__isnull=True,
    ).count()
    return unpriced, PriceRule.objects.filter(active=True).exists()


def _save_prices(products: list[Product]) -> int:
    if products:
        with transaction.atomic():
            update_objects(Product, products, PRICING_FIELDS)
    return len(products)


def preview_prices(products) -> list[dict]:
    """What the rules would give each product now, without saving (admin preview)."""
    pricer = Pricer()
    rows = []
    for product in products:
        quote = pricer.quote(product)
        rows.append(
            {
                "product": product,
                "current": product.kaspi_price,
                "quoted": quote.price,
                "rule": quote.rule,
                "reason": quote.reason,
                "frozen": product.price_review,
            }
        )
    return rows


# --- Commission per Kaspi category (docs/kaspi-offers.md §9) ----------------------------


def _percent(value) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)


class CommissionTable:
    """Kaspi's commission per category (masterCategory), loaded once per run.

    The row "*" is the default (seeded 12.5 % with VAT); without a row the flat setting
    KASPI_COMMISSION_PERCENT is used. KASPI_COMMISSION_WITH_VAT picks the column.
    """

    def __init__(self):
        column = "percent_with_vat" if settings.KASPI_COMMISSION_WITH_VAT else "percent_without_vat"
        self.rates = dict(KaspiCommission.objects.values_list("master_category", column))

    def percent(self, master_category: str = "") -> Decimal:
        if master_category and master_category in self.rates:
            return self.rates[master_category]
        if KaspiCommission.DEFAULT in self.rates:
            return self.rates[KaspiCommission.DEFAULT]
        return _percent(settings.KASPI_COMMISSION_PERCENT)


# --- Staff changes (audited here, whoever calls: admin, command, task) ---------------------

PRICE_RULE_FIELDS = [
    "name",
    "active",
    "scope",
    "category_id",
    "brand_id",
    "band_min",
    "band_max",
    "base",
    "markup_percent",
    "markup_fixed",
    "min_margin",
    "rounding",
    "priority",
]


def approve_prices(*, products, user=None) -> dict:
    """Staff approve the frozen new supplier prices of `products`: audited, then repriced."""
    frozen = products.filter(price_review=True)
    audit(
        user=user,
        action="product.approve_prices",
        after={"skus": list(frozen.values_list("sku", flat=True)[:1000])},
        note=f"{frozen.count()} products",
    )
    return reprice_products(queryset=frozen, approve=True)


def save_price_rule(*, rule: PriceRule, user=None) -> PriceRule:
    """Add or change a price rule, with its before/after in the audit log."""
    stored = PriceRule.objects.filter(pk=rule.pk).first() if rule.pk else None
    rule.save()
    audit(
        user=user,
        action="price_rule.change" if stored else "price_rule.add",
        obj=rule,
        before=snapshot(stored, PRICE_RULE_FIELDS) if stored else {},
        after=snapshot(rule, PRICE_RULE_FIELDS),
    )
    return rule


def delete_price_rule(*, rule: PriceRule, user=None) -> None:
    audit(user=user, action="price_rule.delete", obj=rule, before=snapshot(rule, PRICE_RULE_FIELDS))
    rule.delete()
