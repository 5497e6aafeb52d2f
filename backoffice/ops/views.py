"""Health endpoint for monitoring (no login: no secrets, no business data), and the
staff dashboard."""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from backoffice.core.admin_helpers import certain_to_fail
from backoffice.core.health import collect_health, schedule_states
from backoffice.core.labels import counts_text


@never_cache
@require_GET
def health(request):
    report = collect_health()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)


def _card(title, level, lines, url):
    return {"title": title, "level": level, "lines": lines, "url": url}


def _run_card(title, kind, setting, max_age_minutes, changelist):
    from backoffice.models import SyncRun

    url = reverse("admin:backoffice_syncrun_changelist") + f"?kind__exact={kind}"
    if not getattr(settings, setting):
        return _card(
            title, "grey", [_("switched off: %(setting)s is not set") % {"setting": setting}], url
        )
    last = SyncRun.objects.filter(kind=kind).exclude(status=SyncRun.Status.SKIPPED).first()
    if last is None:
        return _card(title, "red", [_("never ran")], url)
    lines = [f"{last.get_status_display()} · {timezone.localtime(last.created_at):%d.%m %H:%M}"]
    if last.status in (SyncRun.Status.FAILED, SyncRun.Status.HELD, SyncRun.Status.PARTIAL):
        lines.append(last.error.splitlines()[0][:200] if last.error else "")
    if last.duration:
        lines.append(_("duration %(s).0f s") % {"s": last.duration.total_seconds()})
    if last.counts:
        lines.append(counts_text(dict(list(last.counts.items())[:6])))
    finished = last.finished_at or last.created_at
    stale = timezone.now() - finished > timedelta(minutes=max_age_minutes)
    if last.status in (SyncRun.Status.FAILED, SyncRun.Status.HELD):
        level = "red"
    elif last.status in (SyncRun.Status.PARTIAL,) or stale:
        level = "amber"
    else:
        level = "green"
    return _card(title, level, lines, url)


def _fetch_text(fetch) -> str:
    return _("%(when)s from %(ip)s, User-Agent «%(agent)s»") % {
        "when": f"{timezone.localtime(fetch.last_fetch_at):%d.%m %H:%M}",
        "ip": fetch.last_ip or "—",
        "agent": fetch.last_user_agent or "—",
    }


def feed_fetch_lines(kaspi, other) -> list[str]:
    """«Kaspi скачал»: the last download with its address and User-Agent. Until staff name
    Kaspi's User-Agent or addresses (KASPI_FEED_*), it is anyone's download, said so."""
    from catalog.services.fetches import kaspi_marked

    lines = []
    if not kaspi_marked():
        if kaspi and kaspi.last_fetch_at:
            lines.append(_("Last download: %(fetch)s") % {"fetch": _fetch_text(kaspi)})
            lines.append(
                _(
                    "not checked that it was Kaspi: set KASPI_FEED_USER_AGENTS or "
                    "KASPI_FEED_ADDRESSES"
                )
            )
        else:
            lines.append(_("no download recorded yet"))
        return lines
    if kaspi and kaspi.last_fetch_at:
        lines.append(_("Kaspi downloaded it %(fetch)s") % {"fetch": _fetch_text(kaspi)})
    else:
        lines.append(_("Kaspi has not downloaded it yet"))
    if other and other.last_fetch_at:
        lines.append(_("Last other download: %(fetch)s") % {"fetch": _fetch_text(other)})
    return lines


def _unpriced_line() -> str:
    """The price-list card's line about listed products without a Kaspi price."""
    from catalog.services.pricing import unpriced_products

    unpriced, any_rule = unpriced_products()
    if not unpriced:
        return ""
    if not any_rule:
        return _(
            "%(n)d products have no Kaspi price because no active price rule exists: add one "
            "in Catalog → Price rules"
        ) % {"n": unpriced}
    return _(
        "%(n)d products have no Kaspi price (no price rule covers them): they are not in "
        "the price list"
    ) % {"n": unpriced}


