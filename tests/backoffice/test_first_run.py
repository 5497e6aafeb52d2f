"""First run: the block `make run` ends with, `make admin-password`, PORT → SITE_URL, `/`."""

import os
import subprocess
import sys
from pathlib import Path

from django.core.management import call_command

from backoffice.ops.first_run import banner, ensure_admin_user

ROOT = Path(__file__).resolve().parents[2]


def test_banner_shows_the_new_password_once(django_user_model):
    admin = ensure_admin_user(username="admin")
    assert admin["created"]
    assert len(admin["password"]) >= 12
    user = django_user_model.objects.get(username="admin")
    assert user.is_superuser
    assert user.check_password(admin["password"])
    block = banner(base_url="http://127.0.0.1:8123", admin=admin, password_from_env=False)
    assert "http://127.0.0.1:8123/admin/" in block
    assert "http://127.0.0.1:8123/admin/dashboard/" in block
    assert admin["password"] in block

    again = ensure_admin_user(username="admin")
    assert not again["created"]
    assert again["password"] == ""
    block = banner(base_url="http://127.0.0.1:8123", admin=again, password_from_env=False)
    assert "make admin-password" in block
    assert django_user_model.objects.get(username="admin").check_password(admin["password"])


def test_admin_password_reset_sets_a_new_one_and_lifts_the_lock(
    client, django_user_model, settings, capsys
):
    settings.LOGIN_FAILURE_LIMIT = 2
    django_user_model.objects.create_superuser("admin", "", "old-password-1")
    for _ in range(2):
        client.post("/admin/login/", {"username": "admin", "password": "wrong"})
    call_command("ensure_admin", "--reset")
    password = capsys.readouterr().out.split("password: ")[1].split()[0]
    assert django_user_model.objects.get(username="admin").check_password(password)
    response = client.post("/admin/login/", {"username": "admin", "password": password})
    assert response.status_code == 302


def test_port_sets_the_public_url_of_payment_links():
    env = {k: v for k, v in os.environ.items() if k not in ("SITE_URL", "PORT")}
    env.update(PORT="8123", DEBUG="1", SITE_URL="")
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.SITE_URL)"
    )
    out = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        env={**env, "DJANGO_SETTINGS_MODULE": "backoffice.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "http://127.0.0.1:8123"


def test_site_root_goes_to_the_admin_and_no_view_site_link(staff_client):
    response = staff_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert 'href="/"' not in staff_client.get("/admin/").text


def test_feed_is_readable_in_a_browser(client, settings):
    from catalog.services.feed import feed_path

    path = feed_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('<?xml version="1.0" encoding="utf-8"?><kaspi_catalog/>', encoding="utf-8")
    policy = client.get("/feed.xml")["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in policy  # the XML viewer's own styles
    assert "script-src" not in policy
    assert "default-src 'none'" in policy
