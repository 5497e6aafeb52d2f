from django.urls import path

from . import views

app_name = "payments"

urlpatterns = [
    path("pay/<uuid:payment_id>/", views.pay_page, name="pay"),
    path("pay/<uuid:payment_id>/status.json", views.pay_status, name="status"),
    path("pay/<uuid:payment_id>/demo/", views.demo_result, name="demo"),
    path("api/kaspi-webhook", views.kaspi_webhook, name="webhook"),
]