def dashboard_cards() -> list[dict]:
    from django_q.models import Failure

    from catalog.models import FeedBuild, FeedFetch
    from orders.models import Order
    from payments.models import Payment

    cards = [
        _run_card(
            _("Catalog sync"),
            "catalog",
            "ALSTYLE_TOKEN",
            settings.CATALOG_SYNC_MAX_AGE_MINUTES,
            "catalog_product",
        ),
        _run_card(
            _("Order import"),
            "orders",
            "KASPI_SHOP_TOKEN",
            settings.ORDERS_IMPORT_MAX_AGE_MINUTES,
            "orders_order",
        ),
    ]
    from catalog.services.budget import freshness_lines

    lines, level = freshness_lines()  # none without an Al-Style token or another supplier
    if lines:
        cards.append(
            _card(
                _("Supplier data freshness"),
                level,
                lines,
                reverse("admin:catalog_product_changelist"),
            )
        )
    build = FeedBuild.objects.first()
    fetch = FeedFetch.objects.filter(key="feed").first()
    lines, level = [], "green"
    if build is None:
        lines, level = [_("never built")], "red"
    else:
        lines.append(
            f"{build.get_status_display()} · {timezone.localtime(build.started_at):%d.%m %H:%M}"
            f" · {build.offers_total} / {build.offers_available}"
        )
        if build.status != FeedBuild.Status.PUBLISHED:
            level = "red"
        elif timezone.now() - build.started_at > timedelta(minutes=settings.FEED_MAX_AGE_MINUTES):
            level = "amber"
    lines += feed_fetch_lines(fetch, FeedFetch.objects.filter(key="other").first())
    unpriced_line = _unpriced_line()
    if unpriced_line:
        lines.append(unpriced_line)
        level = "red" if level == "red" else "amber"
    if fetch and fetch.last_fetch_at:
        if timezone.now() - fetch.last_fetch_at > timedelta(hours=2) and level == "green":
            level = "amber"
    cards.append(
        _card(_("Kaspi price list"), level, lines, reverse("admin:catalog_feedbuild_changelist"))
    )
    waiting = Order.objects.filter(status="APPROVED_BY_BANK")
    attention = Order.objects.filter(needs_attention=True).exclude(
        fulfilment__in=["completed", "cancelled", "returned"]
    )
    cards.append(
        _card(
            _("Orders to act on"),
            "amber" if waiting.exists() or attention.exists() else "green",
            [
                _("waiting for acceptance: %(n)d") % {"n": waiting.count()},
                _("needing attention: %(n)d") % {"n": attention.count()},
            ],
            reverse("admin:orders_order_changelist") + "?needs_attention__exact=1",
        )
    )
    pending = Payment.objects.filter(status__in=Payment.OPEN_STATUSES)
    stuck = pending.filter(created_at__lt=timezone.now() - timedelta(minutes=30))
    cards.append(
        _card(
            _("Pending payments"),
            "amber" if stuck.exists() else "green",
            [
                _("pending: %(n)d, older than 30 min: %(s)d")
                % {"n": pending.count(), "s": stuck.count()}
            ],
            reverse("admin:payments_payment_changelist") + "?status__exact=pending",
        )
    )
    from backoffice.models import SyncRun

    day_ago = timezone.now() - timedelta(hours=24)
    # Runs fail with a reason recorded (a crashed task is a failed run too); django-q's own
    # failures are counted beside them.
    failed_runs = SyncRun.objects.filter(status=SyncRun.Status.FAILED, created_at__gte=day_ago)
    failed_tasks = Failure.objects.filter(stopped__gte=day_ago).count()
    lines = [_("failed runs: %(n)d") % {"n": failed_runs.count()}]
    latest = failed_runs.order_by("-created_at").first()
    if latest is not None:
        reason = latest.error.splitlines()[0][:200] if latest.error else "—"
        lines.append(f"{latest.get_kind_display()} #{latest.pk}: {reason}")
    if failed_tasks:
        lines.append(_("failed background tasks: %(n)d") % {"n": failed_tasks})
    cards.append(
        _card(
            _("Failed runs, 24 h"),
            "red" if latest is not None or failed_tasks else "green",
            lines,
            reverse("admin:backoffice_syncrun_changelist") + "?status__exact=failed",
        )
    )
    return cards


RUN_NAMES = {
    "catalog": _lazy("Catalog sync"),
    "stock": _lazy("Stock and price sync"),
    "feed": _lazy("Price list build"),
    "orders": _lazy("Order import"),
}


@staff_member_required
def dashboard(request):
    from backoffice.models import SyncRun
    from backoffice.ops.api import SYNC_TARGETS, start_run

    if request.method == "POST":
        what = request.POST.get("what")
        refused = (
            certain_to_fail(SYNC_TARGETS[what][1], RUN_NAMES[what]) if what in SYNC_TARGETS else ""
        )
        if what in SYNC_TARGETS and request.user.has_perm(SYNC_TARGETS[what][0]) and refused:
            messages.error(request, refused)
        elif what in SYNC_TARGETS and request.user.has_perm(SYNC_TARGETS[what][0]):
            run, started = start_run(what, request.user)
            messages.info(
                request,
                (
                    _("Run #%(id)s queued.")
                    if started
                    else _(
                        "Run #%(id)s is already queued or running; it will run once more when done."
                    )
                )
                % {"id": run.pk},
            )
        else:
            messages.error(request, _("You may not start this run."))
        return redirect("dashboard")
    runs = list(SyncRun.objects.all()[:10])
    for run in runs:
        run.counts_text = counts_text(run.counts)
        run.reason = run.error.splitlines()[0][:200] if run.error else ""
    busy = any(run.status in ("queued", "running") for run in runs)
    context = {
        **admin.site.each_context(request),
        "title": _("Dashboard"),
        "cards": dashboard_cards(),
        "runs": runs,
        "schedules": schedule_states(),
        "refresh": busy,
        # Only the runs this user may start (the same permissions as the POST above).
        "buttons": [
            (what, label)
            for what, label in [
                ("catalog", _("Sync catalog")),
                ("stock", _("Sync stock")),
                ("feed", _("Rebuild price list")),
                ("orders", _("Pull Kaspi orders")),
            ]
            if request.user.has_perm(SYNC_TARGETS[what][0])
        ],
    }
    return TemplateResponse(request, "admin/dashboard.html", context)


