"""GET /api/images/df/: the store's images and their shared layers, for signed-in people only."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from builds.engine import image as images
from builds.engine.seed import busybox_rootfs
from builds.engine.store import Store
from studio.models import User

pytestmark = pytest.mark.django_db


def test_a_signed_in_person_sees_the_shared_layers_and_a_stranger_to_the_site_does_not(
        settings: pytest.FixtureRequest, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    settings.STUDIO_DATA_DIR = store.root  # type: ignore[attr-defined]
    image = images.import_any(store, busybox_rootfs(tmp_path / "busybox.tar"), "busybox:latest")
    layer = store.layer(image.layers[0])
    assert Client().get("/api/images/df/").status_code == 401
    alice = Client()
    alice.force_login(User.objects.create_user(username="alice", password="x"))
    seen = alice.get("/api/images/df/").json()
    assert seen["images"][0]["names"] == ["busybox:latest"]
    assert seen["layers"] == [{"id": layer.id, "diff_id": layer.diff_id, "size": layer.size,
                               "images": ["busybox:latest"], "shared_by": 1}]
    assert (seen["stored"], seen["saved"]) == (layer.size, 0)
