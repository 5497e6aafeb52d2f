from django.contrib import admin
from django.urls import include, path

from catalog.views import feed_xml

from . import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("feed.xml", feed_xml, name="feed"),
    path("admin/", admin.site.urls),
    path("", include("payments.urls")),
]
