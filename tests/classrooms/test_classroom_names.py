"""A display name is one per class, however it is capitalised, even when two people join at once."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from studio.classrooms.models import Membership
from studio.classrooms.services import classroom_create, classroom_join
from studio.errors import Rejected
from studio.models import User

pytestmark = pytest.mark.django_db


def _users(*names: str) -> list[User]:
    return [User.objects.create_user(username=name, password="pw-unused-here") for name in names]


def test_a_second_ana_is_refused_and_told_to_pick_another_name() -> None:
    teacher, ana, other = _users("teacher", "ana", "other")
    classroom = classroom_create(teacher=teacher, name="Layers 101")
    classroom_join(user=ana, code=classroom.join_code, display_name="Ana")

    with pytest.raises(Rejected, match="already called 'ANA'; pick another name"):
        classroom_join(user=other, code=classroom.join_code, display_name="ANA")
    assert [m.display_name for m in classroom.memberships.all()] == ["Ana"]


def test_the_database_itself_keeps_names_apart_within_a_class_only() -> None:
    # What stops two joins racing past the service's check at the same moment.
    teacher, ana, other = _users("teacher", "ana", "other")
    first = classroom_create(teacher=teacher, name="Morning")
    second = classroom_create(teacher=teacher, name="Afternoon")
    Membership.objects.create(classroom=first, student=ana, display_name="Ana")

    with pytest.raises(IntegrityError), transaction.atomic():
        Membership.objects.create(classroom=first, student=other, display_name="ana")
    Membership.objects.create(classroom=second, student=other, display_name="ana")
    assert Membership.objects.filter(display_name__iexact="ana").count() == 2
