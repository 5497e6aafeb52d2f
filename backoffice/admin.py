import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import Alert, ApiToken, AuditEntry, JobLock, SyncRun


def pretty_json(text: str):
    """A stored JSON text (a remote record's raw copy) as an indented, escaped <pre>."""
    try:
        text = json.dumps(json.loads(text), ensure_ascii=False, indent=2)
    except ValueError:
        pass
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)


class ReadOnlyInline(admin.TabularInline):
    """An inline of records the system writes: shown, never added, changed or deleted here.
    Subclasses set `model` and `fields`."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the system: staff read them, never edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "created_at",
        "duration_display",
        "counts_display",
        "progress_display",
        "triggered_by",
        "user",
    ]
    list_filter = ["kind", "status", "triggered_by"]
    date_hierarchy = "created_at"
    search_fields = ["error"]
    readonly_fields = [f.name for f in SyncRun._meta.fields] + ["duration_display"]

    @admin.display(description=_("duration"))
    def duration_display(self, obj):
        if obj.duration is None:
            return "—"
        return f"{obj.duration.total_seconds():.1f} s"

    @admin.display(description=_("counts"))
    def counts_display(self, obj):
        return ", ".join(f"{k}: {v}" for k, v in obj.counts.items()) or "—"

    @admin.display(description=_("progress"))
    def progress_display(self, obj):
        if obj.progress_total:
            return f"{obj.progress_done} / {obj.progress_total}"
        return str(obj.progress_done or "—")


@admin.register(JobLock)
class JobLockAdmin(ReadOnlyAdmin):
    list_display = ["kind", "holder", "acquired_at", "heartbeat_at", "rerun_requested"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["sent_at", "key", "channel", "ok", "short_text"]
    list_filter = ["channel", "ok"]
    search_fields = ["key", "text"]

    @admin.display(description=_("message"))
    def short_text(self, obj):
        return obj.text[:120]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "user", "action", "object_repr", "note"]
    list_filter = ["action"]
    search_fields = ["object_repr", "object_id", "note", "user__username"]
    date_hierarchy = "at"

    def has_delete_permission(self, request, obj=None):
        return False  # the audit log is append-only, for everyone


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are created here; the full value is shown once in a message, then only its
    prefix: the database keeps a SHA-256 of it."""

    list_display = ["name", "prefix", "user", "active", "created_at", "last_used_at"]
    fields = ["name", "user", "active", "prefix", "created_at", "last_used_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        from .api import new_token

        token, raw = new_token(name=obj.name, user=obj.user)
        obj.pk = token.pk
        obj.prefix = token.prefix
        self.message_user(
            request,
            _("Token for %(name)s: %(token)s — copy it now; it is not shown again.")
            % {"name": obj.name, "token": raw},
        )
