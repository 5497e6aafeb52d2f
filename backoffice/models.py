"""One run history and one lock for every kind of background job (docs/architecture.md)."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backoffice.core.formats import local_time


class SyncRun(models.Model):
    """One run of a background job: catalog sync, stock sync, feed build, order import…"""

    class Kind(models.TextChoices):
        CATALOG = "catalog", _("Catalog sync")
        STOCK = "stock", _("Stock and price sync")
        FEED = "feed", _("Price list build")
        ORDERS = "orders", _("Order import")
        MARKET = "market", _("Kaspi market read")
        REPRICE = "reprice", _("Kaspi repricing")
        CARD_LINKS = "card_links", _("Kaspi card links")
        ORDER_STOCK = "order_stock", _("Order stock check")
        PURCHASE = "purchase", _("Supplier purchase")
        CARD_DATA = "card_data", _("Supplier card data")
        SUPPLIER = "supplier", _("Supplier price-file sync")
        CARD_UPLOAD = "card_upload", _("Kaspi card upload")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        OK = "ok", _("success")
        PARTIAL = "partial", _("partial")
        FAILED = "failed", _("failed")
        SKIPPED = "skipped", _("skipped")
        HELD = "held", _("held for staff")

    FINAL_STATUSES = (Status.OK, Status.PARTIAL, Status.FAILED, Status.SKIPPED, Status.HELD)

    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, db_index=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Trigger(models.TextChoices):
        """Who or what started a run (other words are shown as they are)."""

        COMMAND = "command", _("command (cron)")
        SCHEDULE = "schedule", _("schedule")
        USER = "user", _("staff in the admin")
        CHAIN = "chain", _("after another run")
        API = "api", _("API")
        RERUN = "rerun", _("run again after a busy one")
        REPRICE = "reprice", _("repricing")
        REPRICER = "repricer", _("repricer")

    triggered_by = models.CharField(
        _("triggered by"), max_length=20, default="command", choices=Trigger.choices
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    progress_done = models.PositiveIntegerField(_("done"), default=0)
    progress_total = models.PositiveIntegerField(_("total"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    # What a run over a staff selection found, one line per item (stock check, purchase).
    report = models.TextField(_("report"), blank=True)
    task_id = models.CharField(_("task id"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("run")
        verbose_name_plural = _("run history")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "-created_at"], name="syncrun_kind_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.get_status_display()})"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINAL_STATUSES

    def count(self, name: str, by: int = 1) -> None:
        """Add to one of the run's counters (in memory; saved with the run)."""
        self.counts[name] = self.counts.get(name, 0) + by

    def summary(self) -> str:
        counts = ", ".join(f"{key}={value}" for key, value in self.counts.items())
        return f"{self.kind} run #{self.pk}: {self.status}" + (f" ({counts})" if counts else "")


class JobLock(models.Model):
    """A row per job kind: who holds it, their last heartbeat, and whether to run again."""

    kind = models.CharField(_("kind"), max_length=20, primary_key=True)
    holder = models.CharField(_("holder"), max_length=64, blank=True)
    acquired_at = models.DateTimeField(_("acquired"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("heartbeat"), null=True, blank=True)
    rerun_requested = models.BooleanField(_("run again when done"), default=False)

    class Meta:
        verbose_name = _("job lock")
        verbose_name_plural = _("job locks")

    def __str__(self) -> str:
        return f"{self.kind}: {self.holder or '-'}"


class Alert(models.Model):
    """A message sent to staff; the key names the incident so it is sent once per cool-down."""

    key = models.CharField(_("incident"), max_length=200, db_index=True)
    channel = models.CharField(_("channel"), max_length=20)
    text = models.TextField(_("message"))
    sent_at = models.DateTimeField(_("sent"), default=timezone.now, db_index=True)
    ok = models.BooleanField(_("delivered"), default=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-sent_at"]

    def __str__(self) -> str:
        return f"{self.key} ({local_time(self.sent_at)})"


class AuditEntry(models.Model):
    """A staff action that changed money or the shop's face on Kaspi: who, when, what,
    before and after. Written by backoffice.core.audit.audit(); read-only in the admin."""

    at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    action = models.CharField(_("action"), max_length=60, db_index=True)
    object_type = models.CharField(_("object type"), max_length=60)
    object_id = models.CharField(_("object id"), max_length=64, blank=True)
    object_repr = models.CharField(_("object"), max_length=255, blank=True)
    before = models.JSONField(_("before"), default=dict, blank=True)
    after = models.JSONField(_("after"), default=dict, blank=True)
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        from backoffice.core.labels import AUDIT_ACTIONS, label

        return f"{local_time(self.at)} {label(AUDIT_ACTIONS, self.action)} {self.object_repr}"


class ApiToken(models.Model):
    """A token for monitoring tools and scripts (Authorization: Bearer …), stored hashed.

    The full token is shown once, when it is created; the database keeps its SHA-256 and a
    short prefix to tell tokens apart.
    """

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12, editable=False)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("acts as"),
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
