from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from backoffice.ops import api, views
from catalog.views import feed_xlsx, feed_xml

urlpatterns = [
    path("health", views.health, name="health"),
    path("api/status", api.api_status, name="api-status"),
    path("api/sync", api.api_sync, name="api-sync"),
    path("api/runs/<int:run_id>", api.api_run, name="api-run"),
    path("admin/dashboard/", views.dashboard, name="dashboard"),
    path("admin/reports/", views.reports, name="reports"),
    path("feed.xml", feed_xml, name="feed"),
    path("feed.xlsx", feed_xlsx, name="feed-xlsx"),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("", include("payments.urls")),
]
