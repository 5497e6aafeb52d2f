"""The repricer's records (docs/kaspi-offers.md): card links, market reads, rules, changes.

Kept apart from catalog/models.py (imported at its end) so the suppliers/product split can
move them as one piece. They hang off catalog.Product, today's "Al-Style offer + our
listing".
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class KaspiCardLink(models.Model):
    """Which Kaspi card our product is sold on, and whether that was verified."""

    class Source(models.TextChoices):
        URL = "url", _("card URL from staff")
        KASPI_SKU = "kaspi_sku", _("Kaspi-made SKU")
        ORDERS = "orders", _("sold items (orders)")
        SEARCH = "search", _("search, confirmed by staff")

    class Status(models.TextChoices):
        UNVERIFIED = "unverified", _("unverified")
        LINKED = "linked", _("linked")
        CONFLICTING = "conflicting", _("conflicting")
        CANDIDATES = "candidates", _("search candidates to confirm")

    product = models.OneToOneField(
        "catalog.Product",
        verbose_name=_("product"),
        on_delete=models.CASCADE,
        related_name="kaspi_link",
    )
    card_id = models.CharField(_("Kaspi card id"), max_length=32, blank=True, db_index=True)
    source = models.CharField(_("source"), max_length=10, choices=Source.choices)
    status = models.CharField(
        _("status"), max_length=12, choices=Status.choices, default=Status.UNVERIFIED
    )
    note = models.CharField(_("note"), max_length=255, blank=True)
    candidates = models.JSONField(_("search candidates"), default=list, blank=True)
    master_category = models.CharField(_("Kaspi category"), max_length=255, blank=True)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    floor_price = models.PositiveBigIntegerField(
        _("manual floor"),
        null=True,
        blank=True,
        help_text=_("Never below this price (wins over the computed floor)."),
    )
    ceiling_price = models.PositiveBigIntegerField(
        _("manual ceiling"),
        null=True,
        blank=True,
        help_text=_("The repricer never goes above this price."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("Kaspi card link")
        verbose_name_plural = _("Kaspi card links")
        ordering = ["product__sku"]

    def __str__(self) -> str:
        return f"{self.product.sku} → {self.card_id or '?'}"

    def clean(self):
        if self.floor_price and self.ceiling_price and self.floor_price > self.ceiling_price:
            raise ValidationError(_("The manual floor is above the manual ceiling."))


class MarketState(models.Model):
    """The latest read of one (card, city): its age drives the read planner."""

    class Status(models.TextChoices):
        OK = "ok", _("read")
        EMPTY = "empty", _("nobody sells it")
        UNKNOWN = "unknown", _("market unknown")
        FORMAT = "format", _("format changed")

    product = models.ForeignKey(
        "catalog.Product",
        verbose_name=_("product"),
        on_delete=models.CASCADE,
        related_name="market_states",
    )
    city = models.CharField(_("city"), max_length=16)
    card_id = models.CharField(_("Kaspi card id"), max_length=32)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices)
    read_at = models.DateTimeField(_("last read"), null=True, blank=True, db_index=True)
    ok_at = models.DateTimeField(_("last read successfully"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    offers = models.JSONField(_("offers"), default=list, blank=True)
    competitors = models.PositiveIntegerField(_("competitors"), default=0)
    our_position = models.PositiveIntegerField(_("our position"), null=True, blank=True)
    our_price = models.PositiveBigIntegerField(_("our price seen"), null=True, blank=True)
    best_price = models.PositiveBigIntegerField(_("cheapest competitor"), null=True, blank=True)
    moved_at = models.DateTimeField(_("market moved"), null=True, blank=True)
    flag = models.CharField(_("repricer flag"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("market state")
        verbose_name_plural = _("market states")
        ordering = ["product__sku", "city"]
        constraints = [
            models.UniqueConstraint(fields=["product", "city"], name="marketstate_unique")
        ]

    def __str__(self) -> str:
        return f"{self.card_id} @ {self.city}"


class MarketObservation(models.Model):
    """One read of one (card, city), kept for RETENTION_MARKET_DAYS: every shop seen."""

    product = models.ForeignKey(
        "catalog.Product",
        verbose_name=_("product"),
        on_delete=models.CASCADE,
        related_name="market_observations",
    )
    card_id = models.CharField(_("Kaspi card id"), max_length=32)
    city = models.CharField(_("city"), max_length=16)
    observed_at = models.DateTimeField(_("observed"), default=timezone.now, db_index=True)
    status = models.CharField(_("status"), max_length=8, choices=MarketState.Status.choices)
    error = models.CharField(_("error"), max_length=500, blank=True)
    offers = models.JSONField(_("offers"), default=list, blank=True)
    total = models.PositiveIntegerField(_("offers in city"), default=0)
    our_position = models.PositiveIntegerField(_("our position"), null=True, blank=True)

    class Meta:
        verbose_name = _("market observation")
        verbose_name_plural = _("market observations")
        ordering = ["-observed_at", "-id"]
        indexes = [models.Index(fields=["product", "city", "-observed_at"], name="marketobs_pc")]

    def __str__(self) -> str:
        return f"{self.card_id} @ {self.city} {self.observed_at:%Y-%m-%d %H:%M}"


class KaspiCommission(models.Model):
    """Kaspi's sales commission per category as the offers name it (masterCategory)."""

    DEFAULT = "*"

    master_category = models.CharField(
        _("Kaspi category"),
        max_length=255,
        unique=True,
        help_text=_('As the offers name it (masterCategory); "*" is the default.'),
    )
    percent_without_vat = models.DecimalField(
        _("commission without VAT, %"), max_digits=5, decimal_places=2
    )
    percent_with_vat = models.DecimalField(
        _("commission with VAT, %"), max_digits=5, decimal_places=2
    )

    class Meta:
        verbose_name = _("Kaspi commission")
        verbose_name_plural = _("Kaspi commissions")
        ordering = ["master_category"]

    def __str__(self) -> str:
        return f"{self.master_category}: {self.percent_with_vat}%"


