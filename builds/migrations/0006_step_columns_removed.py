"""The columns a step's event was unpacked into, now that the event is kept whole."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("builds", "0005_step_event_from_columns"),
    ]

    operations = [
        migrations.RemoveField(model_name="step", name="cache_key"),
        migrations.RemoveField(model_name="step", name="cached"),
        migrations.RemoveField(model_name="step", name="duration_ms"),
        migrations.RemoveField(model_name="step", name="error"),
        migrations.RemoveField(model_name="step", name="extra"),
        migrations.RemoveField(model_name="step", name="instruction"),
        migrations.RemoveField(model_name="step", name="layer"),
        migrations.RemoveField(model_name="step", name="line"),
        migrations.RemoveField(model_name="step", name="reason"),
        migrations.RemoveField(model_name="step", name="stage"),
        migrations.RemoveField(model_name="step", name="status"),
    ]
