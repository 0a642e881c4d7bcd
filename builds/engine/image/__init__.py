"""OCI images: configs made from the engine's state, imports into the store, and exports.

- config: `make_config` (OCI field names), `image_from_state` (what a finished stage is);
- load: `import_rootfs` (like `docker import`), `import_archive` (`docker save` archives and
  OCI layouts), `import_any` (decides which);
- export: `manifest_for`, `export_docker_archive` (what `docker load` takes), `export_oci_archive`.
"""

from __future__ import annotations

from .config import DEFAULT_PATH, image_from_state, make_config
from .export import export_docker_archive, export_oci_archive, index_for, manifest_for
from .load import archive_kind, import_any, import_archive, import_rootfs

__all__ = [
    "DEFAULT_PATH", "archive_kind", "export_docker_archive", "export_oci_archive", "image_from_state",
    "import_any", "import_archive", "import_rootfs", "index_for", "make_config", "manifest_for",
]
