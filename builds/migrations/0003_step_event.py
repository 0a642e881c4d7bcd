"""A step keeps its step.finished event whole: first the column it goes in."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("builds", "0002_cache_scopes"),
    ]

    operations = [
        migrations.AddField(
            model_name="step",
            name="event",
            field=models.JSONField(default=dict),
        ),
    ]
