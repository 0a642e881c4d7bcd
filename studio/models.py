from __future__ import annotations

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person using the studio. Its own model from the start, because swapping the user model
    after the first migration is a painful migration.

    It stays in the `studio` app while projects and classrooms have apps of their own: moving the
    model AUTH_USER_MODEL names would rewrite every foreign key to it and the auth tables' own,
    which Django's migrations do not do safely for a swappable model."""
