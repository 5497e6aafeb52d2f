"""Admin building blocks every app's admin shares (no app's admin imports another's)."""

import json

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _


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


def money_column(field: str, description):
    """A list column showing a tenge field as staff write money: "1 035 120 ₸"."""
    from backoffice.core.formats import money

    def show(obj):
        return money(getattr(obj, field))

    show.short_description = description
    show.admin_order_field = field
    show.__name__ = f"{field}_money"
    return show


class MoneyColumnsMixin:
    """`money_fields` of list_display are shown with thousands separators and ₸."""

    money_fields: tuple[str, ...] = ()

    def get_list_display(self, request):
        return [
            money_column(name, self.model._meta.get_field(name).verbose_name)
            if name in self.money_fields
            else name
            for name in super().get_list_display(request)
        ]


class KeepRecordsMixin:
    """Records that mirror Kaspi or hold money (orders, payments and their events, webhook
    deliveries, supplier purchases, the audit log) are never deleted from the admin, by
    anyone: a direct sale is cancelled instead, the rest is history."""

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the system: staff read them, never edit them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


def _run_link(run):
    url = reverse("admin:backoffice_syncrun_change", args=[run.pk])
    return format_html('<a href="{}">#{}</a>', url, run.pk)


def certain_to_fail(kind: str, what) -> str:
    """Said at once, instead of queuing a run that fails for want of a token ("" if not)."""
    from backoffice.core.schedules import missing_setting

    setting = missing_setting(kind)
    if not setting:
        return ""
    return format_html(
        _(
            "{} was not started: {} is not set, so it would fail. Set it in the settings "
            "(.env) and restart."
        ),
        what,
        format_html("<code>{}</code>", setting),
    )


def refuse_unconfigured(modeladmin, request, kind: str, *, what) -> bool:
    """True (and an error message) when a run of `kind` cannot succeed now."""
    text = certain_to_fail(kind, what)
    if text:
        modeladmin.message_user(request, text, messages.ERROR)
    return bool(text)


def report_enqueue(modeladmin, request, run, started, *, what):
    """Tell staff whether their click started a run or joined one already under way."""
    if started:
        modeladmin.message_user(
            request,
            format_html(_("{} queued: run {}."), what, _run_link(run)),
            messages.SUCCESS,
        )
    else:
        modeladmin.message_user(
            request,
            format_html(
                _("{} is already queued or running (run {}); it will run once more when done."),
                what,
                _run_link(run),
            ),
            messages.WARNING,
        )
