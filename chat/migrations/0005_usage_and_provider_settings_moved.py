"""UsageRecord and ProviderSecret now belong to the usage and provider_settings apps: removed
from chat's state only (their tables, chat_usagerecord and chat_providersecret, stay)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0004_provider_secret"),
        ("usage", "0001_initial"),
        ("provider_settings", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="UsageRecord"),
                migrations.DeleteModel(name="ProviderSecret"),
            ],
            database_operations=[],
        ),
    ]