class RepricingRule(models.Model):
    class Scope(models.TextChoices):
        ALL = "all", _("all products")
        CATEGORY = "category", _("category")
        BRAND = "brand", _("brand")
        PRODUCT = "product", _("product")

    class Strategy(models.TextChoices):
        BEAT = "beat", _("beat the cheapest by a step")
        MATCH = "match", _("match the cheapest")
        HOLD = "hold", _("hold position N")
        FIXED = "fixed", _("fixed price")

    name = models.CharField(_("name"), max_length=120)
    active = models.BooleanField(_("active"), default=True)
    scope = models.CharField(_("scope"), max_length=10, choices=Scope.choices, default=Scope.ALL)
    category = models.ForeignKey(
        "catalog.Category",
        verbose_name=_("category"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
    )
    brand = models.ForeignKey(
        "catalog.Brand", verbose_name=_("brand"), null=True, blank=True, on_delete=models.CASCADE
    )
    product = models.ForeignKey(
        "catalog.Product",
        verbose_name=_("product"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    priority = models.IntegerField(
        _("priority"), default=0, help_text=_("Among equally specific rules the higher wins.")
    )
    strategy = models.CharField(
        _("strategy"), max_length=8, choices=Strategy.choices, default=Strategy.BEAT
    )
    step_amount = models.PositiveIntegerField(_("step, tenge"), default=1)
    step_percent = models.DecimalField(
        _("step, %"), max_digits=5, decimal_places=2, default=0, help_text=_("Wins when set.")
    )
    position = models.PositiveSmallIntegerField(_("position to hold"), default=1)
    fixed_price = models.PositiveBigIntegerField(_("fixed price"), null=True, blank=True)
    min_margin = models.PositiveBigIntegerField(
        _("minimum margin, tenge"), default=0, help_text=_("Added to the break-even floor.")
    )
    max_price = models.PositiveBigIntegerField(
        _("maximum price"),
        null=True,
        blank=True,
        help_text=_("Default: the supplier's retail price or the fixed-markup price."),
    )
    ignore_merchants = models.TextField(
        _("ignored shops"),
        blank=True,
        help_text=_("Kaspi merchant ids, comma or line separated (our other shops, dumpers)."),
    )
    min_rating = models.DecimalField(
        _("minimum shop rating"), max_digits=3, decimal_places=1, null=True, blank=True
    )
    ignore_without_reviews = models.BooleanField(_("ignore shops without reviews"), default=False)
    ignore_preorders = models.BooleanField(_("ignore pre-orders"), default=True)
    ignore_other_city = models.BooleanField(
        _("ignore shops shipping from another city"),
        default=False,
        help_text=_("For when we deliver the same day."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("repricing rule")
        verbose_name_plural = _("repricing rules")
        ordering = ["-priority", "name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(scope="category") | Q(category__isnull=False),
                name="repricingrule_category_scope",
            ),
            models.CheckConstraint(
                condition=~Q(scope="brand") | Q(brand__isnull=False),
                name="repricingrule_brand_scope",
            ),
            models.CheckConstraint(
                condition=~Q(scope="product") | Q(product__isnull=False),
                name="repricingrule_product_scope",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        needs = {"category": self.category_id, "brand": self.brand_id, "product": self.product_id}
        if self.scope in needs and not needs[self.scope]:
            raise ValidationError({self.scope: _("Choose what this rule applies to.")})
        if self.strategy == self.Strategy.FIXED and not self.fixed_price:
            raise ValidationError({"fixed_price": _("A fixed rule needs its price.")})

    @property
    def ignored_ids(self) -> set[str]:
        return {part.strip() for part in self.ignore_merchants.replace(",", "\n").split() if part}


class CityPrice(models.Model):
    """Our applied Kaspi price of a product in one city (written only by the repricer)."""

    product = models.ForeignKey(
        "catalog.Product",
        verbose_name=_("product"),
        on_delete=models.CASCADE,
        related_name="city_prices",
    )
    city = models.CharField(_("city"), max_length=16)
    price = models.PositiveBigIntegerField(_("price"))
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("city price")
        verbose_name_plural = _("city prices")
        ordering = ["product", "city"]
        constraints = [models.UniqueConstraint(fields=["product", "city"], name="cityprice_unique")]

    def __str__(self) -> str:
        return f"{self.city}: {self.price}"


class PriceChange(models.Model):
    """A price the repricer proposed or applied, with the reason and the market it saw."""

    class Status(models.TextChoices):
        PENDING = "pending", _("waiting for approval")
        APPLIED = "applied", _("applied")
        REJECTED = "rejected", _("rejected")
        SUPERSEDED = "superseded", _("superseded")

    product = models.ForeignKey(
        "catalog.Product",
        verbose_name=_("product"),
        on_delete=models.CASCADE,
        related_name="price_changes",
    )
    city = models.CharField(_("city"), max_length=16)
    old_price = models.PositiveBigIntegerField(_("old price"), null=True, blank=True)
    new_price = models.PositiveBigIntegerField(_("new price"))
    floor = models.PositiveBigIntegerField(_("floor"), null=True, blank=True)
    ceiling = models.PositiveBigIntegerField(_("ceiling"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=255)
    flag = models.CharField(_("flag"), max_length=255, blank=True)
    rule = models.ForeignKey(
        RepricingRule,
        verbose_name=_("repricing rule"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
    )
    market = models.JSONField(_("market seen"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    anomaly = models.BooleanField(_("large change"), default=False)
    created_at = models.DateTimeField(_("proposed"), default=timezone.now, db_index=True)
    applied_at = models.DateTimeField(_("applied"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("decided by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("price change")
        verbose_name_plural = _("price changes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.product.sku} @ {self.city}: {self.old_price} → {self.new_price}"
