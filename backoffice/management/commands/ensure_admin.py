import os

from django.core.management.base import BaseCommand

from backoffice.ops.first_run import ensure_admin_user


class Command(BaseCommand):
    help = (
        "Create the superuser 'admin' if it does not exist, with ADMIN_PASSWORD or a random "
        "password printed once. --reset sets a new password (and lifts login locks)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("ADMIN_USERNAME", "admin"))
        parser.add_argument(
            "--reset", action="store_true", help="Set a new password for an existing user."
        )

    def handle(self, *args, username, reset, **options):
        from_env = os.environ.get("ADMIN_PASSWORD", "")
        result = ensure_admin_user(username=username, password=from_env, reset=reset)
        if not (result["created"] or result["reset"]):
            self.stdout.write(f"Admin user '{username}' exists; password unchanged.")
            return
        done = "Created admin user" if result["created"] else "New password for"
        if from_env:
            self.stdout.write(f"{done} '{username}': the password in ADMIN_PASSWORD.")
        else:
            self.stdout.write(
                self.style.WARNING(
                    f"{done} '{username}', password: {result['password']}\n"
                    "It is shown only this once; change it in the admin."
                )
            )
