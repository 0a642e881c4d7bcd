"""Writes the API's OpenAPI description (what /api/schema/ serves) to a file, so that the page's
REST types are generated from it: `manage.py export_openapi` writes frontend/openapi.json, then
`npm run api-types` in frontend/ turns it into src/api-types.ts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from studio.api_root import openapi_text


def default_path() -> Path:
    return Path(settings.BASE_DIR) / "frontend" / "openapi.json"


class Command(BaseCommand):
    help = "Write the API's OpenAPI description to frontend/openapi.json (or --output)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, default=None, help="where to write it; - for stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        text = openapi_text()
        output = options["output"] or default_path()
        if str(output) == "-":
            self.stdout.write(text, ending="")
            return
        output.write_text(text, encoding="utf-8")
        self.stdout.write(f"wrote {output}")
