"""Suppliers and their offers, our products, pricing rules and Kaspi price-list builds.

A `Supplier` (Al-Style's API, a distributor's price file …) lists `SupplierOffer` rows: its
article, name, prices and stock as it says them. A `Product` is *our* product: SKU, Kaspi
price, listing and card state, and the offers that supply it (`product.offers`). Of those
offers one is *chosen* (`Product.offer`, catalog/services/offers.py `choose_offer`) and its
supplier-side values are copied onto the product's own columns (price1, price2, quantity,
quantity_raw, available, listed, price_on_request, is_new, article_pn …): the snapshot. The
price list, pricing, the repricer and the admin keep reading one table; only
`offers.write_snapshots` writes those columns.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _

from backoffice.core.formats import local_time

from .rules import NO_PRICE_AT_OR_BELOW
from .skus import SKU_MAX_LENGTH, sku_errors


@deconstructible
class SkuValidator:
    """Refuses only SKUs that cannot work on Kaspi (catalog/skus.py); a shop's existing
    SKUs with spaces, slashes or Cyrillic pass (the admin warns about them)."""

    def __call__(self, value):
        errors = sku_errors(value)
        if errors:
            raise ValidationError(" ".join(errors), code="invalid_sku")

    def __eq__(self, other):
        return isinstance(other, SkuValidator)


class Category(models.Model):
    supplier_id = models.PositiveIntegerField(_("supplier id"), unique=True)
    name = models.CharField(_("name"), max_length=255)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
    )
    level = models.PositiveSmallIntegerField(_("level"), default=1)
    left = models.PositiveIntegerField(default=0, editable=False)
    right = models.PositiveIntegerField(default=0, editable=False)
    product_count = models.PositiveIntegerField(_("products at supplier"), default=0)

    class Meta:
        verbose_name = _("category")
        verbose_name_plural = _("categories")
        ordering = ["left", "name"]

    def __str__(self) -> str:
        return self.name


class Brand(models.Model):
    name = models.CharField(_("name"), max_length=255, unique=True)
    supplier_id = models.CharField(_("supplier id"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("brand")
        verbose_name_plural = _("brands")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Supplier(models.Model):
    """A distributor we buy from: an API (Al-Style) or a price file (YML, XLSX, CSV).

    Its rate budget and schedule live on the row; the ALSTYLE_* settings only seed
    Al-Style's row on first migrate and stand in while no row exists."""

    ALSTYLE = "alstyle"

    class Kind(models.TextChoices):
        API = "api", _("API")
        PRICEFILE = "pricefile", _("price file")

    class Format(models.TextChoices):
        YML = "yml", "YML"
        XLSX = "xlsx", "XLSX"
        CSV = "csv", "CSV"

    code = models.SlugField(
        _("code"),
        max_length=32,
        unique=True,
        help_text=_("Short Latin name used by commands (alstyle for Al-Style)."),
    )
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.API)
    enabled = models.BooleanField(_("enabled"), default=True)
    sku_prefix = models.CharField(
        _("SKU prefix"),
        max_length=8,
        blank=True,
        help_text=_("SKUs of products first created from this supplier start with it."),
    )
    min_interval = models.FloatField(
        _("seconds between calls"),
        default=0,
        help_text=_("The supplier's rate limit for one token (0 = none)."),
    )
    full_sync_minutes = models.PositiveIntegerField(
        _("full sync every, minutes"), default=0, help_text=_("0 = not scheduled.")
    )
    stock_sync_minutes = models.PositiveIntegerField(
        _("stock sync every, minutes"), default=0, help_text=_("0 = not scheduled.")
    )
    priority = models.SmallIntegerField(
        _("priority"),
        default=100,
        help_text=_("Lower is preferred when two suppliers offer a product at the same price."),
    )
    # Price-file suppliers (catalog/suppliers/pricefile/).
    url = models.CharField(_("price file URL"), max_length=1000, blank=True)
    format = models.CharField(_("file format"), max_length=4, choices=Format.choices, blank=True)
    auth_env = models.CharField(
        _("credentials variable"),
        max_length=64,
        blank=True,
        help_text=_(
            "Name of the environment variable holding user:password or a token for the "
            "file; the secret itself is never stored here."
        ),
    )
    mapping = models.JSONField(
        _("field mapping"),
        default=dict,
        blank=True,
        help_text=_("Which column or field of the file is the article, name, price, stock …"),
    )
    upload = models.FileField(_("uploaded price file"), upload_to="suppliers/", blank=True)
    # Matching (catalog/services/matching.py): what becomes of an offer matching no product.
    create_unmatched = models.BooleanField(
        _("new products from unmatched offers"),
        default=True,
        help_text=_(
            "On: an offer that matches no product by part number + brand or barcode becomes "
            "a new product (SKU with this supplier's prefix). Off: it waits in the match "
            "queue for staff. Ambiguous offers always wait."
        ),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("supplier")
        verbose_name_plural = _("suppliers")
        ordering = ["priority", "code"]

    def __str__(self) -> str:
        return self.name or self.code

    @classmethod
    def alstyle(cls) -> "Supplier":
        """Al-Style's row, created from the ALSTYLE_* settings if it is missing (the data
        migration seeds it; this covers a database emptied since)."""
        supplier = cls.objects.filter(code=cls.ALSTYLE).first()
        if supplier is None:
            supplier, _created = cls.objects.get_or_create(
                code=cls.ALSTYLE, defaults=alstyle_seed()
            )
        return supplier


def alstyle_seed() -> dict:
    """Al-Style's Supplier row as the settings describe it (first migrate only)."""
    return {
        "name": "Al-Style",
        "kind": Supplier.Kind.API,
        "enabled": True,
        "sku_prefix": settings.SKU_PREFIX[:8],
        "min_interval": settings.ALSTYLE_MIN_INTERVAL,
        "full_sync_minutes": settings.CATALOG_SYNC_INTERVAL_MINUTES,
        "stock_sync_minutes": settings.STOCK_SYNC_INTERVAL_MINUTES,
        "priority": 100,
    }


class UnorderedManager(models.Manager):
    """Querysets without the model's default ordering."""

    def get_queryset(self):
        return super().get_queryset().order_by()


class SupplierOffer(models.Model):
    """One supplier's offer of one item, as the supplier last said it (written only by
    catalog/services/offers.py). `product` is null while the offer waits in the match
    queue (an offer of a supplier other than Al-Style that matched no product yet)."""

    supplier = models.ForeignKey(
        Supplier, verbose_name=_("supplier"), on_delete=models.PROTECT, related_name="offers"
    )
    article = models.CharField(_("supplier article"), max_length=128)
    part_number = models.CharField(_("part number"), max_length=255, blank=True)
    barcode = models.CharField(_("barcode"), max_length=64, blank=True)
    name = models.TextField(_("name"))
    full_name = models.TextField(_("full name"), blank=True)
    brand = models.CharField(_("brand"), max_length=255, blank=True)
    category = models.CharField(_("category"), max_length=255, blank=True)
    supplier_category_id = models.CharField(_("supplier category id"), max_length=64, blank=True)
    dealer_price = models.PositiveBigIntegerField(_("dealer price"), null=True, blank=True)
    retail_price = models.PositiveBigIntegerField(_("retail price"), null=True, blank=True)
    quantity = models.PositiveIntegerField(_("stock"), default=0)
    quantity_raw = models.CharField(_("stock (supplier text)"), max_length=32, blank=True)
    warehouse_stock = models.JSONField(_("stock by warehouse"), default=dict, blank=True)
    is_new = models.BooleanField(_("new"), default=False)
    price_on_request = models.BooleanField(_("price on request"), default=False)
    # Text, not JSON: nothing queries inside it (see Product.raw).
    raw = models.TextField(_("supplier data"), blank=True)
    data_hash = models.CharField(max_length=32, blank=True, editable=False)
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen = models.DateTimeField(_("last changed at supplier"), default=timezone.now)
    listed = models.BooleanField(
        _("in supplier catalog"),
        default=True,
        help_text=_("Off when the supplier's last complete listing no longer had it."),
    )
    product = models.ForeignKey(
        "Product",
        verbose_name=_("product"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="offers",
    )

    objects = models.Manager()
    # The sync's queries: the default ordering (by supplier, i.e. its priority and code)
    # joins and sorts, which made each page's hash lookup ~10× slower.
    unordered = UnorderedManager()

    class Meta:
        verbose_name = _("supplier offer")
        verbose_name_plural = _("supplier offers")
        ordering = ["supplier", "article"]
        constraints = [
            models.UniqueConstraint(
                fields=["supplier", "article"], name="supplieroffer_supplier_article"
            )
        ]
        indexes = [
            models.Index(fields=["part_number"], name="supplieroffer_part_number"),
            models.Index(fields=["barcode"], name="supplieroffer_barcode"),
        ]

    def __str__(self) -> str:
        # Staff read it in the match queue's title and breadcrumb: the supplier by name.
        return f"{self.supplier}: {self.article} — {self.name[:60]}"

    @property
    def in_stock(self) -> bool:
        return self.listed and self.quantity > 0


class Product(models.Model):
    """Our product. The supplier columns below (article_pn … last_seen) are the SNAPSHOT
    of the chosen offer (`offer`), written only by catalog/services/offers.py; `article`
    is the Al-Style code for Al-Style products and `<supplier>:<article>` for products
    first created from another supplier. The SKU belongs to the product: it never changes
    when the chosen offer switches supplier."""

    # Snapshot of the chosen supplier offer (written only by catalog/services/offers.py).
    # Uniqueness of article and sku is a Meta constraint, not unique=True: on PostgreSQL
    # unique=True also adds a varchar_pattern_ops index per field that no query here uses
    # and every insert pays for.
    article = models.CharField(
        _("product code at the first supplier"),
        max_length=32,
        help_text=_(
            "The product's code at the supplier it first came from: Al-Style's code, or "
            "«supplier:code» for another supplier. It stays when the chosen offer switches "
            "supplier; the chosen offer's own code is in «Chosen offer» above."
        ),
    )
    article_pn = models.CharField(_("part number"), max_length=255, blank=True)
    name = models.TextField(_("name"))
    full_name = models.TextField(_("full name"), blank=True)
    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="products",
    )
    brand = models.ForeignKey(
        Brand,
        verbose_name=_("brand"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="products",
    )
    price1 = models.PositiveBigIntegerField(_("dealer price"), null=True, blank=True)
    price2 = models.PositiveBigIntegerField(_("retail price"), null=True, blank=True)
    quantity = models.PositiveIntegerField(_("stock"), default=0)
    quantity_raw = models.CharField(_("stock (supplier text)"), max_length=32, blank=True)
    is_new = models.BooleanField(_("new"), default=False)
    price_on_request = models.BooleanField(_("price on request"), default=False)
    listed = models.BooleanField(
        _("in supplier catalog"),
        default=True,
        help_text=_("Off when the last complete sync no longer returned the product."),
    )
    available = models.BooleanField(_("available at supplier"), default=False)
    reserved_quantity = models.PositiveIntegerField(
        _("reserved by Kaspi orders"),
        default=0,
        help_text=_("Units in Kaspi orders not yet handed over; the price list offers the rest."),
    )
    data_hash = models.CharField(max_length=32, blank=True, editable=False)
    # The supplier's last record as JSON text. Text, not JSONField: nothing queries inside
    # it, and PostgreSQL parsing it into jsonb was ~15 % of a 50,000-product first sync.
    raw = models.TextField(_("supplier data"), blank=True)

    # Staff decisions.
    kaspi_enabled = models.BooleanField(_("sell on Kaspi"), default=True)
    sku = models.CharField(
        "SKU",
        max_length=SKU_MAX_LENGTH,
        validators=[SkuValidator()],
        help_text=_(
            "Kaspi SKU: the key of the offer on Kaspi. A SKU kept from the shop's old price "
            "list must stay exactly as it is."
        ),
    )
    manual_price = models.PositiveBigIntegerField(
        _("manual price"),
        null=True,
        blank=True,
        help_text=_("Overrides the price rules when set (whole tenge)."),
    )
    preorder_days = models.PositiveSmallIntegerField(
        _("pre-order (days)"),
        default=0,
        help_text=_("Offer out-of-stock items as a pre-order with this lead time (0 = off)."),
    )

    # Pricing results (written by the pricing service).
    kaspi_price = models.PositiveBigIntegerField(_("Kaspi price"), null=True, blank=True)
    price_rule = models.ForeignKey(
        "PriceRule",
        verbose_name=_("price rule"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    price_review = models.BooleanField(
        _("price needs review"),
        default=False,
        help_text=_("The supplier price jumped; the Kaspi price is frozen until approved."),
    )
    price_review_note = models.CharField(_("review note"), max_length=255, blank=True)
    below_cost = models.BooleanField(
        _("frozen below break-even"),
        default=False,
        help_text=_(
            "The frozen Kaspi price is below the break-even price of the current dealer price "
            "(commission and tax included): not offered until staff approve a price."
        ),
    )

    # Kaspi product card (catalog/services/cards.py).
    details = models.JSONField(
        _("supplier card data"),
        default=dict,
        blank=True,
        help_text=_("Images, description, weight and properties from Al-Style, on demand."),
    )
    card_state = models.CharField(_("Kaspi card"), max_length=10, blank=True, default="")
    card_message = models.TextField(_("card messages"), blank=True)
    card_hash = models.CharField(max_length=64, blank=True, editable=False)
    card_import = models.ForeignKey(
        "CardImport",
        verbose_name=_("last card import"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="products",
    )

    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen = models.DateTimeField(_("last changed at supplier"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    # The offer whose price and stock the product shows (offers.choose_offer), and the one
    # staff pinned (used while it is listed).
    offer = models.ForeignKey(
        SupplierOffer,
        verbose_name=_("chosen offer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    pinned_offer = models.ForeignKey(
        SupplierOffer,
        verbose_name=_("pinned offer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("Staff's choice: used for price and stock while the supplier lists it."),
    )

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["article"]
        constraints = [
            models.UniqueConstraint(fields=["article"], name="product_article_unique"),
            models.UniqueConstraint(fields=["sku"], name="product_sku_unique"),
        ]
        indexes = [
            models.Index(fields=["listed", "available"], name="product_listed_available"),
            # The few frozen prices every price-list build re-checks (refresh_below_cost),
            # found without reading the whole table.
            models.Index(
                fields=["id"],
                name="product_price_frozen",
                condition=Q(price_review=True) | Q(below_cost=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.article} {self.name[:80]}"

    # What the published price list says about the product (PublishedOffer), for the
    # admin and other readers; the feed build itself reads the table in bulk.
    def _published(self):
        try:
            return self.published_offer
        except PublishedOffer.DoesNotExist:
            return None

    @property
    def feed_available(self) -> bool | None:
        published = self._published()
        return None if published is None else published.available

    feed_available.fget.short_description = _("in price list as available")

    @property
    def feed_price(self) -> int | None:
        published = self._published()
        return None if published is None else published.price

    feed_price.fget.short_description = _("price in price list")

    @property
    def offer_off_since(self):
        published = self._published()
        return None if published is None else published.off_since

    offer_off_since.fget.short_description = _("off sale since")

    @property
    def stock_display(self) -> str:
        raw = (self.quantity_raw or "").strip()
        if raw.startswith(">"):
            return _("more than %(n)s") % {"n": raw[1:].strip()}
        if raw.startswith("<"):
            return _("less than %(n)s") % {"n": raw[1:].strip()}
        return str(self.quantity)


# Products we sell on Kaspi (in the price list, available or not): their stock and price
# matter first when the supplier budget is short (catalog/services/budget.py).
ON_SALE = Q(listed=True, kaspi_enabled=True, price_on_request=False)


class PublishedOffer(models.Model):
    """What the last published price list says about a product: one narrow row per offer
    in the file (none for a product not in it), written by the feed build only where it
    changed. `off_since`: when the product went off sale while in the file (it is sent
    with available="no" for FEED_UNAVAILABLE_GRACE_DAYS, then leaves the file).

    No foreign-key constraint in the database: PostgreSQL checks a deferred one row by row
    at commit, about 1 s for a first build's 95,000 rows. Django still deletes a product's
    row with it; a row left by a raw delete is forgotten by the next build (no product,
    so not in the file)."""

    product = models.OneToOneField(
        Product,
        verbose_name=_("product"),
        primary_key=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="published_offer",
    )
    available = models.BooleanField(_("in price list as available"))
    price = models.PositiveBigIntegerField(_("price in price list"))
    off_since = models.DateTimeField(_("off sale since"), null=True, blank=True)

    class Meta:
        verbose_name = _("published offer")
        verbose_name_plural = _("published offers")

    def __str__(self) -> str:
        return str(self.product_id)


class SupplierCheck(models.Model):
    """When Al-Style last confirmed one product's stock and price (`checked_at`: a listing
    page or a quantity-price answer carries both), and when a full listing last returned it
    (`listed_at`). Kept apart from Product, keyed by article, so an unchanged sync writes no
    product row: the freshness of a page is one narrow UPDATE here."""

    article = models.CharField(_("code (Al-Style)"), max_length=32, primary_key=True)
    checked_at = models.DateTimeField(_("stock and price checked"), db_index=True)
    listed_at = models.DateTimeField(_("seen in a full listing"), null=True, blank=True)

    class Meta:
        verbose_name = _("supplier check")
        verbose_name_plural = _("supplier checks")

    def __str__(self) -> str:
        return f"{self.article} @ {self.checked_at:%Y-%m-%d %H:%M}"


class CatalogListing(models.Model):
    """One full Al-Style listing, which may span several sync runs: the next page's offset
    is kept after every page, so a run that stops (budget spent, time up, supplier error)
    leaves a cursor the next run continues from. Products are marked vanished only after
    the last page (and, for a listing that spanned runs, after quantity-price confirmed
    the missing ones are really gone)."""

    class Phase(models.TextChoices):
        PAGES = "pages", _("reading pages")
        CONFIRM = "confirm", _("confirming missing products")
        DONE = "done", _("listing complete")

    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    phase = models.CharField(_("phase"), max_length=10, choices=Phase.choices, default=Phase.PAGES)
    next_offset = models.PositiveIntegerField(_("next offset"), default=0)
    pages = models.PositiveIntegerField(_("pages read"), default=0)
    elements = models.PositiveIntegerField(_("products read"), default=0)
    total = models.PositiveIntegerField(_("products announced"), null=True, blank=True)
    runs = models.PositiveIntegerField(_("runs"), default=0)
    confirm_after = models.CharField(_("confirmed up to article"), max_length=32, blank=True)
    gone = models.JSONField(_("confirmed missing"), default=list, blank=True)

    class Meta:
        verbose_name = _("catalog listing")
        verbose_name_plural = _("catalog listings")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_phase_display()} ({self.pages} pages)"


# Products Kaspi may sell now: the feed writes them with available="yes". Units reserved
# by open Kaspi orders are not offered again; a frozen price below break-even is not sold.
# The one definition of "offerable" (the price-list writer evaluates it per row in SQL).
OFFERABLE = Q(
    listed=True,
    kaspi_enabled=True,
    price_on_request=False,
    kaspi_price__gt=NO_PRICE_AT_OR_BELOW,
    below_cost=False,
) & (Q(available=True, quantity__gt=F("reserved_quantity")) | Q(preorder_days__gt=0))


class PriceRule(models.Model):
    class Scope(models.TextChoices):
        ALL = "all", _("all products")
        CATEGORY = "category", _("category")
        BRAND = "brand", _("brand")
        BAND = "band", _("supplier price band")

    class Base(models.TextChoices):
        PRICE1 = "price1", _("dealer price")
        PRICE2 = "price2", _("retail price")

    class Rounding(models.IntegerChoices):
        ONE = 1, _("to 1 tenge")
        TEN = 10, _("to 10 tenge")
        HUNDRED = 100, _("to 100 tenge")
        ENDING_990 = 990, _("ending in …990")

    name = models.CharField(_("name"), max_length=120)
    active = models.BooleanField(_("active"), default=True)
    scope = models.CharField(_("scope"), max_length=10, choices=Scope.choices, default=Scope.ALL)
    category = models.ForeignKey(
        Category,
        verbose_name=_("category"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text=_("Applies to this category and its subcategories."),
    )
    brand = models.ForeignKey(
        Brand, verbose_name=_("brand"), null=True, blank=True, on_delete=models.CASCADE
    )
    band_min = models.PositiveBigIntegerField(
        _("supplier price from"), null=True, blank=True, help_text=_("Inclusive, tenge.")
    )
    band_max = models.PositiveBigIntegerField(
        _("supplier price below"), null=True, blank=True, help_text=_("Exclusive, tenge.")
    )
    base = models.CharField(_("base price"), max_length=6, choices=Base.choices, default="price1")
    markup_percent = models.DecimalField(_("markup, %"), max_digits=7, decimal_places=2, default=0)
    markup_fixed = models.BigIntegerField(_("markup, tenge"), default=0)
    min_margin = models.PositiveBigIntegerField(
        _("minimum margin, tenge"),
        default=0,
        help_text=_("The Kaspi price is at least the dealer price plus this amount."),
    )
    rounding = models.PositiveSmallIntegerField(
        _("rounding"), choices=Rounding.choices, default=Rounding.ONE
    )
    priority = models.IntegerField(
        _("priority"), default=0, help_text=_("Among equally specific rules the higher wins.")
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("price rule")
        verbose_name_plural = _("price rules")
        ordering = ["-priority", "name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(scope="category") | Q(category__isnull=False),
                name="pricerule_category_scope_has_category",
            ),
            models.CheckConstraint(
                condition=~Q(scope="brand") | Q(brand__isnull=False),
                name="pricerule_brand_scope_has_brand",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        if self.scope == self.Scope.CATEGORY and not self.category_id:
            raise ValidationError({"category": _("Choose the category this rule applies to.")})
        if self.scope == self.Scope.BRAND and not self.brand_id:
            raise ValidationError({"brand": _("Choose the brand this rule applies to.")})
        if self.scope == self.Scope.BAND and self.band_min is None and self.band_max is None:
            raise ValidationError(_("Give the price band's lower or upper bound."))


class FeedBuild(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        PUBLISHED = "published", _("published")
        HELD = "held", _("held back")
        FAILED = "failed", _("failed")

    run = models.ForeignKey(
        "backoffice.SyncRun",
        verbose_name=_("run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.RUNNING
    )
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    forced = models.BooleanField(_("forced"), default=False)
    offers_total = models.PositiveIntegerField(_("offers"), default=0)
    offers_available = models.PositiveIntegerField(_("available offers"), default=0)
    size_bytes = models.PositiveBigIntegerField(_("size, bytes"), default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    file_name = models.CharField(_("file"), max_length=255, blank=True)
    diff = models.JSONField(_("changes vs previous"), default=dict, blank=True)
    errors = models.JSONField(_("errors"), default=list, blank=True)

    class Meta:
        verbose_name = _("price list build")
        verbose_name_plural = _("price list builds")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_status_display()}"


class FeedFetch(models.Model):
    """Aggregated record of downloads of /feed.xml (one row; updated at most once a minute
    per process, so Kaspi's fetches cost no database write each)."""

    key = models.CharField(max_length=16, primary_key=True, default="feed")
    last_fetch_at = models.DateTimeField(_("last download"), null=True, blank=True)
    last_user_agent = models.CharField(_("user agent"), max_length=255, blank=True)
    last_ip = models.CharField(_("IP"), max_length=64, blank=True)
    last_status = models.PositiveSmallIntegerField(_("status"), null=True, blank=True)
    fetch_count = models.PositiveBigIntegerField(_("downloads"), default=0)

    class Meta:
        verbose_name = _("price list download")
        verbose_name_plural = _("price list downloads")

    def __str__(self) -> str:
        return local_time(self.last_fetch_at)


# --- Kaspi product cards (docs/kaspi-product-import.md) -----------------------------------


class KaspiCategory(models.Model):
    code = models.CharField(_("code"), max_length=512, unique=True)
    title = models.CharField(_("title"), max_length=512)
    attributes_loaded_at = models.DateTimeField(_("attributes loaded"), null=True, blank=True)

    class Meta:
        verbose_name = _("Kaspi category")
        verbose_name_plural = _("Kaspi categories")
        ordering = ["title"]

    def __str__(self) -> str:
        return f"{self.title} ({self.code})"


class KaspiAttribute(models.Model):
    class Type(models.TextChoices):
        BOOLEAN = "boolean", "boolean"
        ENUM = "enum", "enum"
        STRING = "string", "string"
        NUMBER = "number", "number"

    category = models.ForeignKey(
        KaspiCategory,
        verbose_name=_("category"),
        on_delete=models.CASCADE,
        related_name="attributes",
    )
    code = models.CharField(_("code"), max_length=512)
    type = models.CharField(_("type"), max_length=10, choices=Type.choices, default="string")
    mandatory = models.BooleanField(_("mandatory"), default=False)
    multi_valued = models.BooleanField(_("multi-valued"), default=False)
    values = models.JSONField(_("allowed values"), default=list, blank=True)
    values_loaded_at = models.DateTimeField(_("values loaded"), null=True, blank=True)

    class Meta:
        verbose_name = _("Kaspi attribute")
        verbose_name_plural = _("Kaspi attributes")
        ordering = ["category", "-mandatory", "code"]
        constraints = [
            models.UniqueConstraint(fields=["category", "code"], name="kaspiattribute_unique")
        ]

    def __str__(self) -> str:
        return self.code


class CardMapping(models.Model):
    """Our supplier category → a Kaspi category, with where each attribute comes from."""

    category = models.OneToOneField(
        Category,
        verbose_name=_("supplier category"),
        on_delete=models.CASCADE,
        related_name="card_mapping",
    )
    kaspi_category = models.ForeignKey(
        KaspiCategory, verbose_name=_("Kaspi category"), on_delete=models.PROTECT
    )

    class Meta:
        verbose_name = _("card mapping")
        verbose_name_plural = _("card mappings")

    def __str__(self) -> str:
        return f"{self.category} → {self.kaspi_category.code}"


class AttributeSource(models.Model):
    class Source(models.TextChoices):
        FIXED = "fixed", _("fixed value")
        PROPERTY = "property", _("supplier property")
        BRAND = "brand", _("brand")
        WEIGHT = "weight", _("weight")
        NAME = "name", _("product name")
        PART_NUMBER = "part_number", _("part number")

    mapping = models.ForeignKey(
        CardMapping, verbose_name=_("mapping"), on_delete=models.CASCADE, related_name="sources"
    )
    attribute = models.ForeignKey(
        KaspiAttribute, verbose_name=_("Kaspi attribute"), on_delete=models.CASCADE
    )
    source = models.CharField(_("source"), max_length=12, choices=Source.choices)
    value = models.CharField(
        _("value or property name"),
        max_length=512,
        blank=True,
        help_text=_("The fixed value, or the supplier property's name."),
    )

    class Meta:
        verbose_name = _("attribute source")
        verbose_name_plural = _("attribute sources")
        constraints = [
            models.UniqueConstraint(fields=["mapping", "attribute"], name="attributesource_unique")
        ]

    def __str__(self) -> str:
        return f"{self.attribute.code} ← {self.get_source_display()}"


class CardImport(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "UPLOADED", _("uploaded")
        FINISHED = "FINISHED", _("finished")
        ABORTED = "ABORTED", _("aborted")
        FAILED = "FAILED", _("not sent")

    code = models.CharField(_("Kaspi import code"), max_length=128, blank=True, db_index=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    skus = models.JSONField(_("SKUs"), default=list)
    payload_hash = models.CharField(max_length=64, blank=True)
    total = models.PositiveIntegerField(_("total"), default=0)
    errors = models.PositiveIntegerField(_("errors"), default=0)
    warnings = models.PositiveIntegerField(_("warnings"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    description = models.TextField(_("description"), blank=True)
    result = models.TextField(_("Kaspi result"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("sent by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    sent_at = models.DateTimeField(_("sent"), default=timezone.now)
    checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)

    class Meta:
        verbose_name = _("card import")
        verbose_name_plural = _("card imports")
        ordering = ["-sent_at"]

    def __str__(self) -> str:
        return f"{self.code or '—'} ({self.get_status_display()})"


class CardState(models.TextChoices):
    NONE = "", _("not sent")
    INVALID = "invalid", _("not valid")
    SENT = "sent", _("sent, waiting for Kaspi")
    ACCEPTED = "accepted", _("accepted")
    # Kaspi answered a per-SKU state we do not know: kept raw in the card messages, not an
    # error, and the card is not re-sent until its content changes.
    UNKNOWN = "unknown", _("Kaspi state not recognised")
    ERROR = "error", _("error")


# --- Cut-over from a shop's old Kaspi price list (catalog/services/pricelist_import.py) ----


class PriceListImport(models.Model):
    """One real import of a shop's old price list (dry runs write nothing)."""

    created_at = models.DateTimeField(_("imported"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("imported by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    source = models.CharField(_("file or URL"), max_length=500)
    file_format = models.CharField(_("format"), max_length=8)
    sha256 = models.CharField(max_length=64, unique=True)
    merchant_id = models.CharField(_("merchant id in the file"), max_length=255, blank=True)
    store_ids = models.JSONField(_("pickup points in the file"), default=list, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)

    class Meta:
        verbose_name = _("old price list import")
        verbose_name_plural = _("old price list imports")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.source[:60]}"


class LegacyOffer(models.Model):
    """An offer of the shop's old price list, how it was matched, and what it became.

    Matched offers gave their SKU to a product. The others stay in our price list as they
    were until `keep_until` (CUTOVER_GRACE_DAYS), so nothing leaves Kaspi at cut-over.
    """

    class Status(models.TextChoices):
        MATCHED = "matched", _("matched")
        CONFIRMED = "confirmed", _("confirmed by staff")
        AMBIGUOUS = "ambiguous", _("several candidates")
        UNMATCHED = "unmatched", _("no match")
        CONFLICT = "conflict", _("SKU conflict")
        DUPLICATE = "duplicate", _("SKU twice in the file")

    class Rule(models.TextChoices):
        SKU = "sku", _("same SKU")
        PART_NUMBER = "part_number", _("part number")
        ARTICLE = "article", _("article")
        MODEL = "model", _("model name")
        STAFF = "staff", _("chosen by staff")

    RESOLVED = (Status.MATCHED, Status.CONFIRMED)

    pricelist = models.ForeignKey(
        PriceListImport,
        verbose_name=_("import"),
        on_delete=models.CASCADE,
        related_name="offers",
    )
    sku = models.CharField("SKU", max_length=SKU_MAX_LENGTH)
    occurrence = models.PositiveSmallIntegerField(default=1, editable=False)
    row = models.PositiveIntegerField(_("row"))
    model = models.TextField(_("model"))
    brand = models.CharField(_("brand"), max_length=255, blank=True)
    price = models.PositiveBigIntegerField(_("price"), null=True, blank=True)
    city_prices = models.JSONField(_("city prices"), default=dict, blank=True)
    availabilities = models.JSONField(_("pickup points"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    rule = models.CharField(_("matched by"), max_length=12, choices=Rule.choices, blank=True)
    confidence = models.PositiveSmallIntegerField(_("confidence, %"), default=0)
    product = models.ForeignKey(
        Product,
        verbose_name=_("product"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="legacy_offers",
    )
    candidates = models.JSONField(_("candidates"), default=list, blank=True)
    note = models.TextField(_("note"), blank=True)
    keep_until = models.DateTimeField(_("kept in our price list until"), null=True, blank=True)
    # Digest of the written values: a re-import compares rows without loading them.
    row_hash = models.CharField(max_length=32, blank=True, editable=False)

    class Meta:
        verbose_name = _("offer from the old price list")
        verbose_name_plural = _("offers from the old price list")
        ordering = ["sku", "occurrence"]
        constraints = [
            models.UniqueConstraint(fields=["sku", "occurrence"], name="legacyoffer_sku_unique")
        ]
        indexes = [models.Index(fields=["status"], name="legacyoffer_status")]

    def __str__(self) -> str:
        return self.sku


class MatchQueueManager(models.Manager):
    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .filter(product=None, listed=True)
            .exclude(supplier__code=Supplier.ALSTYLE)
        )


class MatchQueueOffer(SupplierOffer):
    """The match queue (catalog/services/matching.py): offers of a supplier other than
    Al-Style that wait for staff to link them to a product or make a new one."""

    objects = MatchQueueManager()

    class Meta:
        proxy = True
        # Read after a count («3 предложения в очереди сопоставления») and in Django's
        # «Выберите %s для изменения», so a noun phrase, not the queue's name.
        verbose_name = _("offer in the match queue")
        verbose_name_plural = _("offers in the match queue")


# The repricer's models live in their own module (issue 19); imported here so Django
# registers them with the catalog app.
from .market_models import (  # noqa: E402
    CityPrice,
    KaspiCardLink,
    KaspiCommission,
    MarketObservation,
    MarketState,
    PriceChange,
    RepricingRule,
)

__all__ = [
    "CityPrice",
    "KaspiCardLink",
    "KaspiCommission",
    "MarketObservation",
    "MarketState",
    "PriceChange",
    "RepricingRule",
]
