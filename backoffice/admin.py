import json
from datetime import timedelta

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery, Sum
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from backoffice.core import labels
from backoffice.core.admin_helpers import KeepRecordsMixin, ReadOnlyAdmin, pretty_json
from backoffice.models import Alert, ApiToken, AuditEntry, JobLock, SyncRun


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "created_at",
        "duration_display",
        "counts_display",
        "reason_display",
        "progress_display",
        "triggered_by",
        "user",
    ]
    list_filter = ["kind", "status", "triggered_by"]
    date_hierarchy = "created_at"
    search_fields = ["error"]
    # JSON fields in words (counters) or as an indented block (parameters).
    fields = [
        *(f.name for f in SyncRun._meta.fields if f.name not in ("counts", "params", "id")),
        "counts_display",
        "params_display",
        "duration_display",
    ]
    readonly_fields = fields
    actions = ["confirm_vanish"]

    @admin.action(
        description=_("Confirm: take the missing products off sale"),
        permissions=["confirm_vanish"],
    )
    def confirm_vanish(self, request, queryset):
        """A catalog sync held by the vanish guard (CATALOG_VANISH_LIMIT): staff checked
        that the products really left Al-Style's catalog."""
        from backoffice.core.exceptions import BackofficeError
        from catalog.services.supplier_sync import confirm_held_run

        for run in queryset:
            try:
                gone = confirm_held_run(run=run, user=request.user)
            except BackofficeError as exc:
                self.message_user(request, f"#{run.pk}: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("Run #%(run)s confirmed: %(n)d products taken off sale.")
                    % {"run": run.pk, "n": gone},
                    messages.SUCCESS,
                )

    def has_confirm_vanish_permission(self, request):
        return request.user.has_perm("catalog.change_product")

    @admin.display(description=_("duration"))
    def duration_display(self, obj):
        if obj.duration is None:
            return "—"
        return _("%(seconds).1f s") % {"seconds": obj.duration.total_seconds()}

    @admin.display(description=_("counts"))
    def counts_display(self, obj):
        return labels.counts_text(obj.counts) or "—"

    @admin.display(description=_("reason"), empty_value="")
    def reason_display(self, obj):
        # A failed run's reason in the list, not only on its page (full text on hover).
        if not obj.error:
            return ""
        return format_html('<span title="{}">{}</span>', obj.error, obj.error.splitlines()[0][:120])

    @admin.display(description=_("parameters"))
    def params_display(self, obj):
        return pretty_json(json.dumps(obj.params)) if obj.params else "—"

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
class AuditEntryAdmin(KeepRecordsMixin, ReadOnlyAdmin):
    list_display = ["at", "user", "action_display", "object_repr", "note"]
    list_filter = [labels.CodeFilter("action", _("action"), labels.AUDIT_ACTIONS)]
    search_fields = ["object_repr", "object_id", "note", "user__username"]
    date_hierarchy = "at"
    fields = ["at", "user", "action_display", "object_type", "object_id", "object_repr"]
    fields += ["before_display", "after_display", "note"]
    readonly_fields = fields

    @admin.display(description=_("before"))
    def before_display(self, obj):
        return pretty_json(json.dumps(obj.before)) if obj.before else "—"

    @admin.display(description=_("after"))
    def after_display(self, obj):
        return pretty_json(json.dumps(obj.after)) if obj.after else "—"

    @admin.display(description=_("action"), ordering="action")
    def action_display(self, obj):
        return labels.code_html(labels.AUDIT_ACTIONS, obj.action)


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
        from backoffice.ops.api import new_token

        token, raw = new_token(name=obj.name, user=obj.user)
        obj.pk = token.pk
        obj.prefix = token.prefix
        self.message_user(
            request,
            _("Token for %(name)s: %(token)s — copy it now; it is not shown again.")
            % {"name": obj.name, "token": raw},
        )


