from collections.abc import Callable
from typing import Any

from django.db import migrations

MOVED = {
    "projects": ["project", "blob", "projectfile", "revision", "revisionfile"],
    "classrooms": ["classroom", "membership", "exercise", "assignment"],
}


def _relabel(apps: Any, old: Callable[[str], str], new: Callable[[str], str]) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    for label, models in MOVED.items():
        for model in models:
            # A row already under the new label (left by an earlier migrate back and forth) wins;
            # the old one then stays, as Django leaves any stale content type.
            if not content_type.objects.filter(app_label=new(label), model=model).exists():
                content_type.objects.filter(app_label=old(label), model=model).update(app_label=new(label))


def content_types_forward(apps: Any, schema_editor: Any) -> None:
    _relabel(apps, old=lambda label: "studio", new=lambda label: label)


def content_types_backward(apps: Any, schema_editor: Any) -> None:
    _relabel(apps, old=lambda label: label, new=lambda label: "studio")

# The projects' and classrooms' models left the `studio` app for apps of their own (projects 0001,
# classrooms 0001), which took over their tables; here the `studio` app forgets them, and their
# content types follow them, so permissions and admin history that point at them stay valid.


class Migration(migrations.Migration):

    dependencies = [
        ('projects', '0001_initial'),
        ('classrooms', '0001_initial'),
        ('builds', '0003_models_in_their_apps'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('studio', '0005_cache_scopes'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The tables stay as they are: only where Django finds the models changes.
            state_operations=[
                migrations.RemoveField(
                    model_name='revisionfile',
                    name='blob',
                ),
                migrations.RemoveField(
                    model_name='projectfile',
                    name='blob',
                ),
                migrations.RemoveField(
                    model_name='classroom',
                    name='shared_project',
                ),
                migrations.RemoveField(
                    model_name='classroom',
                    name='teacher',
                ),
                migrations.RemoveField(
                    model_name='membership',
                    name='classroom',
                ),
                migrations.RemoveField(
                    model_name='exercise',
                    name='classroom',
                ),
                migrations.RemoveField(
                    model_name='exercise',
                    name='starter',
                ),
                migrations.RemoveField(
                    model_name='membership',
                    name='student',
                ),
                migrations.RemoveField(
                    model_name='project',
                    name='owner',
                ),
                migrations.RemoveField(
                    model_name='revision',
                    name='project',
                ),
                migrations.RemoveField(
                    model_name='projectfile',
                    name='project',
                ),
                migrations.RemoveField(
                    model_name='revisionfile',
                    name='revision',
                ),
                migrations.DeleteModel(
                    name='Assignment',
                ),
                migrations.DeleteModel(
                    name='Blob',
                ),
                migrations.DeleteModel(
                    name='Classroom',
                ),
                migrations.DeleteModel(
                    name='Exercise',
                ),
                migrations.DeleteModel(
                    name='Membership',
                ),
                migrations.DeleteModel(
                    name='Project',
                ),
                migrations.DeleteModel(
                    name='ProjectFile',
                ),
                migrations.DeleteModel(
                    name='Revision',
                ),
                migrations.DeleteModel(
                    name='RevisionFile',
                ),
            ],
            database_operations=[
                migrations.RunPython(content_types_forward, content_types_backward),
            ],
        ),
    ]
