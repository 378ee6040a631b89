from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0003_sharing_and_encoder"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="vector",
            field=models.BinaryField(blank=True, null=True),
        ),
    ]
