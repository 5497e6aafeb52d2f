from django.core.management.base import BaseCommand

from backoffice.ops.roles import setup_roles


class Command(BaseCommand):
    help = "Create the staff groups (Catalog manager, Order manager, Accountant) and reset "
    help += "their permissions to exactly what each role needs (idempotent)."

    def handle(self, *args, **options):
        for role, count in setup_roles().items():
            self.stdout.write(f"{role}: {count} permissions")
