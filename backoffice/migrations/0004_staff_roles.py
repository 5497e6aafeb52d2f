"""Create the staff groups with their permissions (backoffice/ops/roles.py)."""

from django.db import migrations


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally made after all migrations; make them now so the groups can
    # hold them on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    from backoffice.ops.roles import setup_roles

    setup_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("backoffice", "0003_auditentry"),
        ("catalog", "0003_kaspicategory_product_card_hash_product_card_message_and_more"),
        ("orders", "0003_order_alerted_at_order_attention_reason_and_more"),
        ("payments", "0002_kaspiqrdevice_payment_last_polled_at_and_more"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
