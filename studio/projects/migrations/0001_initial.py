import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# The projects' models as the `studio` app made them (studio 0002): their tables already exist,
# under the names the models keep (db_table), so this takes them over without touching a row.


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('studio', '0005_cache_scopes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are: only where Django finds the models changes.
            state_operations=[
                migrations.CreateModel(
                    name='Blob',
                    fields=[
                        ('sha256', models.CharField(max_length=64, primary_key=True, serialize=False)),
                        ('size', models.PositiveBigIntegerField()),
                        ('data', models.BinaryField()),
                    ],
                    options={
                        'db_table': 'studio_blob',
                    },
                ),
                migrations.CreateModel(
                    name='Project',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('visibility', models.CharField(choices=[('private', 'Private'), ('public', 'Public')], default='private', max_length=10)),
                        ('dockerfile_path', models.CharField(default='Dockerfile', max_length=255)),
                        ('share_token', models.CharField(blank=True, db_index=True, default='', max_length=64)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('owner', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='projects', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'studio_project',
                        'ordering': ['-updated_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='ProjectFile',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('path', models.CharField(max_length=1024)),
                        ('mode', models.PositiveIntegerField(default=420)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('blob', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='projects.blob')),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='files', to='projects.project')),
                    ],
                    options={
                        'db_table': 'studio_projectfile',
                        'ordering': ['path'],
                    },
                ),
                migrations.CreateModel(
                    name='Revision',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('digest', models.CharField(max_length=64)),
                        ('dockerfile_path', models.CharField(max_length=255)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='revisions', to='projects.project')),
                    ],
                    options={
                        'db_table': 'studio_revision',
                    },
                ),
                migrations.CreateModel(
                    name='RevisionFile',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('path', models.CharField(max_length=1024)),
                        ('mode', models.PositiveIntegerField()),
                        ('blob', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='projects.blob')),
                        ('revision', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='files', to='projects.revision')),
                    ],
                    options={
                        'db_table': 'studio_revisionfile',
                        'ordering': ['path'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='project',
                    constraint=models.UniqueConstraint(fields=('owner', 'name'), name='project_name_unique_per_owner'),
                ),
                migrations.AddConstraint(
                    model_name='projectfile',
                    constraint=models.UniqueConstraint(fields=('project', 'path'), name='project_file_path_unique'),
                ),
                migrations.AddConstraint(
                    model_name='revision',
                    constraint=models.UniqueConstraint(fields=('project', 'digest'), name='revision_digest_unique_per_project'),
                ),
                migrations.AddConstraint(
                    model_name='revisionfile',
                    constraint=models.UniqueConstraint(fields=('revision', 'path'), name='revision_file_path_unique'),
                ),
            ],
        ),
    ]
