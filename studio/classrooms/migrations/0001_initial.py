import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

# The classrooms' models as the `studio` app made them (studio 0003 to 0005): their tables already
# exist, under the names the models keep (db_table), so this takes them over without touching a row.


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('studio', '0005_cache_scopes'),
        ('projects', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are: only where Django finds the models changes.
            state_operations=[
                migrations.CreateModel(
                    name='Classroom',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('join_code', models.CharField(max_length=16, unique=True)),
                        ('closed_at', models.DateTimeField(blank=True, null=True)),
                        ('shared_cache', models.BooleanField(default=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('shared_project', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='projects.project')),
                        ('teacher', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='classrooms', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'studio_classroom',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='Exercise',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('title', models.CharField(max_length=100)),
                        ('instructions', models.TextField(blank=True, default='')),
                        ('checks', models.JSONField(blank=True, default=list)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('classroom', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='exercises', to='classrooms.classroom')),
                        ('starter', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='projects.revision')),
                    ],
                    options={
                        'db_table': 'studio_exercise',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='Membership',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('display_name', models.CharField(max_length=60)),
                        ('joined_at', models.DateTimeField(auto_now_add=True)),
                        ('removed_at', models.DateTimeField(blank=True, null=True)),
                        ('classroom', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='classrooms.classroom')),
                        ('student', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'studio_membership',
                        'ordering': ['display_name', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='Assignment',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('results', models.JSONField(blank=True, default=list)),
                        ('judged_build', models.PositiveIntegerField(blank=True, null=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('project', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='assignment', to='projects.project')),
                        ('exercise', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='assignments', to='classrooms.exercise')),
                        ('membership', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='assignments', to='classrooms.membership')),
                    ],
                    options={
                        'db_table': 'studio_assignment',
                        'ordering': ['exercise', 'membership'],
                    },
                ),
                migrations.AddConstraint(
                    model_name='membership',
                    constraint=models.UniqueConstraint(fields=('classroom', 'student'), name='membership_unique_per_class'),
                ),
                migrations.AddConstraint(
                    model_name='membership',
                    constraint=models.UniqueConstraint(models.F('classroom'), django.db.models.functions.text.Lower('display_name'), name='membership_name_unique_per_class'),
                ),
                migrations.AddConstraint(
                    model_name='assignment',
                    constraint=models.UniqueConstraint(fields=('exercise', 'membership'), name='assignment_unique_per_student'),
                ),
            ],
        ),
    ]
