from __future__ import annotations

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person using the studio. Its own model from the start, because swapping the user model
    after the first migration is a painful migration."""
