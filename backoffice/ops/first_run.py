"""The first run on a developer's machine: the owner's account and the block `make run`
prints once the server answers (where to go, who to log in as)."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model


def ensure_admin_user(*, username: str, password: str = "", reset: bool = False) -> dict:
    """Create the superuser `username` if missing (or set a new password with `reset`).

    Returns {"username", "created", "reset", "password"}: `password` is the one just set
    when we made it up (shown once, never stored), "" when it came from the caller or was
    left unchanged."""
    User = get_user_model()
    user = User.objects.filter(username=username).first()
    result = {"username": username, "created": False, "reset": False, "password": ""}
    if user is not None and not reset:
        return result
    generated = "" if password else secrets.token_urlsafe(12)
    if user is None:
        User.objects.create_superuser(username=username, email="", password=password or generated)
        result["created"] = True
    else:
        user.set_password(password or generated)
        user.is_active = True
        user.save(update_fields=["password", "is_active"])
        result["reset"] = True
        _unlock(username)
    result["password"] = generated
    return result


def _unlock(username: str) -> None:
    """A reset password is no use while the login is locked: lift the user's locks."""
    from axes.utils import reset

    reset(username=username)


def banner(*, base_url: str, admin: dict, password_from_env: bool) -> str:
    """The block printed at the end of `make run`."""
    if admin["password"]:
        shown = f"{admin['password']}   (shown only this once; change it in the admin)"
    elif password_from_env and (admin["created"] or admin["reset"]):
        shown = "the one in ADMIN_PASSWORD"
    else:
        shown = "unchanged (forgotten? `make admin-password` sets a new one)"
    width = 72
    lines = [
        "=" * width,
        "  Kaspi back office is running",
        f"  Admin:       {base_url}/admin/",
        f"  User:        {admin['username']}",
        f"  Password:    {shown}",
        f"  Dashboard:   {base_url}/admin/dashboard/",
        f"  Price list:  {base_url}/feed.xml",
        f"  Payment links point at {settings.SITE_URL} (SITE_URL)",
        "  Ctrl-C stops the server and the task worker.",
        "=" * width,
    ]
    return "\n".join(lines)
