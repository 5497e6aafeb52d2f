"""The Accountant creates payments from the admin («New payment»): give the group
add_payment (backoffice/ops/roles.py says so too, for setup_roles)."""

from django.db import migrations


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.filter(
        content_type__app_label="payments", codename="add_payment"
    ).first()
    group = Group.objects.filter(name="Accountant").first()
    if group is not None and permission is not None:
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    group = Group.objects.filter(name="Accountant").first()
    if group is not None:
        group.permissions.remove(
            *group.permissions.filter(content_type__app_label="payments", codename="add_payment")
        )


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0003_webhookdelivery_body_bytes"),
        ("backoffice", "0004_staff_roles"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
