"""ProviderSecret moves from chat (state only: the table keeps its name, chat_providersecret;
no database operation). Its content type is renamed, so that its admin permissions follow."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _rename_content_type(app_from: str, app_to: str, model: str):
    def rename(apps, schema_editor):
        content_type = apps.get_model("contenttypes", "ContentType")
        db = schema_editor.connection.alias
        if not content_type.objects.using(db).filter(app_label=app_to, model=model).exists():
            content_type.objects.using(db).filter(app_label=app_from, model=model).update(
                app_label=app_to
            )

    return rename


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("chat", "0004_provider_secret"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ProviderSecret",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=40, unique=True, verbose_name="setting")),
                        ("ciphertext", models.TextField()),
                        ("updated_at", models.DateTimeField(auto_now=True, verbose_name="updated")),
                        ("updated_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL, verbose_name="updated by")),
                    ],
                    options={
                        "verbose_name": "provider setting",
                        "verbose_name_plural": "provider settings",
                        "ordering": ("name",),
                        "db_table": "chat_providersecret",
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(
            _rename_content_type("chat", "provider_settings", "providersecret"),
            _rename_content_type("provider_settings", "chat", "providersecret"),
        ),
    ]