@staff_member_required
def reports(request):
    from backoffice.core.formats import local_time
    from backoffice.models import SyncRun
    from backoffice.ops import reports as r
    from catalog.models import FeedBuild

    if not (
        request.user.has_perm("orders.view_order") or request.user.has_perm("catalog.view_product")
    ):
        return HttpResponse(status=403)
    since, until, start, end = r.parse_period(request.GET.get("since"), request.GET.get("until"))
    group = request.GET.get("group", "category")
    if group not in GROUPS:
        group = "category"
    export, _sep, file_format = (request.GET.get("export") or "").partition("-")
    if export in ("sales", "margin"):
        return _export(r, export, file_format, group, since, until, start, end)
    daily = r.daily_orders(30)
    labels = [f"{row['day']:%d.%m}" for row in daily]
    catalog_runs = list(
        SyncRun.objects.filter(kind="catalog", finished_at__isnull=False)
        .exclude(status="skipped")
        .order_by("-created_at")[:30]
    )[::-1]
    builds = list(FeedBuild.objects.filter(status="published").order_by("-started_at")[:30])[::-1]
    context = {
        **admin.site.each_context(request),
        "title": _("Reports"),
        "charts": [
            (
                _("Orders per day (30 days)"),
                r.series_svg(
                    [row["orders"] for row in daily], labels, unit=_("orders"), title="orders"
                ),
            ),
            (
                _("Revenue per day, tenge"),
                r.series_svg(
                    [row["revenue"] for row in daily],
                    labels,
                    unit="₸",
                    min_top=1000,
                    title="revenue",
                ),
            ),
            (
                _("Catalog sync duration, s (failed runs in red)"),
                r.series_svg(
                    [run.duration.total_seconds() for run in catalog_runs],
                    [local_time(run.created_at, "%d.%m %H:%M") for run in catalog_runs],
                    unit=_("s"),
                    min_top=10,
                    highlight=[run.status == SyncRun.Status.FAILED for run in catalog_runs],
                    title="sync",
                ),
            ),
            (
                _("Offers available on Kaspi"),
                r.series_svg(
                    [b.offers_available for b in builds],
                    [local_time(b.started_at, "%d.%m %H:%M") for b in builds],
                    kind="line",
                    unit=_("offers"),
                    min_top=10,
                    title="offers",
                ),
            ),
        ],
        "group": group,
        "groups": [(key, label) for key, label in GROUPS.items()],
        "group_label": GROUP_COLUMNS[group],
        "presets": _presets(),
        "start": start,
        "end": end,
        "sales": r.sales_by(group, since, until)[:50],
        "top_products": r.sales_by("product", since, until)[:10],
        "margins": r.margin_report(limit=20),
        "unavailable": r.sold_but_unavailable(30)[:20],
    }
    return TemplateResponse(request, "admin/reports.html", context)


GROUPS = {
    "category": _lazy("by category"),
    "brand": _lazy("by brand"),
    "day": _lazy("by day"),
    "product": _lazy("by product"),
}
GROUP_COLUMNS = {
    "category": _lazy("category"),
    "brand": _lazy("brand"),
    "day": _lazy("day"),
    "product": _lazy("SKU"),
}


def _presets() -> list[tuple[str, str, str]]:
    """Quick periods: (label, since, until) as ISO dates."""
    today = timezone.localdate()
    month_start = today.replace(day=1)
    last_month_end = month_start - timedelta(days=1)
    return [
        (_("7 days"), today - timedelta(days=6), today),
        (_("30 days"), today - timedelta(days=29), today),
        (_("this month"), month_start, today),
        (_("last month"), last_month_end.replace(day=1), last_month_end),
    ]


def _export(r, export, file_format, group, since, until, start, end):
    """The table as CSV (default) or XLSX (`export=sales-xlsx`, `margin-xlsx`)."""
    if export == "sales":
        rows, title, key_label = r.sales_by(group, since, until), _("Sales"), GROUP_COLUMNS[group]
    else:
        rows, title, key_label = r.margin_report(), _("Margins"), None
    name = f"{export}-{start}-{end}"
    if file_format == "xlsx":
        response = HttpResponse(
            r.to_xlsx(rows, title=str(title), key_label=key_label),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="{name}.xlsx"'
        return response
    response = HttpResponse(
        r.to_csv(rows, key_label=key_label), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response
