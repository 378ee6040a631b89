"""UsageRecord moves from chat (state only: the table keeps its name, chat_usagerecord; no
database operation). Its content type is renamed, so that its admin permissions follow."""

import django.db.models.deletion
import django.utils.timezone
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
                    name="UsageRecord",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(default=django.utils.timezone.now, verbose_name="time"),
                        ),
                        ("provider", models.CharField(max_length=50, verbose_name="provider")),
                        ("model", models.CharField(blank=True, max_length=200, verbose_name="model")),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("streaming", "Streaming"),
                                    ("complete", "Complete"),
                                    ("stopped", "Stopped"),
                                    ("failed", "Failed"),
                                ],
                                max_length=10,
                                verbose_name="status",
                            ),
                        ),
                        (
                            "error_kind",
                            models.CharField(blank=True, max_length=100, verbose_name="error kind"),
                        ),
                        ("error", models.TextField(blank=True, verbose_name="error")),
                        (
                            "prompt_tokens",
                            models.PositiveIntegerField(default=0, verbose_name="prompt tokens"),
                        ),
                        (
                            "completion_tokens",
                            models.PositiveIntegerField(default=0, verbose_name="completion tokens"),
                        ),
                        (
                            "first_token_ms",
                            models.PositiveIntegerField(
                                blank=True, null=True, verbose_name="time to first token (ms)"
                            ),
                        ),
                        (
                            "total_ms",
                            models.PositiveIntegerField(default=0, verbose_name="total time (ms)"),
                        ),
                        (
                            "knowledge_base_ids",
                            models.JSONField(blank=True, default=list, verbose_name="knowledge bases"),
                        ),
                        ("question", models.TextField(blank=True, verbose_name="question")),
                        (
                            "passages_retrieved",
                            models.PositiveIntegerField(
                                blank=True, null=True, verbose_name="passages retrieved"
                            ),
                        ),
                        (
                            "best_score",
                            models.FloatField(blank=True, null=True, verbose_name="best retrieval score"),
                        ),
                        (
                            "no_good_context",
                            models.BooleanField(default=False, verbose_name="no good context"),
                        ),
                        (
                            "conversation",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="chat.conversation",
                            ),
                        ),
                        (
                            "message",
                            models.OneToOneField(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="usage",
                                to="chat.message",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="usage_records",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "usage record",
                        "verbose_name_plural": "usage",
                        "db_table": "chat_usagerecord",
                        "ordering": ("-created_at", "-id"),
                        "indexes": [
                            models.Index(fields=["created_at"], name="chat_usager_created_adc131_idx"),
                            models.Index(
                                fields=["user", "created_at"], name="chat_usager_user_id_146553_idx"
                            ),
                            models.Index(
                                condition=models.Q(("no_good_context", True)),
                                fields=["created_at"],
                                name="usage_no_good_context",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(
            _rename_content_type("chat", "usage", "usagerecord"),
            _rename_content_type("usage", "chat", "usagerecord"),
        ),
    ]
