"""The schedules page in plain words: what runs, how often, when next (shop time), on or off.

django-q2's own admin shows a function path, pickled arguments and "(stored in UTC)" next
to a time shown in the shop's zone; staff see this one instead. Jobs come from
backoffice.core.schedules (manage.py setup_schedules); staff switch them on or off and move
the next run. The interval of a periodic job is a setting (setup_schedules brings it back),
so the page names the setting instead of offering a field that would not stick.
"""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_q import admin as _django_q_admin  # noqa: F401 - registers Schedule first
from django_q.models import Schedule

from backoffice.core import health
from backoffice.core.formats import local_time
from backoffice.core.schedules import all_specs, is_configured


def spec_of(schedule) -> dict:
    return {spec["name"]: spec for spec in all_specs()}.get(schedule.name, {})


def what(schedule) -> str:
    return str(spec_of(schedule).get("label") or schedule.name or schedule.func)


def how_often(schedule) -> str:
    kind = schedule.schedule_type
    if kind == Schedule.MINUTES and schedule.minutes:
        minutes = schedule.minutes
        if minutes % 60 == 0:
            hours = minutes // 60
            if hours == 1:
                return str(_("every hour"))
            return ngettext("every %(n)d hour", "every %(n)d hours", hours) % {"n": hours}
        if minutes == 1:
            return str(_("every minute"))
        return ngettext("every %(n)d minute", "every %(n)d minutes", minutes) % {"n": minutes}
    if kind == Schedule.DAILY:
        at = local_time(schedule.next_run, "%H:%M") if schedule.next_run else "—"
        return _("every day at %(time)s") % {"time": at}
    words = {
        Schedule.ONCE: _("once"),
        Schedule.HOURLY: _("every hour"),
        Schedule.WEEKLY: _("every week"),
        Schedule.MONTHLY: _("every month"),
        Schedule.QUARTERLY: _("every quarter"),
        Schedule.YEARLY: _("every year"),
        Schedule.CRON: _("by a cron rule"),
    }
    return str(words.get(kind, kind))


def is_on(schedule) -> bool:
    return schedule.repeats != 0 and is_configured(spec_of(schedule))


def zone_hint() -> str:
    return _("Shop time (%(zone)s), as everywhere in the back office.") % {
        "zone": settings.TIME_ZONE
    }


class ScheduleForm(forms.ModelForm):
    enabled = forms.BooleanField(
        label=_("On"),
        required=False,
        help_text=_("Off: the job does not run on its own; it can still be started by hand."),
    )

    class Meta:
        model = Schedule
        fields = ["next_run"]
        labels = {"next_run": _("Next run")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["enabled"].initial = self.instance.repeats != 0
        self.fields["next_run"].help_text = zone_hint()
        self.fields["next_run"].required = True

    def save(self, commit=True):
        schedule = super().save(commit=False)
        if self.cleaned_data["enabled"]:
            if schedule.repeats == 0:
                schedule.repeats = -1  # forever, as setup_schedules creates them
        else:
            schedule.repeats = 0
        if commit:
            schedule.save()
        return schedule


admin.site.unregister(Schedule)


@admin.register(Schedule)
class JobScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    change_form_template = "admin/django_q/schedule/change_form.html"
    list_display = ["what_display", "how_often_short", "next_run_display", "state_display"]
    list_display_links = ["what_display"]
    ordering = ["name"]
    fieldsets = [
        (None, {"fields": ["what_display", "how_often_display", "enabled", "next_run"]}),
        (_("Last run"), {"fields": ["state_display", "command_display"]}),
    ]
    readonly_fields = ["what_display", "how_often_display", "state_display", "command_display"]

    def has_add_permission(self, request):
        return False  # the jobs are the project's own (manage.py setup_schedules)

    def has_delete_permission(self, request, obj=None):
        return False  # switch a job off instead

    @admin.display(description=_("what"), ordering="name")
    def what_display(self, obj):
        return format_html('<span title="{}">{}</span>', obj.func, what(obj))

    @admin.display(description=_("how often"))
    def how_often_short(self, obj):
        return how_often(obj)

    @admin.display(description=_("how often"))
    def how_often_display(self, obj):
        text = how_often(obj)
        setting = spec_of(obj).get("setting")
        if setting:
            return format_html(
                '{} <span class="help">({} <code>{}</code>)</span>',
                text,
                _("set by"),
                setting,
            )
        return text

    @admin.display(description=_("next run, shop time"), ordering="next_run")
    def next_run_display(self, obj):
        if not is_on(obj):
            return "—"
        return format_html(
            '<span title="{}">{}</span>', settings.TIME_ZONE, local_time(obj.next_run)
        )

    @admin.display(description=_("state"))
    def state_display(self, obj):
        if not is_configured(spec_of(obj)):
            return format_html(
                "{} <small>({} <code>{}</code>)</small>",
                health.STATE_LABELS[health.STATE_OFF],
                _("not set:"),
                spec_of(obj).get("requires"),
            )
        if obj.repeats == 0:
            return format_html("<strong>{}</strong>", _("switched off by staff"))
        found = {s["name"]: s for s in health.schedule_states()}.get(obj.name)
        if found is None:
            return "—"
        last = local_time(found["last_run"]) if found["last_run"] else ""
        return f"{found['label']}, {last}" if last else found["label"]

    @admin.display(description=_("the same by hand"))
    def command_display(self, obj):
        command = spec_of(obj).get("command")
        return format_html("<code>manage.py {}</code>", command) if command else "—"

    def changelist_view(self, request, extra_context=None):
        extra = {"title": _("Schedules of the recurring jobs")}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = {"title": what(obj), "subtitle": None} if obj is not None else {}
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def save_model(self, request, obj, form, change):
        if obj.next_run and timezone.is_naive(obj.next_run):
            obj.next_run = timezone.make_aware(obj.next_run)
        super().save_model(request, obj, form, change)
