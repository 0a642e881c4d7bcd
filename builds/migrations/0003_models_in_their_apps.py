import django.db.models.deletion
from django.db import migrations, models

# A build's project and revision are now the projects app's models, in the same tables: the
# foreign keys already point at the right tables, so only Django's picture of them changes.


class Migration(migrations.Migration):

    dependencies = [
        ('builds', '0002_cache_scopes'),
        ('projects', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are: only where Django finds the models changes.
            state_operations=[
                migrations.AlterField(
                    model_name='build',
                    name='project',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='builds', to='projects.project'),
                ),
                migrations.AlterField(
                    model_name='build',
                    name='revision',
                    field=models.ForeignKey(on_delete=django.db.models.deletion.RESTRICT, related_name='builds', to='projects.revision'),
                ),
            ],
        ),
    ]