class _LockedFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "locked"

    def lookups(self, request, model_admin):
        return [("yes", _("locked now")), ("all", _("all attempts"))]

    def choices(self, changelist):
        # "locked now" is the default view: the list is the owner's list of locks.
        for value, label in self.lookup_choices:
            yield {
                "selected": (self.value() or "yes") == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        if (self.value() or "yes") == "yes":
            return queryset.filter(pk__in=[a.pk for a in queryset if _locked_until(a)])
        return queryset


def _locked_until(attempt):
    """When the lock this attempt row holds ends, or None (no lock now)."""
    until = attempt.attempt_time + timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
    if until <= timezone.now():
        return None
    if attempt.failures_since_start >= settings.LOGIN_FAILURE_LIMIT:
        return until
    if _address_locked(attempt):
        return until
    return None


@admin.register(AccessAttempt)
class LoginLockAdmin(admin.ModelAdmin):
    """The owner's list of login locks (django-axes' attempts), with "Unlock"."""

    list_display = [
        "username",
        "ip_address",
        "failures_since_start",
        "lock",
        "unlock_button",
    ]
    list_filter = [_LockedFilter]
    search_fields = ["username", "ip_address"]
    actions = ["unlock"]
    fields = ["username", "ip_address", "user_agent", "failures_since_start", "attempt_time"]
    readonly_fields = fields

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser  # deleting the attempts is what lifts a lock

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_queryset(self, request):
        since = timezone.now() - timedelta(minutes=settings.LOGIN_LOCKOUT_MINUTES)
        same_address = (
            AccessAttempt.objects.filter(ip_address=OuterRef("ip_address"), attempt_time__gte=since)
            .values("ip_address")
            .annotate(n=Sum("failures_since_start"))
            .values("n")
        )
        return super().get_queryset(request).annotate(address_failures=Subquery(same_address))

    @admin.display(description=_("locked until"))
    def lock(self, obj):
        until = _locked_until(obj)
        return timezone.localtime(until).strftime("%d.%m.%Y %H:%M") if until else "—"

    @admin.display(description="")
    def unlock_button(self, obj):
        if not _locked_until(obj):
            return ""
        url = reverse("admin:axes_accessattempt_unlock", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Unlock"))

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {"title": _("Login locks"), **(extra_context or {})}
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.unlock_view)
        return [
            path("<int:pk>/unlock/", view, name="axes_accessattempt_unlock"),
            *super().get_urls(),
        ]

    def unlock_view(self, request, pk):
        """The row's "Unlock" button: asks once, then lifts the lock."""
        if not self.has_delete_permission(request):
            raise PermissionDenied
        attempt = get_object_or_404(self.get_queryset(request), pk=pk)
        if request.method == "POST":
            count = self._unlock([attempt])
            self.message_user(request, _("Locks lifted: %(n)s attempts cleared.") % {"n": count})
            return redirect("admin:axes_accessattempt_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Unlock"),
            "attempt": attempt,
            "whole_address": _address_locked(attempt),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/axes/unlock_confirm.html", context)

    @admin.action(description=_("Unlock"), permissions=["delete"])
    def unlock(self, request, queryset):
        count = self._unlock(list(queryset))
        self.message_user(request, _("Locks lifted: %(n)s attempts cleared.") % {"n": count})

    @staticmethod
    def _unlock(attempts) -> int:
        from axes.utils import reset

        count = 0
        for attempt in attempts:
            if _address_locked(attempt):
                # The address's lock counts every name tried from it: lift all of them.
                count += reset(ip=attempt.ip_address)
            else:
                count += reset(username=attempt.username, ip=attempt.ip_address)
        return count


def _address_locked(attempt) -> bool:
    return (attempt.address_failures or 0) >= settings.LOGIN_ADDRESS_FAILURE_LIMIT


admin.site.unregister(Group)


@admin.register(Group)
class StaffGroupAdmin(GroupAdmin):
    """The three staff groups under their names in the staff's language."""

    list_display = ["__str__"]


# The schedules page in plain words (replaces django-q2's own Schedule admin).
from backoffice import admin_schedules  # noqa: E402, F401
