"""A step keeps its step.finished event whole: first the column it goes in."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("builds", "0003_models_in_their_apps"),
    ]

    operations = [
        migrations.AddField(
            model_name="step",
            name="event",
            field=models.JSONField(default=dict),
        ),
    ]
